import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP

/// Where Microsoft Entra ID tokens come from.
public protocol AzureTokenSource: Sendable {
    /// A token for `scope` (`https://management.azure.com/.default`, `https://storage.azure.com/.default`).
    func fetchToken(scope: String) async throws -> AccessTokenCache.Token
}

/// Entra ID's v2 token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`).
enum EntraEndpoint {
    static func url(tenant: String, environment: [String: String]) -> String {
        let authority = (environment["AZURE_AUTHORITY_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://login.microsoftonline.com")
        return authority.trimmingSuffix("/") + "/\(tenant)/oauth2/v2.0/token"
    }

}

/// An app registration's client secret (client credentials grant).
public struct ClientSecretCredential: AzureTokenSource {
    let tenant: String, clientID: String, secret: Secret<String>, url: String
    let http: NimbusHTTPClient

    /// Creates a credential (`AZURE_AUTHORITY_HOST` changes the authority, for sovereign clouds).
    public init(tenant: String, clientID: String, secret: Secret<String>, environment: [String: String] = ProcessInfo.processInfo.environment,
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.tenant = tenant
        self.clientID = clientID
        self.secret = secret
        url = EntraEndpoint.url(tenant: tenant, environment: environment)
        http = NimbusHTTPClient(configuration: .init(service: "entra-id", timeout: .seconds(30)), httpClient: httpClient)
    }

    public func fetchToken(scope: String) async throws -> AccessTokenCache.Token {
        try await OAuth2TokenEndpoint.request(http, url: url, form: ["grant_type": "client_credentials", "client_id": clientID, "client_secret": secret.reveal(),
                                                            "scope": scope], who: "client \(clientID)")
    }
}

/// Workload identity (AKS): the federated token in `AZURE_FEDERATED_TOKEN_FILE` as a client assertion,
/// with `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`. The file is read on every fetch (it rotates).
public struct WorkloadIdentityCredential: AzureTokenSource {
    let tenant: String, clientID: String, tokenFile: String, url: String
    let http: NimbusHTTPClient

    /// Creates a credential from the environment. - Throws: `notFound` when the variables are not set.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) throws {
        guard let tenant = environment["AZURE_TENANT_ID"], let client = environment["AZURE_CLIENT_ID"], let file = environment["AZURE_FEDERATED_TOKEN_FILE"],
              !tenant.isEmpty, !client.isEmpty, !file.isEmpty else {
            throw NimbusError(.notFound, "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE are not all set")
        }
        self.tenant = tenant
        clientID = client
        tokenFile = file
        url = EntraEndpoint.url(tenant: tenant, environment: environment)
        http = NimbusHTTPClient(configuration: .init(service: "entra-id", timeout: .seconds(30)), httpClient: httpClient)
    }

    public func fetchToken(scope: String) async throws -> AccessTokenCache.Token {
        let assertion: String
        do { assertion = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw NimbusError(.unauthenticated, "cannot read the federated token file \(tokenFile): \(error)", underlying: error)
        }
        return try await OAuth2TokenEndpoint.request(http, url: url, form: [
            "grant_type": "client_credentials", "client_id": clientID, "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion,
        ], who: "workload identity \(clientID)")
    }
}

/// Managed identity: App Service/Functions (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`) or the VM's IMDS
/// (`http://169.254.169.254/metadata/identity/oauth2/token`, `Metadata: true`).
public struct ManagedIdentityCredential: AzureTokenSource {
    let environment: [String: String]
    let clientID: String?
    let http: NimbusHTTPClient

    /// Creates a credential; `clientID` picks a user-assigned identity.
    public init(clientID: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.clientID = clientID
        self.environment = environment
        http = NimbusHTTPClient(configuration: .init(service: "azure-managed-identity", timeout: .seconds(5)), httpClient: httpClient)
    }

    public func fetchToken(scope: String) async throws -> AccessTokenCache.Token {
        let resource = scope.hasSuffix("/.default") ? String(scope.dropLast("/.default".count)) : scope
        var query = "resource=\(FormEncoder.escape(resource))"
        if let clientID { query += "&client_id=\(FormEncoder.escape(clientID))" }
        var request: NimbusHTTPRequest
        if let endpoint = environment["IDENTITY_ENDPOINT"], let header = environment["IDENTITY_HEADER"], !endpoint.isEmpty {
            request = NimbusHTTPRequest(.GET, "\(endpoint)?api-version=2019-08-01&\(query)", operation: "managed identity token")
            request.headers.add(name: "X-IDENTITY-HEADER", value: header)
        } else {
            let base = (environment["AZURE_POD_IDENTITY_AUTHORITY_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://169.254.169.254").trimmingSuffix("/")
            request = NimbusHTTPRequest(.GET, "\(base)/metadata/identity/oauth2/token?api-version=2018-02-01&\(query)", operation: "managed identity token")
            request.headers.add(name: "Metadata", value: "true")
        }
        let response: NimbusHTTPResponse
        do { response = try await http.send(request) } catch {
            throw NimbusError(.notFound, "no managed identity endpoint answered (not on Azure?)", underlying: error as? NimbusError)
        }
        let body = Array(try await response.collect(upTo: 64 * 1024).readableBytesView)
        guard response.isSuccess else {
            throw NimbusError(.unauthenticated, "the managed identity endpoint answered \(response.status.code): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        return try OAuth2TokenEndpoint.token(body, who: "the managed identity")
    }
}

/// The credential `DefaultAzureCredential` would pick, from the environment: a client secret
/// (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), else workload identity
/// (`AZURE_FEDERATED_TOKEN_FILE`), else the managed identity of the host.
///
/// ```swift
/// let credential = try AzureCredentialChain.default()
/// ```
public enum AzureCredentialChain {
    /// The first credential the environment configures.
    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any AzureTokenSource {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let tenant = value("AZURE_TENANT_ID"), let client = value("AZURE_CLIENT_ID"), let secret = value("AZURE_CLIENT_SECRET") {
            return ClientSecretCredential(tenant: tenant, clientID: client, secret: Secret(secret), environment: environment)
        }
        if value("AZURE_FEDERATED_TOKEN_FILE") != nil { return try WorkloadIdentityCredential(environment: environment) }
        return ManagedIdentityCredential(clientID: value("AZURE_CLIENT_ID"), environment: environment)
    }
}

/// A token obtained elsewhere (`az account get-access-token`, a test), for any scope, used as it is
/// for an hour at a time.
public struct AzureStaticToken: AzureTokenSource {
    let token: Secret<String>
    /// Wraps `token`.
    public init(_ token: Secret<String>) { self.token = token }
    public func fetchToken(scope: String) async throws -> AccessTokenCache.Token { .init(value: token, expiresIn: .seconds(3600)) }
}
