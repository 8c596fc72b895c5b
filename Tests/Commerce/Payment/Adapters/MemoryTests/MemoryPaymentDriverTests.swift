import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusPaymentConformance
import NimbusPaymentMemory
import Testing

@Suite("Embedded payment engine", .timeLimit(.minutes(2)))
struct MemoryPaymentDriverTests {
    static let harness = PaymentConformance.Harness(
        makeDriver: { try MemoryPaymentDriver() },
        cards: .init(success: TestCard.visa, insufficientFunds: TestCard.insufficientFunds,
                     threeDSecure: TestCard.threeDSecureRequired, disputed: TestCard.disputed),
        completeAction: { driver, payment, succeeded in
            guard let engine = driver as? MemoryPaymentDriver else { throw NimbusError(.internal, "not the embedded engine") }
            try await engine.completeAction(payment.id, succeeded: succeeded)
        })

    @Test("conformance", arguments: PaymentConformance.suite.checks)
    func conformance(_ check: PaymentConformance.Check) async throws {
        try await check.run(Self.harness)
    }

    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("payments-\(UUID().uuidString).sqlite").path
    }

    @Test func paymentsRefundsAndIdempotencyKeysSurviveARestart() async throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let key = try IdempotencyKey("order-7-refund-1")
        let paymentID: String
        let refundID: String
        do {
            let engine = PaymentClient(driver: try MemoryPaymentDriver(path: path))
            let payment = try await engine.create(PaymentRequest(amount: try Money("20.00", .usd), paymentMethodID: "4242 4242 4242 4242", confirm: true))
            paymentID = payment.id
            refundID = try await engine.refund(payment.id, amount: try Money("5.00", .usd), idempotencyKey: key).id
        }
        let reopened = PaymentClient(driver: try MemoryPaymentDriver(path: path))
        let payment = try await reopened.payment(paymentID)
        #expect(try payment.status == .succeeded && payment.amountRefunded == Money("5.00", .usd))
        #expect(try await reopened.refund(paymentID, amount: try Money("5.00", .usd), idempotencyKey: key).id == refundID,
                "a retry after a restart is still recognized")
        #expect(try await reopened.refunds(of: paymentID).count == 1)
    }

    @Test func concurrentRepeatsOfOneKeyCreateOnePayment() async throws {
        let engine = try MemoryPaymentDriver()
        let key = IdempotencyKey()
        let request = PaymentRequest(amount: try Money("3.00", .eur), paymentMethodID: TestCard.visa, confirm: true)
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await engine.create(request, idempotencyKey: key).id } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        let succeeded = try await engine.events().filter { $0.kind == .paymentSucceeded }
        #expect(succeeded.count == 1, "one charge, one event")
    }

    @Test func eventsFollowEveryChangeInOrderAndPageByID() async throws {
        let engine = try MemoryPaymentDriver()
        let client = PaymentClient(driver: engine)
        let declined = try await client.create(PaymentRequest(amount: try Money("10", .eur), captureMethod: .manual, paymentMethodID: TestCard.declined, confirm: true))
        #expect(declined.lastFailure?.kind == .cardDeclined && declined.lastFailure?.providerCode == "generic_decline")
        _ = try await client.confirm(declined.id, paymentMethodID: TestCard.visa)
        _ = try await client.capture(declined.id, amount: try Money("4", .eur))
        _ = try await client.refund(declined.id)
        let disputed = try await client.create(PaymentRequest(amount: try Money("8", .eur), paymentMethodID: TestCard.disputed, confirm: true))
        let events = try await engine.events()
        #expect(events.map(\.kind) == [.paymentFailed, .paymentCapturable, .paymentSucceeded, .refundUpdated, .paymentSucceeded, .disputeCreated])
        #expect(events[2].payment?.amountReceived == (try Money("4", .eur)))
        #expect(events[3].refund?.amount == (try Money("4", .eur)))
        let page = try await engine.events(after: events[3].id)
        #expect(page.map(\.id) == Array(events[4...].map(\.id)))
        #expect(try await engine.events(after: events[5].id).isEmpty)

        let dispute = try #require(try await client.disputes(of: disputed.id).first)
        #expect(dispute.status == .needsResponse && dispute.reason == "fraudulent" && dispute.evidenceDueBy != nil)
        let closed = try await engine.closeDispute(dispute.id, status: .won)
        #expect(closed.status == .won)
        await #expect(throws: NimbusError.self) { try await engine.closeDispute(dispute.id, status: .lost) }
        #expect(try await engine.events(after: events[5].id).map(\.kind) == [.disputeClosed])
    }

    @Test func badInputIsRefusedWithWhatToDoAndChangesNothing() async throws {
        let engine = try MemoryPaymentDriver()
        let key = IdempotencyKey()
        func code(_ body: () async throws -> Void) async -> NimbusError? {
            do { try await body(); return nil } catch { return error as? NimbusError }
        }
        let unknown = await code { _ = try await engine.create(PaymentRequest(amount: try Money("1", .eur), paymentMethodID: "pm_nope", confirm: true), idempotencyKey: key) }
        #expect(unknown?.code == .invalidArgument && unknown?.message.contains("pm_card_visa") == true)
        // The failed call recorded nothing: the key is still free for a corrected request.
        let created = try await engine.create(PaymentRequest(amount: try Money("1", .eur), paymentMethodID: TestCard.visa, confirm: true), idempotencyKey: key)
        #expect(created.status == .succeeded)

        let fine = await code { _ = try await engine.create(PaymentRequest(amount: try Money("1.005", .eur)), idempotencyKey: IdempotencyKey()) }
        #expect(fine?.code == .invalidArgument && fine?.message.contains("minor unit") == true)
        let yen = try await engine.create(PaymentRequest(amount: try Money("500", Currency("JPY"))), idempotencyKey: IdempotencyKey())
        #expect(yen.amount.currency.code == "JPY")
        let reason = await code { _ = try await engine.refund(created.id, amount: nil, reason: "changed_mind", idempotencyKey: IdempotencyKey()) }
        #expect(reason?.code == .invalidArgument)
        let noMethod = await code { _ = try await engine.confirm(yen.id, paymentMethodID: nil, idempotencyKey: IdempotencyKey()) }
        #expect(noMethod?.code == .invalidArgument)
        let notWaiting = await code { try await engine.completeAction(created.id, succeeded: true) }
        #expect(notWaiting?.code == .failedPrecondition)
        #expect(try await engine.payment(created.id).amountRefunded.isZero)
    }
}
