import Foundation
import NimbusAWS
import NimbusCore
import NimbusSecrets

/// AWS Secrets Manager (`awssecrets://?region=…`). Text values travel as `SecretString` (what the
/// console shows), other bytes as `SecretBinary`. Every write is a `PutSecretValue` (or, the
/// first time, `CreateSecret`) with a fresh `ClientRequestToken`, so a retried request cannot make
/// two versions; the previous version keeps the `AWSPREVIOUS` stage. Deletes are immediate
/// (`ForceDeleteWithoutRecovery`) unless `recovery_days` (7–30) is set.
public struct AWSSecretsManagerDriver: SecretsDriver {
    /// The AWS client (credentials, region, endpoint).
    public let aws: AWSClient
    /// Days a deleted secret can be restored (`nil`: deleted at once, the name free again).
    public let recoveryDays: Int?

    /// Secrets Manager through `aws`.
    public init(aws: AWSClient, recoveryDays: Int? = nil) {
        self.aws = aws
        self.recoveryDays = recoveryDays
    }

    public var provider: String { "aws-secretsmanager" }
    public var capabilities: SecretsCapabilities { .all }

    static func date(_ value: JSONValue?) -> Date? { value?.numberValue.map { Date(timeIntervalSince1970: $0) } }

    public func value(of name: String, version: String?) async throws -> SecretValue {
        var input: JSONValue = ["SecretId": .string(name)]
        if let version { input = input.addingMissing(["VersionId": .string(version)]) }
        let output: JSONValue
        do { output = try await aws.call("secretsmanager", "GetSecretValue", input: input, maxAttempts: 1).output } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, version.map { "secret \(name) has no version \($0)" } ?? "no secret named \(name)", underlying: error)
        }
        let bytes: [UInt8]
        if let text = output["SecretString"]?.stringValue {
            bytes = Array(text.utf8)
        } else if let binary = output["SecretBinary"]?.stringValue, let data = Data(base64Encoded: binary) {
            bytes = Array(data)
        } else {
            throw NimbusError(.internal, "Secrets Manager returned secret \(name) without SecretString or SecretBinary")
        }
        guard let versionID = output["VersionId"]?.stringValue else { throw NimbusError(.internal, "Secrets Manager returned secret \(name) without a VersionId") }
        return SecretValue(name: name, version: versionID, value: Secret(bytes), createdAt: Self.date(output["CreatedDate"]))
    }

    static func payload(_ value: Secret<[UInt8]>) -> JSONValue {
        if let text = String(validating: value.reveal(), as: UTF8.self) { return ["SecretString": .string(text)] }
        return ["SecretBinary": .string(Data(value.reveal()).base64EncodedString())]
    }

    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        let token = UUID().uuidString.lowercased()
        let input = Self.payload(value).addingMissing(["SecretId": .string(name), "ClientRequestToken": .string(token)])
        let output: JSONValue
        do {
            output = try await aws.call("secretsmanager", "PutSecretValue", input: input, maxAttempts: 3).output
        } catch let error as NimbusError where error.code == .notFound {
            let create = Self.payload(value).addingMissing(["Name": .string(name), "ClientRequestToken": .string(token)])
            output = try await aws.call("secretsmanager", "CreateSecret", input: create, maxAttempts: 3).output
        }
        guard let versionID = output["VersionId"]?.stringValue else { throw NimbusError(.internal, "Secrets Manager stored \(name) without returning a VersionId") }
        return SecretVersion(name: name, version: versionID, createdAt: Date(), isCurrent: true)
    }

    /// Fails with `notFound` unless `name` exists and is not scheduled for deletion (`DescribeSecret`
    /// answers that the same way everywhere; moto's `ListSecretVersionIds` and `DeleteSecret` do not).
    private func requireExisting(_ name: String) async throws {
        do {
            let output = try await aws.call("secretsmanager", "DescribeSecret", input: ["SecretId": .string(name)]).output
            guard output["DeletedDate"] == nil else { throw NimbusError(.notFound, "secret \(name) is scheduled for deletion") }
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
    }

    public func versions(of name: String) async throws -> [SecretVersion] {
        try await requireExisting(name)
        var versions: [SecretVersion] = []
        var token: String?
        repeat {
            var input: JSONValue = ["SecretId": .string(name), "MaxResults": 100]
            if let token { input = input.addingMissing(["NextToken": .string(token)]) }
            let output: JSONValue
            do { output = try await aws.call("secretsmanager", "ListSecretVersionIds", input: input).output } catch let error as NimbusError where error.code == .notFound {
                throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
            }
            for entry in output["Versions"]?.arrayValue ?? [] {
                guard let id = entry["VersionId"]?.stringValue else { continue }
                let stages = entry["VersionStages"]?.arrayValue?.compactMap(\.stringValue) ?? []
                versions.append(SecretVersion(name: name, version: id, createdAt: Self.date(entry["CreatedDate"]), isCurrent: stages.contains("AWSCURRENT")))
            }
            token = output["NextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return versions.sorted { a, b in
            if a.isCurrent != b.isCurrent { return a.isCurrent }
            return (a.createdAt ?? .distantPast) > (b.createdAt ?? .distantPast)
        }
    }

    public func delete(_ name: String) async throws {
        try await requireExisting(name)
        var input: JSONValue = ["SecretId": .string(name)]
        input = input.addingMissing(recoveryDays.map { ["RecoveryWindowInDays": .number(Double($0))] } ?? ["ForceDeleteWithoutRecovery": true])
        do { _ = try await aws.call("secretsmanager", "DeleteSecret", input: input, maxAttempts: 1) } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no secret named \(name)", underlying: error)
        }
    }

    public func names(prefix: String) async throws -> [String] {
        var names: [String] = []
        var token: String?
        repeat {
            var input: JSONValue = ["MaxResults": 100]
            if !prefix.isEmpty { input = input.addingMissing(["Filters": [["Key": "name", "Values": .array([.string(prefix)])]]]) }
            if let token { input = input.addingMissing(["NextToken": .string(token)]) }
            let output = try await aws.call("secretsmanager", "ListSecrets", input: input).output
            names += (output["SecretList"]?.arrayValue ?? []).compactMap { entry in
                entry["DeletedDate"] == nil ? entry["Name"]?.stringValue : nil
            }
            token = output["NextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }
}

extension URLOpenerRegistry where Resource == any SecretsDriver {
    /// Adds `awssecrets://` (options `region`, `endpoint`, `profile`, `recovery_days`; credentials from the AWS chain).
    public func withAWS() -> Self {
        var copy = self
        copy.register("awssecrets") { url in
            try url.options.validate(known: ["region", "endpoint", "profile", "recovery_days"], for: "awssecrets://")
            let days = try url.options.int("recovery_days")
            if let days, !(7...30).contains(days) { throw NimbusError(.invalidArgument, "recovery_days must be 7–30 (Secrets Manager's range), got \(days)") }
            return AWSSecretsManagerDriver(aws: AWSClient(configuration: AWSClient.Configuration(url: url.removingOptions(["recovery_days"]))), recoveryDays: days)
        }
        return copy
    }
}
