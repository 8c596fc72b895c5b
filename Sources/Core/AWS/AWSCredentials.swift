import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP

/// Where AWS credentials come from.
public protocol AWSCredentialProvider: Sendable {
    /// Current credentials. - Throws: `notFound` when this source has none (a chain moves on), other codes when it failed.
    func credentials() async throws -> AWSCredentials
}

extension AWSCredentials: AWSCredentialProvider {
    public func credentials() async throws -> AWSCredentials { self }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialProvider: AWSCredentialProvider {
    let environment: [String: String]
    /// Reads `environment` (the process's by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) { self.environment = environment }

    public func credentials() async throws -> AWSCredentials {
        guard let id = environment["AWS_ACCESS_KEY_ID"].nonEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"].nonEmpty else {
            throw NimbusError(.notFound, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret), sessionToken: environment["AWS_SESSION_TOKEN"].nonEmpty.map { Secret($0) })
    }
}

/// The shared `config` and `credentials` files (`~/.aws/…`, or `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`).
public struct AWSSharedConfig: Sendable {
    /// Profile name → its settings (credentials file entries win over config file ones).
    public var profiles: [String: [String: String]]

    /// Parses the two files' text.
    public init(config: String?, credentials: String?) {
        var profiles: [String: [String: String]] = [:]
        for (name, values) in Self.sections(config ?? "") {
            // config: [default], [profile name]; [sso-session x] and [services x] are not profiles.
            let profile: String? = name == "default" ? "default" : name.hasPrefix("profile ") ? String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) : nil
            if let profile { profiles[profile, default: [:]].merge(values) { _, new in new } }
        }
        for (name, values) in Self.sections(credentials ?? "") {
            profiles[name, default: [:]].merge(values) { _, new in new }
        }
        self.profiles = profiles
    }

    /// Reads the files from where the AWS SDKs look.
    public static func load(environment: [String: String]) -> AWSSharedConfig {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let configPath = environment["AWS_CONFIG_FILE"].nonEmpty ?? "\(home)/.aws/config"
        let credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"].nonEmpty ?? "\(home)/.aws/credentials"
        return AWSSharedConfig(config: try? String(contentsOfFile: configPath, encoding: .utf8),
                               credentials: try? String(contentsOfFile: credentialsPath, encoding: .utf8))
    }

    /// A profile's settings (empty when absent).
    public func profile(_ name: String) -> [String: String] { profiles[name] ?? [:] }

    /// INI sections: `[name]` then `key = value` lines; `#`/`;` comments; indented lines continue a value.
    static func sections(_ text: String) -> [(String, [String: String])] {
        var result: [(String, [String: String])] = []
        var current: (String, [String: String])?
        var lastKey: String?
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                if let current { result.append(current) }
                current = (String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces), [:])
                lastKey = nil
                continue
            }
            if rawLine.first == " " || rawLine.first == "\t", let key = lastKey, current != nil {
                current!.1[key, default: ""] += (current!.1[key]!.isEmpty ? "" : "\n") + line       // a nested block (s3 = ...)
                continue
            }
            guard let equals = line.firstIndex(of: "="), current != nil else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            current!.1[key] = value
            lastKey = key
        }
        if let current { result.append(current) }
        return result
    }
}

/// Credentials of a named profile, as the AWS CLI resolves them: static keys, `credential_process`,
/// `role_arn` with `source_profile` or `credential_source` (STS AssumeRole), `web_identity_token_file`.
public struct ProfileCredentialProvider: AWSCredentialProvider {
    let name: String
    let shared: AWSSharedConfig
    let environment: [String: String]
    let region: String?
    let httpClient: HTTPClient

    /// Creates a provider for `profile` (default `AWS_PROFILE` or `default`).
    public init(profile: String? = nil, shared: AWSSharedConfig? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                region: String? = nil, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.environment = environment
        self.name = profile ?? environment["AWS_PROFILE"] ?? "default"
        self.shared = shared ?? AWSSharedConfig.load(environment: environment)
        self.region = region
        self.httpClient = httpClient
    }

    public func credentials() async throws -> AWSCredentials {
        try await resolve(name, visited: [])
    }

