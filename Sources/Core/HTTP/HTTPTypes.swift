import Foundation
import NIOCore
import NIOHTTP1
import NimbusCore

/// One HTTP call as adapters describe it: what to send, and how the client should treat it.
///
/// ```swift
/// var request = NimbusHTTPRequest(.POST, "/v1/charges", operation: "charges.create")
/// try request.setForm(["amount": 2000, "currency": "eur", "metadata": ["order": "42"]])
/// request.idempotencyKey = "order-42-charge"
/// ```
public struct NimbusHTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// An absolute URL, or a path joined to the client's `baseURL`.
    public var url: String
    /// Headers; the client adds its defaults, auth and the idempotency key.
    public var headers: HTTPHeaders
    /// The body, if any.
    public var body: ByteBuffer?
    /// The vendor operation's name, for metrics, logs and traces (`chat.completions.create`).
    public var operation: String
    /// Sent as the client's idempotency header on every attempt; makes a non-idempotent method retryable.
    public var idempotencyKey: String?
    /// This call's time limit, over the client's default (all attempts' waits excluded).
    public var timeout: Duration?
    /// Set when repeating this call is known to be harmless although its method is not idempotent
    /// (an LLM completion only costs tokens again); `nil` lets ``isIdempotent`` decide from the method.
    public var safeToRetry: Bool?

    /// Creates a request.
    public init(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, operation: String? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.operation = operation ?? "\(method.rawValue) \(url.split(separator: "?").first.map(String.init) ?? url)"
    }

    /// Whether repeating the request cannot do the work twice: ``safeToRetry`` if set, else a safe or
    /// idempotent method (RFC 9110 §9.2.2), or any method with an idempotency key.
    public var isIdempotent: Bool {
        if let safeToRetry { return safeToRetry }
        if idempotencyKey != nil { return true }
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }

    /// Sets a JSON body and its content type.
    public mutating func setJSON<T: Encodable>(_ value: T, encoder: JSONEncoder = .nimbus) throws {
        do { body = ByteBuffer(bytes: try encoder.encode(value)) }
        catch { throw NimbusError(.invalidArgument, "cannot encode the \(operation) request body as JSON: \(error)", underlying: error) }
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
    }

    /// Sets an `application/x-www-form-urlencoded` body with nested keys (`metadata[a]=1`, `items[0][price]=x`).
    public mutating func setForm<T: Encodable>(_ value: T) throws {
        body = ByteBuffer(string: try FormEncoder().encode(value))
        headers.replaceOrAdd(name: "Content-Type", value: "application/x-www-form-urlencoded")
    }

    /// Sets a `multipart/form-data` body.
    public mutating func setMultipart(_ form: MultipartFormData) {
        body = form.encode()
        headers.replaceOrAdd(name: "Content-Type", value: form.contentType)
    }
}

