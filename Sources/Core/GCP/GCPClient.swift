import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// The shared Google Cloud client every GCP adapter builds on: a token source behind a cache
/// (renewed five minutes before expiry, one refresh at a time), JSON REST calls with Google's error
/// model mapped to `NimbusError`, long-running operation polling, and resumable uploads.
///
/// ```swift
/// let gcp = try GCPClient(configuration: .init())                              // Application Default Credentials
/// let bucket = try await gcp.json(.POST, "https://storage.googleapis.com/storage/v1/b", query: [("project", "my-project")], body: ["name": "logs"])
/// let object = try await gcp.uploadResumable(to: uploadURL, bytes: data, contentType: "application/pdf", chunkSize: 8 << 20)
/// ```
public final class GCPClient: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// Where tokens come from (default: Application Default Credentials).
        public var tokens: (any GCPTokenSource)?
        /// Scopes for ADC.
        public var scopes: [String]
        /// Skip authentication (emulators).
        public var anonymous: Bool
        /// Retries of 429/5xx and transport failures (idempotent calls, or any with `safeToRetry`).
        public var retry: RetryPolicy
        /// The time limit of one attempt.
        public var timeout: Duration

        /// Creates settings.
        public init(tokens: (any GCPTokenSource)? = nil, scopes: [String] = ["https://www.googleapis.com/auth/cloud-platform"], anonymous: Bool = false,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(200), maxDelay: .seconds(10)), timeout: Duration = .seconds(60)) {
            self.tokens = tokens
            self.scopes = scopes
            self.anonymous = anonymous
            self.retry = retry
            self.timeout = timeout
        }
    }

    /// The token cache (nil when anonymous).
    public let tokens: AccessTokenCache?
    let http: NimbusHTTPClient

    /// Creates a client. - Throws: `invalidArgument` for an unreadable credentials file.
    public init(configuration: Configuration = .init(), httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) throws {
        if configuration.anonymous {
            tokens = nil
        } else {
            let source = try configuration.tokens ?? ApplicationDefaultCredentials(scopes: configuration.scopes, httpClient: httpClient)
            tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await source.fetchToken() }
        }
        http = NimbusHTTPClient(configuration: .init(service: "gcp", auth: tokens?.bearerAuth, retry: configuration.retry, timeout: configuration.timeout),
                                httpClient: httpClient, logger: logger)
    }

    /// A raw answer.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers.header(name) }
    }

    /// Sends a request; non-2xx answers are thrown, mapped from Google's error model.
    public func send(_ method: HTTPMethod, _ url: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: [UInt8]? = nil,
                     operation: String? = nil, accept: Set<Int> = []) async throws -> Response {
        let rendered = query.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&").replacingOccurrences(of: "+", with: "%20")
        var request = NimbusHTTPRequest(method, url + (rendered.isEmpty ? "" : (url.contains("?") ? "&" : "?") + rendered), operation: operation ?? "\(method.rawValue) \(url)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = ByteBuffer(bytes: body) }
        var response = try await http.send(request)
        if response.status == .unauthorized, let tokens {
            _ = try? await response.collect(upTo: 64 * 1024)
            await tokens.invalidate()
            response = try await http.send(request)
        }
        let data = Array(try await response.collect(upTo: 512 * 1024 * 1024).readableBytesView)
        let status = Int(response.status.code)
        guard response.isSuccess || accept.contains(status) else { throw GCPError.map(status: status, body: data, operation: request.operation, retryAfter: response.retryAfter()) }
        return Response(status: status, headers: response.headers.map { ($0.name, $0.value) }, body: data)
    }

    /// A JSON call: `body` is sent as JSON, the answer parsed (empty → `{}`).
    public func json(_ method: HTTPMethod, _ url: String, query: [(String, String)] = [], body: JSONValue? = nil, operation: String? = nil) async throws -> JSONValue {
        let response = try await send(method, url, query: query, headers: body == nil ? [] : [("Content-Type", "application/json")],
                                      body: body.map { Array($0.description.utf8) }, operation: operation)
        guard !response.body.isEmpty else { return [:] }
        do { return try JSONValue.parse(response.body) } catch {
            throw NimbusError(.internal, "\(operation ?? url) answered a body that is not JSON: \(String(decoding: response.body.prefix(200), as: UTF8.self))", underlying: error)
        }
    }

    /// Every item of a paged list (`items`/`nextPageToken`, or another field).
    public func pages(_ url: String, query: [(String, String)] = [], itemsField: String = "items") -> AsyncThrowingStream<JSONValue, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var token: String?
                    repeat {
                        let page = try await json(.GET, url, query: query + (token.map { [("pageToken", $0)] } ?? []))
                        for item in page[itemsField]?.arrayValue ?? [] { continuation.yield(item) }
                        token = page["nextPageToken"]?.stringValue
                    } while token?.isEmpty == false
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Polls a long-running operation (`GET <url>` until `"done": true`); its `error` is thrown, its `response` returned.
    public func waitForOperation(_ url: String, every interval: Duration = .seconds(1), timeout: Duration = .seconds(600)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let operation = try await json(.GET, url, operation: "operation")
            if operation["done"]?.boolValue == true {
                if let error = operation["error"], error.objectValue != nil {
                    throw GCPError.map(status: Int(error["code"]?.numberValue ?? 500), body: Array(JSONValue.object(["error": error]).description.utf8),
                                       operation: "operation \(operation["name"]?.stringValue ?? url)", retryAfter: nil)
                }
                return operation["response"] ?? operation
            }
            guard ContinuousClock.now + interval < deadline else {
                throw NimbusError(.deadlineExceeded, "operation \(operation["name"]?.stringValue ?? url) was not done within \(timeout.nimbusFormatted)")
            }
            try await Task.sleep(for: interval)
        }
    }

    /// A resumable upload (Google's protocol): starts a session at `url` (with `uploadType=resumable`), sends `bytes` in
    /// `chunkSize` pieces (multiples of 256 KiB), asks the session where it stands after an interruption and resumes from there.
    /// Returns the final JSON (the created object).
    public func uploadResumable(to url: String, query: [(String, String)] = [], metadata: JSONValue = [:], bytes: [UInt8], contentType: String,
                                chunkSize: Int = 8 * 1024 * 1024) async throws -> JSONValue {
        guard chunkSize > 0, chunkSize % (256 * 1024) == 0 else {
            throw NimbusError(.invalidArgument, "a resumable chunk is a multiple of 256 KiB, not \(chunkSize) bytes")
        }
        let start = try await send(.POST, url, query: query + [("uploadType", "resumable")],
                                   headers: [("Content-Type", "application/json; charset=UTF-8"), ("X-Upload-Content-Type", contentType),
                                             ("X-Upload-Content-Length", String(bytes.count))],
                                   body: Array(metadata.description.utf8), operation: "resumable upload start")
        guard let session = start.header("Location") else { throw NimbusError(.internal, "the resumable upload answered no session Location") }
        var offset = 0
        var interruptions = 0
        while true {
            let end = min(offset + chunkSize, bytes.count)
            let range = bytes.isEmpty ? "bytes */0" : "bytes \(offset)-\(end - 1)/\(bytes.count)"
            do {
                let answer = try await send(.PUT, session, headers: [("Content-Range", range)], body: Array(bytes[offset..<end]),
                                            operation: "resumable upload chunk", accept: [308])
                if answer.status != 308 { return answer.body.isEmpty ? [:] : try JSONValue.parse(answer.body) }
                offset = Self.committed(answer.header("Range")) ?? end
            } catch let error as NimbusError where error.code == .unavailable || error.code == .deadlineExceeded {
                interruptions += 1
                guard interruptions <= 5 else { throw error }
                // Ask the session how much it has, then go on from there.
                let status = try await send(.PUT, session, headers: [("Content-Range", "bytes */\(bytes.count)")], body: [],
                                            operation: "resumable upload status", accept: [308])
                if status.status != 308 { return status.body.isEmpty ? [:] : try JSONValue.parse(status.body) }
                offset = Self.committed(status.header("Range")) ?? 0
            }
        }
    }

    /// `Range: bytes=0-524287` → 524288 (the next byte to send).
    static func committed(_ range: String?) -> Int? {
        guard let range, let dash = range.lastIndex(of: "-"), let last = Int(range[range.index(after: dash)...]) else { return nil }
        return last + 1
    }
}

