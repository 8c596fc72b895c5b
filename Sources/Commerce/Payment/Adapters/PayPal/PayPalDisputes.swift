import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment

/// One piece of evidence for ``PayPalPaymentDriver/provideEvidence(_:_:documents:)``, as the
/// Customer Disputes API takes it.
public struct PayPalDisputeEvidence: Sendable, Hashable {
    /// PayPal's type (`PROOF_OF_FULFILLMENT`, `PROOF_OF_REFUND`, `OTHER`…).
    public var type: String
    /// Shipments: carrier and tracking number.
    public var tracking: [(carrier: String, number: String)]
    /// Refunds already made to the buyer (their PayPal ids).
    public var refundIDs: [String]
    /// What the seller says.
    public var notes: String?

    /// Creates evidence.
    public init(type: String, tracking: [(carrier: String, number: String)] = [], refundIDs: [String] = [], notes: String? = nil) {
        self.type = type
        self.tracking = tracking
        self.refundIDs = refundIDs
        self.notes = notes
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.type == b.type && a.tracking.map { "\($0.carrier)|\($0.number)" } == b.tracking.map { "\($0.carrier)|\($0.number)" }
            && a.refundIDs == b.refundIDs && a.notes == b.notes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        for item in tracking { hasher.combine(item.carrier); hasher.combine(item.number) }
        hasher.combine(refundIDs)
        hasher.combine(notes)
    }

    var json: JSONValue {
        var info: [String: JSONValue] = [:]
        if !tracking.isEmpty {
            info["tracking_info"] = .array(tracking.map { ["carrier_name": .string($0.carrier), "tracking_number": .string($0.number)] })
        }
        if !refundIDs.isEmpty { info["refund_ids"] = .array(refundIDs.map { ["refund_id": .string($0)] }) }
        var object: [String: JSONValue] = ["evidence_type": .string(type)]
        if !info.isEmpty { object["evidence_info"] = .object(info) }
        if let notes { object["notes"] = .string(notes) }
        return .object(object)
    }
}

/// PayPal disputes → the portable model.
enum PayPalDisputes {
    /// A dispute summary or detail; unknown statuses are kept as they come (lowercased).
    static func dispute(_ object: JSONValue, paymentID: String) throws -> Dispute {
        guard let id = object["dispute_id"]?.stringValue, let state = object["status"]?.stringValue else {
            throw NimbusError(.internal, "paypal answered a dispute without dispute_id or status")
        }
        let status: Dispute.Status = switch state {
        case "WAITING_FOR_SELLER_RESPONSE": .needsResponse
        case "UNDER_REVIEW": .underReview
        case "RESOLVED":
            switch object["dispute_outcome"]?["outcome_code"]?.stringValue {
            case "RESOLVED_SELLER_FAVOUR"?: .won
            case "RESOLVED_BUYER_FAVOUR"?, "RESOLVED_WITH_PAYOUT"?: .lost
            case let other?: Dispute.Status(rawValue: other.lowercased())
            case nil: Dispute.Status(rawValue: "resolved")
            }
        default: Dispute.Status(rawValue: state.lowercased())
        }
        return Dispute(id: id, paymentID: paymentID, amount: try PayPalAmount.money(object["dispute_amount"], field: "dispute_amount"), status: status,
                       reason: object["reason"]?.stringValue?.lowercased() ?? "unknown",
                       evidenceDueBy: PayPalOrders.date(object["seller_response_due_date"]),
                       createdAt: PayPalOrders.date(object["create_time"]) ?? Date(timeIntervalSince1970: 0))
    }
}
