import Crypto
import Foundation
import Logging
import NimbusCore
import Synchronization

/// Envelope encryption over any ``KMSDriver``: each message gets a fresh data key from the KMS, the
/// data is sealed locally with AES-256-GCM (the encryption context as additional authenticated
/// data), and the envelope carries the wrapped data key — so the KMS sees 32 bytes per message,
/// never the data, and the data key never rests in the clear.
///
/// ```swift
/// let kms = try await KeyManagement.open("local://./.nimbus/keyring.json", openers: .kms.withLocal())
/// let key = try await kms.createKey(description: "customer PII")
/// let envelope = try await kms.encrypt(Array(ssn.utf8), keyID: key, context: ["tenant": "acme", "field": "ssn"])
/// let plaintext = try await kms.decrypt(envelope, context: ["tenant": "acme", "field": "ssn"])
/// ```
///
/// An envelope is bytes (``Envelope/serialized``, or base64 in text columns). The context is not
/// stored: the caller must give the same one to decrypt, which is what binds a ciphertext to its row.
public final class KeyManagement: PortableClient {
    /// Limits.
    public struct Configuration: Sendable {
        /// The largest plaintext accepted (envelope encryption is for records, not files).
        public var maximumPlaintextSize: Int
        /// Retries of idempotent calls (decrypt).
        public var retry: RetryPolicy

