import Crypto
import Foundation
import NimbusChatDiscord
import NimbusCore
import Testing

@Suite struct DiscordHostileTimestampTests {
    @Test(arguments: ["nan", "1e300", "-9223372036854775808", "9223372036854775807"])
    func refusedBeforeTheSignature(_ timestamp: String) throws {
        let key = Curve25519.Signing.PrivateKey()
        let verifier = try DiscordInteractionVerifier(publicKeyHex: key.publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined())
        let body = Array(#"{"type":1}"#.utf8)
        let signature = try key.signature(for: Array(timestamp.utf8) + body).map { String(format: "%02x", $0) }.joined()
        let error = #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: signature, timestamp: timestamp) }
        #expect(error?.code == .unauthenticated)
    }
}
