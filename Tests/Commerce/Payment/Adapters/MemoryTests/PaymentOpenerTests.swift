import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusPaymentMemory
import Testing

/// Scheme names mean one thing everywhere: `mem://` in-process and volatile, `sqlite://PATH` persistent.
@Suite("Payment openers")
struct PaymentOpenerTests {
    static let openers = PaymentClient.openers.withMemory().withSQLite()

    @Test func memIsVolatileAndSQLiteKeepsPaymentsAcrossOpens() async throws {
        let request = PaymentRequest(amount: try Money("12.50", .eur), paymentMethodID: "pm_card_visa", confirm: true)
        let volatile = try await PaymentClient.open("mem://", openers: Self.openers).create(request)
        await #expect(throws: NimbusError.self) { _ = try await PaymentClient.open("mem://", openers: Self.openers).payment(volatile.id) }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-pay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = "sqlite://\(directory.path)/nested/payments.sqlite"
        let kept = try await PaymentClient.open(url, openers: Self.openers).create(request)
        #expect(try await PaymentClient.open(url, openers: Self.openers).payment(kept.id).status == .succeeded)
    }

    @Test func unknownOptionsAndSchemesSayWhatIsKnown() async throws {
        let typo = await #expect(throws: NimbusError.self) { _ = try await PaymentClient.open("sqlite:///tmp/p.sqlite?jounral=wal", openers: Self.openers) }
        #expect(typo?.code == .invalidArgument && typo?.message.contains("jounral") == true)
        let scheme = await #expect(throws: NimbusError.self) { _ = try await PaymentClient.open("stripe://", openers: Self.openers) }
        #expect(scheme?.message.contains("mem://") == true && scheme?.message.contains("sqlite://") == true)
        await #expect(throws: NimbusError.self) { _ = try await PaymentClient.open("sqlite://", openers: Self.openers) }
    }
}
