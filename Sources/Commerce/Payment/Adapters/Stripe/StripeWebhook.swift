import Foundation
import NimbusCore
import NimbusHTTP

/// Stripe's webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">[,v1=…]`.
///
/// ```swift
/// // In a handler: the raw body bytes, before any JSON parsing.
/// let event = try await stripeDriver.verifyWebhook(body: Array(body.readableBytesView), headers: headers)
/// // In tests of your own endpoint: sign a payload as Stripe would.
/// let header = StripeWebhook.signatureHeader(body: payload, secret: Secret("whsec_test"))
/// ```
public enum StripeWebhook {
    /// The `Stripe-Signature` value Stripe would send for `body` at `timestamp`.
    public static func signatureHeader(body: [UInt8], secret: Secret<String>, timestamp: Date = Date()) -> String {
        let seconds = Int64(timestamp.timeIntervalSince1970)
        let signature = WebhookSignature.sign(payload: Array("\(seconds).".utf8) + body, secret: secret)
        return "t=\(seconds),v1=\(signature)"
    }

    /// Checks `signatureHeader` for `body`: one `v1` signature must match one secret (all pairs are
    /// compared, in constant time) and `t` must be within `tolerance` of `now`. Other schemes (`v0`) are ignored.
    /// - Throws: `unauthenticated` for a missing or malformed header, no match, or a stale timestamp;
    ///   `failedPrecondition` when no secret is configured.
    public static func verify(body: [UInt8], signatureHeader: String?, secrets: [Secret<String>],
                              tolerance: Duration = .seconds(300), now: Date = Date()) throws {
        guard let signatureHeader, !signatureHeader.isEmpty else {
            throw NimbusError(.unauthenticated, "the webhook has no Stripe-Signature header; is this request from Stripe?")
        }
        var timestamp: String?
        var candidates: [String] = []
        for item in signatureHeader.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0].trimmingCharacters(in: .whitespaces) {
            case "t": timestamp = String(parts[1])
            case "v1": candidates.append(String(parts[1]))
            default: continue
            }
        }
        guard let timestamp else {
            throw NimbusError(.unauthenticated, "the Stripe-Signature header has no valid t= timestamp")
        }
        guard !candidates.isEmpty else {
            throw NimbusError(.unauthenticated, "the Stripe-Signature header has no v1 signature")
        }
        let sent = try WebhookSignature.timestamp(timestamp, header: "Stripe-Signature t=")
        try WebhookSignature.verify(payload: Array("\(timestamp).".utf8) + body, candidates: candidates, secrets: secrets,
                                    timestamp: sent, tolerance: tolerance, now: now)
    }

    static func parse(_ body: [UInt8]) throws -> JSONValue {
        do { return try JSONValue.parse(body) } catch {
            throw NimbusError(.invalidArgument, "the webhook body is not JSON: \(error)", underlying: error)
        }
    }
}
