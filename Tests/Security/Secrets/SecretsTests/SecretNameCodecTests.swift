import NimbusCore
import NimbusSecrets
import Testing

@Suite("Secret name mapping for stores with narrow alphabets")
struct SecretNameCodecTests {
    static let gcp = SecretNameCodec(escape: "_", allowed: SecretNameCodec.alphanumerics.union(["-"]))
    static let azure = SecretNameCodec(escape: "-", allowed: SecretNameCodec.alphanumerics)

    @Test("every valid Nimbus name maps into the store's alphabet and back, and distinct names stay distinct")
    func roundTrip() throws {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+=.@-")
        var generator = SystemRandomNumberGenerator()
        for codec in [Self.gcp, Self.azure] {
            var seen: [String: String] = [:]
            for _ in 0..<2000 {
                let name = String((0..<Int.random(in: 1...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                guard (try? SecretStore.validate(name: name)) != nil else { continue }
                let stored = codec.encode(name)
                #expect(stored.allSatisfy { codec.allowed.contains($0) || $0 == codec.escape }, "\(name) → \(stored)")
                #expect(codec.decode(stored) == name)
                if let other = seen[stored] { #expect(other == name, "\(other) and \(name) collide") }
                seen[stored] = name
            }
        }
        #expect(Self.gcp.encode("db/password") == "db_2Fpassword" && Self.azure.encode("db/pass-word") == "db-2Fpass-2Dword")
    }

    @Test("store names this codec did not produce are not decoded")
    func foreign() {
        #expect(Self.gcp.decode("bad_zz") == nil && Self.gcp.decode("trailing_2") == nil && Self.azure.decode("has_underscore") == nil)
    }
}
