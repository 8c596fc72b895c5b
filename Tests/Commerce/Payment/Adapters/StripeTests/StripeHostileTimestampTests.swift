import Foundation
import NimbusCore
import NimbusPaymentStripe
import Testing

@Suite struct StripeHostileTimestampTests {
    @Test(arguments: ["nan", "1e300", "-9223372036854775808", "9223372036854775807"])
    func refusedBeforeTheSignature(_ timestamp: String) {
        let secret = Secret("whsec_test")
        let body = Array(#"{"id":"evt_1"}"#.utf8)
        let good = StripeWebhook.signatureHeader(body: body, secret: secret, timestamp: Date())
        let v1 = good.split(separator: ",").first { $0.hasPrefix("v1=") } ?? ""
        let error = #expect(throws: NimbusError.self) {
            try StripeWebhook.verify(body: body, signatureHeader: "t=\(timestamp),\(v1)", secrets: [secret])
        }
        #expect(error?.code == .unauthenticated)
    }
}
