import AsyncAlgorithms
import NimbusCore

/// One event of a streamed reply.
public enum ChatStreamEvent: Sendable, Hashable {
    /// The reply started: the provider's response id and model.
    case start(id: String, model: String)
    /// More reply text.
    case textDelta(String)
    /// More visible reasoning; `signature` arrives once, at the end of a thinking block (Anthropic).
    case reasoningDelta(String, signature: String? = nil)
    /// A fragment of a tool call: `index` identifies the call; `id` and `name` come first, argument text in pieces.
    case toolCallDelta(ToolCallDelta)
    /// Token counts so far (providers send them once or cumulatively; the last one wins).
    case usage(Usage)
    /// Generation stopped.
    case finish(FinishReason)
}

/// A fragment of a streamed tool call.
public struct ToolCallDelta: Sendable, Hashable {
    /// Which call of the reply (0, 1, ... in order of appearance).
    public var index: Int
    /// The call id, in the first fragment.
    public var id: String?
    /// The tool name, in the first fragment.
    public var name: String?
    /// More argument text.
    public var arguments: String

    /// Creates a fragment.
    public init(index: Int, id: String? = nil, name: String? = nil, arguments: String = "") {
        self.index = index
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// A streamed reply: an async sequence of ``ChatStreamEvent``s. Breaking out of the loop or
/// cancelling the consuming task cancels the provider request.
///
/// ```swift
/// for try await event in try await model.stream(request) {
///     if case .textDelta(let text) = event { print(text, terminator: "") }
/// }
/// ```
public struct ChatStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamEvent
    private let makeSource: @Sendable () -> any ChatEventSource

    /// Wraps a stream of events.
    public init(_ events: AsyncThrowingStream<ChatStreamEvent, any Error>) {
        makeSource = { StreamEventSource(events.makeAsyncIterator()) }
    }

    /// A stream fed by `produce`, which runs in a task of its own from the moment a consumer starts
    /// reading and is cancelled when the consumer stops. `yield` hands one event over and waits until
    /// the consumer has taken it: a slow reader slows the producer (and so the provider's connection)
    /// down instead of making the stream pile up in memory. Throwing ends the stream with that error.
    public init(_ produce: @escaping @Sendable (_ yield: @escaping @Sendable (ChatStreamEvent) async -> Void) async throws -> Void) {
        makeSource = { ProducedEventSource(produce) }
    }

    /// `upstream`'s events passed through an observer, in the consumer's task (no task or buffer in
    /// between): the observer sees each event, the end and any error, and may replace the error or
    /// fail the end. Stopping early drops the upstream iterator, which cancels the provider call.
    public init(observing upstream: ChatStream, _ makeObserver: @escaping @Sendable () -> any ChatStreamObserver) {
        makeSource = { ObservedEventSource(upstream.makeSource(), observer: makeObserver()) }
    }

    /// Reads the events in order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: any ChatEventSource
        public mutating func next() async throws -> ChatStreamEvent? { try await source.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: makeSource()) }

    /// Reads the whole stream into the response a non-streaming call would have given.
    public func collect() async throws -> ChatResponse {
        var accumulator = ChatResponseAccumulator()
        for try await event in self { accumulator.add(event) }
        return try accumulator.response()
    }
}

/// Watches a stream as it passes (see ``ChatStream/init(observing:_:)``); one observer per iteration.
public protocol ChatStreamObserver: AnyObject {
    /// Sees an event before the consumer does. Throwing ends the stream with that error.
    func observe(_ event: ChatStreamEvent) throws
    /// The upstream ended. Throwing ends the stream with that error instead.
    func finished() throws
    /// The upstream failed: the error the consumer gets.
    func failed(_ error: any Error) -> any Error
    /// The consumer stopped reading before the end (a client that disconnected, a loop that broke
    /// out): called once, when its iterator is released. Accounting that ``finished()`` or
    /// ``failed(_:)`` would have done belongs here too, or it is lost.
    func abandoned()
}

extension ChatStreamObserver {
    public func abandoned() {}
}

/// One consumer's reader of a ``ChatStream``.
public protocol ChatEventSource: AnyObject {
    /// The next event, `nil` at the end.
    func next() async throws -> ChatStreamEvent?
}