    private func resolve(_ profileName: String, visited: [String]) async throws -> AWSCredentials {
        guard !visited.contains(profileName) else {
            throw NimbusError(.invalidArgument, "profiles \((visited + [profileName]).joined(separator: " → ")) form a source_profile cycle")
        }
        guard let profile = shared.profiles[profileName] else { throw NimbusError(.notFound, "no AWS profile '\(profileName)' in the shared config files") }
        let stsRegion = region ?? profile["region"] ?? "us-east-1"
        if let roleARN = profile["role_arn"] {
            let session = profile["role_session_name"] ?? "nimbus-\(Int(Date().timeIntervalSince1970))"
            if let tokenFile = profile["web_identity_token_file"] {
                return try await WebIdentityCredentialProvider.assume(roleARN: roleARN, tokenFile: tokenFile, sessionName: session, region: stsRegion,
                                                                      environment: environment, httpClient: httpClient)
            }
            let source: AWSCredentials
            if let sourceProfile = profile["source_profile"] {
                source = sourceProfile == profileName && profile["aws_access_key_id"] != nil
                    ? try staticKeys(profile, profileName) : try await resolve(sourceProfile, visited: visited + [profileName])
            } else if let credentialSource = profile["credential_source"] {
                switch credentialSource {
                case "Environment": source = try await EnvironmentCredentialProvider(environment: environment).credentials()
                case "Ec2InstanceMetadata": source = try await InstanceMetadataCredentialProvider(environment: environment, httpClient: httpClient).credentials()
                case "EcsContainer": source = try await ContainerCredentialProvider(environment: environment, httpClient: httpClient).credentials()
                default: throw NimbusError(.invalidArgument, "credential_source '\(credentialSource)' of profile \(profileName) is not Environment, Ec2InstanceMetadata or EcsContainer")
                }
            } else {
                throw NimbusError(.invalidArgument, "profile \(profileName) has role_arn but neither source_profile nor credential_source")
            }
            let request = AWS.STS.AssumeRoleRequest(roleArn: roleARN, roleSessionName: session, durationSeconds: profile["duration_seconds"].flatMap(Int.init),
                                                    externalId: profile["external_id"])
            let sts = AWSClient(configuration: .init(region: stsRegion, credentials: source, environment: environment), httpClient: httpClient)
            guard let assumed = try await AWS.STS(client: sts).assumeRole(request).credentials else {
                throw NimbusError(.internal, "STS AssumeRole answered without Credentials")
            }
            return AWSCredentials(accessKeyID: assumed.accessKeyId, secretAccessKey: Secret(assumed.secretAccessKey),
                                  sessionToken: Secret(assumed.sessionToken), expiration: assumed.expiration)
        }
        if let process = profile["credential_process"] { return try await Self.runProcess(process, profileName) }
        return try staticKeys(profile, profileName)
    }

    private func staticKeys(_ profile: [String: String], _ name: String) throws -> AWSCredentials {
        guard let id = profile["aws_access_key_id"], let secret = profile["aws_secret_access_key"] else {
            throw NimbusError(.notFound, "AWS profile '\(name)' has no credentials (aws_access_key_id, credential_process, role_arn)")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret), sessionToken: profile["aws_session_token"].map { Secret($0) })
    }

    /// Runs a `credential_process` and reads its JSON (`Version` 1).
    static func runProcess(_ command: String, _ profile: String) async throws -> AWSCredentials {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw NimbusError(.unavailable, "credential_process of profile \(profile) could not start: \(error)", underlying: error)
        }
        let data = await Task.detached { output.fileHandleForReading.readAllBytes() }.value
        let status: Int32 = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
        guard status == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readAvailableBytes().prefix(300), as: UTF8.self)
            throw NimbusError(.unauthenticated, "credential_process of profile \(profile) exited with \(status): \(message)")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch {
            throw NimbusError(.unauthenticated, "credential_process of profile \(profile) did not print JSON", underlying: error)
        }
        guard json["Version"]?.numberValue == 1, let id = json["AccessKeyId"]?.stringValue, let secret = json["SecretAccessKey"]?.stringValue else {
            throw NimbusError(.unauthenticated, "credential_process of profile \(profile) printed no Version 1 credentials (AccessKeyId, SecretAccessKey)")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret), sessionToken: json["SessionToken"]?.stringValue.map { Secret($0) },
                              expiration: json["Expiration"]?.stringValue.flatMap(STSCredentials.date))
    }
}

/// Reads STS credential results.
enum STSCredentials {
    static func date(_ text: String) -> Date? { Date(iso8601: text) }

