import Foundation
import NimbusCore

/// The client data a browser collects and the authenticator signs over (WebAuthn §5.8.1).
public struct CollectedClientData: Sendable, Hashable {
    /// `webauthn.create` or `webauthn.get`.
    public var type: String
    /// The challenge, decoded from base64url.
    public var challenge: [UInt8]
    /// The origin of the calling document.
    public var origin: String
    /// Whether the call came from an iframe of another origin.
    public var crossOrigin: Bool
    /// The top-level origin when `crossOrigin` is true.
    public var topOrigin: String?

    /// Parses `clientDataJSON`.
    /// - Throws: ``WebAuthnRejection`` `.malformed` if it is not a JSON object with the required members.
    public init(json: [UInt8]) throws {
        guard json.count <= 64 * 1024 else { throw WebAuthnRejection(.malformed, "clientDataJSON is \(json.count) bytes, more than 64 KiB") }
        struct Wire: Decodable {
            var type: String
            var challenge: String
            var origin: String
            var crossOrigin: Bool?
            var topOrigin: String?
        }
        let wire: Wire
        do { wire = try JSONDecoder().decode(Wire.self, from: Data(json)) } catch {
            throw WebAuthnRejection(.malformed, "clientDataJSON is not a JSON object with string type, challenge and origin, boolean crossOrigin and string topOrigin (\(error))")
        }
        guard let challenge = Base64URL.decode(wire.challenge) else { throw WebAuthnRejection(.malformed, "clientDataJSON challenge is not base64url") }
        self.type = wire.type
        self.challenge = challenge
        self.origin = wire.origin
        self.crossOrigin = wire.crossOrigin ?? false
        self.topOrigin = wire.topOrigin
    }
}
