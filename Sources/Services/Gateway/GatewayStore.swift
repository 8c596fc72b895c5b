import Crypto
import Foundation
import GRDB
import Logging
import Metrics
import NimbusCore
import ServiceLifecycle
import Synchronization

/// A virtual API key: what it may call, how fast, and how much it may spend. Only the key's
/// SHA-256 is stored; the key itself is shown once, when it is created.
public struct VirtualKey: Sendable, Codable, Hashable {
    /// The key's public id (`vk_...`), safe to log.
    public var id: String
    /// A label.
    public var name: String
    /// Model names it may use (empty: all).
    public var models: [String]
    /// Requests per minute (`nil`: no limit).
    public var rpm: Int?
    /// Tokens per minute (`nil`: no limit).
    public var tpm: Int?
    /// USD it may spend in all (`nil`: no budget).
    public var maxBudget: Decimal?
    /// USD spent so far.
    public var spent: Decimal
    /// When it was created.
    public var createdAt: Date

    /// Whether the key may use `model`.
    public func allows(_ model: String) -> Bool { models.isEmpty || models.contains(model) }
    /// Whether the key has spent its budget.
    public var isOverBudget: Bool { maxBudget.map { spent >= $0 } ?? false }
}

/// One call in the spend log.
public struct SpendRecord: Sendable, Hashable {
    public var at: Date
    public var keyID: String?
    public var route: String
    public var model: String
    public var deployment: String
    public var provider: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var cachedTokens: Int
    public var reasoningTokens: Int
    public var cost: Decimal
    public var latencyMilliseconds: Double
    public var outcome: String
    public var cached: Bool

    /// Creates a record.
    public init(at: Date, keyID: String?, route: String, model: String, deployment: String, provider: String, inputTokens: Int, outputTokens: Int,
                cachedTokens: Int, reasoningTokens: Int, cost: Decimal, latencyMilliseconds: Double, outcome: String, cached: Bool) {
        self.at = at; self.keyID = keyID; self.route = route; self.model = model; self.deployment = deployment; self.provider = provider
        self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.cachedTokens = cachedTokens; self.reasoningTokens = reasoningTokens
        self.cost = cost; self.latencyMilliseconds = latencyMilliseconds; self.outcome = outcome; self.cached = cached
    }
}

/// Per-key totals of the written spend log.
public struct SpendTotal: Sendable, Hashable {
    /// The key (`nil`: calls made without one).
    public var keyID: String?
    public var requests: Int
    public var inputTokens: Int
    public var outputTokens: Int
    /// US dollars.
    public var cost: Decimal
}

/// Where keys and the spend log persist: SQLite (``SQLiteGatewayDatabase``, the embedded default)
/// or PostgreSQL (``PostgresGatewayDatabase``).
public protocol GatewayDatabase: Sendable {
    /// Creates the tables if needed.
    func migrate() async throws
    /// Every key not revoked, with the SHA-256 of its secret.
    func activeKeys() async throws -> [(hash: String, key: VirtualKey)]
    /// Stores a new key.
    func insert(_ key: VirtualKey, hash: String) async throws
    /// Marks a key revoked.
    func revoke(id: String) async throws
    /// Appends spend records and adds each key's new spend to its stored total (`spent = spent + delta`,
    /// so instances sharing the database never overwrite each other), in one transaction.
    /// - Returns: the stored totals of those keys afterwards, every instance's spend included.
    func write(_ records: [SpendRecord], adding spent: [String: Decimal]) async throws -> [String: Decimal]
    /// Totals per key.
    func spendByKey() async throws -> [SpendTotal]
    /// Rows in the spend log.
    func spendLogCount() async throws -> Int
    /// Keeps a Responses API response (for `previous_response_id` and retrieval); drops those older than `expiringBefore`.
    func saveResponse(_ response: StoredResponse, expiringBefore: Date) async throws
    /// A kept response, `nil` when unknown.
    func loadResponse(id: String) async throws -> StoredResponse?
    /// Deletes a kept response. - Returns: whether it existed.
    func deleteResponse(id: String) async throws -> Bool
}

