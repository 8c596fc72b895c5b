import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// Azure Resource Manager calls: bearer tokens from Entra ID (cached), `api-version` on every call,
/// ARM's error model mapped to `NimbusError`, and long-running operations followed through
/// `Azure-AsyncOperation`, `Location` or the resource's `provisioningState`.
///
/// ```swift
/// let arm = AzureARMClient(credential: ClientSecretCredential(tenant: t, clientID: id, secret: Secret(s)))
/// let group = try await arm.call(.PUT, "/subscriptions/\(sub)/resourceGroups/rg1", apiVersion: "2021-04-01", body: ["location": "westeurope"])
/// ```
public final class AzureARMClient: Sendable {
    /// The management endpoint (`https://management.azure.com`).
    public let endpoint: String
    let tokens: AccessTokenCache
    let http: NimbusHTTPClient

    /// Creates a client.
    public init(credential: any AzureTokenSource, endpoint: String = "https://management.azure.com", httpClient: HTTPClient = NimbusHTTPClient.defaultTransport,
                logger: Logger? = nil) {
        self.endpoint = endpoint.trimmingSuffix("/")
        let scope = self.endpoint + "/.default"
        tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await credential.fetchToken(scope: scope) }
        http = NimbusHTTPClient(configuration: .init(service: "azure-arm", auth: tokens.bearerAuth,
                                                     retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(20))),
                                httpClient: httpClient, logger: logger)
    }

    /// Calls `path` with `api-version`; a long-running answer (201/202 with `Azure-AsyncOperation` or
    /// `Location`, or a PUT whose `provisioningState` is not final) is followed to its end.
    public func call(_ method: HTTPMethod, _ path: String, apiVersion: String, body: JSONValue? = nil, pollInterval: Duration = .seconds(2),
                     timeout: Duration = .seconds(1800)) async throws -> JSONValue {
        let url = endpoint + path + (path.contains("?") ? "&" : "?") + "api-version=\(FormEncoder.escape(apiVersion))"
        let first = try await send(method, url, body: body, operation: "\(method.rawValue) \(path)")
        let deadline = ContinuousClock.now + timeout
        if let async = first.headers.first(name: "Azure-AsyncOperation") {
            while true {
                try await Task.sleep(for: first.retryAfter() ?? pollInterval)
                let status = try await json(try await send(.GET, async, body: nil, operation: "async operation"))
                switch status["status"]?.stringValue?.lowercased() {
                case "succeeded":
                    return method == .DELETE ? [:] : try await json(try await send(.GET, url, body: nil, operation: "GET \(path)"))
                case "failed", "canceled":
                    throw Self.error(status["error"] ?? status, status: 409, operation: "\(method.rawValue) \(path)")
                default:
                    guard ContinuousClock.now < deadline else { throw NimbusError(.deadlineExceeded, "\(method.rawValue) \(path) did not finish within \(timeout.nimbusFormatted)") }
                }
            }
        }
        if first.status.code == 202, let location = first.headers.first(name: "Location") {
            while true {
                try await Task.sleep(for: pollInterval)
                let poll = try await send(.GET, location, body: nil, operation: "location poll")
                if poll.status.code != 202 { return try await json(poll) }
                guard ContinuousClock.now < deadline else { throw NimbusError(.deadlineExceeded, "\(method.rawValue) \(path) did not finish within \(timeout.nimbusFormatted)") }
            }
        }
        var resource = try await json(first)
        while method == .PUT, let state = resource["properties"]?["provisioningState"]?.stringValue,
              !["succeeded", "failed", "canceled"].contains(state.lowercased()) {
            guard ContinuousClock.now < deadline else { throw NimbusError(.deadlineExceeded, "\(path) is still \(state)") }
            try await Task.sleep(for: pollInterval)
            resource = try await json(try await send(.GET, url, body: nil, operation: "GET \(path)"))
        }
        if let state = resource["properties"]?["provisioningState"]?.stringValue, state.lowercased() == "failed" {
            throw NimbusError(.failedPrecondition, "\(path) ended in provisioningState Failed")
        }
        return resource
    }

    private func send(_ method: HTTPMethod, _ url: String, body: JSONValue?, operation: String) async throws -> NimbusHTTPResponse {
        // Azure-AsyncOperation and Location come from the answer: follow them only on ARM's own origin.
        guard HTTPOrigin(url) != nil, HTTPOrigin(url) == HTTPOrigin(endpoint) else {
            throw NimbusError(.internal, "ARM \(operation): \(url.prefix(80)) is not on \(endpoint); not sending the token there")
        }
        var request = NimbusHTTPRequest(method, url, operation: operation)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(string: body.description)
        }
        var response = try await http.send(request)
        if response.status == .unauthorized {
            _ = try? await response.collect(upTo: 64 * 1024)
            await tokens.invalidate()
            response = try await http.send(request)
        }
        guard response.isSuccess else {
            let data = Array(try await response.collect(upTo: 256 * 1024).readableBytesView)
            let json = (try? JSONValue.parse(data))?["error"] ?? .string(String(decoding: data.prefix(300), as: UTF8.self))
            var error = Self.error(json, status: Int(response.status.code), operation: operation)
            error.retryAfter = response.retryAfter()
            throw error
        }
        return response
    }

    private func json(_ response: NimbusHTTPResponse) async throws -> JSONValue {
        let data = Array(try await response.collect(upTo: 32 * 1024 * 1024).readableBytesView)
        guard !data.isEmpty else { return [:] }
        do { return try JSONValue.parse(data) } catch { throw NimbusError(.internal, "ARM answered a body that is not JSON", underlying: error) }
    }

    /// ARM's `{"error": {"code", "message"}}` → `NimbusError`.
    static func error(_ error: JSONValue, status: Int, operation: String) -> NimbusError {
        let code = error["code"]?.stringValue ?? "HTTP\(status)"
        let message = error["message"]?.stringValue ?? error.stringValue ?? ""
        return NimbusError(AzureErrorCodes.map(code, status: status), "\(operation): \(code): \(message)")
    }
}

/// Azure error codes (ARM and Storage) → portable codes.
public enum AzureErrorCodes {
    /// The portable code of an Azure error code, falling back to the HTTP status.
    public static func map(_ code: String, status: Int) -> NimbusError.Code {
        switch code {
        case "ResourceNotFound", "ResourceGroupNotFound", "NotFound", "BlobNotFound", "ContainerNotFound", "QueueNotFound", "TableNotFound", "SubscriptionNotFound":
            return .notFound
        case "Conflict", "ResourceExists", "ContainerAlreadyExists", "BlobAlreadyExists", "QueueAlreadyExists", "TableAlreadyExists", "EntityAlreadyExists":
            return .alreadyExists
        case "AuthorizationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch", "LinkedAuthorizationFailed":
            return .permissionDenied
        case "InvalidAuthenticationToken", "AuthenticationFailed", "ExpiredAuthenticationToken", "InvalidAuthenticationTokenTenant", "NoAuthenticationInformation":
            return .unauthenticated
        case "TooManyRequests", "SubscriptionRequestsThrottled", "ResourceRequestsThrottled", "ServerBusy":
            return .resourceExhausted
        case "InvalidParameter", "BadRequest", "InvalidRequestContent", "InvalidQueryParameterValue", "InvalidHeaderValue", "InvalidResourceName", "MissingRequiredHeader":
            return .invalidArgument
        case "ConditionNotMet", "LeaseIdMissing", "LeaseAlreadyPresent", "PreconditionFailed":
            return .failedPrecondition
        default:
            return status >= 500 ? .unavailable : HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
        }
    }
}
