import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// Azure Key Vault's data plane (`https://NAME.vault.azure.net`, API version 7.5): Entra ID tokens
/// for `https://vault.azure.net/.default`, Key Vault's `{"error": {"code", "message"}}` bodies
/// mapped to portable codes (the code, such as `SecretNotFound`, kept in the message), 429/5xx
/// retried with `Retry-After`, and `nextLink` paging. The secrets and keys adapters build on it.
///
/// ```swift
/// let vault = AzureKeyVaultClient(vaultURL: "https://contoso.vault.azure.net", credential: try WorkloadIdentityCredential())
/// let bundle = try await vault.call(.GET, "/secrets/db-password/")
/// ```
public final class AzureKeyVaultClient: Sendable {
    /// The vault (`https://contoso.vault.azure.net`).
    public let vaultURL: String
    /// The API version sent with every call.
    public let apiVersion: String
    let http: NimbusHTTPClient

    /// A client for `vaultURL`.
    public init(vaultURL: String, credential: any AzureTokenSource, apiVersion: String = "7.5", retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(20)),
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.vaultURL = vaultURL.trimmingSuffix("/")
        self.apiVersion = apiVersion
        let tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await credential.fetchToken(scope: "https://vault.azure.net/.default") }
        http = NimbusHTTPClient(configuration: .init(service: "azure-keyvault", auth: tokens.bearerAuth, retry: retry), httpClient: httpClient, logger: logger)
    }

    /// The vault URL for a name (`contoso` → `https://contoso.vault.azure.net`) or a full URL.
    /// - Throws: `invalidArgument` for a vault name outside Azure's rule (3–24 of `a–z 0–9 -`, starting with a letter).
    public static func url(forVault vault: String) throws -> String {
        if vault.hasPrefix("https://") || vault.hasPrefix("http://") { return vault.trimmingSuffix("/") }
        guard vault.range(of: #"^[a-zA-Z][a-zA-Z0-9-]{2,23}$"#, options: .regularExpression) != nil else {
            throw NimbusError(.invalidArgument, "\"\(vault.prefix(30))\" is not a Key Vault name (3–24 letters, digits and hyphens, starting with a letter)")
        }
        return "https://\(vault.lowercased()).vault.azure.net"
    }

    /// Calls `method path` (a vault path such as `/secrets/NAME`, or a `nextLink` URL); returns the
    /// answer's JSON (`{}` for 204).
    /// - Throws: the HTTP status's portable code (401 `unauthenticated`, 403 `permissionDenied`, 404
    ///   `notFound`, 409 for an object that is being deleted or is soft-deleted, 429 `resourceExhausted`
    ///   with `retryAfter`), the message naming Key Vault's error code.
    @discardableResult
    public func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil) async throws -> JSONValue {
        let absolute = path.hasPrefix("https://") || path.hasPrefix("http://")
        // A nextLink is the vault's own URL; one on another origin would carry the bearer token elsewhere.
        guard !absolute || (HTTPOrigin(path) != nil && HTTPOrigin(path) == HTTPOrigin(vaultURL)) else {
            throw NimbusError(.internal, "Key Vault answered a link to \(HTTPOrigin(path)?.description ?? "an unreadable URL"), not to \(vaultURL); not following it")
        }
        var url = absolute ? path : vaultURL + path
        if !url.contains("api-version=") {
            let items = [("api-version", apiVersion)] + query
            url += (url.contains("?") ? "&" : "?") + items.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&")
        }
        var request = NimbusHTTPRequest(method, url, operation: "Key Vault \(method.rawValue) \(path.split(separator: "?").first.map { $0.split(separator: "/").prefix(2).joined(separator: "/") } ?? "")")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(string: body.description)
        }
        let response = try await http.send(request)
        let bytes = try await response.collect(upTo: 8 * 1024 * 1024)
        let json = bytes.readableBytes == 0 ? nil : try? JSONValue.parse(Array(bytes.readableBytesView))
        guard response.isSuccess else {
            let code = json?["error"]?["code"]?.stringValue ?? "HTTP\(response.status.code)"
            let message = json?["error"]?["message"]?.stringValue ?? String(decoding: bytes.readableBytesView.prefix(300), as: UTF8.self)
            throw response.error("Key Vault \(method.rawValue) \(path.split(separator: "?").first ?? ""): \(code): \(message)")
        }
        if response.status == .noContent || bytes.readableBytes == 0 { return [:] }
        guard let json else { throw NimbusError(.internal, "Key Vault answered \(response.status.code) with a body that is not JSON") }
        return json
    }

    /// Every item of a paged list (`value` and `nextLink`).
    public func list(_ path: String, pageSize: Int = 25) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var next: String? = nil
        var page = try await call(.GET, path, query: [("maxresults", String(pageSize))])
        while true {
            items += page["value"]?.arrayValue ?? []
            next = page["nextLink"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            guard let link = next, items.count < 100_000 else { return items }
            page = try await call(.GET, link)
        }
    }
}
