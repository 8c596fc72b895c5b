import Crypto
import Foundation
import NimbusCore
import NimbusKMS
import Synchronization

/// The embedded KMS: master keys (AES-256, with versions) in a keyring file only this process's
/// user can read (`local://PATH`, written atomically, mode 0600), or in memory (`mem://`). Data keys
/// are wrapped with AES-256-GCM under the key's current version, the encryption context and the
/// key's id and version authenticated with them.
///
/// It is a real KMS for one machine — for production, keep the keyring on an encrypted volume, or
/// use a cloud KMS where the master keys never leave hardware.
public final class LocalKeyring: KMSDriver {
    struct MasterKey: Codable {
        var description: String
        var current: Int
        var versions: [String: String]     // version → base64 key
    }
    struct File: Codable { var keys: [String: MasterKey] }

    private let state: Mutex<File>
    /// The keyring file (`nil`: in memory only).
    public let path: String?

    /// Opens (or creates, on first write) the keyring at `path`, or one in memory.
    /// - Throws: `dataLoss` when the file exists and is not a keyring; `permissionDenied` when others can read it.
    public init(path: String?) throws {
        self.path = path
        var file = File(keys: [:])
        if let path, let data = try PrivateFile.read(path, what: "the keyring") {
            do { file = try JSONDecoder().decode(File.self, from: data) }
            catch { throw NimbusError(.dataLoss, "\(path) is not a Nimbus keyring: \(error)", underlying: error) }
        }
        state = Mutex(file)
    }

    public var provider: String { "local" }

    public func createKey(description: String) async throws -> String {
        let id = "key-" + IDGenerator.shared.ulid().description.lowercased()
        try mutate { $0.keys[id] = MasterKey(description: description, current: 1, versions: ["1": Self.randomKey()]) }
        return id
    }

    public func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey {
        let (version, key) = try current(keyID)
        let plaintext = SecureRandom.bytes(32)
        return DataKey(plaintext: Secret(plaintext), wrapped: try wrap(plaintext, keyID: keyID, version: version, key: key, context: context), keyID: keyID)
    }

    public func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey {
        let (keyID, version, nonce, sealed) = try Self.parse(wrapped)
        let key = try self.key(keyID, version: version)
        do {
            let box = try AES.GCM.SealedBox(combined: nonce + sealed)
            let plaintext = try AES.GCM.open(box, using: key, authenticating: Self.aad(keyID: keyID, version: version, context: context))
            return DataKey(plaintext: Secret(Array(plaintext)), wrapped: wrapped, keyID: keyID)
        } catch {
            throw NimbusError(.permissionDenied, "the data key does not unwrap with this encryption context: the context differs or the key was altered")
        }
    }

    public func rotateKey(_ keyID: String) async throws {
        try mutate { file in
            guard var master = file.keys[keyID] else { throw NimbusError(.notFound, "no master key \(keyID) in the keyring") }
            master.current += 1
            master.versions[String(master.current)] = Self.randomKey()
            file.keys[keyID] = master
        }
    }

    public func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey {
        let unwrapped = try await decryptDataKey(wrapped, context: context)
        let target = keyID
        let (version, key) = try current(target)
        return DataKey(plaintext: unwrapped.plaintext, wrapped: try wrap(unwrapped.plaintext.reveal(), keyID: target, version: version, key: key, context: context),
                       keyID: target)
    }

    /// The versions of `keyID` (for audits and tests).
    public func versions(of keyID: String) -> [Int] {
        state.withLock { $0.keys[keyID].map { $0.versions.keys.compactMap(Int.init).sorted() } ?? [] }
    }

    // MARK: - Internals

    private func current(_ keyID: String) throws -> (Int, SymmetricKey) {
        try state.withLock { file in
            guard let master = file.keys[keyID], let encoded = master.versions[String(master.current)], let bytes = Data(base64Encoded: encoded) else {
                throw NimbusError(.notFound, "no master key \(keyID) in the keyring")
            }
            return (master.current, SymmetricKey(data: bytes))
        }
    }

    private func key(_ keyID: String, version: Int) throws -> SymmetricKey {
        try state.withLock { file in
            guard let encoded = file.keys[keyID]?.versions[String(version)], let bytes = Data(base64Encoded: encoded) else {
                throw NimbusError(.notFound, "no version \(version) of master key \(keyID) in the keyring")
            }
            return SymmetricKey(data: bytes)
        }
    }

    private func wrap(_ plaintext: [UInt8], keyID: String, version: Int, key: SymmetricKey, context: [String: String]) throws -> [UInt8] {
        let sealed = try AES.GCM.seal(plaintext, using: key, authenticating: Self.aad(keyID: keyID, version: version, context: context))
        let id = Array(keyID.utf8)
        return Array("NKW1".utf8) + withUnsafeBytes(of: UInt32(id.count).bigEndian) { Array($0) } + id
            + withUnsafeBytes(of: UInt32(version).bigEndian) { Array($0) } + Array(sealed.nonce) + Array(sealed.ciphertext) + Array(sealed.tag)
    }

    static func parse(_ wrapped: [UInt8]) throws -> (String, Int, [UInt8], [UInt8]) {
        guard wrapped.count > 8, Array(wrapped[0..<4]) == Array("NKW1".utf8) else {
            throw NimbusError(.invalidArgument, "not a data key wrapped by the local keyring")
        }
        let idLength = Int(wrapped[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard idLength <= 256, wrapped.count >= 8 + idLength + 4 + 12 + 16 else { throw NimbusError(.invalidArgument, "the wrapped data key is truncated") }
        let id = String(decoding: wrapped[8..<8 + idLength], as: UTF8.self)
        let versionStart = 8 + idLength
        let version = Int(wrapped[versionStart..<versionStart + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        let nonce = Array(wrapped[versionStart + 4..<versionStart + 16])
        return (id, version, nonce, Array(wrapped[(versionStart + 16)...]))
    }

    static func aad(keyID: String, version: Int, context: [String: String]) -> [UInt8] {
        EncryptionContext.authenticatedData(context, label: "nimbus-keyring-v1:\(keyID):\(version)")
    }

    static func randomKey() -> String {
        Data(SecureRandom.bytes(32)).base64EncodedString()
    }

    /// Changes the keyring and writes it (atomically, 0600) before the change counts.
    private func mutate(_ change: (inout File) throws -> Void) throws {
        try state.withLock { file in
            var copy = file
            try change(&copy)
            if let path { try PrivateFile.write(try JSONEncoder().encode(copy), to: path, what: "the keyring") }
            file = copy
        }
    }
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// Adds `local://PATH` (a keyring file, created on first use) and `mem://` (a keyring in memory).
    public func withLocal() -> Self {
        var copy = self
        copy.register("local") { url in
            try url.options.validate(known: [], for: "the local keyring")
            return try LocalKeyring(path: try url.localFilePath(example: "local://./.nimbus/keyring.json"))
        }
        copy.register("mem", "memory") { url in
            try url.options.validate(known: [], for: "the in-memory keyring")
            return try LocalKeyring(path: nil)
        }
        return copy
    }
}