final class StreamEventSource: ChatEventSource {
    private var iterator: AsyncThrowingStream<ChatStreamEvent, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<ChatStreamEvent, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> ChatStreamEvent? { try await iterator.next() }
}

/// The reader of a produced stream: a rendezvous channel between the producer's task and the consumer.
final class ProducedEventSource: ChatEventSource {
    private let task: Task<Void, Never>
    private var iterator: AsyncThrowingChannel<ChatStreamEvent, any Error>.AsyncIterator

    init(_ produce: @escaping @Sendable (_ yield: @escaping @Sendable (ChatStreamEvent) async -> Void) async throws -> Void) {
        let channel = AsyncThrowingChannel<ChatStreamEvent, any Error>()
        iterator = channel.makeAsyncIterator()
        task = Task {
            do {
                try await produce { event in await channel.send(event) }
                channel.finish()
            } catch {
                channel.fail(error)
            }
        }
    }

    func next() async throws -> ChatStreamEvent? { try await iterator.next() }

    deinit { task.cancel() }
}

final class ObservedEventSource: ChatEventSource {
    private let upstream: any ChatEventSource
    private let observer: any ChatStreamObserver
    private var done = false

    init(_ upstream: any ChatEventSource, observer: any ChatStreamObserver) {
        self.upstream = upstream
        self.observer = observer
    }

    deinit {
        if !done { observer.abandoned() }
    }

    func next() async throws -> ChatStreamEvent? {
        guard !done else { return nil }
        let event: ChatStreamEvent?
        do { event = try await upstream.next() } catch {
            done = true
            throw observer.failed(error)
        }
        guard let event else {
            done = true
            try observer.finished()
            return nil
        }
        do { try observer.observe(event) } catch {
            done = true
            throw error
        }
        return event
    }
}

/// Builds a ``ChatResponse`` from stream events; its result equals the non-streaming response for
/// the same exchange.
public struct ChatResponseAccumulator: Sendable {
    private var id = ""
    private var model = ""
    private var parts: [ContentPart] = []
    private var calls: [Int: ToolCall] = [:]
    private var finishReason: FinishReason?
    /// Token counts so far.
    public private(set) var usage = Usage.zero
    /// Whether a finish event arrived.
    public var isFinished: Bool { finishReason != nil }

    /// An empty accumulator.
    public init() {}

    /// Adds an event.
    public mutating func add(_ event: ChatStreamEvent) {
        switch event {
        case .start(let id, let model):
            self.id = id
            self.model = model
        case .textDelta(let text):
            if case .text(let previous)? = parts.last { parts[parts.count - 1] = .text(previous + text) }
            else if !text.isEmpty { parts.append(.text(text)) }
        case .reasoningDelta(let text, let signature):
            if case .reasoning(let previous, nil, false)? = parts.last {
                parts[parts.count - 1] = .reasoning(previous + text, signature: signature)
            } else {
                parts.append(.reasoning(text, signature: signature))
            }
        case .toolCallDelta(let delta):
            var call = calls[delta.index] ?? ToolCall(id: "", name: "", arguments: "")
            if let id = delta.id, !id.isEmpty { call.id = id }
            if let name = delta.name, !name.isEmpty { call.name = name }
            call.arguments += delta.arguments
            calls[delta.index] = call
        case .usage(let usage):
            self.usage = usage
        case .finish(let reason):
            finishReason = reason
        }
    }

    /// The response so far. - Throws: `dataLoss` if the stream ended before a finish event (a cut stream).
    public func response() throws -> ChatResponse {
        guard let finishReason else {
            throw NimbusError(.dataLoss, "the stream ended before the model finished (the connection was cut mid-reply); the partial text is not a complete answer")
        }
        return partialResponse(finishReason: finishReason)
    }

    /// What arrived so far, with a given finish reason (for a consumer that stops early).
    public func partialResponse(finishReason: FinishReason) -> ChatResponse {
        let toolCalls = calls.keys.sorted().compactMap { calls[$0] }
        return ChatResponse(id: id, model: model,
                            message: ChatMessage(role: .assistant, content: ContentPart.coalesced(parts), toolCalls: toolCalls),
                            finishReason: finishReason, usage: usage)
    }
}
