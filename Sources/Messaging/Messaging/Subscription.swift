import DequeModule
import NIOCore
import NimbusCore
import Synchronization

/// How many received messages may be unsettled at once: the consumer's backpressure.
///
/// A subscription fetches no more while `maxOutstandingMessages` messages, or
/// `maxOutstandingBytes` bytes of bodies, are received and not yet acked, nacked or
/// dead-lettered — the broker keeps the rest, nothing piles up in the process.
public struct FlowControl: Sendable, Hashable {
    /// The most unsettled messages.
    public var maxOutstandingMessages: Int
    /// The most bytes of unsettled bodies (a batch may pass it by one fetch's worth).
    public var maxOutstandingBytes: Int
    /// The most messages asked for in one fetch.
    public var batchSize: Int
    /// How long one fetch waits for a first message (a long poll) before asking again.
    public var wait: Duration

    /// Creates flow control (1000 messages, 64 MiB, batches of 10, 5 s long polls).
    public init(maxOutstandingMessages: Int = 1000, maxOutstandingBytes: Int = 64 << 20, batchSize: Int = 10, wait: Duration = .seconds(5)) {
        self.maxOutstandingMessages = max(1, maxOutstandingMessages)
        self.maxOutstandingBytes = max(1, maxOutstandingBytes)
        self.batchSize = max(1, batchSize)
        self.wait = max(.zero, wait)
    }
}

/// Where messages of one subscription are received, under its ``FlowControl``.
///
/// ```swift
/// let subscription = messaging.subscription("billing", flowControl: .init(maxOutstandingMessages: 64))
/// try await withThrowingDiscardingTaskGroup { group in
///     for try await message in subscription.messages() {
///         group.addTask { try await handle(message); try await message.ack() }
///     }
/// }
/// // at shutdown: stop fetching, let handlers finish
/// await subscription.drain(timeout: .seconds(30))
/// ```
public final class Subscription: Sendable, MessageSettler {
    /// The subscription's name.
    public let name: String
    /// Its flow control.
    public let flowControl: FlowControl
    let messaging: Messaging
    private let gate: CreditGate
    /// The buffers of this subscription's live iterators, so that ``drain(timeout:)`` can empty them.
    private let buffers = Mutex<[ObjectIdentifier: WeakBuffer]>([:])

    private final class WeakBuffer {
        weak var buffer: Messages.Buffer?
        init(_ buffer: Messages.Buffer) { self.buffer = buffer }
    }

    func register(_ buffer: Messages.Buffer) { buffers.withLock { $0[ObjectIdentifier(buffer)] = WeakBuffer(buffer) } }
    func unregister(_ buffer: Messages.Buffer) { _ = buffers.withLock { $0.removeValue(forKey: ObjectIdentifier(buffer)) } }

    init(name: String, messaging: Messaging, flowControl: FlowControl) {
        self.name = name
        self.messaging = messaging
        self.flowControl = flowControl
        self.gate = CreditGate(messages: flowControl.maxOutstandingMessages, bytes: flowControl.maxOutstandingBytes)
    }

    /// Messages and body bytes received and not yet settled.
    public var outstanding: (messages: Int, bytes: Int) { gate.outstanding }

    /// Whether ``drain(timeout:)`` was called: no more messages are fetched.
    public var isDraining: Bool { gate.isDraining }

    /// Receives up to `maxMessages` messages, waiting up to `wait` (the flow control's wait by
    /// default) for the first. Waits first for flow-control credit; returns `[]` when the wait
    /// passed with nothing, or once the subscription is draining.
    /// - Throws: `notFound` when the subscription does not exist.
    public func receive(maxMessages: Int = 1, wait: Duration? = nil) async throws -> [ReceivedMessage] {
        guard maxMessages >= 1 else { throw NimbusError(.invalidArgument, "maxMessages must be at least 1, got \(maxMessages)") }
        return try await fetch(maxMessages, wait: wait ?? flowControl.wait) ?? []
    }

    /// The subscription's messages, as they come: fetched in batches while flow control allows,
    /// until the task is cancelled or the subscription drains. Every message must be settled.
    public func messages() -> Messages { Messages(subscription: self) }

