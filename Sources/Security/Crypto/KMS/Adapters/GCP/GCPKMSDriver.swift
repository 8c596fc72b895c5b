import Foundation
import NimbusCore
import NimbusGCP
import NimbusKMS

/// Google Cloud KMS (`gcpkms://PROJECT/LOCATION/KEYRING`): master keys are `ENCRYPT_DECRYPT`
/// crypto keys of one key ring. Cloud KMS has no data-key call, so a data key is 32 bytes from
/// the system's secure generator, wrapped with `:encrypt` with the encryption context (``EncryptionContext``'s
/// canonical bytes) as additional authenticated data. Every call carries CRC32Cs of what it sends and checks
/// those of what comes back (`verifiedPlaintextCrc32c`, `ciphertextCrc32c`, `plaintextCrc32c`), as
/// Google's data-integrity guidance asks. Rotation creates a version and makes it primary.
///
/// A wrapped key is the crypto key's resource name ‖ newline ‖ Cloud KMS's ciphertext, so it names
/// its master key (the ciphertext names the version).
///
/// ```swift
/// let kms = try await KeyManagement.open("gcpkms://my-project/europe-west1/app", openers: .kms.withGCP())
/// ```
public struct GCPKMSDriver: KMSDriver {
    /// The client.
    public let gcp: GCPClient
    /// `projects/P/locations/L/keyRings/R`.
    public let keyRing: String
    /// The API root (`https://cloudkms.googleapis.com/v1`).
    public let endpoint: String

    /// Cloud KMS for `keyRing` through `gcp`.
    public init(gcp: GCPClient, keyRing: String, endpoint: String = "https://cloudkms.googleapis.com/v1") {
        self.gcp = gcp
        self.keyRing = keyRing
        self.endpoint = endpoint.trimmingSuffix("/")
    }

    public var provider: String { "gcp-kms" }

    /// The crypto key's resource name for an id (`orders`) or a full name.
    func resource(_ keyID: String) -> String { keyID.hasPrefix("projects/") ? keyID : "\(keyRing)/cryptoKeys/\(keyID)" }

    static func aad(_ context: [String: String]) -> [UInt8] { EncryptionContext.authenticatedData(context, label: "nimbus-kms-v1") }

    static func crc(_ bytes: [UInt8]) -> JSONValue { .string(String(CRC32C.checksum(bytes))) }

    static func int64(_ value: JSONValue?) -> UInt32? { value?.stringValue.flatMap(UInt32.init) ?? value?.numberValue.map { UInt32($0) } }

    static func bytes(_ value: JSONValue?, _ field: String) throws -> [UInt8] {
        guard let text = value?.stringValue, let data = Data(base64Encoded: text) else { throw NimbusError(.internal, "Cloud KMS answered without a base64 \(field)") }
        return Array(data)
    }

    static func integrity(_ message: String) -> NimbusError { NimbusError(.dataLoss, "Cloud KMS: \(message); the request or answer was corrupted in transit, retry") }

    public func createKey(description: String) async throws -> String {
        let id = WrappedKey.newKeyName(description: description, slugLength: 24)
        _ = try await gcp.json(.POST, "\(endpoint)/\(keyRing)/cryptoKeys", query: [("cryptoKeyId", id)],
                               body: ["purpose": "ENCRYPT_DECRYPT", "versionTemplate": ["algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"], "labels": ["managed-by": "nimbus"]],
                               operation: "Cloud KMS create key")
        return id
    }

    func wrap(_ plaintext: [UInt8], keyID: String, context: [String: String]) async throws -> [UInt8] {
        let name = resource(keyID), aad = Self.aad(context)
        let output: JSONValue
        do {
            output = try await gcp.json(.POST, "\(endpoint)/\(name):encrypt",
                                        body: ["plaintext": .string(Data(plaintext).base64EncodedString()), "plaintextCrc32c": Self.crc(plaintext),
                                               "additionalAuthenticatedData": .string(Data(aad).base64EncodedString()), "additionalAuthenticatedDataCrc32c": Self.crc(aad)],
                                        operation: "Cloud KMS encrypt")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no crypto key \(keyID) in \(keyRing)", underlying: error)
        }
        guard output["verifiedPlaintextCrc32c"]?.boolValue == true, output["verifiedAdditionalAuthenticatedDataCrc32c"]?.boolValue == true else {
            throw Self.integrity("the service did not confirm the plaintext and context checksums")
        }
        let ciphertext = try Self.bytes(output["ciphertext"], "ciphertext")
        guard Self.int64(output["ciphertextCrc32c"]) == CRC32C.checksum(ciphertext) else { throw Self.integrity("the ciphertext does not match its ciphertextCrc32c") }
        return WrappedKey.joining(name, ciphertext)
    }

