import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusPaymentPayPal
import NimbusTesting
import Testing

/// PayPal's Customer Disputes API, against the fake checked with PayPal's customer_disputes_v1 spec extract.
@Suite("PayPal disputes", .timeLimit(.minutes(3)))
struct PayPalDisputeTests {
    @Test func disputesAreListedPageByPageAnsweredWithEvidenceAndClaimsAccepted() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = paypalDriver(fake.baseURL)
        let client = PaymentClient(driver: driver, retry: .none)
        let payment = try await client.create(PaymentRequest(amount: try Money("42.00", .eur), paymentMethodID: "card-success", confirm: true))
        #expect(try await client.disputes(of: payment.id).isEmpty)
        let ids = try (0..<3).map { _ in try fake.openDispute(onPayment: payment.id) }

        let all = try await client.disputes(of: payment.id)
        #expect(Set(all.map(\.id)) == Set(ids), "three disputes over two pages")
        #expect(fake.server.requests.filter { $0.path == "/v1/customer/disputes" && $0.queryItem("next_page_token") != nil }.count >= 1)
        let due = try Money("42.00", .eur)
        #expect(all.allSatisfy { $0.status == .needsResponse && $0.paymentID == payment.id && $0.amount == due && $0.evidenceDueBy != nil })
        #expect(all.first?.reason == "merchandise_or_service_not_received")

        try await driver.provideEvidence(ids[0], [PayPalDisputeEvidence(type: "PROOF_OF_FULFILLMENT", tracking: [("UPS", "1Z999AA10123456784")], notes: "Delivered on 2 Dec")],
                                         documents: [("receipt.pdf", "application/pdf", Array("%PDF-1.4 proof".utf8))])
        #expect(try await driver.dispute(ids[0]).status == .underReview)
        try await driver.acceptClaim(ids[1], note: "Refunding the buyer")
        #expect(try await driver.dispute(ids[1]).status == .lost, "an accepted claim resolves in the buyer's favour")
        let listed = try await client.disputes(of: payment.id)
        #expect(listed.first { $0.id == ids[1] }?.status.isClosed == true, "resolved disputes are read in full for their outcome")

        let again = await #expect(throws: NimbusError.self) { try await driver.acceptClaim(ids[1], note: "twice") }
        #expect(again?.code == .failedPrecondition || again?.code == .invalidArgument, "\(String(describing: again))")
        await #expect(throws: NimbusError.self) { try await driver.provideEvidence(ids[2], []) }
        let evidence = try #require(fake.server.requests.first { $0.path.hasSuffix("/provide-evidence") })
        #expect(evidence.header("content-type")?.hasPrefix("multipart/form-data; boundary=") == true)
        #expect(evidence.bodyText.contains(#""evidence_type":"PROOF_OF_FULFILLMENT""#) && evidence.bodyText.contains("filename=\"receipt.pdf\""))
        #expect(fake.mismatches.isEmpty, "\(fake.mismatches)")
    }
}
