import Foundation
import NimbusCore

/// One version of a secret, without its value.
public struct SecretVersion: Sendable, Hashable, Codable {
    /// The secret's name.
    public var name: String
    /// The version id, as the store names it (`1`, a UUID, …).
    public var version: String
    /// When it was written, if the store says.
    public var createdAt: Date?
    /// Whether this is the version a read without a version returns.
    public var isCurrent: Bool

    /// Creates a version record.
    public init(name: String, version: String, createdAt: Date? = nil, isCurrent: Bool) {
        self.name = name
        self.version = version
        self.createdAt = createdAt
        self.isCurrent = isCurrent
    }
}

/// A secret's value at one version. The bytes stay wrapped in ``Secret`` until revealed.
public struct SecretValue: Sendable {
    /// The secret's name.
    public var name: String
    /// The version the value is from.
    public var version: String
    /// The value.
    public var value: Secret<[UInt8]>
    /// When it was written, if the store says.
    public var createdAt: Date?

    /// Creates a value.
    public init(name: String, version: String, value: Secret<[UInt8]>, createdAt: Date? = nil) {
        self.name = name
        self.version = version
        self.value = value
        self.createdAt = createdAt
    }

    /// The value as UTF-8 text, or `nil` if it is not.
    public var string: Secret<String>? {
        guard let text = String(validating: value.reveal(), as: UTF8.self) else { return nil }
        return Secret(text)
    }
}

/// What a secrets store can do beyond reading.
public struct SecretsCapabilities: OptionSet, Sendable, Hashable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// ``SecretsDriver/put(_:value:)`` works.
    public static let write = SecretsCapabilities(rawValue: 1)
    /// Old versions are kept and readable.
    public static let versions = SecretsCapabilities(rawValue: 2)
    /// ``SecretsDriver/delete(_:)`` works.
    public static let delete = SecretsCapabilities(rawValue: 4)
    /// ``SecretsDriver/names(prefix:)`` works.
    public static let list = SecretsCapabilities(rawValue: 8)
    /// Everything.
    public static let all: SecretsCapabilities = [.write, .versions, .delete, .list]
}

/// What a secrets store implements. ``SecretStore`` adds caching, rotation and name checks on top.
public protocol SecretsDriver: NimbusDriver {
    /// What the store supports; the other calls throw `unimplemented` outside it.
    var capabilities: SecretsCapabilities { get }
    /// The current value of `name`, or the given version.
    /// - Throws: `notFound` for an unknown name or version.
    func value(of name: String, version: String?) async throws -> SecretValue
    /// Writes a new current version of `name`, creating it if needed; returns the new version.
    func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion
    /// The versions of `name`, newest first.
    /// - Throws: `notFound` for an unknown name.
    func versions(of name: String) async throws -> [SecretVersion]
    /// Deletes `name` and all its versions.
    /// - Throws: `notFound` for an unknown name.
    func delete(_ name: String) async throws
    /// The names that start with `prefix`, sorted.
    func names(prefix: String) async throws -> [String]
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// An empty registry for the secrets domain; adapters add their schemes (`.withLocal()`, `.withAWS()`).
    public static var secrets: URLOpenerRegistry<any SecretsDriver> { URLOpenerRegistry(domain: "secrets") }
}

/// Maps Nimbus secret names (`db/password`, `stripe.key`) to stores whose names allow fewer
/// characters (GCP Secret Manager: `A–Z a–z 0–9 - _`; Azure Key Vault: `A–Z a–z 0–9 -`), reversibly:
/// each other character — and the escape character itself — becomes the escape followed by its
/// two hex digits (`db/password` → `db_2Fpassword` with `_`, `db-2Fpassword` with `-`).
///
/// ```swift
/// let codec = SecretNameCodec(escape: "_", allowed: SecretNameCodec.alphanumerics.union("-"))
/// codec.encode("db/password")      // "db_2Fpassword"
/// ```
public struct SecretNameCodec: Sendable {
    /// `A–Z a–z 0–9`.
    public static let alphanumerics = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    /// The escape character.
    public let escape: Character
    /// The characters kept as they are (never the escape).
    public let allowed: Set<Character>

    /// A codec escaping with `escape` everything outside `allowed`.
    public init(escape: Character, allowed: Set<Character>) {
        self.escape = escape
        self.allowed = allowed.subtracting([escape])
    }

    /// The store's name for `name` (secret names are ASCII, so every byte is one character).
    public func encode(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80, allowed.contains(character) { out.append(character) } else { out += String(escape) + String(format: "%02X", byte) }
        }
        return out
    }

    /// The Nimbus name for a store name, or `nil` when it is not one this codec produced.
    public func decode(_ stored: String) -> String? {
        var bytes: [UInt8] = []
        var index = stored.startIndex
        while index < stored.endIndex {
            let character = stored[index]
            if character == escape {
                let start = stored.index(after: index)
                guard let end = stored.index(start, offsetBy: 2, limitedBy: stored.endIndex), let byte = UInt8(stored[start..<end], radix: 16) else { return nil }
                bytes.append(byte)
                index = end
            } else {
                guard allowed.contains(character), let ascii = character.asciiValue else { return nil }
                bytes.append(ascii)
                index = stored.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
