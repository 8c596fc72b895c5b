import Foundation
import NimbusCore
import NimbusGCP
import NimbusSecrets

/// Google Cloud Secret Manager (`gcpsecrets://PROJECT`): each write is `AddSecretVersion` (the
/// secret is created on first write, with automatic replication), reads are
/// `versions/{n|latest}:access`, and every payload carries and is checked against its CRC32C
/// (`dataCrc32c`), as Google recommends. Names go through ``SecretNameCodec`` (`db/password` is
/// the secret id `db_2Fpassword`), since Secret Manager ids allow only `A–Z a–z 0–9 - _`.
///
/// ```swift
/// let secrets = try await SecretStore.open("gcpsecrets://my-project", openers: .secrets.withGCP())   // Application Default Credentials
/// ```
public struct GCPSecretManager: SecretsDriver {
    /// The client.
    public let gcp: GCPClient
    /// The project id or number.
    public let project: String
    /// The API root (`https://secretmanager.googleapis.com/v1`).
    public let endpoint: String
    /// The name mapping.
    public static let codec = SecretNameCodec(escape: "_", allowed: SecretNameCodec.alphanumerics.union(["-"]))

    /// Secret Manager of `project` through `gcp`.
    public init(gcp: GCPClient, project: String, endpoint: String = "https://secretmanager.googleapis.com/v1") {
        self.gcp = gcp
        self.project = project
        self.endpoint = endpoint.trimmingSuffix("/")
    }

    public var provider: String { "gcp-secretmanager" }
    public var capabilities: SecretsCapabilities { .all }

    func secretURL(_ name: String) throws -> String {
        let id = Self.codec.encode(name)
        guard id.count <= 255 else { throw NimbusError(.invalidArgument, "secret \(name) is too long for Secret Manager once encoded (\(id.count) > 255)") }
        return "\(endpoint)/projects/\(project)/secrets/\(id)"
    }

    static func date(_ value: JSONValue?) -> Date? { value?.stringValue.flatMap(Date.init(iso8601:)) }

    static func versionNumber(_ resource: String?) -> String? { resource?.split(separator: "/").last.map(String.init) }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        if let version, Int(version) == nil { throw NimbusError(.notFound, "secret \(name) has no version \(version) (Secret Manager versions are 1, 2, …)") }
        let output: JSONValue
        do {
            output = try await gcp.json(.GET, "\(try secretURL(name))/versions/\(version ?? "latest"):access", operation: "Secret Manager access")
        } catch let error as NimbusError where error.code == .notFound || error.code == .failedPrecondition {
            throw NimbusError(.notFound, version.map { "secret \(name) has no enabled version \($0)" } ?? "no secret named \(name) (or no enabled version)", underlying: error)
        }
        guard let encoded = output["payload"]?["data"]?.stringValue, let data = Data(base64Encoded: encoded) else {
            throw NimbusError(.internal, "Secret Manager answered secret \(name) without payload.data")
        }
        if let expected = output["payload"]?["dataCrc32c"].flatMap({ $0.stringValue.flatMap(UInt32.init) ?? $0.numberValue.map { UInt32($0) } }) {
            guard CRC32C.checksum(Array(data)) == expected else {
                throw NimbusError(.dataLoss, "secret \(name): the payload's CRC32C does not match dataCrc32c; it was corrupted in transit")
            }
        }
        guard let number = Self.versionNumber(output["name"]?.stringValue) else { throw NimbusError(.internal, "Secret Manager answered without the version's name") }
        return SecretValue(name: name, version: number, value: Secret(Array(data)), createdAt: nil)
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        let url = try secretURL(name)
        let payload: JSONValue = ["payload": ["data": .string(Data(value.reveal()).base64EncodedString()),
                                              "dataCrc32c": .string(String(CRC32C.checksum(value.reveal())))]]
        let output: JSONValue
        do {
            output = try await gcp.json(.POST, "\(url):addVersion", body: payload, operation: "Secret Manager addVersion")
        } catch let error as NimbusError where error.code == .notFound {
            do {
                _ = try await gcp.json(.POST, "\(endpoint)/projects/\(project)/secrets", query: [("secretId", Self.codec.encode(name))],
                                       body: ["replication": ["automatic": [:]], "labels": ["managed-by": "nimbus"]], operation: "Secret Manager create")
            } catch let error as NimbusError where error.code == .alreadyExists {
                // created by a concurrent writer: add the version to it
            }
            output = try await gcp.json(.POST, "\(url):addVersion", body: payload, operation: "Secret Manager addVersion")
        }
        guard let number = Self.versionNumber(output["name"]?.stringValue) else { throw NimbusError(.internal, "Secret Manager answered addVersion without the version's name") }
        return SecretVersion(name: name, version: number, createdAt: Self.date(output["createTime"]), isCurrent: true)
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        var versions: [JSONValue] = []
        do {
            for try await version in gcp.pages("\(try secretURL(name))/versions", query: [("pageSize", "100")], itemsField: "versions") { versions.append(version) }
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
        let enabled = versions.filter { $0["state"]?.stringValue == "ENABLED" }.compactMap { version -> (Int, JSONValue)? in
            Self.versionNumber(version["name"]?.stringValue).flatMap(Int.init).map { ($0, version) }
        }.sorted { $0.0 > $1.0 }
        return enabled.enumerated().map { index, item in
            SecretVersion(name: name, version: String(item.0), createdAt: Self.date(item.1["createTime"]), isCurrent: index == 0)
        }
    }

    public func delete(_ name: String) async throws {
        do {
            _ = try await gcp.json(.DELETE, try secretURL(name), operation: "Secret Manager delete")
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
    }

    public func names(prefix: String) async throws -> [String] {
        var names: [String] = []
        for try await secret in gcp.pages("\(endpoint)/projects/\(project)/secrets", query: [("pageSize", "250")], itemsField: "secrets") {
            guard let id = secret["name"]?.stringValue?.split(separator: "/").last, let name = Self.codec.decode(String(id)) else { continue }
            if name.hasPrefix(prefix) { names.append(name) }
        }
        return names.sorted()
    }
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// Adds `gcpsecrets://PROJECT` (option `endpoint` for an emulator or a regional endpoint; credentials from
    /// Application Default Credentials).
    public func withGCP() -> Self {
        var copy = self
        copy.register("gcpsecrets") { url in
            try url.options.validate(known: ["endpoint"], for: "gcpsecrets://")
            guard let project = url.host, !project.isEmpty else { throw NimbusError(.invalidArgument, "gcpsecrets:// needs the project as its host: gcpsecrets://my-project") }
            return GCPSecretManager(gcp: try GCPClient(), project: project, endpoint: url.options.string("endpoint") ?? "https://secretmanager.googleapis.com/v1")
        }
        return copy
    }
}
