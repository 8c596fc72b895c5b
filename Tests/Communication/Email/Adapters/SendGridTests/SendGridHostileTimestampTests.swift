import Crypto
import Foundation
import NimbusCore
import NimbusEmailSendGrid
import Testing

@Suite struct SendGridHostileTimestampTests {
    @Test(arguments: ["nan", "1e300", "-9223372036854775808", "9223372036854775807"])
    func refusedBeforeTheSignature(_ timestamp: String) throws {
        let key = P256.Signing.PrivateKey()
        let webhook = try SendGridEventWebhook(publicKeyBase64: key.publicKey.derRepresentation.base64EncodedString())
        let body = Array(#"[{"event":"delivered"}]"#.utf8)
        let signature = try key.signature(for: Array(timestamp.utf8) + body).derRepresentation.base64EncodedString()
        let error = #expect(throws: NimbusError.self) { try webhook.verify(body: body, signature: signature, timestamp: timestamp) }
        #expect(error?.code == .unauthenticated)
    }
}
