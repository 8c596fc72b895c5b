import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import Synchronization
import Testing

@Suite struct PaymentStateTests {
    @Test func finalStatesAllowNothingAndCaptureOnlyFollowsAuthorization() throws {
        for status in PaymentStatus.allCases where status.isFinal {
            #expect(status.next.isEmpty)
            let error = #expect(throws: NimbusError.self) { try status.checkTransition(to: .canceled, operation: "cancel") }
            #expect(error?.code == .failedPrecondition && error?.message.contains("final") == true)
        }
        #expect(PaymentStatus.requiresCapture.next == [.succeeded, .canceled])
        for status in PaymentStatus.allCases where !status.isFinal { #expect(status.next.contains(.canceled), "\(status) can be canceled") }
        #expect(PaymentStatus(rawValue: "requires_payment_method") == .requiresPaymentMethod)
    }

    @Test func capturesAndRefundsAreCheckedAgainstWhatIsLeft() throws {
        let eur = Currency.eur
        var payment = Payment(id: "pay_1", amount: try Money("100", eur), status: .requiresCapture, captureMethod: .manual,
                              amountCapturable: try Money("100", eur))
        #expect(try payment.checkCapture(nil) == Money("100", eur))
        #expect(try payment.checkCapture(Money("40", eur)) == Money("40", eur))
        #expect(throws: NimbusError.self) { try payment.checkCapture(Money("100.01", eur)) }
        #expect(throws: NimbusError.self) { try payment.checkCapture(Money("10", .usd)) }
        #expect(throws: NimbusError.self) { try payment.checkRefund(nil) }        // not succeeded yet
        payment.status = .succeeded
        payment.amountReceived = try Money("40", eur)
        payment.amountRefunded = try Money("15", eur)
        #expect(payment.refundable == (try Money("25", eur)))
        #expect(try payment.checkRefund(nil) == Money("25", eur))
        #expect(throws: NimbusError.self) { try payment.checkRefund(Money("25.01", eur)) }
        #expect(throws: NimbusError.self) { try payment.checkRefund(Money("0", eur)) }
        #expect(throws: NimbusError.self) { try payment.checkCapture(nil) }
    }

    @Test func idempotencyKeysAreBoundedAndUnique() throws {
        #expect(throws: NimbusError.self) { try IdempotencyKey("") }
        #expect(throws: NimbusError.self) { try IdempotencyKey(String(repeating: "k", count: 256)) }
        #expect(try IdempotencyKey("order-1042").value == "order-1042")
        #expect(Set((0..<100).map { _ in IdempotencyKey() }).count == 100)
    }
}

/// A driver that fails transiently first, recording the key of each attempt.
final class FlakyDriver: PaymentDriver {
    let provider = "flaky"
    let keys = Mutex<[String]>([])
    let failures = Mutex(1)

    func attempt(_ key: IdempotencyKey) throws {
        keys.withLock { $0.append(key.value) }
        let fail = failures.withLock { count -> Bool in
            defer { count -= 1 }
            return count > 0
        }
        if fail { throw NimbusError(.unavailable, "connection reset") }
    }

    func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try attempt(idempotencyKey)
        return Payment(id: "pay_1", amount: request.amount, status: .requiresPaymentMethod, captureMethod: request.captureMethod, metadata: request.metadata)
    }
    func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment { throw NimbusError(.unimplemented, "not scripted") }
    func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment { throw NimbusError(.unimplemented, "not scripted") }
    func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment { throw NimbusError(.unimplemented, "not scripted") }
    func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund {
        try attempt(idempotencyKey)
        return Refund(id: "re_1", paymentID: paymentID, amount: amount ?? .zero(.eur), status: .succeeded, reason: reason)
    }
    func payment(_ paymentID: String) async throws -> Payment { throw NimbusError(.notFound, "no payment \(paymentID)") }
    func refunds(of paymentID: String) async throws -> [Refund] { [] }
    func disputes(of paymentID: String) async throws -> [Dispute] { [] }
}

@Suite struct OpenEnumerationTests {
    @Test func unknownProviderValuesAreKeptNotRejected() throws {
        let decoded = try JSONDecoder().decode([Dispute.Status].self, from: Data(#"["needs_response","prearbitration"]"#.utf8))
        #expect(decoded == [.needsResponse, Dispute.Status(rawValue: "prearbitration")])
        #expect(!decoded[1].isClosed && Dispute.Status.lost.isClosed)
        #expect(String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self) == #"["needs_response","prearbitration"]"#)
        #expect(["Stripe-Signature": "x"].header("stripe-signature") == "x")
    }
}

@Suite struct PaymentClientTests {
    let fast = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5))

    @Test func aRetriedCallSendsTheSameIdempotencyKeyEveryTime() async throws {
        let driver = FlakyDriver()
        let client = PaymentClient(driver: driver, retry: fast)
        let payment = try await client.create(PaymentRequest(amount: try Money("19.999", .eur), metadata: ["order": "1042"]))
        #expect(payment.amount == (try Money("20.00", .eur)), "amounts are rounded to minor units before sending")
        let keys = driver.keys.withLock { $0 }
        #expect(keys.count == 2 && keys[0] == keys[1], "one key per call, reused on the retry: \(keys)")

        driver.failures.withLock { $0 = 1 }
        _ = try await client.refund("pay_1", amount: try Money("5", .eur), idempotencyKey: try IdempotencyKey("refund-1042-1"))
        #expect(driver.keys.withLock { Array($0.suffix(2)) } == ["refund-1042-1", "refund-1042-1"])
        _ = try await client.refund("pay_1", amount: try Money("5", .eur))
        #expect(Set(driver.keys.withLock { $0 }).count == 3, "a new call gets a new key")
    }

    @Test func nonPositiveAmountsAreRefusedBeforeAnythingIsSent() async throws {
        let driver = FlakyDriver()
        await #expect(throws: NimbusError.self) { try await PaymentClient(driver: driver).create(PaymentRequest(amount: try Money("0", .eur))) }
        #expect(driver.keys.withLock { $0 }.isEmpty)
    }
}