/// The answer: status, headers and a body that streams.
public struct NimbusHTTPResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// The headers.
    public var headers: HTTPHeaders
    /// The body; read it once, streamed or collected.
    public var body: HTTPBody

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: HTTPBody = HTTPBody()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(status.code) }

    /// The whole body, up to `limit` bytes, in one buffer sized by `Content-Length` when the answer gives it.
    /// - Throws: `resourceExhausted` past the limit.
    public func collect(upTo limit: Int = 32 * 1024 * 1024) async throws -> ByteBuffer {
        try await body.collect(upTo: limit, expected: headers.first(name: "Content-Length").flatMap(Int.init))
    }

    /// The body decoded from JSON. - Throws: `internal` naming the operation when it does not decode.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = .nimbus, operation: String = "response") async throws -> T {
        let buffer = try await collect()
        do { return try decoder.decode(T.self, from: Data(buffer.readableBytesView)) }
        catch {
            let preview = String(decoding: buffer.readableBytesView.prefix(200), as: UTF8.self)
            throw NimbusError(.internal, "the \(operation) reply is not the documented JSON (\(error)); body starts: \(preview)", underlying: error)
        }
    }

    /// `nil` when the `Content-Type` contains `fragment` (`text/event-stream`); otherwise the type found
    /// and the start of the body, for an error that shows what came instead (a proxy's HTML page, say).
    public func contentTypeMismatch(expecting fragment: String) async -> (found: String, body: String)? {
        let found = headers.first(name: "Content-Type") ?? ""
        guard !found.lowercased().contains(fragment) else { return nil }
        let body = (try? await collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        return (found, body)
    }

    /// `Retry-After` as a duration: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
    public func retryAfter(now: Date = Date()) -> Duration? {
        headers.first(name: "Retry-After").flatMap { HTTPDate.retryAfter($0, now: now) }
    }

    /// The error for a non-2xx answer: the default code for the status, the vendor's message,
    /// and `Retry-After`. Adapters pass the message they parsed from the vendor's error body.
    public func error(_ message: String, underlying: (any Error & Sendable)? = nil) -> NimbusError {
        NimbusError(HTTPStatusMapping.code(for: status), message, underlying: underlying, retryAfter: retryAfter())
    }
}

/// A response body: an async sequence of byte chunks that enforces the client's size limit.
///
/// Iterating reads straight from the transport (no task or buffer in between); stopping early
/// drops the transport's iterator, which cancels the request.
public struct HTTPBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    private let makeSource: @Sendable () -> any ChunkSource

    /// An empty body.
    public init() { self.init(ByteBuffer()) }

    /// A body of fixed bytes.
    public init(_ buffer: ByteBuffer) {
        makeSource = { FixedChunk(buffer) }
    }

    /// A body that streams.
    public init(stream: AsyncThrowingStream<ByteBuffer, any Error>) {
        self.init(stream, limit: nil, mapError: nil)
    }

    /// A body over any sequence of chunks, cut off with `resourceExhausted` after `limit` bytes;
    /// errors of the sequence pass through `mapError` (a transport's errors become `NimbusError`s).
    public init<S: AsyncSequence & Sendable>(_ chunks: S, limit: Int? = nil,
                                             mapError: (@Sendable (any Error) -> any Error)? = nil) where S.Element == ByteBuffer {
        makeSource = { SequenceChunks(chunks.makeAsyncIterator(), limit: limit, mapError: mapError) }
    }

    /// Reads the chunks in order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: any ChunkSource
        public mutating func next() async throws -> ByteBuffer? { try await source.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: makeSource()) }

    /// Reads the whole body. `expected` (a `Content-Length`) sizes the buffer once, so a multi-megabyte
    /// body is not copied through doubling reallocations; a body that arrives in one chunk is that chunk.
    /// - Throws: `resourceExhausted` once more than `limit` bytes arrived.
    public func collect(upTo limit: Int, expected: Int? = nil) async throws -> ByteBuffer {
        var result: ByteBuffer?
        for try await var chunk in self {
            guard (result?.readableBytes ?? 0) + chunk.readableBytes <= limit else {
                throw NimbusError(.resourceExhausted, "response body is over the \(limit)-byte limit")
            }
            guard result != nil else {
                if let expected, expected > chunk.readableBytes, expected <= limit {
                    var sized = ByteBuffer()
                    sized.reserveCapacity(expected)
                    sized.writeBuffer(&chunk)
                    result = sized
                } else {
                    result = chunk
                }
                continue
            }
            result!.writeBuffer(&chunk)
        }
        return result ?? ByteBuffer()
    }
}

/// Where an ``HTTPBody`` iterator reads from: one iterator of the underlying sequence, owned by one
/// consumer.
protocol ChunkSource: AnyObject {
    func next() async throws -> ByteBuffer?
}

final class FixedChunk: ChunkSource {
    private var buffer: ByteBuffer?
    init(_ buffer: ByteBuffer) { self.buffer = buffer.readableBytes > 0 ? buffer : nil }
    func next() async throws -> ByteBuffer? {
        defer { buffer = nil }
        return buffer
    }
}

