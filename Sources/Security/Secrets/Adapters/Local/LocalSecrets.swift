import Foundation
import NimbusCore
import NimbusSecrets
import Synchronization

/// Versioned secrets in memory (`mem://`) or in an age-encrypted file (`age://PATH?identity=KEYFILE`),
/// the embedded default.
///
/// The file is one age file (X25519 recipients) holding a JSON document of every secret and
/// version; `age -d -i KEYFILE PATH` shows it, and a document `age -r` encrypted is read here. Each
/// write re-encrypts the whole file to the identity's recipient (and any `recipient=age1…` given
/// for teammates) and replaces it atomically with mode 0600. Old versions are kept (the newest
/// `maxVersions`, 10 by default).
public final class VersionedSecrets: SecretsDriver {
    struct Stored: Codable {
        var version: String
        var created: Date
        var value: Data
    }
    struct Document: Codable {
        var format: String
        var secrets: [String: [Stored]]    // name → versions, oldest first
    }
    static let format = "nimbus-secrets/1"

    private let state: Mutex<Document>
    /// The age file (`nil`: in memory).
    public let path: String?
    private let identities: [Age.Identity]
    private let recipients: [Age.Recipient]
    /// How many versions of a secret are kept.
    public let maxVersions: Int

    /// Secrets in memory.
    public init(maxVersions: Int = 10) {
        path = nil
        identities = []
        recipients = []
        self.maxVersions = max(1, maxVersions)
        state = Mutex(Document(format: Self.format, secrets: [:]))
    }

    /// Opens (or creates, on first write) the age file at `path`.
    /// - Parameters:
    ///   - identityFile: an `age-keygen` identity file (mode 0600); its first identity's recipient is always written to.
    ///   - extraRecipients: more `age1…` recipients every write encrypts to.
    /// - Throws: `permissionDenied` when the identity or the file is readable by others or no
    ///   identity opens the file; `dataLoss` when it is not an age file of secrets.
    public init(path: String, identityFile: String, extraRecipients: [Age.Recipient] = [], maxVersions: Int = 10) throws {
        guard let keyData = try PrivateFile.read(identityFile, what: "the age identity file") else {
            throw NimbusError(.notFound, "no age identity file at \(identityFile); create one with: age-keygen -o \(identityFile)")
        }
        let identities = try Age.Identity.parseFile(String(decoding: keyData, as: UTF8.self))
        let own = identities[0].recipient
        self.identities = identities
        recipients = [own] + extraRecipients.filter { $0 != own }
        self.path = path
        self.maxVersions = max(1, maxVersions)
        var document = Document(format: Self.format, secrets: [:])
        if let data = try PrivateFile.read(path, what: "the secrets file") {
            let plaintext = try Age.decrypt(Array(data), with: identities)
            do { document = try Self.decoder.decode(Document.self, from: Data(plaintext)) } catch {
                throw NimbusError(.dataLoss, "\(path) decrypts but is not a Nimbus secrets document: \(error)", underlying: error)
            }
            guard document.format == Self.format else { throw NimbusError(.dataLoss, "\(path) is format \(document.format), expected \(Self.format)") }
        }
        state = Mutex(document)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    public var provider: String { path == nil ? "memory" : "age-file" }
    public var capabilities: SecretsCapabilities { .all }

    private func record(_ name: String, _ stored: Stored, current: Bool) -> SecretVersion {
        SecretVersion(name: name, version: stored.version, createdAt: stored.created, isCurrent: current)
    }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        try state.withLock { document in
            guard let versions = document.secrets[name], let latest = versions.last else { throw NimbusError(.notFound, "no secret named \(name)") }
            let stored: Stored
            if let version {
                guard let match = versions.first(where: { $0.version == version }) else { throw NimbusError(.notFound, "secret \(name) has no version \(version)") }
                stored = match
            } else {
                stored = latest
            }
            return SecretValue(name: name, version: stored.version, value: Secret(Array(stored.value)), createdAt: stored.created)
        }
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        try mutate { document in
            var versions = document.secrets[name] ?? []
            let next = (versions.last.flatMap { Int($0.version) } ?? 0) + 1
            let stored = Stored(version: String(next), created: Date(), value: Data(value.reveal()))
            versions.append(stored)
            if versions.count > maxVersions { versions.removeFirst(versions.count - maxVersions) }
            document.secrets[name] = versions
            return record(name, stored, current: true)
        }
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        try state.withLock { document in
            guard let versions = document.secrets[name] else { throw NimbusError(.notFound, "no secret named \(name)") }
            return versions.reversed().enumerated().map { index, stored in record(name, stored, current: index == 0) }
        }
    }

    public func delete(_ name: String) async throws {
        try mutate { document in
            guard document.secrets.removeValue(forKey: name) != nil else { throw NimbusError(.notFound, "no secret named \(name)") }
        }
    }

    public func names(prefix: String) async throws -> [String] {
        state.withLock { $0.secrets.keys.filter { $0.hasPrefix(prefix) }.sorted() }
    }

    /// Changes the document and, for a file, writes it encrypted before the change counts.
    private func mutate<T>(_ change: (inout Document) throws -> T) throws -> T {
        try state.withLock { document in
            var copy = document
            let result = try change(&copy)
            if let path {
                let sealed = try Age.encrypt(Array(try Self.encoder.encode(copy)), to: recipients)
                try PrivateFile.write(Data(sealed), to: path, what: "the secrets file")
            }
            document = copy
            return result
        }
    }
}