    static func unwrapped(_ wrapped: [UInt8]) throws -> (name: String, ciphertext: [UInt8]) {
        guard let (name, ciphertext) = WrappedKey.split(wrapped), name.hasPrefix("projects/"), name.contains("/cryptoKeys/") else {
            throw NimbusError(.invalidArgument, "the wrapped data key is not a Cloud KMS key (resource name, newline, ciphertext)")
        }
        return (name, ciphertext)
    }

    public func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey {
        let plaintext = SecureRandom.bytes(32)
        return DataKey(plaintext: Secret(plaintext), wrapped: try await wrap(plaintext, keyID: keyID, context: context), keyID: keyID)
    }

    public func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey {
        let (name, ciphertext) = try Self.unwrapped(wrapped)
        let aad = Self.aad(context)
        let output: JSONValue
        do {
            output = try await gcp.json(.POST, "\(endpoint)/\(name):decrypt",
                                        body: ["ciphertext": .string(Data(ciphertext).base64EncodedString()), "ciphertextCrc32c": Self.crc(ciphertext),
                                               "additionalAuthenticatedData": .string(Data(aad).base64EncodedString()), "additionalAuthenticatedDataCrc32c": Self.crc(aad)],
                                        operation: "Cloud KMS decrypt")
        } catch let error as NimbusError where error.code == .invalidArgument {
            throw NimbusError(.permissionDenied, "Cloud KMS refused the data key: the encryption context differs or the key was altered", underlying: error)
        }
        let plaintext = try Self.bytes(output["plaintext"], "plaintext")
        guard Self.int64(output["plaintextCrc32c"]) == CRC32C.checksum(plaintext) else { throw Self.integrity("the plaintext does not match its plaintextCrc32c") }
        return DataKey(plaintext: Secret(plaintext), wrapped: wrapped, keyID: String(name.split(separator: "/").last ?? ""))
    }

    public func rotateKey(_ keyID: String) async throws {
        let name = resource(keyID)
        let version = try await gcp.json(.POST, "\(endpoint)/\(name)/cryptoKeyVersions", body: [:], operation: "Cloud KMS create version")
        guard let id = version["name"]?.stringValue?.split(separator: "/").last else { throw NimbusError(.internal, "Cloud KMS created a version without a name") }
        _ = try await gcp.json(.POST, "\(endpoint)/\(name):updatePrimaryVersion", body: ["cryptoKeyVersionId": .string(String(id))], operation: "Cloud KMS set primary")
    }

    public func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey {
        let plain = try await decryptDataKey(wrapped, context: context)
        return DataKey(plaintext: plain.plaintext, wrapped: try await wrap(plain.plaintext.reveal(), keyID: keyID, context: context), keyID: keyID)
    }
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// Adds `gcpkms://PROJECT/LOCATION/KEYRING` (option `endpoint`; credentials from Application Default Credentials).
    public func withGCP() -> Self {
        var copy = self
        copy.register("gcpkms") { url in
            try url.options.validate(known: ["endpoint"], for: "gcpkms://")
            let parts = url.path.split(separator: "/")
            guard let project = url.host, !project.isEmpty, parts.count == 2 else {
                throw NimbusError(.invalidArgument, "gcpkms:// names a key ring: gcpkms://PROJECT/LOCATION/KEYRING")
            }
            return GCPKMSDriver(gcp: try GCPClient(), keyRing: "projects/\(project)/locations/\(parts[0])/keyRings/\(parts[1])",
                                endpoint: url.options.string("endpoint") ?? "https://cloudkms.googleapis.com/v1")
        }
        return copy
    }
}