final class SequenceChunks<Iterator: AsyncIteratorProtocol>: ChunkSource where Iterator.Element == ByteBuffer {
    private var iterator: Iterator
    private var total = 0
    private var finished = false
    private let limit: Int?
    private let mapError: (@Sendable (any Error) -> any Error)?

    init(_ iterator: Iterator, limit: Int?, mapError: (@Sendable (any Error) -> any Error)?) {
        self.iterator = iterator
        self.limit = limit
        self.mapError = mapError
    }

    func next() async throws -> ByteBuffer? {
        guard !finished else { return nil }
        let chunk: ByteBuffer?
        do { chunk = try await iterator.next() } catch let error as NimbusError {
            finished = true
            throw error
        } catch {
            finished = true
            throw mapError?(error) ?? error
        }
        guard let chunk else { finished = true; return nil }
        total += chunk.readableBytes
        if let limit, total > limit {
            finished = true
            throw NimbusError(.resourceExhausted, "response body is over the \(limit)-byte limit; raise maxResponseSize if this is expected")
        }
        return chunk
    }
}

/// Where a URL points: scheme, host and port (the default port filled in). A URL that a service
/// answers with — a next page, an operation to poll — is fetched with the caller's credentials only
/// when it has the service's origin; anything else would hand the token to another host.
///
/// ```swift
/// guard HTTPOrigin(nextLink) == HTTPOrigin(vaultURL) else { throw NimbusError(.internal, "nextLink leaves the vault") }
/// ```
public struct HTTPOrigin: Hashable, Sendable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int

    /// The origin of an absolute `http`/`https` URL; `nil` for anything else.
    public init?(_ url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host?.lowercased(), !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host
        port = components.port ?? (scheme == "https" ? 443 : 80)
    }

    public var description: String { "\(scheme)://\(host):\(port)" }
}

/// The default map from HTTP status to ``NimbusError/Code``; adapters refine it from vendor error bodies.
public enum HTTPStatusMapping {
    /// The code for a status.
    public static func code(for status: HTTPResponseStatus) -> NimbusError.Code {
        switch status.code {
        case 400, 422: .invalidArgument
        case 401: .unauthenticated
        case 402, 412: .failedPrecondition
        case 403: .permissionDenied
        case 404, 410: .notFound
        case 405, 501: .unimplemented
        case 408, 504: .deadlineExceeded
        case 409: .alreadyExists
        case 413, 429: .resourceExhausted
        case 499: .canceled
        case 502, 503, 529: .unavailable
        default: .internal
        }
    }

    /// Statuses that mean "try again later": 408, 429, 500, 502, 503, 504 and 529 (Anthropic's "overloaded").
    public static func isRetryable(_ status: HTTPResponseStatus) -> Bool {
        [408, 429, 500, 502, 503, 504, 529].contains(status.code)
    }
}

/// HTTP-date parsing (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms.
public enum HTTPDate {
    private static let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]

    /// Parses an HTTP-date.
    public static func parse(_ text: String) -> Date? {
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text.trimmingCharacters(in: .whitespaces)) { return date }
        }
        return nil
    }

    /// Formats a date as IMF-fixdate.
    public static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// A `Retry-After` value as a duration from `now`; a date in the past is zero, junk is `nil`.
    public static func retryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed) { return seconds >= 0 ? .seconds(seconds) : nil }
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite { return .milliseconds(Int64(seconds * 1000)) }
        guard let date = parse(trimmed) else { return nil }
        return .milliseconds(max(0, Int64(date.timeIntervalSince(now) * 1000)))
    }
}

extension JSONEncoder {
    /// The encoder adapters use unless a vendor needs another: ISO 8601 dates, no escaped slashes.
    public static var nimbus: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    /// The decoder adapters use unless a vendor needs another: ISO 8601 dates.
    public static var nimbus: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
