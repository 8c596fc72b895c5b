import Crypto
import Foundation
import NimbusAzure
import NimbusCore
import NimbusKMS

/// Azure Key Vault keys as a KMS (`azkeyvaultkeys://VAULT`): master keys are RSA-3072 keys limited to
/// `wrapKey`/`unwrapKey`; a data key (32 bytes from the system's generator) is wrapped with
/// `RSA-OAEP-256` at the key's latest version. RSA wrapping takes no associated data, so the
/// encryption context is bound inside the wrapped plaintext: the data key is followed by the
/// SHA-256 of the context's canonical bytes (``EncryptionContext``), and unwrapping under another context is refused after
/// a constant-time comparison. Rotation is `rotate` (a new version; older versions still unwrap).
///
/// A wrapped key is the key version's `kid` ‖ newline ‖ the RSA ciphertext, so it names its master
/// key and version.
///
/// ```swift
/// let kms = try await KeyManagement.open("azkeyvaultkeys://contoso", openers: .kms.withAzure())
/// ```
public struct AzureKeyVaultKMS: KMSDriver {
    /// The vault client.
    public let vault: AzureKeyVaultClient

    /// Keys of `vault`.
    public init(vault: AzureKeyVaultClient) { self.vault = vault }

    public var provider: String { "azure-keyvault-keys" }

    static func digest(_ context: [String: String]) -> [UInt8] {
        Array(SHA256.hash(data: EncryptionContext.authenticatedData(context, label: "nimbus-kms-v1")))
    }

    /// `https://VAULT/keys/NAME/VERSION` → (name, version).
    static func parts(_ kid: String) throws -> (name: String, version: String) {
        let segments = kid.split(separator: "/")
        guard segments.count >= 4, segments[segments.count - 3] == "keys" else { throw NimbusError(.invalidArgument, "\"\(kid.prefix(80))\" is not a Key Vault key id") }
        return (String(segments[segments.count - 2]), String(segments[segments.count - 1]))
    }

    public func createKey(description: String) async throws -> String {
        let name = WrappedKey.newKeyName(description: description, slugLength: 40)
        try await vault.call(.POST, "/keys/\(name)/create", body: ["kty": "RSA", "key_size": 3072, "key_ops": ["wrapKey", "unwrapKey"], "tags": ["managed-by": "nimbus"]])
        return name
    }

    func wrap(_ dataKey: [UInt8], keyID: String, context: [String: String]) async throws -> [UInt8] {
        let latest: JSONValue
        do {
            latest = try await vault.call(.GET, "/keys/\(keyID)/")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no key named \(keyID) in \(vault.vaultURL)", underlying: error)
        }
        guard let kid = latest["key"]?["kid"]?.stringValue else { throw NimbusError(.internal, "Key Vault answered key \(keyID) without key.kid") }
        let (name, version) = try Self.parts(kid)
        let result = try await vault.call(.POST, "/keys/\(name)/\(version)/wrapkey",
                                          body: ["alg": "RSA-OAEP-256", "value": .string(Base64URL.encode(dataKey + Self.digest(context)))])
        guard let value = result["value"]?.stringValue, let ciphertext = Base64URL.decode(value) else { throw NimbusError(.internal, "Key Vault answered wrapkey without a base64url value") }
        return WrappedKey.joining(result["kid"]?.stringValue ?? kid, ciphertext)
    }

    static func unwrapped(_ wrapped: [UInt8]) throws -> (kid: String, ciphertext: [UInt8]) {
        guard let (kid, ciphertext) = WrappedKey.split(wrapped) else {
            throw NimbusError(.invalidArgument, "the wrapped data key is not a Key Vault key (kid, newline, ciphertext)")
        }
        _ = try parts(kid)
        return (kid, ciphertext)
    }

    public func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey {
        let dataKey = SecureRandom.bytes(32)
        return DataKey(plaintext: Secret(dataKey), wrapped: try await wrap(dataKey, keyID: keyID, context: context), keyID: keyID)
    }

    public func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey {
        let (kid, ciphertext) = try Self.unwrapped(wrapped)
        let (name, version) = try Self.parts(kid)
        let refused = NimbusError(.permissionDenied, "Key Vault refused the data key: the encryption context differs or the key was altered")
        let result: JSONValue
        do {
            result = try await vault.call(.POST, "/keys/\(name)/\(version)/unwrapkey", body: ["alg": "RSA-OAEP-256", "value": .string(Base64URL.encode(ciphertext))])
        } catch let error as NimbusError where error.code == .invalidArgument {
            throw NimbusError(.permissionDenied, refused.message, underlying: error)
        }
        guard let value = result["value"]?.stringValue, let plaintext = Base64URL.decode(value), plaintext.count == 64 else { throw refused }
        guard ConstantTime.equals(Array(plaintext.suffix(32)), Self.digest(context)) else { throw refused }
        return DataKey(plaintext: Secret(Array(plaintext.prefix(32))), wrapped: wrapped, keyID: name)
    }

    public func rotateKey(_ keyID: String) async throws {
        try await vault.call(.POST, "/keys/\(keyID)/rotate")
    }

    public func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey {
        let plain = try await decryptDataKey(wrapped, context: context)
        return DataKey(plaintext: plain.plaintext, wrapped: try await wrap(plain.plaintext.reveal(), keyID: keyID, context: context), keyID: keyID)
    }
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// Adds `azkeyvaultkeys://VAULT` (credentials from `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/`AZURE_CLIENT_SECRET`,
    /// workload identity, or managed identity).
    public func withAzure(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("azkeyvaultkeys") { url in
            try url.options.validate(known: [], for: "azkeyvaultkeys://")
            guard let vault = url.host else { throw NimbusError(.invalidArgument, "azkeyvaultkeys:// names its vault: azkeyvaultkeys://contoso") }
            return AzureKeyVaultKMS(vault: AzureKeyVaultClient(vaultURL: try AzureKeyVaultClient.url(forVault: vault), credential: try AzureCredentialChain.default(environment: environment)))
        }
        return copy
    }
}
