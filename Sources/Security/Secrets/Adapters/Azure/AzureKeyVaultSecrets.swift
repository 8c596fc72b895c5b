import Foundation
import NimbusAzure
import NimbusCore
import NimbusSecrets

/// Azure Key Vault secrets (`azkeyvault://VAULT`): each write is `SetSecret` (a new version), reads
/// take a version id or the latest, `versions(of:)` lists them (Key Vault does not say which is
/// current, so the newest enabled one is), and `delete` deletes then purges, so the name is free
/// again (soft-delete keeps it otherwise; set `purge: false` to keep deleted secrets recoverable).
/// Key Vault values are text: bytes that are not UTF-8 are stored base64 with the content type
/// `application/vnd.nimbus.base64`. Names go through ``SecretNameCodec`` (`db/password` is
/// `db-2Fpassword`), since Key Vault names allow only `A–Z a–z 0–9 -`.
///
/// ```swift
/// let secrets = try await SecretStore.open("azkeyvault://contoso", openers: .secrets.withAzure())   // AZURE_* credentials
/// ```
public struct AzureKeyVaultSecrets: SecretsDriver {
    /// The vault client.
    public let vault: AzureKeyVaultClient
    /// Whether `delete` also purges the soft-deleted secret.
    public let purge: Bool
    /// The name mapping.
    public static let codec = SecretNameCodec(escape: "-", allowed: SecretNameCodec.alphanumerics)
    static let binaryType = "application/vnd.nimbus.base64"

    /// Secrets of `vault`.
    public init(vault: AzureKeyVaultClient, purge: Bool = true) {
        self.vault = vault
        self.purge = purge
    }

    public var provider: String { "azure-keyvault" }
    public var capabilities: SecretsCapabilities { .all }

    func id(_ name: String) throws -> String {
        let id = Self.codec.encode(name)
        guard id.count <= 127 else { throw NimbusError(.invalidArgument, "secret \(name) is too long for Key Vault once encoded (\(id.count) > 127)") }
        return id
    }

    static func version(_ id: String?) -> String? { id?.split(separator: "/").last.map(String.init) }
    static func date(_ value: JSONValue?) -> Date? { value?.numberValue.map { Date(timeIntervalSince1970: $0) } }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        if let version, version.isEmpty || !version.allSatisfy({ $0.isHexDigit }) { throw NimbusError(.notFound, "secret \(name) has no version \(version)") }
        let bundle: JSONValue
        do {
            bundle = try await vault.call(.GET, "/secrets/\(try id(name))/\(version ?? "")")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, version.map { "secret \(name) has no version \($0)" } ?? "no secret named \(name)", underlying: error)
        }
        guard bundle["attributes"]?["enabled"]?.boolValue != false else { throw NimbusError(.notFound, "secret \(name) version \(version ?? "latest") is disabled") }
        guard let text = bundle["value"]?.stringValue, let number = Self.version(bundle["id"]?.stringValue) else {
            throw NimbusError(.internal, "Key Vault answered secret \(name) without value or id")
        }
        let bytes: [UInt8]
        if bundle["contentType"]?.stringValue == Self.binaryType {
            guard let data = Data(base64Encoded: text) else { throw NimbusError(.dataLoss, "secret \(name) is marked base64 but its value is not") }
            bytes = Array(data)
        } else {
            bytes = Array(text.utf8)
        }
        return SecretValue(name: name, version: number, value: Secret(bytes), createdAt: Self.date(bundle["attributes"]?["created"]))
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        var body: [String: JSONValue] = ["tags": ["managed-by": "nimbus"]]
        if let text = String(validating: value.reveal(), as: UTF8.self) {
            body["value"] = .string(text)
        } else {
            body["value"] = .string(Data(value.reveal()).base64EncodedString())
            body["contentType"] = .string(Self.binaryType)
        }
        let bundle = try await vault.call(.PUT, "/secrets/\(try id(name))", body: .object(body))
        guard let number = Self.version(bundle["id"]?.stringValue) else { throw NimbusError(.internal, "Key Vault stored secret \(name) without returning its id") }
        return SecretVersion(name: name, version: number, createdAt: Self.date(bundle["attributes"]?["created"]), isCurrent: true)
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        let items: [JSONValue]
        do {
            items = try await vault.list("/secrets/\(try id(name))/versions")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
        guard !items.isEmpty else { throw NimbusError(.notFound, "no secret named \(name)") }
        let enabled = items.filter { $0["attributes"]?["enabled"]?.boolValue != false }
            .sorted { (Self.date($0["attributes"]?["created"]) ?? .distantPast) > (Self.date($1["attributes"]?["created"]) ?? .distantPast) }
        return enabled.enumerated().compactMap { index, item in
            Self.version(item["id"]?.stringValue).map { SecretVersion(name: name, version: $0, createdAt: Self.date(item["attributes"]?["created"]), isCurrent: index == 0) }
        }
    }

    public func delete(_ name: String) async throws {
        let id = try id(name)
        do {
            try await vault.call(.DELETE, "/secrets/\(id)")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
        guard purge else { return }
        // The deleted secret shows up under /deletedsecrets after a moment; purge as soon as it does.
        var delay = Duration.milliseconds(200)
        for attempt in 1...8 {
            do {
                try await vault.call(.DELETE, "/deletedsecrets/\(id)")
                return
            } catch let error as NimbusError where (error.code == .notFound || error.code == .alreadyExists || error.code == .failedPrecondition) && attempt < 8 {
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    public func names(prefix: String) async throws -> [String] {
        try await vault.list("/secrets").compactMap { item -> String? in
            guard let id = item["id"]?.stringValue?.split(separator: "/").last, let name = Self.codec.decode(String(id)), name.hasPrefix(prefix) else { return nil }
            return name
        }.sorted()
    }
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// Adds `azkeyvault://VAULT` (option `purge=false` to keep deleted secrets recoverable; credentials from
    /// `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/`AZURE_CLIENT_SECRET`, workload identity, or managed identity).
    public func withAzure(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("azkeyvault") { url in
            try url.options.validate(known: ["purge"], for: "azkeyvault://")
            guard let vault = url.host else { throw NimbusError(.invalidArgument, "azkeyvault:// names its vault: azkeyvault://contoso") }
            return AzureKeyVaultSecrets(vault: AzureKeyVaultClient(vaultURL: try AzureKeyVaultClient.url(forVault: vault), credential: try AzureCredentialChain.default(environment: environment)),
                                        purge: try url.options.bool("purge") ?? true)
        }
        return copy
    }
}
