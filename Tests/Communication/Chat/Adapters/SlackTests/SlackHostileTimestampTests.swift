import Foundation
import NimbusChatSlack
import NimbusCore
import Testing

@Suite struct SlackHostileTimestampTests {
    @Test(arguments: ["nan", "1e300", "-9223372036854775808", "9223372036854775807"])
    func refusedBeforeTheSignature(_ timestamp: String) {
        let verifier = SlackRequestVerifier(signingSecrets: [Secret("8f742231b10e8888abcd99yyyzzz85a5")])
        let body = Array("token=x".utf8)
        let signature = SlackRequestVerifier.signature(body: body, timestamp: timestamp, secret: Secret("8f742231b10e8888abcd99yyyzzz85a5"))
        let error = #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: signature, timestamp: timestamp) }
        #expect(error?.code == .unauthenticated)
    }
}