/// A Responses API response kept by the gateway: the object it answered and the conversation a
/// follow-up (`previous_response_id`) continues, owned by the key that made it.
public struct StoredResponse: Sendable, Hashable {
    /// `resp_...`.
    public var id: String
    /// The virtual key that made it (`nil`: the master key or an open gateway).
    public var keyID: String?
    public var createdAt: Date
    /// The Response object, JSON.
    public var body: String
    /// The conversation so far (input and reply, without instructions), JSON of `[ChatMessage]`.
    public var conversation: String

    /// Creates a record.
    public init(id: String, keyID: String?, createdAt: Date, body: String, conversation: String) {
        self.id = id; self.keyID = keyID; self.createdAt = createdAt; self.body = body; self.conversation = conversation
    }
}

/// Keys and the spend log. Keys are held in memory (the request path never reads the database);
/// spend records go through a bounded queue and are written in batches by ``SpendLogWriter``, so
/// memory stays flat under load.
public final class GatewayStore: Sendable {
    /// The database.
    public let database: any GatewayDatabase
    private struct State {
        var keysByHash: [String: VirtualKey] = [:]
        var pending: [SpendRecord] = []
        /// Spend recorded here and not yet added to the database, per key id.
        var unwritten: [String: Decimal] = [:]
        /// Estimated cost of calls admitted and not yet accounted, per key id.
        var reserved: [String: Decimal] = [:]
        var dropped = 0
    }
    private let state = Mutex(State())
    /// The most spend records waiting for the writer.
    public let queueCapacity: Int
    private let dropCounter = Counter(label: "nimbus_gateway_spend_log_dropped_total")

    /// Opens a store: migrates the database and loads the keys.
    /// - Throws: `unavailable` when the database cannot be reached or migrated.
    public init(database: any GatewayDatabase, queueCapacity: Int = 10_000) async throws {
        self.database = database
        self.queueCapacity = queueCapacity
        do {
            try await database.migrate()
            let keys = try await database.activeKeys()
            state.withLock { state in for (hash, key) in keys { state.keysByHash[hash] = key } }
        } catch {
            throw NimbusError(.unavailable, "cannot open the gateway database: \(error)", underlying: error)
        }
    }

    /// Opens a store over SQLite at `path`.
    public convenience init(path: String, queueCapacity: Int = 10_000) async throws {
        try await self.init(database: try SQLiteGatewayDatabase(path: path), queueCapacity: queueCapacity)
    }

    /// The SHA-256 of a key, hex.
    static func hash(_ key: String) -> String { SHA256.hash(data: Data(key.utf8)).hexString }

    /// Whether any virtual key exists.
    public var hasKeys: Bool { state.withLock { !$0.keysByHash.isEmpty } }

    /// The key a secret belongs to, if any.
    public func key(secret: String) -> VirtualKey? {
        let hash = Self.hash(secret)
        return state.withLock { $0.keysByHash[hash] }
    }

    /// The key with this id.
    public func key(id: String) -> VirtualKey? { state.withLock { $0.keysByHash.values.first { $0.id == id } } }

    /// Creates a key; returns it and its secret (shown once).
    public func createKey(name: String, models: [String], rpm: Int?, tpm: Int?, maxBudget: Decimal?) async throws -> (VirtualKey, String) {
        let secret = "sk-nimbus-" + Self.randomToken(32)
        let key = VirtualKey(id: "vk_" + Self.randomToken(16), name: name, models: models, rpm: rpm, tpm: tpm, maxBudget: maxBudget, spent: 0, createdAt: Date())
        let hash = Self.hash(secret)
        try await database.insert(key, hash: hash)
        state.withLock { $0.keysByHash[hash] = key }
        return (key, secret)
    }

    /// Revokes a key by id. - Returns: whether it existed.
    public func revokeKey(id: String) async throws -> Bool {
        let removed = state.withLock { state -> Bool in
            guard let hash = state.keysByHash.first(where: { $0.value.id == id })?.key else { return false }
            state.keysByHash[hash] = nil
            return true
        }
        if removed { try await database.revoke(id: id) }
        return removed
    }