    /// Stops fetching, gives back messages fetched but not yet handed out, and waits until every
    /// handed-out message is settled or `timeout` passes. Returns whether everything was settled;
    /// what was not is delivered again once its lease passes.
    @discardableResult
    public func drain(timeout: Duration) async -> Bool {
        gate.startDraining()
        let live = buffers.withLock { $0.values.compactMap(\.buffer) }
        for buffer in live { buffer.giveBackAll() }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await self.gate.waitUntilIdle()) != nil }
            group.addTask { try? await Task.sleep(for: timeout); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && gate.outstanding.messages == 0
        }
    }

    /// Fetches up to `limit` messages once credit allows; `nil` once draining.
    func fetch(_ limit: Int, wait: Duration) async throws -> [ReceivedMessage]? {
        let granted = try await gate.reserve(limit)
        guard granted > 0 else { return nil }
        let deliveries: [DeliveredMessage]
        do {
            deliveries = try await messaging.run("receive", idempotent: true) {
                try await self.messaging.driver.receive(from: self.name, maxMessages: granted, wait: wait)
            }
        } catch {
            gate.commit(reserved: granted, received: 0, bytes: 0)
            throw error
        }
        let kept = deliveries.prefix(granted)
        gate.commit(reserved: granted, received: kept.count, bytes: kept.reduce(0) { $0 + $1.body.readableBytes })
        return kept.map { ReceivedMessage($0, settler: self) }
    }

    /// Hands back messages that were fetched but never handed out: they count no more, and the
    /// broker delivers them again now.
    func giveBack(_ messages: [ReceivedMessage]) {
        let returned = messages.filter { $0.abandon() }
        guard !returned.isEmpty else { return }
        for message in returned { gate.release(bytes: message.body.readableBytes) }
        let receipts = returned.map(\.delivery.receipt)
        let driver = messaging.driver, name = name
        Task { try? await driver.nack(receipts, on: name, disposition: .requeue(delay: .zero)) }
    }

    // MARK: MessageSettler

    func settle(_ message: ReceivedMessage, _ settlement: Settlement) async throws {
        defer { gate.release(bytes: message.body.readableBytes) }
        let receipt = message.delivery.receipt
        switch settlement {
        case .ack:
            try await messaging.run("ack", idempotent: true) { try await self.messaging.driver.ack([receipt], on: self.name) }
        case .nack(let disposition):
            if case .deadLetter = disposition { try messaging.require(.deadLetters, "dead-lettering a message") }
            if case .requeue(let delay) = disposition, delay > .zero { try messaging.require(.delayedRedelivery, "a redelivery delay") }
            try await messaging.run("nack", idempotent: true) {
                try await self.messaging.driver.nack([receipt], on: self.name, disposition: disposition)
            }
        }
    }

    func extend(_ message: ReceivedMessage, to deadline: Duration) async throws {
        guard deadline >= .seconds(1), deadline <= .seconds(43_200) else {
            throw NimbusError(.invalidArgument, "a lease extension must be between 1 s and 12 h, got \(deadline)")
        }
        try messaging.require(.extendDeadline, "extending a lease")
        let receipt = message.delivery.receipt
        try await messaging.run("extendDeadline", idempotent: true) {
            try await self.messaging.driver.extendDeadline([receipt], on: self.name, to: deadline)
        }
    }
}

extension Subscription {
    /// A subscription's messages as an `AsyncSequence` (see ``Subscription/messages()``).
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = ReceivedMessage
        let subscription: Subscription

        public func makeAsyncIterator() -> Iterator { Iterator(buffer: Buffer(subscription: subscription)) }

        /// Hands out fetched messages one by one and fetches the next batch when they run out.
        public struct Iterator: AsyncIteratorProtocol, Sendable {
            let buffer: Buffer

            public mutating func next() async throws -> ReceivedMessage? {
                let subscription = buffer.subscription
                while true {
                    if subscription.isDraining || Task.isCancelled {
                        buffer.giveBackAll()
                        return nil
                    }
                    if let message = buffer.pop() { return message }
                    guard let batch = try await subscription.fetch(subscription.flowControl.batchSize, wait: subscription.flowControl.wait) else {
                        return nil
                    }
                    buffer.push(batch)
                }
            }
        }

        /// The fetched-but-not-handed-out messages of one iterator; given back when the iterator goes away.
        final class Buffer: Sendable {
            let subscription: Subscription
            private let messages = Mutex(Deque<ReceivedMessage>())

            init(subscription: Subscription) {
                self.subscription = subscription
                subscription.register(self)
            }

            func pop() -> ReceivedMessage? { messages.withLock { $0.popFirst() } }
            func push(_ batch: [ReceivedMessage]) { messages.withLock { $0.append(contentsOf: batch) } }

            func giveBackAll() {
                let left = messages.withLock { queue -> [ReceivedMessage] in
                    defer { queue.removeAll() }
                    return Array(queue)
                }
                subscription.giveBack(left)
            }

            deinit {
                subscription.unregister(self)
                giveBackAll()
            }
        }
    }
}

/// Flow-control credit: reservations before a fetch, releases on settle; waiters wake on every change.
final class CreditGate: Sendable {
    private struct State {
        var messages = 0
        var bytes = 0
        var draining = false
    }

    private let maxMessages: Int
    private let maxBytes: Int
    private let state = Mutex(State())
    private let changed = AsyncSignal()

    init(messages: Int, bytes: Int) {
        self.maxMessages = messages
        self.maxBytes = bytes
    }

    var outstanding: (messages: Int, bytes: Int) { state.withLock { ($0.messages, $0.bytes) } }
    var isDraining: Bool { state.withLock { $0.draining } }

    /// Reserves up to `limit` message slots once there is room; 0 once draining.
    func reserve(_ limit: Int) async throws -> Int {
        while true {
            let version = changed.version
            let granted: Int? = state.withLock { state in
                if state.draining { return 0 }
                guard state.messages < maxMessages, state.bytes < maxBytes else { return nil }
                let granted = min(limit, maxMessages - state.messages)
                state.messages += granted
                return granted
            }
            if let granted { return granted }
            try await changed.wait(since: version)
        }
    }

    /// Settles a reservation: slots that brought no message go back; the bodies' bytes count.
    func commit(reserved: Int, received: Int, bytes: Int) {
        state.withLock { state in
            state.messages -= reserved - received
            state.bytes += bytes
        }
        changed.signal()
    }

    /// One message settled.
    func release(bytes: Int) {
        state.withLock { state in
            state.messages -= 1
            state.bytes -= bytes
        }
        changed.signal()
    }

    func startDraining() {
        state.withLock { $0.draining = true }
        changed.signal()
    }

    /// Waits until no message is outstanding.
    func waitUntilIdle() async throws {
        while true {
            let version = changed.version
            guard state.withLock({ $0.messages > 0 }) else { return }
            try await changed.wait(since: version)
        }
    }
}
