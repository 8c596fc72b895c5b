import Foundation
import NimbusCore
import NimbusSecrets
import NimbusVault

/// Vault's KV version 2 engine (`vault://HOST:8200/MOUNT`): every write is a new version, reads
/// take a version, `versions(of:)` reads the metadata, `delete` removes the metadata and every
/// version, and `names(prefix:)` walks the LIST tree. A value is stored as `{"value": TEXT}`, or
/// `{"value_base64": …}` for bytes that are not UTF-8, so secrets written by hand with
/// `vault kv put secret/db value=…` read back too. Writes use check-and-set from the version read
/// just before, so two writers racing cannot silently overwrite each other.
///
/// ```swift
/// let secrets = try await SecretStore.open("vault://vault.internal:8200/secret", openers: .secrets.withVault())   // VAULT_TOKEN
/// ```
public struct VaultKVSecrets: SecretsDriver {
    /// The client.
    public let vault: VaultClient
    /// The engine's mount path (`secret`).
    public let mount: String

    /// KV v2 at `mount` through `vault`.
    public init(vault: VaultClient, mount: String = "secret") {
        self.vault = vault
        self.mount = mount.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    public var provider: String { "vault-kv" }
    public var capabilities: SecretsCapabilities { .all }

    static func date(_ text: String?) -> Date? { text.flatMap(Date.init(iso8601:)) }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        var query: [(String, String)] = []
        if let version {
            guard let number = Int(version), number > 0 else { throw NimbusError(.notFound, "secret \(name) has no version \(version) (KV versions are 1, 2, …)") }
            query.append(("version", String(number)))
        }
        let output: JSONValue?
        do {
            output = try await vault.request(.GET, "\(mount)/data/\(name)", query: query)
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, version.map { "secret \(name) has no readable version \($0)" } ?? "no secret named \(name)", underlying: error)
        }
        guard let body = output?["data"], let metadata = body["metadata"], let number = metadata["version"]?.numberValue else {
            throw NimbusError(.internal, "Vault answered a KV read of \(name) without data.metadata.version")
        }
        guard case .object(let data)? = body["data"] else {
            throw NimbusError(.notFound, "secret \(name) version \(Int(number)) is deleted or destroyed")
        }
        let bytes: [UInt8]
        if let text = data["value"]?.stringValue {
            bytes = Array(text.utf8)
        } else if let encoded = data["value_base64"]?.stringValue, let decoded = Data(base64Encoded: encoded) {
            bytes = Array(decoded)
        } else if data.count == 1, let only = data.values.first?.stringValue {
            bytes = Array(only.utf8)   // a secret written by hand under another key name
        } else {
            bytes = Array(JSONValue.object(data).description.utf8)   // several keys: the map as JSON
        }
        return SecretValue(name: name, version: String(Int(number)), value: Secret(bytes), createdAt: Self.date(metadata["created_time"]?.stringValue))
    }

    /// The current version number, or 0 when `name` does not exist.
    func currentVersion(_ name: String) async throws -> Int {
        do {
            let output = try await vault.request(.GET, "\(mount)/metadata/\(name)")
            return Int(output?["data"]?["current_version"]?.numberValue ?? 0)
        } catch let error as NimbusError where error.code == .notFound {
            return 0
        }
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        let payload: JSONValue = String(validating: value.reveal(), as: UTF8.self).map { ["value": .string($0)] }
            ?? ["value_base64": .string(Data(value.reveal()).base64EncodedString())]
        let expected = try await currentVersion(name)
        let output: JSONValue?
        do {
            output = try await vault.request(.POST, "\(mount)/data/\(name)", body: ["data": payload, "options": ["cas": .number(Double(expected))]])
        } catch let error as NimbusError where error.code == .invalidArgument && error.message.contains("check-and-set") {
            throw NimbusError(.failedPrecondition, "secret \(name) changed while it was being written (version \(expected) is no longer current); retry", underlying: error)
        }
        guard let number = output?["data"]?["version"]?.numberValue else { throw NimbusError(.internal, "Vault answered a KV write of \(name) without data.version") }
        return SecretVersion(name: name, version: String(Int(number)), createdAt: Self.date(output?["data"]?["created_time"]?.stringValue), isCurrent: true)
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        let output: JSONValue?
        do {
            output = try await vault.request(.GET, "\(mount)/metadata/\(name)")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
        guard let data = output?["data"], case .object(let versions)? = data["versions"] else {
            throw NimbusError(.internal, "Vault answered the KV metadata of \(name) without versions")
        }
        let current = Int(data["current_version"]?.numberValue ?? 0)
        return versions.compactMap { key, info -> SecretVersion? in
            guard let number = Int(key), info["destroyed"]?.boolValue != true, (info["deletion_time"]?.stringValue ?? "").isEmpty else { return nil }
            return SecretVersion(name: name, version: key, createdAt: Self.date(info["created_time"]?.stringValue), isCurrent: number == current)
        }.sorted { Int($0.version)! > Int($1.version)! }
    }

    public func delete(_ name: String) async throws {
        guard try await currentVersion(name) > 0 else { throw NimbusError(.notFound, "no secret named \(name)") }
        try await vault.request(.DELETE, "\(mount)/metadata/\(name)")
    }

    public func names(prefix: String) async throws -> [String] {
        // LIST works on folders: start at the deepest folder of the prefix and walk down.
        let folder = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) + "/" : ""
        var names: [String] = []
        var pending = [folder]
        while let next = pending.popLast(), names.count < 100_000 {
            let output: JSONValue?
            do {
                output = try await vault.request(.GET, "\(mount)/metadata/\(next)", query: [("list", "true")])
            } catch let error as NimbusError where error.code == .notFound {
                continue
            }
            for key in output?["data"]?["keys"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                let full = next + key
                if key.hasSuffix("/") {
                    if full.hasPrefix(prefix) || prefix.hasPrefix(full) { pending.append(full) }
                } else if full.hasPrefix(prefix) {
                    names.append(full)
                }
            }
        }
        return names.sorted()
    }
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// Adds `vault://HOST[:PORT]/MOUNT` (options `tls=false` for a dev server, `namespace`; the token from
    /// `VAULT_TOKEN` or `~/.vault-token`).
    public func withVault(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("vault") { url in
            try url.options.validate(known: ["tls", "namespace"], for: "vault://")
            let configuration = try VaultURL.configuration(url, environment: environment)
            return VaultKVSecrets(vault: try VaultClient(configuration: configuration), mount: url.path.isEmpty ? "secret" : url.path)
        }
        return copy
    }
}