    /// Records a call: the key's spend now (budgets are enforced on it), the detail row when the writer drains the queue.
    public func record(_ record: SpendRecord) {
        let dropped = state.withLock { state -> Bool in
            if let id = record.keyID, let hash = state.keysByHash.first(where: { $0.value.id == id })?.key {
                state.keysByHash[hash]?.spent += record.cost
                state.unwritten[id, default: 0] += record.cost
            }
            guard state.pending.count < queueCapacity else { state.dropped += 1; return true }
            state.pending.append(record)
            return false
        }
        if dropped { dropCounter.increment() }
    }

    /// Spend records dropped because the queue was full.
    public var droppedRecords: Int { state.withLock { $0.dropped } }
    /// Spend records waiting for the writer.
    public var pendingRecords: Int { state.withLock { $0.pending.count } }

    /// Writes queued records and the keys' new spend in one transaction, then takes the stored totals
    /// (which include other instances' spend). - Returns: rows written.
    @discardableResult
    public func flush() async throws -> Int {
        let (records, deltas) = state.withLock { state -> ([SpendRecord], [String: Decimal]) in
            let taken = (state.pending, state.unwritten)
            state.pending.removeAll(keepingCapacity: true)
            state.unwritten.removeAll()
            return taken
        }
        guard !records.isEmpty || !deltas.isEmpty else { return 0 }
        let totals: [String: Decimal]
        do {
            totals = try await database.write(records, adding: deltas)
        } catch {
            // Put them back in front of newer records (within capacity) so the next flush retries them.
            state.withLock { state in
                let room = max(0, queueCapacity - state.pending.count)
                state.pending.insert(contentsOf: records.prefix(room), at: 0)
                state.dropped += max(0, records.count - room)
                state.unwritten.merge(deltas, uniquingKeysWith: +)
            }
            throw error
        }
        state.withLock { state in
            for (hash, key) in state.keysByHash {
                if let total = totals[key.id] { state.keysByHash[hash]?.spent = total + (state.unwritten[key.id] ?? 0) }
            }
        }
        return records.count
    }

    /// Reloads keys from the database: keys created or revoked by another instance take effect here,
    /// and every key's spend is the stored total plus what this instance has not written yet.
    public func refreshKeys() async throws {
        let keys = try await database.activeKeys()
        state.withLock { state in
            var loaded: [String: VirtualKey] = [:]
            for (hash, var key) in keys {
                key.spent += state.unwritten[key.id] ?? 0
                loaded[hash] = key
            }
            state.keysByHash = loaded
        }
    }

    /// The outcome of asking for budget: admitted (holding the reservation) or over budget.
    public enum BudgetCheck: Sendable {
        case admitted(Lease)
        /// The key's spend, reservations included, has reached its budget.
        case overBudget(spent: Decimal, reserved: Decimal, budget: Decimal)
    }

    /// Admits a call of key `id` whose estimated cost is `cost` when the key's spend plus what calls
    /// under way have reserved is below its budget, and reserves `cost` until the returned
    /// reservation is released (when the call has been accounted). Concurrent calls therefore see
    /// each other: at most one call can take a key past its budget, as with calls made one by one.
    public func reserve(keyID id: String, cost: Decimal) -> BudgetCheck {
        let amount = max(0, cost)
        return state.withLock { state -> BudgetCheck in
            guard let key = state.keysByHash.values.first(where: { $0.id == id }), let budget = key.maxBudget else { return .admitted(.none) }
            let reserved = state.reserved[id] ?? 0
            if key.spent + reserved >= budget { return .overBudget(spent: key.spent, reserved: reserved, budget: budget) }
            state.reserved[id, default: 0] += amount
            return .admitted(Lease { [weak self] in self?.release(keyID: id, amount: amount) })
        }
    }

    /// The cost reserved by calls of key `id` under way.
    public func reserved(keyID id: String) -> Decimal { state.withLock { $0.reserved[id] ?? 0 } }

