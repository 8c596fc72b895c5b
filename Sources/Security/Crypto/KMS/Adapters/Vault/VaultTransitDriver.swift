import Foundation
import NimbusCore
import NimbusKMS
import NimbusVault

/// Vault's Transit engine as a KMS (`vaulttransit://HOST:8200/MOUNT`): master keys are Transit
/// keys of type `aes256-gcm96` created with `derived: true`, so the encryption context — given to
/// Vault as the derivation `context` (``EncryptionContext``'s canonical bytes) — is bound into the
/// key itself: a data key wrapped under one context does not unwrap under another. Data keys
/// come from `datakey/plaintext`; rotation is `keys/NAME/rotate`; re-encryption to the same key
/// is `rewrap` (the data key never leaves Vault), to another key a decrypt and encrypt.
///
/// A wrapped key is `NAME` ‖ newline ‖ Vault's `vault:vN:…` ciphertext, so it names its master key.
///
/// ```swift
/// let kms = try await KeyManagement.open("vaulttransit://vault.internal:8200/transit", openers: .kms.withVault())
/// ```
public struct VaultTransitDriver: KMSDriver {
    /// The client.
    public let vault: VaultClient
    /// The engine's mount path (`transit`).
    public let mount: String

    /// Transit at `mount` through `vault`.
    public init(vault: VaultClient, mount: String = "transit") {
        self.vault = vault
        self.mount = mount.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    public var provider: String { "vault-transit" }

    /// The derivation context: base64 of ``EncryptionContext/authenticatedData(_:label:)`` (never empty, as derived keys require).
    static func context(_ context: [String: String]) -> JSONValue {
        .string(Data(EncryptionContext.authenticatedData(context, label: "nimbus-kms-v1")).base64EncodedString())
    }

    static func wrapped(_ key: String, _ ciphertext: String) -> [UInt8] { WrappedKey.joining(key, Array(ciphertext.utf8)) }

    static func unwrapped(_ bytes: [UInt8]) throws -> (key: String, ciphertext: String) {
        guard let (key, payload) = WrappedKey.split(bytes), let ciphertext = String(validating: payload, as: UTF8.self), ciphertext.hasPrefix("vault:v") else {
            throw NimbusError(.invalidArgument, "the wrapped data key is not a Vault Transit key (NAME, newline, vault:vN:…)")
        }
        return (key, ciphertext)
    }

    static func plaintext(_ output: JSONValue?) throws -> [UInt8] {
        guard let text = output?["data"]?["plaintext"]?.stringValue, let bytes = Data(base64Encoded: text) else {
            throw NimbusError(.internal, "Vault Transit answered without a base64 data.plaintext")
        }
        return Array(bytes)
    }

    static func ciphertext(_ output: JSONValue?) throws -> String {
        guard let text = output?["data"]?["ciphertext"]?.stringValue, text.hasPrefix("vault:v") else {
            throw NimbusError(.internal, "Vault Transit answered without a vault:vN: data.ciphertext")
        }
        return text
    }

    /// A decryption Vault refused for its content (wrong context, altered ciphertext) is `permissionDenied`.
    static func refusal(_ error: NimbusError) -> NimbusError {
        guard error.code == .invalidArgument else { return error }
        return NimbusError(.permissionDenied, "Vault Transit refused the data key: the encryption context differs or the key was altered", underlying: error)
    }

    public func createKey(description: String) async throws -> String {
        let name = WrappedKey.newKeyName(description: description, slugLength: 32)
        try await vault.request(.POST, "\(mount)/keys/\(name)", body: ["type": "aes256-gcm96", "derived": true])
        return name
    }

    public func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey {
        let output: JSONValue?
        do {
            output = try await vault.request(.POST, "\(mount)/datakey/plaintext/\(keyID)", body: ["context": Self.context(context), "bits": 256])
        } catch let error as NimbusError where error.code == .invalidArgument && error.message.contains("key not found") {
            throw NimbusError(.notFound, "no Transit key named \(keyID)", underlying: error)   // Vault answers 400 for a missing key
        }
        let plaintext = try Self.plaintext(output)
        guard plaintext.count == 32 else { throw NimbusError(.internal, "Vault Transit returned a \(plaintext.count)-byte data key, asked for 32") }
        return DataKey(plaintext: Secret(plaintext), wrapped: Self.wrapped(keyID, try Self.ciphertext(output)), keyID: keyID)
    }

    public func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey {
        let (key, ciphertext) = try Self.unwrapped(wrapped)
        do {
            let output = try await vault.request(.POST, "\(mount)/decrypt/\(key)", body: ["ciphertext": .string(ciphertext), "context": Self.context(context)])
            return DataKey(plaintext: Secret(try Self.plaintext(output)), wrapped: wrapped, keyID: key)
        } catch let error as NimbusError {
            throw Self.refusal(error)
        }
    }

    public func rotateKey(_ keyID: String) async throws {
        try await vault.request(.POST, "\(mount)/keys/\(keyID)/rotate", body: [:])
    }

    public func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey {
        let (key, ciphertext) = try Self.unwrapped(wrapped)
        do {
            if key == keyID {
                let output = try await vault.request(.POST, "\(mount)/rewrap/\(key)", body: ["ciphertext": .string(ciphertext), "context": Self.context(context)])
                return DataKey(plaintext: Secret([]), wrapped: Self.wrapped(key, try Self.ciphertext(output)), keyID: key)
            }
            let plain = try await decryptDataKey(wrapped, context: context)
            let output = try await vault.request(.POST, "\(mount)/encrypt/\(keyID)",
                                                 body: ["plaintext": .string(Data(plain.plaintext.reveal()).base64EncodedString()), "context": Self.context(context)])
            return DataKey(plaintext: plain.plaintext, wrapped: Self.wrapped(keyID, try Self.ciphertext(output)), keyID: keyID)
        } catch let error as NimbusError {
            throw Self.refusal(error)
        }
    }
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// Adds `vaulttransit://HOST[:PORT]/MOUNT` (options `tls=false` for a dev server, `namespace`; the token from
    /// `VAULT_TOKEN` or `~/.vault-token`).
    public func withVault(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("vaulttransit") { url in
            try url.options.validate(known: ["tls", "namespace"], for: "vaulttransit://")
            return VaultTransitDriver(vault: try VaultClient(configuration: try VaultURL.configuration(url, environment: environment)),
                                      mount: url.path.isEmpty ? "transit" : url.path)
        }
        return copy
    }
}