        /// Creates settings (16 MiB plaintexts by default).
        public init(maximumPlaintextSize: Int = 16 * 1024 * 1024,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .seconds(1))) {
            self.maximumPlaintextSize = maximumPlaintextSize
            self.retry = retry
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let driver: any KMSDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    static let operations = ["createKey", "encrypt", "decrypt", "rotateKey", "reEncrypt"]

    /// Wraps a driver.
    public init(driver: some KMSDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.kms")) {
        self.driver = driver
        self.configuration = configuration
        self.calls = PortableCalls(domain: "kms", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver `url`'s scheme names.
    public static func open(_ url: String, openers: URLOpenerRegistry<any KMSDriver>, configuration: Configuration = .init()) async throws -> KeyManagement {
        KeyManagement(driver: try await openers.open(url), configuration: configuration)
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    /// Creates a master key; returns its id.
    public func createKey(description: String = "") async throws -> String {
        try await calls.run("createKey", retry: .none, closed: closed.load(ordering: .relaxed)) { try await self.driver.createKey(description: description) }
    }

    /// Seals `plaintext` under a fresh data key from master key `keyID`, bound to `context`.
    /// - Throws: `invalidArgument` for a plaintext over the limit or a context with empty names.
    public func encrypt(_ plaintext: [UInt8], keyID: String, context: [String: String] = [:]) async throws -> Envelope {
        guard plaintext.count <= configuration.maximumPlaintextSize else {
            throw NimbusError(.invalidArgument, "the plaintext is \(plaintext.count) bytes, over the limit of \(configuration.maximumPlaintextSize)")
        }
        try Self.validate(context)
        let dataKey = try await calls.run("encrypt", retry: .none, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.generateDataKey(keyID: keyID, context: context)
        }
        guard dataKey.plaintext.reveal().count == 32 else {
            throw NimbusError(.internal, "\(provider) returned a data key of \(dataKey.plaintext.reveal().count) bytes; AES-256 needs 32")
        }
        let sealed = try AES.GCM.seal(plaintext, using: SymmetricKey(data: dataKey.plaintext.reveal()),
                                      authenticating: Self.associatedData(context))
        return Envelope(keyID: dataKey.keyID, wrappedKey: dataKey.wrapped, nonce: Array(sealed.nonce), ciphertext: Array(sealed.ciphertext),
                        tag: Array(sealed.tag))
    }

    /// Opens an envelope; `context` must be the one it was sealed with.
    /// - Throws: `permissionDenied` when the context differs or anything in the envelope was altered
    ///   (the KMS or AES-GCM refuses it); `notFound` when its master key is gone.
    public func decrypt(_ envelope: Envelope, context: [String: String] = [:]) async throws -> [UInt8] {
        try Self.validate(context)
        let dataKey = try await calls.run("decrypt", retry: configuration.retry, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.decryptDataKey(envelope.wrappedKey, context: context)
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: envelope.nonce), ciphertext: envelope.ciphertext, tag: envelope.tag)
            return Array(try AES.GCM.open(box, using: SymmetricKey(data: dataKey.plaintext.reveal()), authenticating: Self.associatedData(context)))
        } catch {
            throw NimbusError(.permissionDenied, "the envelope does not open with its data key and this context: it was altered or the context differs")
        }
    }

    /// Makes a new version of `keyID` current; envelopes sealed before still open.
    public func rotateKey(_ keyID: String) async throws {
        try await calls.run("rotateKey", retry: .none, closed: closed.load(ordering: .relaxed)) { try await self.driver.rotateKey(keyID) }
    }

    /// The same envelope with its data key wrapped again by the current version of `keyID` (or of
    /// its own key): after a rotation, or to move data to another key. The data is not touched.
    public func reEncrypt(_ envelope: Envelope, context: [String: String] = [:], to keyID: String? = nil) async throws -> Envelope {
        try Self.validate(context)
        let dataKey = try await calls.run("reEncrypt", retry: .none, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.reEncrypt(envelope.wrappedKey, context: context, to: keyID ?? envelope.keyID)
        }
        var moved = envelope
        moved.keyID = dataKey.keyID
        moved.wrappedKey = dataKey.wrapped
        return moved
    }

    static func validate(_ context: [String: String]) throws {
        guard context.keys.allSatisfy({ !$0.isEmpty }) else { throw NimbusError(.invalidArgument, "encryption context names must not be empty") }
    }

    static func associatedData(_ context: [String: String]) -> [UInt8] { EncryptionContext.authenticatedData(context, label: "nimbus-kms-v1") }
}

/// How an encryption context becomes authenticated data, the same in every driver that binds it itself.
public enum EncryptionContext {
    /// `label`, then the context's names sorted, each name and value length-prefixed, so two
    /// different contexts never give the same bytes.
    public static func authenticatedData(_ context: [String: String], label: String) -> [UInt8] {
        var bytes: [UInt8] = Array(label.utf8)
        for (name, value) in context.sorted(by: { $0.key < $1.key }) {
            for part in [name, value] {
                let utf8 = Array(part.utf8)
                bytes += withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { Array($0) } + utf8
            }
        }
        return bytes
    }
}

/// A sealed message: the wrapped data key, the AES-GCM nonce, ciphertext and tag.
public struct Envelope: Sendable, Hashable {
    /// The master key that wrapped the data key (as the KMS names it).
    public var keyID: String
    /// The wrapped data key.
    public var wrappedKey: [UInt8]
    /// The 12-byte nonce.
    public var nonce: [UInt8]
    /// The ciphertext.
    public var ciphertext: [UInt8]
    /// The 16-byte tag.
    public var tag: [UInt8]

    /// Creates an envelope.
    public init(keyID: String, wrappedKey: [UInt8], nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
        self.keyID = keyID
        self.wrappedKey = wrappedKey
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.tag = tag
    }

    /// The envelope as bytes: `NKE1`, then key id, wrapped key, nonce, tag and ciphertext, each but the
    /// last with a 4-byte big-endian length.
    public var serialized: [UInt8] {
        var bytes = Array("NKE1".utf8)
        for part in [Array(keyID.utf8), wrappedKey, nonce, tag] { bytes += withUnsafeBytes(of: UInt32(part.count).bigEndian) { Array($0) } + part }
        return bytes + ciphertext
    }

    /// Reads ``serialized`` bytes.
    /// - Throws: `invalidArgument` for bytes that are not an envelope (wrong magic, truncated, oversized fields).
    public init(serialized bytes: [UInt8]) throws {
        guard bytes.count >= 4, Array(bytes[0..<4]) == Array("NKE1".utf8) else {
            throw NimbusError(.invalidArgument, "not a Nimbus envelope (it starts with NKE1)")
        }
        var offset = 4
        func field() throws -> [UInt8] {
            guard bytes.count - offset >= 4 else { throw NimbusError(.invalidArgument, "the envelope is truncated") }
            let length = Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            offset += 4
            guard length <= 64 * 1024, bytes.count - offset >= length else { throw NimbusError(.invalidArgument, "the envelope is truncated or malformed") }
            defer { offset += length }
            return Array(bytes[offset..<offset + length])
        }
        let id = try field(), wrapped = try field(), nonce = try field(), tag = try field()
        guard nonce.count == 12, tag.count == 16 else { throw NimbusError(.invalidArgument, "the envelope's nonce or tag has the wrong size") }
        self.init(keyID: String(decoding: id, as: UTF8.self), wrappedKey: wrapped, nonce: nonce, ciphertext: Array(bytes[offset...]), tag: tag)
    }
}
