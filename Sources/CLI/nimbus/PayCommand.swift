import ArgumentParser
import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusPaymentMemory
import NimbusPaymentPayPal
import NimbusPaymentStripe

/// `nimbus pay`: payments through the embedded engine, Stripe or PayPal.
struct PayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pay",
        abstract: "Create, confirm, capture, cancel and refund payments (sqlite://, mem://, stripe://, paypal://).",
        discussion: """
            By default payments are kept by the embedded engine in .nimbus/payments.sqlite (--url sqlite://PATH for another \
            file, mem:// for one that lasts as long as the command); it takes Stripe's test cards (pm_card_visa, \
            pm_card_visa_chargeDeclinedInsufficientFunds, pm_card_threeDSecure2Required, ...).
            --url stripe:// reads the key from STRIPE_SECRET_KEY (stripe://HOST:PORT for a local server).
            --url paypal://sandbox or paypal://live reads PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET.
            """,
        subcommands: [Create.self, Confirm.self, Capture.self, Cancel.self, Refund.self, Show.self, Refunds.self]
    )

    /// Options every payment subcommand takes: where payments are made.
    struct Provider: ParsableArguments {
        @Option(help: "Payments URL: sqlite://PATH (default sqlite://./.nimbus/payments.sqlite), mem:// (volatile), stripe://[HOST[:PORT]], paypal://sandbox|live|HOST:PORT (settings key payment.url, env NIMBUS_PAYMENT_URL).")
        var url: String?
        @Option(help: "Settings file (.yaml, .yml or .json).")
        var config: String?

        /// The embedded engine (volatile or in a file) and every vendor adapter.
        static var openers: URLOpenerRegistry<any PaymentDriver> { PaymentClient.openers.withMemory().withSQLite().withStripe().withPayPal() }
        static let defaultURL = "sqlite://./.nimbus/payments.sqlite"

        func client() async throws -> PaymentClient {
            try await PaymentClient.open(try await DomainURL.resolve(url, key: "payment.url", default: Self.defaultURL, config: config), openers: Self.openers)
        }
    }

    struct Key: ParsableArguments {
        @Option(name: .customLong("idempotency-key"), help: "Repeat a call safely: the provider performs it once (default: a new key).")
        var idempotencyKey: String?
        func key() throws -> IdempotencyKey { try idempotencyKey.map(IdempotencyKey.init) ?? IdempotencyKey() }
    }

    /// An amount in the payment's currency.
    static func amount(_ text: String?, of paymentID: String, _ client: PaymentClient) async throws -> Money? {
        guard let text else { return nil }
        let payment = try await client.payment(paymentID)
        return try Money(text, payment.amount.currency)
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a payment: nimbus pay create 49.90 EUR --method pm_card_visa --confirm.")
        @OptionGroup var provider: Provider
        @OptionGroup var key: Key
        @Argument(help: "The amount (49.90).") var amount: String
        @Argument(help: "The currency (EUR).") var currency: String
        @Option(help: "A payment method (a test card, pm_…, a PayPal vault id).") var method: String?
        @Option(help: "A customer id.") var customer: String?
        @Flag(help: "Confirm at once.") var confirm = false
        @Flag(help: "Authorize only; take the funds later with `capture`.") var manual = false
        @Option(help: "A metadata field, key=value (repeatable).") var metadata: [String] = []

        func run() async throws {
            var fields: [String: String] = [:]
            for pair in metadata {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--metadata '\(pair)' is not key=value") }
                fields[parts[0]] = parts[1]
            }
            let request = PaymentRequest(amount: try Money(amount, try Currency(currency.uppercased())), captureMethod: manual ? .manual : .automatic,
                                         customerID: customer, paymentMethodID: method, confirm: confirm, metadata: fields)
            try Output.printJSON(try await provider.client().create(request, idempotencyKey: try key.key()))
        }
    }

    struct Confirm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Confirm a payment, optionally with a payment method.")
        @OptionGroup var provider: Provider
        @OptionGroup var key: Key
        @Argument(help: "The payment id.") var id: String
        @Option(help: "A payment method.") var method: String?
        func run() async throws { try Output.printJSON(try await provider.client().confirm(id, paymentMethodID: method, idempotencyKey: try key.key())) }
    }

    struct Capture: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Capture all or part (--amount) of an authorized payment.")
        @OptionGroup var provider: Provider
        @OptionGroup var key: Key
        @Argument(help: "The payment id.") var id: String
        @Option(help: "How much, in the payment's currency (default: all).") var amount: String?
        func run() async throws {
            let client = try await provider.client()
            try Output.printJSON(try await client.capture(id, amount: try await PayCommand.amount(amount, of: id, client), idempotencyKey: try key.key()))
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a payment that has not succeeded.")
        @OptionGroup var provider: Provider
        @OptionGroup var key: Key
        @Argument(help: "The payment id.") var id: String
        func run() async throws { try Output.printJSON(try await provider.client().cancel(id, idempotencyKey: try key.key())) }
    }

    struct Refund: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refund all or part (--amount) of a payment.")
        @OptionGroup var provider: Provider
        @OptionGroup var key: Key
        @Argument(help: "The payment id.") var id: String
        @Option(help: "How much, in the payment's currency (default: all that is left).") var amount: String?
        @Option(help: "requested_by_customer, duplicate or fraudulent.") var reason: String?
        func run() async throws {
            let client = try await provider.client()
            try Output.printJSON(try await client.refund(id, amount: try await PayCommand.amount(amount, of: id, client), reason: reason, idempotencyKey: try key.key()))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a payment.")
        @OptionGroup var provider: Provider
        @Argument(help: "The payment id.") var id: String
        func run() async throws { try Output.printJSON(try await provider.client().payment(id)) }
    }

    struct Refunds: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a payment's refunds, oldest first.")
        @OptionGroup var provider: Provider
        @Argument(help: "The payment id.") var id: String
        func run() async throws { try Output.printJSON(try await provider.client().refunds(of: id)) }
    }
}