    func release(keyID id: String, amount: Decimal) {
        state.withLock { state in
            let left = (state.reserved[id] ?? 0) - amount
            state.reserved[id] = left > 0 ? left : nil
        }
    }

    /// Totals per key from the written log.
    public func spendByKey() async throws -> [SpendTotal] { try await database.spendByKey() }

    /// The number of rows in the spend log.
    public func spendLogCount() async throws -> Int { try await database.spendLogCount() }

    static func randomToken(_ length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }
}

/// Something an admitted call holds until it has been accounted — budget reserved by
/// ``GatewayStore/reserve(keyID:cost:)``, a stream slot — given back exactly once: by ``release()``,
/// or when the last reference goes away, so no exit path (an error, a cancelled task, a stream
/// never read) keeps it.
public final class Lease: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    /// A lease that runs `release` once when given back.
    public init(_ release: @escaping @Sendable () -> Void) { action = Mutex(release) }

    /// A lease that holds nothing.
    public static var none: Lease { Lease {} }

    /// Gives back what is held; later calls do nothing.
    public func release() {
        let pending = action.withLock { action in
            defer { action = nil }
            return action
        }
        pending?()
    }

    deinit { release() }
}

/// Keys and the spend log in SQLite (GRDB): the embedded default.
public struct SQLiteGatewayDatabase: GatewayDatabase {
    private let queue: DatabaseQueue

    /// Opens (creating) the file at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        queue = try DatabaseQueue(path: path, configuration: configuration)
    }

    public func migrate() async throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, models TEXT NOT NULL,
                    rpm INTEGER, tpm INTEGER, max_budget TEXT, spent TEXT NOT NULL, created_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE spend_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, key_id TEXT, route TEXT NOT NULL, model TEXT NOT NULL,
                    deployment TEXT NOT NULL, provider TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
                    cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost TEXT NOT NULL, latency_ms REAL NOT NULL,
                    outcome TEXT NOT NULL, cached INTEGER NOT NULL);
                CREATE INDEX spend_log_key ON spend_log(key_id, at);
                """)
        }
        migrator.registerMigration("v2-responses") { db in
            try db.execute(sql: """
                CREATE TABLE responses (id TEXT PRIMARY KEY, key_id TEXT, created_at REAL NOT NULL, body TEXT NOT NULL, conversation TEXT NOT NULL);
                CREATE INDEX responses_created ON responses(created_at);
                """)
        }
        try migrator.migrate(queue)
    }

    public func saveResponse(_ response: StoredResponse, expiringBefore: Date) async throws {
        try await queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO responses (id, key_id, created_at, body, conversation) VALUES (?, ?, ?, ?, ?)",
                           arguments: [response.id, response.keyID, response.createdAt.timeIntervalSince1970, response.body, response.conversation])
            try db.execute(sql: "DELETE FROM responses WHERE created_at < ?", arguments: [expiringBefore.timeIntervalSince1970])
        }
    }

    public func loadResponse(id: String) async throws -> StoredResponse? {
        try await queue.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM responses WHERE id = ?", arguments: [id]).map { row in
                StoredResponse(id: row["id"], keyID: row["key_id"], createdAt: Date(timeIntervalSince1970: row["created_at"]), body: row["body"],
                               conversation: row["conversation"])
            }
        }
    }

    public func deleteResponse(id: String) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM responses WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func activeKeys() async throws -> [(hash: String, key: VirtualKey)] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE revoked = 0").map { row in
                (row["key_hash"], VirtualKey(id: row["id"], name: row["name"], models: GatewayRows.models(row["models"]), rpm: row["rpm"], tpm: row["tpm"],
                                             maxBudget: (row["max_budget"] as String?).flatMap { Decimal(string: $0) },
                                             spent: Decimal(string: row["spent"] as String? ?? "0") ?? 0,
                                             createdAt: Date(timeIntervalSince1970: row["created_at"])))
            }
        }
    }

    public func insert(_ key: VirtualKey, hash: String) async throws {
        let models = GatewayRows.modelsJSON(key.models)
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO api_keys (id, key_hash, name, models, rpm, tpm, max_budget, spent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, '0', ?)",
                           arguments: [key.id, hash, key.name, models, key.rpm, key.tpm, key.maxBudget.map { "\($0)" }, key.createdAt.timeIntervalSince1970])
        }
    }

    public func revoke(id: String) async throws {
        try await queue.write { db in try db.execute(sql: "UPDATE api_keys SET revoked = 1 WHERE id = ?", arguments: [id]) }
    }

    public func write(_ records: [SpendRecord], adding spent: [String: Decimal]) async throws -> [String: Decimal] {
        try await queue.write { db in
            let insert = try db.makeStatement(sql: """
                INSERT INTO spend_log (at, key_id, route, model, deployment, provider, input_tokens, output_tokens, cached_tokens,
                                       reasoning_tokens, cost, latency_ms, outcome, cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for record in records {
                try insert.execute(arguments: [record.at.timeIntervalSince1970, record.keyID, record.route, record.model, record.deployment,
                                                record.provider, record.inputTokens, record.outputTokens, record.cachedTokens, record.reasoningTokens,
                                                "\(record.cost)", record.latencyMilliseconds, record.outcome, record.cached])
            }
            // Read and write in the same transaction: SQLite serializes writers, so another process's
            // addition is never lost. Decimal arithmetic here, because SQLite's would be binary floating point.
            var totals: [String: Decimal] = [:]
            for (id, delta) in spent {
                guard let stored = try String.fetchOne(db, sql: "SELECT spent FROM api_keys WHERE id = ?", arguments: [id]) else { continue }
                let total = (Decimal(string: stored) ?? 0) + delta
                try db.execute(sql: "UPDATE api_keys SET spent = ? WHERE id = ?", arguments: ["\(total)", id])
                totals[id] = total
            }
            return totals
        }
    }

    public func spendByKey() async throws -> [SpendTotal] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT key_id, COUNT(*) AS n, SUM(input_tokens) AS i, SUM(output_tokens) AS o, GROUP_CONCAT(cost, ' ') AS c FROM spend_log GROUP BY key_id")
                .map { row in
                    SpendTotal(keyID: row["key_id"], requests: row["n"], inputTokens: row["i"] ?? 0, outputTokens: row["o"] ?? 0,
                               cost: GatewayRows.sum(row["c"] as String? ?? ""))
                }
        }
    }

    public func spendLogCount() async throws -> Int { try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM spend_log") ?? 0 } }
}

