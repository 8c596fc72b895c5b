import Synchronization

/// A network connection opened on first use and again after it drops, shared by every caller:
/// concurrent callers wait for the one connect in progress instead of each opening their own.
///
/// ```swift
/// let client = LazyConnection(endpoint: "nats://127.0.0.1:4222",
///                             connect: { try await NATSConnection.connect(configuration) },
///                             isUsable: { $0.isActive }, close: { try await $0.close() })
/// let connection = try await client.connection()
/// ```
public final class LazyConnection<Connection: AnyObject & Sendable>: Sendable {
    /// Where it connects, for messages.
    public let endpoint: String
    private let connect: @Sendable () async throws -> Connection
    private let isUsable: @Sendable (Connection) -> Bool
    private let closeConnection: @Sendable (Connection) async throws -> Void
    private enum Next { case ready(Connection), wait(Task<Connection, any Error>) }
    private let state = Mutex<(connection: Connection?, connecting: Task<Connection, any Error>?, closed: Bool)>((nil, nil, false))

    /// Creates a client; nothing connects until ``connection()`` is called.
    public init(endpoint: String, connect: @escaping @Sendable () async throws -> Connection,
                isUsable: @escaping @Sendable (Connection) -> Bool, close: @escaping @Sendable (Connection) async throws -> Void) {
        self.endpoint = endpoint
        self.connect = connect
        self.isUsable = isUsable
        self.closeConnection = close
    }

    /// The open connection, connecting first if there is none (or the last one dropped).
    /// - Throws: what connecting throws; `failedPrecondition` after ``close()``.
    public func connection() async throws -> Connection {
        let next: Next = try state.withLock { state in
            if state.closed { throw NimbusError(.failedPrecondition, "the client for \(endpoint) was closed; create a new one") }
            if let connection = state.connection, isUsable(connection) { return .ready(connection) }
            if let connecting = state.connecting { return .wait(connecting) }
            let connecting = Task { [connect] in try await connect() }
            state.connecting = connecting
            return .wait(connecting)
        }
        switch next {
        case .ready(let connection):
            return connection
        case .wait(let task):
            do {
                let connection = try await task.value
                state.withLock { state in
                    state.connecting = nil
                    if state.connection !== connection { state.connection = connection }
                }
                return connection
            } catch {
                state.withLock { $0.connecting = nil }
                throw error
            }
        }
    }

    /// The connection if one is open now, without connecting.
    public var current: Connection? {
        state.withLock { state in state.connection.flatMap { isUsable($0) ? $0 : nil } }
    }

    /// Closes the connection; later calls fail.
    public func close() async throws {
        let connection = state.withLock { state -> Connection? in
            state.closed = true
            defer { state.connection = nil }
            return state.connection
        }
        if let connection { try await closeConnection(connection) }
    }
}
