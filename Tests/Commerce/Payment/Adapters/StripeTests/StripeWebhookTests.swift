import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusPaymentStripe
import NimbusTesting
import Testing

@Suite("Stripe webhooks")
struct StripeWebhookTests {
    static let secret = "whsec_nimbus_test_secret"

    /// A Stripe event built from fixtures3.json's example objects.
    static func event(type: String, objectKind: String, edit: (inout [String: JSONValue]) -> Void = { _ in }) throws -> [UInt8] {
        var object = try #require(StripeFake.templates[objectKind]?.objectValue)
        edit(&object)
        var event = try #require(StripeFake.templates["event"]?.objectValue)
        event["type"] = .string(type)
        event["data"] = ["object": .object(object)]
        return Array(JSONValue.object(event).description.utf8)
    }

    @Test func aSignedEventIsVerifiedAndNormalized() async throws {
        let driver = stripeDriver("http://127.0.0.1:1", secrets: ["whsec_old", Self.secret])
        let body = try Self.event(type: "payment_intent.succeeded", objectKind: "payment_intent") {
            $0["status"] = "succeeded"; $0["amount_received"] = 1099; $0["metadata"] = ["order": "9"]
        }
        let header = StripeWebhook.signatureHeader(body: body, secret: Secret(Self.secret))
        let event = try await driver.verifyWebhook(body: body, headers: ["stripe-signature": header])
        #expect(event.kind == .paymentSucceeded && event.providerType == "payment_intent.succeeded")
        #expect(try event.payment?.amountReceived == Money("10.99", .usd) && event.payment?.metadata == ["order": "9"])

        let dispute = try Self.event(type: "charge.dispute.created", objectKind: "dispute") { $0["status"] = "prearbitration_new_status" }
        let disputeEvent = try await driver.verifyWebhook(body: dispute, headers: ["Stripe-Signature": StripeWebhook.signatureHeader(body: dispute, secret: Secret(Self.secret))])
        #expect(disputeEvent.kind == .disputeCreated && disputeEvent.dispute?.status.rawValue == "prearbitration_new_status", "unknown statuses are kept")

        let other = try Self.event(type: "plan.created", objectKind: "customer")
        let otherEvent = try await driver.verifyWebhook(body: other, headers: ["Stripe-Signature": StripeWebhook.signatureHeader(body: other, secret: Secret(Self.secret))])
        #expect(otherEvent.kind == .other && otherEvent.payment == nil)
    }

    @Test func forgedStaleOrUnsignedDeliveriesAreRefused() async throws {
        let driver = stripeDriver("http://127.0.0.1:1", secrets: [Self.secret])
        let body = try Self.event(type: "payment_intent.succeeded", objectKind: "payment_intent")
        let good = StripeWebhook.signatureHeader(body: body, secret: Secret(Self.secret))
        func refusal(_ body: [UInt8], _ headers: [String: String]) async -> NimbusError? {
            do { _ = try await driver.verifyWebhook(body: body, headers: headers); return nil } catch { return error as? NimbusError }
        }
        #expect(await refusal(body + Array(" ".utf8), ["Stripe-Signature": good])?.code == .unauthenticated, "a changed body")
        #expect(await refusal(body, ["Stripe-Signature": StripeWebhook.signatureHeader(body: body, secret: Secret("whsec_other"))])?.code == .unauthenticated)
        let stale = StripeWebhook.signatureHeader(body: body, secret: Secret(Self.secret), timestamp: Date().addingTimeInterval(-301))
        #expect(await refusal(body, ["Stripe-Signature": stale])?.message.contains("tolerance") == true)
        #expect(await refusal(body, [:])?.code == .unauthenticated)
        #expect(await refusal(body, ["Stripe-Signature": "t=abc,v1=00"])?.code == .unauthenticated)
        #expect(await refusal(body, ["Stripe-Signature": good.replacingOccurrences(of: "v1=", with: "v0=")])?.code == .unauthenticated)
        // Several v1 signatures (Stripe sends one per active secret): one matching is enough.
        let rolled = good + ",v1=" + String(repeating: "ab", count: 32)
        #expect(await refusal(body, ["Stripe-Signature": rolled]) == nil)
        // A body that verifies but is not an event.
        let junk = Array(#"{"hello":1}"#.utf8)
        #expect(await refusal(junk, ["Stripe-Signature": StripeWebhook.signatureHeader(body: junk, secret: Secret(Self.secret))])?.code == .invalidArgument)
        let unconfigured = stripeDriver("http://127.0.0.1:1")
        await #expect(throws: NimbusError.self) { _ = try await unconfigured.verifyWebhook(body: body, headers: ["Stripe-Signature": good]) }
    }

    /// The official `stripe` Python library signs and verifies the same payloads.
    @Test(.requires(.commerceSDKs)) func signaturesAgreeWithTheOfficialStripeLibrary() async throws {
        let python = try Peer.commerceSDKs.url()
        let body = try Self.event(type: "payment_intent.payment_failed", objectKind: "payment_intent") { $0["metadata"] = ["note": "café ✓"] }
        let payload = String(decoding: body, as: UTF8.self)
        let script = """
            import sys, time, stripe
            payload, secret, mode = sys.argv[1], sys.argv[2], sys.argv[3]
            if mode == "sign":
                t = int(time.time())
                sig = stripe.WebhookSignature._compute_signature("%d.%s" % (t, payload), secret)
                print("t=%d,v1=%s" % (t, sig))
            else:
                try:
                    event = stripe.Webhook.construct_event(payload, sys.argv[4], secret, tolerance=300)
                    print("ok", event["type"])
                except stripe.SignatureVerificationError as error:
                    print("refused", error)
            """
        // Python signs, Nimbus verifies.
        let signed = try await ProcessRunner.run(python, ["-c", script, payload, Self.secret, "sign"])
        #expect(signed.status == 0, "\(signed.output)")
        let header = signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let driver = stripeDriver("http://127.0.0.1:1", secrets: [Self.secret])
        let event = try await driver.verifyWebhook(body: body, headers: ["Stripe-Signature": header])
        #expect(event.kind == .paymentFailed)
        // Nimbus signs, Python verifies; and both refuse the other's signature over a changed body.
        let ours = StripeWebhook.signatureHeader(body: body, secret: Secret(Self.secret))
        let verified = try await ProcessRunner.run(python, ["-c", script, payload, Self.secret, "verify", ours])
        #expect(verified.stdout.hasPrefix("ok payment_intent.payment_failed"), "\(verified.output)")
        let tampered = try await ProcessRunner.run(python, ["-c", script, payload + " ", Self.secret, "verify", ours])
        #expect(tampered.stdout.hasPrefix("refused"), "\(tampered.output)")
        await #expect(throws: NimbusError.self) { _ = try await driver.verifyWebhook(body: body + [0x20], headers: ["Stripe-Signature": header]) }
    }
}