/// Row helpers both databases use.
enum GatewayRows {
    static func models(_ json: String?) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data((json ?? "[]").utf8))) ?? []
    }
    static func modelsJSON(_ models: [String]) -> String {
        (try? JSONEncoder().encode(models)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }
    /// Exact sum of decimal strings (costs are stored as text so no database rounds them).
    static func sum(_ joined: String) -> Decimal {
        joined.split(separator: " ").compactMap { Decimal(string: String($0)) }.reduce(0, +)
    }
}

/// Drains the spend queue into the database every `interval`, and once more at shutdown; every
/// `keySync` it reloads the keys, so keys created, revoked or charged by other instances sharing the
/// database take effect here.
public struct SpendLogWriter: Service {
    let store: GatewayStore
    let interval: Duration
    let keySync: Duration
    let logger: Logger

    /// Creates a writer.
    public init(store: GatewayStore, interval: Duration = .milliseconds(500), keySync: Duration = .seconds(5),
                logger: Logger = Logger(label: "nimbus.gateway.spend")) {
        self.store = store
        self.interval = interval
        self.keySync = keySync
        self.logger = logger
    }

    public func run() async throws {
        var synced = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: min(interval, keySync)) }
            await write()
            if ContinuousClock.now - synced >= keySync {
                synced = ContinuousClock.now
                do { try await store.refreshKeys() } catch {
                    logger.warning("key reload failed; the keys loaded before stay in use", metadata: ["error": "\(error)"])
                }
            }
        }
        await write()
    }

    private func write() async {
        do { try await store.flush() } catch { logger.error("spend log write failed; records stay queued for the next try", metadata: ["error": "\(error)"]) }
    }
}
