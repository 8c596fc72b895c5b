import Crypto
import Foundation
import NimbusAuth
import NimbusCore
import NimbusTesting
import Synchronization
import _CryptoExtras

/// Keys made with swift-crypto (not through NimbusAuth), as JWKs: the private one to sign, the public one to verify.
struct TestKey: Sendable {
    var privateJWK: JSONValue
    var publicJWK: JSONValue
    var pem: String
    var publicPEM: String = ""

    static func es256(id: String?) -> TestKey {
        let key = P256.Signing.PrivateKey()
        let point = Array(key.publicKey.rawRepresentation)
        var fields: [String: JSONValue] = ["kty": "EC", "crv": "P-256", "x": .string(Base64URL.encode(point[0..<32])),
                                           "y": .string(Base64URL.encode(point[32..<64]))]
        if let id { fields["kid"] = .string(id) }
        var secret = fields
        secret["d"] = .string(Base64URL.encode(key.rawRepresentation))
        return TestKey(privateJWK: .object(secret), publicJWK: .object(fields), pem: key.pemRepresentation, publicPEM: key.publicKey.pemRepresentation)
    }

    static func rsa(id: String?, alg: String? = nil) throws -> TestKey {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        var fields: [String: JSONValue] = ["kty": "RSA", "n": .string(Base64URL.encode(primitives.modulus)),
                                           "e": .string(Base64URL.encode(primitives.publicExponent))]
        if let id { fields["kid"] = .string(id) }
        if let alg { fields["alg"] = .string(alg) }
        return TestKey(privateJWK: .object(fields), publicJWK: .object(fields), pem: key.pemRepresentation, publicPEM: key.publicKey.pemRepresentation)
    }

    static func ed25519(id: String?) -> TestKey {
        let key = Curve25519.Signing.PrivateKey()
        var fields: [String: JSONValue] = ["kty": "OKP", "crv": "Ed25519", "x": .string(Base64URL.encode(key.publicKey.rawRepresentation))]
        if let id { fields["kid"] = .string(id) }
        var secret = fields
        secret["d"] = .string(Base64URL.encode(key.rawRepresentation))
        return TestKey(privateJWK: .object(secret), publicJWK: .object(fields), pem: "")
    }

    /// The public key in a JWKS document.
    static func jwks(_ keys: [TestKey], extra: [JSONValue] = []) -> [UInt8] {
        Array(JSONValue.object(["keys": .array(keys.map(\.publicJWK) + extra)]).description.utf8)
    }
}

/// A token put together by hand: any header, any payload, any signature.
func handmade(header: JSONValue, payload: JSONValue, signature: [UInt8] = []) -> String {
    Base64URL.encode(Array(header.description.utf8)) + "." + Base64URL.encode(Array(payload.description.utf8)) + "." + Base64URL.encode(signature)
}

/// The three parts of a compact token.
func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

/// The rejection reason of a refused verification, or nil if it was not refused the JWT way.
func rejection(_ body: () async throws -> Void) async -> JWTRejection.Reason? {
    do {
        try await body()
        return nil
    } catch let error as NimbusError {
        guard error.code == .unauthenticated else { return nil }
        return (error.underlying as? JWTRejection)?.reason
    } catch {
        return nil
    }
}

/// The verifiers' clock.
typealias TestClock = ManualDate
