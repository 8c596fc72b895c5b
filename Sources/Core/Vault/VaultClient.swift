import Foundation
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// A HashiCorp Vault (or OpenBao) HTTP API client: token auth, namespaces, Vault's error bodies
/// read into portable codes, retries of 429/5xx under the HTTP client's policy (a sealed or
/// standby server answers 503), and TLS verification on unless the address is `http://`.
///
/// ```swift
/// let vault = try VaultClient(configuration: .environment())     // VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE
/// let secret = try await vault.request(.GET, "secret/data/db/password")
/// ```
public struct VaultClient: Sendable {
    /// Where and as whom.
    public struct Configuration: Sendable {
        /// `https://vault.example.com:8200` (no `/v1`).
        public var address: String
        /// The token (`X-Vault-Token`).
        public var token: Secret<String>
        /// The Enterprise/OpenBao namespace (`X-Vault-Namespace`), if any.
        public var namespace: String?
        /// Per-request timeout.
        public var timeout: Duration
        /// Retries of 429 and 5xx answers (and transport failures of idempotent calls).
        public var retry: RetryPolicy

        /// Creates settings.
        public init(address: String, token: Secret<String>, namespace: String? = nil, timeout: Duration = .seconds(30),
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), maxDelay: .seconds(5))) {
            self.address = address
            self.token = token
            self.namespace = namespace
            self.timeout = timeout
            self.retry = retry
        }

        /// Settings from `VAULT_ADDR`, `VAULT_TOKEN` (or the file `~/.vault-token`) and `VAULT_NAMESPACE`.
        /// - Throws: `invalidArgument` when no address or no token is found.
        public static func environment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Configuration {
            guard let address = environment["VAULT_ADDR"], !address.isEmpty else {
                throw NimbusError(.invalidArgument, "VAULT_ADDR is not set; give the Vault address (https://vault.example.com:8200)")
            }
            var token = environment["VAULT_TOKEN"]
            if token == nil || token!.isEmpty, let home = environment["HOME"],
               let text = try? String(contentsOfFile: home + "/.vault-token", encoding: .utf8) {
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let token, !token.isEmpty else { throw NimbusError(.invalidArgument, "no Vault token: set VAULT_TOKEN or log in with `vault login`") }
            return Configuration(address: address, token: Secret(token), namespace: environment["VAULT_NAMESPACE"].flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    /// The settings.
    public let configuration: Configuration
    let http: NimbusHTTPClient

    /// A client for `configuration`.
    /// - Throws: `invalidArgument` for an address that is not http(s).
    public init(configuration: Configuration) throws {
        let address = configuration.address.trimmingSuffix("/")
        guard address.hasPrefix("https://") || address.hasPrefix("http://") else {
            throw NimbusError(.invalidArgument, "a Vault address starts with https:// (or http:// for a dev server): \(address.prefix(60))")
        }
        self.configuration = configuration
        var headers = HTTPHeaders()
        if let namespace = configuration.namespace { headers.add(name: "X-Vault-Namespace", value: namespace) }
        http = NimbusHTTPClient(configuration: .init(service: "vault", baseURL: address + "/v1", defaultHeaders: headers,
                                                     auth: .header("X-Vault-Token", configuration.token), retry: configuration.retry, timeout: configuration.timeout))
    }

    /// Percent-encodes each segment of a Vault path, keeping the slashes between them.
    public static func encode(path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/;?#"))) ?? String($0)
        }.joined(separator: "/")
    }

    /// Calls `method path` (under `/v1/`) with an optional JSON body; returns the answer's JSON, or
    /// `nil` for 204 No Content.
    /// - Throws: Vault's `errors` as a `NimbusError`: 400 `invalidArgument`, 403 `permissionDenied`,
    ///   404 `notFound`, 412 `failedPrecondition`, 429 `resourceExhausted`, 503 `unavailable` (sealed or standby).
    @discardableResult
    public func request(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil) async throws -> JSONValue? {
        let rendered = query.isEmpty ? "" : "?" + query.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&")
        var request = NimbusHTTPRequest(method, "/" + Self.encode(path: path) + rendered, operation: "vault \(method.rawValue) \(path.split(separator: "/").prefix(2).joined(separator: "/"))")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(string: body.description)
        }
        let response = try await http.send(request)
        let bytes = try await response.collect(upTo: 16 * 1024 * 1024)
        if response.status == .noContent { return nil }
        let json = bytes.readableBytes == 0 ? nil : try? JSONValue.parse(Array(bytes.readableBytesView))
        guard response.isSuccess else {
            let errors = json?["errors"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let text = errors.isEmpty ? String(decoding: bytes.readableBytesView.prefix(300), as: UTF8.self) : errors.joined(separator: "; ")
            throw response.error("Vault \(method.rawValue) \(path): \(text.isEmpty ? "HTTP \(response.status.code)" : text)")
        }
        guard let json else {
            throw NimbusError(.internal, "Vault \(method.rawValue) \(path) answered \(response.status.code) with a body that is not JSON")
        }
        return json
    }
}

/// Reads `scheme://HOST[:PORT]/MOUNT?tls=false&namespace=NS` into client settings (the token from the environment).
public enum VaultURL {
    /// The settings for `url`.
    /// - Throws: `invalidArgument` for a URL without a host or an environment without a token.
    public static func configuration(_ url: OpenURL, environment: [String: String]) throws -> VaultClient.Configuration {
        guard let host = url.host else { throw NimbusError(.invalidArgument, "a Vault URL names its server: \(url.scheme)://vault.example.com:8200/MOUNT") }
        let tls = try url.options.bool("tls") ?? true
        var settings = try VaultClient.Configuration.environment(environment.merging(["VAULT_ADDR": "\(tls ? "https" : "http")://\(host):\(url.port ?? 8200)"]) { $1 })
        if let namespace = url.options.string("namespace") { settings.namespace = namespace }
        return settings
    }
}
