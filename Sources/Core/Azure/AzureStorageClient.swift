import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// How requests to an Azure Storage account are authorized.
public enum AzureStorageCredential: Sendable, CustomStringConvertible {
    /// Shared Key: each request signed with the account key (``AzureSharedKey``).
    case sharedKey(AzureStorageAccount)
    /// A shared access signature: its query parameters (`sv=…&sig=…`, with or without the leading `?`) added to every request.
    case sas(Secret<String>)
    /// An Entra ID token for `https://storage.azure.com/.default` (an RBAC role such as Storage Blob Data Contributor).
    case token(any AzureTokenSource)
    /// No credentials (a public container).
    case anonymous

    public var description: String {
        switch self {
        case .sharedKey(let account): "sharedKey(\(account.name))"
        case .sas: "sas(<redacted>)"
        case .token: "token"
        case .anonymous: "anonymous"
        }
    }
}

/// Calls an Azure Storage service (Blob today; Queue and File use the same signing): `x-ms-date` and
/// `x-ms-version` on every attempt, the credential applied last (a Shared Key signature covers the
/// final headers), and Storage's error answers — `x-ms-error-code` and the XML `<Error>` body —
/// mapped to `NimbusError`s with `Retry-After` kept for 503 `ServerBusy`.
///
/// ```swift
/// let storage = AzureStorageClient(configuration: .init(endpoint: "https://acct.blob.core.windows.net",
///                                                       credential: .sharedKey(AzureStorageAccount(name: "acct", key: Secret(key)))))
/// let response = try await storage.send(.GET, path: "/photos", query: [("restype", "container"), ("comp", "list")], operation: "List Blobs")
/// ```
public final class AzureStorageClient: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// The service endpoint: `https://ACCOUNT.blob.core.windows.net`, or an emulator's URL with the account as its path (`http://127.0.0.1:10000/devstoreaccount1`).
        public var endpoint: String
        /// How requests are authorized.
        public var credential: AzureStorageCredential
        /// `x-ms-version`.
        public var version: String
        /// Retries of the HTTP layer (a caller that retries itself sets `maxAttempts: 1`).
        public var retry: RetryPolicy
        /// The per-request time limit.
        public var timeout: Duration

        public init(endpoint: String, credential: AzureStorageCredential, version: String = "2024-08-04",
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(20)), timeout: Duration = .seconds(300)) {
            self.endpoint = endpoint.trimmingSuffix("/"); self.credential = credential; self.version = version; self.retry = retry; self.timeout = timeout
        }
    }

    /// The settings.
    public let configuration: Configuration
    let http: NimbusHTTPClient

    /// Creates a client on `httpClient` (the shared transport by default).
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        http = NimbusHTTPClient(configuration: .init(service: "azure-storage", retry: configuration.retry, timeout: configuration.timeout,
                                                     middlewares: [AzureStorageSigner(credential: configuration.credential, version: configuration.version)]),
                                httpClient: httpClient, logger: logger)
    }

    /// The account name: the endpoint host's first label, or the first path segment of an emulator-style endpoint.
    public var accountName: String {
        if case .sharedKey(let account) = configuration.credential { return account.name }
        let url = URL(string: configuration.endpoint)
        let path = url?.path.split(separator: "/").first.map(String.init)
        return path ?? url?.host?.split(separator: ".").first.map(String.init) ?? ""
    }

    /// Sends `method` to `path` (already percent-encoded, from the root of the endpoint) and returns a 2xx answer with its body unread.
    /// - Throws: the service's error as a `NimbusError` (`notFound`, `alreadyExists`, `failedPrecondition` for 412 and lease
    ///   conflicts, `unavailable` with `retryAfter` for 503), or a transport error.
    public func send(_ method: HTTPMethod, path: String, query: [(String, String)] = [], headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
                     operation: String) async throws -> NimbusHTTPResponse {
        var url = configuration.endpoint + path
        if !query.isEmpty { url += "?" + query.map { FormEncoder.escapeComponent($0.0) + "=" + FormEncoder.escapeComponent($0.1) }.joined(separator: "&") }
        var request = NimbusHTTPRequest(method, url, headers: headers, body: body ?? (method == .PUT || method == .POST ? ByteBuffer() : nil), operation: operation)
        request.safeToRetry = method != .POST
        let response = try await http.send(request)
        guard response.isSuccess else {
            let text = (try? await response.collect(upTo: 64 * 1024)) ?? ByteBuffer()
            throw Self.error(response, body: text, operation: operation)
        }
        return response
    }

    /// Storage's error answer → `NimbusError`: the code from `x-ms-error-code` or the `<Error><Code>` body, its message, and `Retry-After`.
    public static func error(_ response: NimbusHTTPResponse, body: ByteBuffer, operation: String) -> NimbusError {
        let xml = try? XMLElement.parse(Data(body.readableBytesView))
        let code = response.headers.first(name: "x-ms-error-code") ?? xml?["Code"]?.text ?? "HTTP\(response.status.code)"
        let message = xml?["Message"]?.text.split(separator: "\n").first.map(String.init) ?? ""
        var mapped: NimbusError.Code
        switch code {
        case "ConditionNotMet", "TargetConditionNotMet", "SourceConditionNotMet": mapped = .failedPrecondition
        case "LeaseIdMissing", "LeaseIdMismatchWithBlobOperation", "LeaseIdMismatchWithLeaseOperation", "LeaseAlreadyPresent", "LeaseNotPresentWithBlobOperation",
             "LeaseNotPresentWithLeaseOperation", "LeaseIsBreakingAndCannotBeAcquired", "LeaseIsBrokenAndCannotBeRenewed", "LeaseLost", "LeaseAlreadyBroken":
            mapped = .failedPrecondition
        case "BlobAlreadyExists" where response.status.code == 409: mapped = .failedPrecondition   // Put Blob with If-None-Match: *
        case "BlobArchived", "BlobBeingRehydrated": mapped = .failedPrecondition                      // read or re-tier an archived blob
        case "InvalidRange": mapped = .invalidArgument
        case "Md5Mismatch", "Crc64Mismatch": mapped = .dataLoss
        case "ServerBusy", "OperationTimedOut", "InternalError": mapped = .unavailable
        default:
            mapped = response.status.code == 412 ? .failedPrecondition : response.status.code == 304 ? .failedPrecondition
                : AzureErrorCodes.map(code, status: Int(response.status.code))
        }
        var error = NimbusError(mapped, "Azure Storage \(operation): \(response.status.code) \(code)\(message.isEmpty ? "" : ": " + message)")
        error.retryAfter = response.retryAfter()
        return error
    }

    /// Reads a connection string (`DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net`,
    /// or one with `BlobEndpoint=` and `SharedAccessSignature=`, or `UseDevelopmentStorage=true`): the Blob endpoint and the credential.
    /// - Throws: `invalidArgument` naming what is missing.
    public static func blobEndpoint(connectionString: String) throws -> (endpoint: String, credential: AzureStorageCredential) {
        var fields: [String: String] = [:]
        for part in connectionString.split(separator: ";") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let equals = part.firstIndex(of: "=") else { throw NimbusError(.invalidArgument, "a connection string part has no '=': \(part.prefix(40))") }
            fields[String(part[..<equals]).trimmingCharacters(in: .whitespaces).lowercased()] = String(part[part.index(after: equals)...])
        }
        if fields["usedevelopmentstorage"]?.lowercased() == "true" {
            // Azurite's well-known development account (published in Microsoft's docs; not a secret).
            let account = AzureStorageAccount(name: "devstoreaccount1", key: Secret("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="))
            return ("http://127.0.0.1:10000/devstoreaccount1", .sharedKey(account))
        }
        let name = fields["accountname"]
        let endpoint: String
        if let blob = fields["blobendpoint"] {
            endpoint = blob
        } else if let name {
            endpoint = "\(fields["defaultendpointsprotocol"] ?? "https")://\(name).blob.\(fields["endpointsuffix"] ?? "core.windows.net")"
        } else {
            throw NimbusError(.invalidArgument, "the connection string has neither AccountName nor BlobEndpoint; copy it from the portal's Access keys")
        }
        if let sas = fields["sharedaccesssignature"] { return (endpoint, .sas(Secret(sas))) }
        if let name, let key = fields["accountkey"] { return (endpoint, .sharedKey(AzureStorageAccount(name: name, key: Secret(key)))) }
        throw NimbusError(.invalidArgument, "the connection string has no AccountKey or SharedAccessSignature")
    }
}