/// Read-only secrets from the environment (`env://?prefix=APP_`): `db/password` is
/// `APP_DB_PASSWORD` (upper case, every character outside A–Z 0–9 becomes `_`). When
/// `APP_DB_PASSWORD_FILE` is set instead, the file it names is read (the Docker and Kubernetes
/// convention for mounted secrets).
public struct EnvironmentSecrets: SecretsDriver {
    /// The prefix of every variable.
    public var prefix: String
    private let environment: @Sendable () -> [String: String]

    /// Reads `ProcessInfo`'s environment (or another, for tests).
    public init(prefix: String = "", environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment }) {
        self.prefix = prefix
        self.environment = environment
    }

    public var provider: String { "env" }
    public var capabilities: SecretsCapabilities { [] }

    /// The variable that holds `name`.
    public func variable(for name: String) -> String {
        prefix + String(name.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
    }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        guard version == nil || version == "current" else { throw NimbusError(.notFound, "environment secrets have no versions (asked for \(version ?? ""))") }
        let variable = variable(for: name)
        let environment = environment()
        if let text = environment[variable] { return SecretValue(name: name, version: "current", value: Secret(Array(text.utf8))) }
        if let file = environment[variable + "_FILE"] {
            guard let data = FileManager.default.contents(atPath: file) else { throw NimbusError(.notFound, "\(variable)_FILE names \(file), which cannot be read") }
            return SecretValue(name: name, version: "current", value: Secret(Array(data)))
        }
        throw NimbusError(.notFound, "no secret named \(name): set \(variable) (or \(variable)_FILE)")
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        throw NimbusError(.unimplemented, "environment secrets are read-only")
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        _ = try await value(of: name, version: nil)
        return [SecretVersion(name: name, version: "current", isCurrent: true)]
    }

    public func delete(_ name: String) async throws { throw NimbusError(.unimplemented, "environment secrets are read-only") }
    public func names(prefix: String) async throws -> [String] { throw NimbusError(.unimplemented, "environment secrets cannot be listed") }
}

/// Secrets as files under a directory (`file://DIR`): `db/password` is `DIR/db/password`, the
/// layout of mounted Kubernetes and Docker secrets. Writes are atomic with mode 0600 (directories
/// 0700); there is one version, the file's content. Paths are resolved and must stay under `DIR`
/// (a symlink out of it is refused).
public struct FileSecrets: SecretsDriver {
    /// The directory.
    public let directory: String

    /// Secrets under `directory` (created on the first write).
    public init(directory: String) { self.directory = (directory as NSString).standardizingPath }

    public var provider: String { "file" }
    public var capabilities: SecretsCapabilities { [.write, .delete, .list] }

    func path(_ name: String) throws -> String {
        try SecretStore.validate(name: name)
        let path = (directory as NSString).appendingPathComponent(name)
        let root = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard resolved == root || resolved.hasPrefix(root + "/") else {
            throw NimbusError(.permissionDenied, "secret \(name) resolves outside \(directory); symlinks out of the secrets directory are refused")
        }
        return path
    }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        guard version == nil || version == "current" else { throw NimbusError(.notFound, "file secrets have no versions (asked for \(version ?? ""))") }
        let path = try path(name)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: path) else {
            throw NimbusError(.notFound, "no secret named \(name) (no readable file \(path))")
        }
        let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        return SecretValue(name: name, version: "current", value: Secret(Array(data)), createdAt: modified)
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        let path = try path(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try PrivateFile.write(Data(value.reveal()), to: path, what: "secret \(name)")
        return SecretVersion(name: name, version: "current", createdAt: Date(), isCurrent: true)
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        let value = try await value(of: name, version: nil)
        return [SecretVersion(name: name, version: "current", createdAt: value.createdAt, isCurrent: true)]
    }

    public func delete(_ name: String) async throws {
        let path = try path(name)
        guard FileManager.default.fileExists(atPath: path) else { throw NimbusError(.notFound, "no secret named \(name)") }
        try FileManager.default.removeItem(atPath: path)
    }

    public func names(prefix: String) async throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var names: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }), !relative.contains(".tmp-"),
                  FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(relative), isDirectory: &isDirectory),
                  !isDirectory.boolValue, relative.hasPrefix(prefix) else { continue }
            names.append(relative)
        }
        return names.sorted()
    }
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// Adds `mem://`, `age://PATH?identity=KEYFILE[&recipient=age1…]`, `env://[?prefix=APP_]` and `file://DIR`.
    public func withLocal() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["max_versions"], for: "mem://")
            return VersionedSecrets(maxVersions: try url.options.int("max_versions") ?? 10)
        }
        copy.register("age") { url in
            try url.options.validate(known: ["identity", "recipient", "max_versions"], for: "age://")
            guard let identity = url.options.string("identity") else {
                throw NimbusError(.invalidArgument, "age:// needs ?identity=KEYFILE (an age-keygen identity file), e.g. age://./secrets.age?identity=./age-key.txt")
            }
            let recipients = try (url.options.string("recipient") ?? "").split(separator: ",").map { try Age.Recipient(String($0)) }
            return try VersionedSecrets(path: try url.localFilePath(example: "age://./secrets.age?identity=./age-key.txt"), identityFile: identity,
                                        extraRecipients: recipients, maxVersions: try url.options.int("max_versions") ?? 10)
        }
        copy.register("env") { url in
            try url.options.validate(known: ["prefix"], for: "env://")
            return EnvironmentSecrets(prefix: url.options.string("prefix") ?? "")
        }
        copy.register("file") { url in
            try url.options.validate(known: [], for: "file://")
            return FileSecrets(directory: try url.localPath(example: "file:///run/secrets"))
        }
        return copy
    }
}