/// Google's error model (`{"error": {"code", "message", "status", "errors": [{"reason"}]}}`) → `NimbusError`.
public struct GCPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status.
    public var code: Int
    /// `NOT_FOUND`, `PERMISSION_DENIED`…
    public var status: String?
    /// The first reason (`notFound`, `rateLimitExceeded`).
    public var reason: String?
    /// Google's message.
    public var message: String
    /// A service's own code from `details[].errorCode` (FCM: `UNREGISTERED`, `QUOTA_EXCEEDED`…).
    public var errorCode: String?

    public var description: String { "\(status ?? "HTTP \(code)")\(reason.map { " (\($0))" } ?? ""): \(message)" }

    static func map(status: Int, body: [UInt8], operation: String, retryAfter: Duration?) -> NimbusError {
        let json = try? JSONValue.parse(body)
        let error = json?["error"]
        let detail = GCPError(code: Int(error?["code"]?.numberValue ?? Double(status)), status: error?["status"]?.stringValue,
                              reason: error?["errors"]?.arrayValue?.first?["reason"]?.stringValue,
                              message: error?["message"]?.stringValue ?? error?.stringValue ?? String(decoding: body.prefix(300), as: UTF8.self),
                              errorCode: error?["details"]?.arrayValue?.lazy.compactMap { $0["errorCode"]?.stringValue }.first)
        let code: NimbusError.Code = switch detail.status {
        case "NOT_FOUND": .notFound
        case "ALREADY_EXISTS": .alreadyExists
        case "PERMISSION_DENIED": .permissionDenied
        case "UNAUTHENTICATED": .unauthenticated
        case "RESOURCE_EXHAUSTED": .resourceExhausted
        case "FAILED_PRECONDITION", "ABORTED": .failedPrecondition
        case "INVALID_ARGUMENT", "OUT_OF_RANGE": .invalidArgument
        case "UNAVAILABLE": .unavailable
        case "DEADLINE_EXCEEDED": .deadlineExceeded
        case "CANCELLED": .canceled
        case "UNIMPLEMENTED": .unimplemented
        case "DATA_LOSS": .dataLoss
        case "INTERNAL": .unavailable
        default:
            switch status {
            case 400: .invalidArgument
            case 401: .unauthenticated
            case 403: detail.reason == "rateLimitExceeded" || detail.reason == "userRateLimitExceeded" ? .resourceExhausted : .permissionDenied
            case 404: .notFound
            case 409: .alreadyExists
            case 412: .failedPrecondition
            case 429: .resourceExhausted
            case 500...: .unavailable
            default: .internal
            }
        }
        return NimbusError(code, "\(operation): \(detail)", underlying: detail, retryAfter: retryAfter)
    }
}