/// Adds `x-ms-date` and `x-ms-version` to each attempt and authorizes it — a Shared Key signature over
/// the final method, headers (`Content-Length` included), path and query; SAS parameters; or a bearer token.
struct AzureStorageSigner: HTTPMiddleware {
    let credential: AzureStorageCredential
    let version: String
    let tokens: AccessTokenCache?

    init(credential: AzureStorageCredential, version: String) {
        self.credential = credential
        self.version = version
        if case .token(let source) = credential {
            tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await source.fetchToken(scope: "https://storage.azure.com/.default") }
        } else {
            tokens = nil
        }
    }

    func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
        var request = request
        request.headers.replaceOrAdd(name: "x-ms-date", value: HTTPDate.format(Date()))
        if !request.headers.contains(name: "x-ms-version") { request.headers.add(name: "x-ms-version", value: version) }
        switch credential {
        case .sharedKey(let account):
            guard let components = URLComponents(string: request.url) else {
                throw NimbusError(.invalidArgument, "cannot sign \(request.url.prefix(80)): not a URL")
            }
            var signed = request.headers.map { ($0.name, $0.value) }
            if !request.headers.contains(name: "Content-Length") { signed.append(("Content-Length", "\(request.body?.readableBytes ?? 0)")) }
            let query = (components.percentEncodedQueryItems ?? []).map { ($0.name.removingPercentEncoding ?? $0.name, ($0.value ?? "").removingPercentEncoding ?? "") }
            let authorization = try AzureSharedKey.authorization(account: account, method: request.method.rawValue, path: components.percentEncodedPath,
                                                                 query: query, headers: signed)
            request.headers.replaceOrAdd(name: "Authorization", value: authorization)
        case .sas(let token):
            let parameters = token.reveal().hasPrefix("?") ? String(token.reveal().dropFirst()) : token.reveal()
            request.url += (request.url.contains("?") ? "&" : "?") + parameters
        case .token:
            if let tokens { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer " + (try await tokens.current()).reveal()) }
        case .anonymous:
            break
        }
        return try await next(request)
    }
}