    static func parse(_ result: JSONValue, operation: String) throws -> AWSCredentials {
        let credentials = result["Credentials"]
        guard let id = credentials?["AccessKeyId"]?.stringValue, let secret = credentials?["SecretAccessKey"]?.stringValue else {
            throw NimbusError(.internal, "STS \(operation) answered without Credentials")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret), sessionToken: credentials?["SessionToken"]?.stringValue.map { Secret($0) },
                              expiration: credentials?["Expiration"]?.stringValue.flatMap(date))
    }
}

/// EKS/IRSA-style web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` → STS AssumeRoleWithWebIdentity (unsigned).
public struct WebIdentityCredentialProvider: AWSCredentialProvider {
    let environment: [String: String]
    let httpClient: HTTPClient
    let region: String?

    /// Creates a provider reading `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, region: String? = nil,
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.environment = environment
        self.region = region
        self.httpClient = httpClient
    }

    public func credentials() async throws -> AWSCredentials {
        guard let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"].nonEmpty, let role = environment["AWS_ROLE_ARN"].nonEmpty else {
            throw NimbusError(.notFound, "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set")
        }
        return try await Self.assume(roleARN: role, tokenFile: tokenFile, sessionName: environment["AWS_ROLE_SESSION_NAME"] ?? "nimbus-web-identity",
                                     region: region ?? environment["AWS_REGION"] ?? "us-east-1", environment: environment, httpClient: httpClient)
    }

    static func assume(roleARN: String, tokenFile: String, sessionName: String, region: String, environment: [String: String],
                       httpClient: HTTPClient) async throws -> AWSCredentials {
        let token: String
        do { token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw NimbusError(.unauthenticated, "cannot read the web identity token file \(tokenFile): \(error)", underlying: error)
        }
        let resolver = AWSEndpointResolver(environment: environment)
        let endpoint = resolver.resolve(.sts, region: region)
        let body = ["Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": roleARN, "RoleSessionName": sessionName,
                    "WebIdentityToken": token].sorted { $0.key < $1.key }
            .map { "\(SigV4.uriEncode($0.key, keepSlash: false))=\(SigV4.uriEncode($0.value, keepSlash: false))" }.joined(separator: "&")
        let http = NimbusHTTPClient(configuration: .init(service: "sts"), httpClient: httpClient)
        var request = NimbusHTTPRequest(.POST, endpoint.url + "/", operation: "STS AssumeRoleWithWebIdentity")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
        request.body = ByteBuffer(string: body)
        request.safeToRetry = true
        let response = try await http.send(request)
        let data = Array(try await response.collect(upTo: 1024 * 1024).readableBytesView)
        guard response.isSuccess else {
            throw AWSServiceError.parse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: data)
                .nimbusError(service: "STS", operation: "AssumeRoleWithWebIdentity", retryAfter: nil)
        }
        let xml = try XMLElement.parse(data)
        return try STSCredentials.parse(xml["AssumeRoleWithWebIdentityResult"]?.json ?? [:], operation: "AssumeRoleWithWebIdentity")
    }
}

/// ECS/EKS Pod Identity container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on 169.254.170.2)
/// or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`.
public struct ContainerCredentialProvider: AWSCredentialProvider {
    let environment: [String: String]
    let httpClient: HTTPClient

    /// Creates a provider reading `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.environment = environment
        self.httpClient = httpClient
    }

    public func credentials() async throws -> AWSCredentials {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].nonEmpty {
            url = "http://169.254.170.2" + relative
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"].nonEmpty {
            url = full
        } else {
            throw NimbusError(.notFound, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI are not set")
        }
        var request = NimbusHTTPRequest(.GET, url, operation: "container credentials")
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].nonEmpty {
            let token = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            request.headers.add(name: "Authorization", value: token)
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].nonEmpty {
            request.headers.add(name: "Authorization", value: token)
        }
        let http = NimbusHTTPClient(configuration: .init(service: "aws-container-credentials", timeout: .seconds(5)), httpClient: httpClient)
        let response = try await http.send(request)
        let data = Array(try await response.collect(upTo: 64 * 1024).readableBytesView)
        guard response.isSuccess else {
            throw NimbusError(.unauthenticated, "the container credentials endpoint answered \(response.status.code): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return try Self.parse(data, source: "container credentials endpoint")
    }

    /// `{AccessKeyId, SecretAccessKey, Token, Expiration}` (the container and IMDS shape).
    static func parse(_ data: [UInt8], source: String) throws -> AWSCredentials {
        guard let json = try? JSONValue.parse(data), let id = json["AccessKeyId"]?.stringValue, let secret = json["SecretAccessKey"]?.stringValue else {
            throw NimbusError(.unauthenticated, "the \(source) answered no credentials")
        }
        if let code = json["Code"]?.stringValue, code != "Success" { throw NimbusError(.unauthenticated, "the \(source) answered \(code)") }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret), sessionToken: json["Token"]?.stringValue.map { Secret($0) },
                              expiration: json["Expiration"]?.stringValue.flatMap(STSCredentials.date))
    }
}

