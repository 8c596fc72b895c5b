import NimbusPayment

/// The payment methods the embedded engine accepts — Stripe's test-mode tokens and card numbers, so
/// the same fixtures work against the engine and a Stripe test account.
///
/// | Token / number | Outcome |
/// |---|---|
/// | `pm_card_visa`, `4242424242424242`, `pm_card_mastercard`, `5555555555554444` | succeeds |
/// | `pm_card_visa_chargeDeclined`, `4000000000000002` | declined (`generic_decline`) |
/// | `pm_card_visa_chargeDeclinedInsufficientFunds`, `4000000000009995` | declined (`insufficient_funds`) |
/// | `pm_card_chargeDeclinedExpiredCard`, `4000000000000069` | declined (`expired_card`) |
/// | `pm_card_chargeDeclinedIncorrectCvc`, `4000000000000127` | declined (`incorrect_cvc`) |
/// | `pm_card_chargeDeclinedFraudulent`, `4100000000000019` | declined (`fraudulent`) |
/// | `pm_card_chargeDeclinedProcessingError`, `4000000000000119` | declined (`processing_error`) |
/// | `pm_card_threeDSecure2Required`, `4000000000003220` | requires 3-D Secure |
/// | `pm_card_createDispute`, `4000000000000259` | succeeds, then a `fraudulent` dispute opens |
public enum TestCard {
    /// Succeeds.
    public static let visa = "pm_card_visa"
    /// Declined: `generic_decline`.
    public static let declined = "pm_card_visa_chargeDeclined"
    /// Declined: `insufficient_funds`.
    public static let insufficientFunds = "pm_card_visa_chargeDeclinedInsufficientFunds"
    /// Requires 3-D Secure before it succeeds.
    public static let threeDSecureRequired = "pm_card_threeDSecure2Required"
    /// Succeeds, then is disputed as fraudulent.
    public static let disputed = "pm_card_createDispute"

    enum Outcome: Sendable, Equatable {
        case succeeds
        case declines(PaymentFailure)
        case requiresAuthentication
        case disputed(reason: String)
    }

    private static func decline(_ kind: PaymentFailure.Kind, _ code: String, _ message: String) -> Outcome {
        .declines(PaymentFailure(kind: kind, providerCode: code, message: message))
    }

    private static let table: [(names: [String], outcome: Outcome)] = [
        (["pm_card_visa", "4242424242424242", "pm_card_mastercard", "5555555555554444"], .succeeds),
        (["pm_card_visa_chargeDeclined", "4000000000000002"], decline(.cardDeclined, "generic_decline", "Your card was declined.")),
        (["pm_card_visa_chargeDeclinedInsufficientFunds", "4000000000009995"],
         decline(.insufficientFunds, "insufficient_funds", "Your card has insufficient funds.")),
        (["pm_card_chargeDeclinedExpiredCard", "4000000000000069"], decline(.expiredCard, "expired_card", "Your card has expired.")),
        (["pm_card_chargeDeclinedIncorrectCvc", "4000000000000127"], decline(.incorrectCVC, "incorrect_cvc", "Your card's security code is incorrect.")),
        (["pm_card_chargeDeclinedFraudulent", "4100000000000019"], decline(.fraudSuspected, "fraudulent", "Your card was declined.")),
        (["pm_card_chargeDeclinedProcessingError", "4000000000000119"],
         decline(.processingError, "processing_error", "An error occurred while processing your card. Try again in a little bit.")),
        (["pm_card_threeDSecure2Required", "4000000000003220"], .requiresAuthentication),
        (["pm_card_createDispute", "4000000000000259"], .disputed(reason: "fraudulent")),
    ]

    /// Every accepted token and number.
    public static var all: [String] { table.flatMap(\.names) }

    static func outcome(of method: String) -> Outcome? {
        let normalized = method.filter { $0 != " " && $0 != "-" }
        return table.first { $0.names.contains(normalized) }?.outcome
    }
}
