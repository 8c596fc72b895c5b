import NIOCore
import NimbusCore

/// One event of a `text/event-stream` (the WHATWG HTML "server-sent events" format).
public struct ServerSentEvent: Sendable, Hashable {
    /// The `event:` field; `nil` means the default type, `message`.
    public var event: String?
    /// The `data:` lines joined with `\n`.
    public var data: String
    /// The last `id:` seen (it persists across events, as the spec says).
    public var id: String?
    /// A `retry:` reconnection time in milliseconds, when this event set one.
    public var retry: Int?

    /// Creates an event.
    public init(event: String? = nil, data: String, id: String? = nil, retry: Int? = nil) {
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry
    }
}

/// The SSE parser as a push-driven state machine: feed it chunks however the network split them.
///
/// Follows the WHATWG algorithm: a leading BOM is dropped; lines end in CRLF, LF or CR (also
/// when CR and LF arrive in different chunks); `:` lines are comments; one optional space after
/// the colon is removed; `data` lines are joined with `\n`; an `id` containing NUL is ignored;
/// `retry` is used only when it is all digits; a blank line dispatches, but an event whose data
/// is empty is dropped; an unfinished event at the end of the stream is discarded.
public struct ServerSentEventParser: Sendable {
    /// The largest event (its data) accepted; a stream exceeding it is an error, not unbounded memory.
    public var maximumEventSize: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    private var lastEventID: String?
    private var retry: Int?
    private var sawFirstBytes = false
    private var pendingCR = false

    /// Creates a parser.
    public init(maximumEventSize: Int = 8 * 1024 * 1024) { self.maximumEventSize = maximumEventSize }

    /// Consumes a chunk and returns the events it completed.
    public mutating func feed(_ buffer: ByteBuffer) throws -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        var bytes = buffer.readableBytesView[...]
        if !sawFirstBytes, !bytes.isEmpty {
            // A UTF-8 BOM may only appear at the very start (possibly split across chunks; we
            // accept it whole in the first chunk, which is where servers put it).
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
            sawFirstBytes = true
        }
        for byte in bytes {
            if pendingCR {
                pendingCR = false
                if byte == 10 { continue }   // the LF of a CRLF split across the loop
            }
            switch byte {
            case 13:
                pendingCR = true
                if let event = try endLine() { events.append(event) }
            case 10:
                if let event = try endLine() { events.append(event) }
            default:
                line.append(byte)
                if line.count > maximumEventSize {
                    throw NimbusError(.resourceExhausted, "server-sent event line over \(maximumEventSize) bytes; the stream is not SSE or is runaway")
                }
            }
        }
        return events
    }

    /// Call at the end of the stream: per the spec an unterminated event is discarded, so this
    /// returns nothing but resets the parser. It reports whether data was discarded.
    @discardableResult
    public mutating func finish() -> Bool {
        let discarded = hasData || !line.isEmpty
        line = []; data = []; hasData = false; eventType = nil
        return discarded
    }

    private mutating func endLine() throws -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }   // comment
        let field: [UInt8], value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = Array(line[..<colon])
            var rest = line[(colon + 1)...]
            if rest.first == UInt8(ascii: " ") { rest = rest.dropFirst() }
            value = rest
        } else {
            field = line
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "event": eventType = String(decoding: value, as: UTF8.self)
        case "data":
            if hasData { data.append(10) }
            data.append(contentsOf: value)
            hasData = true
            if data.count > maximumEventSize {
                throw NimbusError(.resourceExhausted, "server-sent event over \(maximumEventSize) bytes")
            }
        case "id":
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 48 && $0 <= 57 }), let millis = Int(String(decoding: value, as: UTF8.self)) {
                retry = millis
            }
        default: break   // unknown fields are ignored
        }
        return nil
    }

    private mutating func dispatch() -> ServerSentEvent? {
        defer { data = []; hasData = false; eventType = nil; retry = nil }
        guard hasData else { return nil }
        return ServerSentEvent(event: eventType.flatMap { $0.isEmpty ? nil : $0 }, data: String(decoding: data, as: UTF8.self),
                               id: lastEventID, retry: retry)
    }
}

/// Server-sent events decoded from a stream of byte chunks (an ``HTTPBody``).
///
/// ```swift
/// for try await event in ServerSentEventStream(response.body) {
///     if event.data == "[DONE]" { break }
///     let chunk = try JSONDecoder().decode(ChatChunk.self, from: Data(event.data.utf8))
/// }
/// ```
/// Breaking out of the loop or cancelling the task cancels the HTTP request.
public struct ServerSentEventStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ServerSentEvent
    let base: Base
    let maximumEventSize: Int

    /// Decodes `base`.
    public init(_ base: Base, maximumEventSize: Int = 8 * 1024 * 1024) {
        self.base = base
        self.maximumEventSize = maximumEventSize
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var parser: ServerSentEventParser
        var ready: [ServerSentEvent] = []
        var finished = false

        public mutating func next() async throws -> ServerSentEvent? {
            while ready.isEmpty {
                guard !finished else { return nil }
                guard let chunk = try await base.next() else {
                    finished = true
                    parser.finish()
                    return nil
                }
                ready = try parser.feed(chunk)
            }
            return ready.removeFirst()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), parser: ServerSentEventParser(maximumEventSize: maximumEventSize))
    }
}