/// EC2 instance role credentials through IMDSv2: a session token (`PUT /latest/api/token`), then the role
/// name and its credentials. `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the address,
/// `AWS_EC2_METADATA_DISABLED=true` turns it off.
public struct InstanceMetadataCredentialProvider: AWSCredentialProvider {
    let environment: [String: String]
    let httpClient: HTTPClient

    /// Creates a provider.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.environment = environment
        self.httpClient = httpClient
    }

    public func credentials() async throws -> AWSCredentials {
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" { throw NimbusError(.notFound, "IMDS is disabled (AWS_EC2_METADATA_DISABLED)") }
        let base = (environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].nonEmpty ?? "http://169.254.169.254").trimmingSuffix("/")
        let http = NimbusHTTPClient(configuration: .init(service: "imds", retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(100), maxDelay: .seconds(1)),
                                                         timeout: .seconds(2)), httpClient: httpClient)
        var tokenRequest = NimbusHTTPRequest(.PUT, base + "/latest/api/token", operation: "imds token")
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        let tokenResponse: NimbusHTTPResponse
        do { tokenResponse = try await http.send(tokenRequest) } catch {
            throw NimbusError(.notFound, "no instance metadata service at \(base) (not on EC2?)", underlying: error as? NimbusError)
        }
        let token = String(buffer: try await tokenResponse.collect(upTo: 4096))
        guard tokenResponse.isSuccess, !token.isEmpty else { throw NimbusError(.unauthenticated, "IMDS refused a session token (\(tokenResponse.status.code))") }
        func get(_ path: String) async throws -> [UInt8] {
            var request = NimbusHTTPRequest(.GET, base + path, operation: "imds get")
            request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
            let response = try await http.send(request)
            let data = Array(try await response.collect(upTo: 64 * 1024).readableBytesView)
            guard response.isSuccess else { throw NimbusError(response.status.code == 404 ? .notFound : .unauthenticated, "IMDS answered \(response.status.code) for \(path)") }
            return data
        }
        let role = String(decoding: try await get("/latest/meta-data/iam/security-credentials/"), as: UTF8.self)
            .split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        guard !role.isEmpty else { throw NimbusError(.notFound, "the instance has no IAM role") }
        return try ContainerCredentialProvider.parse(try await get("/latest/meta-data/iam/security-credentials/\(role)"), source: "instance metadata service")
    }
}

/// The AWS SDKs' default order: environment, web identity, the profile, container credentials, then
/// IMDS — the first that has credentials wins and is cached, renewed five minutes before it expires.
public struct AWSDefaultCredentialChain: AWSCredentialProvider {
    private let cache: ExpiringValueCache<AWSCredentials>

    /// Creates the chain.
    public init(profile: String? = nil, region: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                shared: AWSSharedConfig? = nil, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        let providers: [any AWSCredentialProvider] = [
            EnvironmentCredentialProvider(environment: environment),
            WebIdentityCredentialProvider(environment: environment, region: region, httpClient: httpClient),
            ProfileCredentialProvider(profile: profile, shared: shared, environment: environment, region: region, httpClient: httpClient),
            ContainerCredentialProvider(environment: environment, httpClient: httpClient),
            InstanceMetadataCredentialProvider(environment: environment, httpClient: httpClient),
        ]
        cache = ExpiringValueCache(refreshAhead: .seconds(300)) {
            var reasons: [String] = []
            for provider in providers {
                do {
                    let credentials = try await provider.credentials()
                    return (credentials, credentials.expiration)
                } catch let error as NimbusError where error.code == .notFound {
                    reasons.append(error.message)
                }
            }
            throw NimbusError(.unauthenticated, "no AWS credentials found: " + reasons.joined(separator: "; "))
        }
    }

    public func credentials() async throws -> AWSCredentials { try await cache.value() }
}
