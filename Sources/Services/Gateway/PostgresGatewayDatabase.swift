import Foundation
import Logging
import NimbusCore
import NimbusPostgres
import PostgresNIO
import ServiceLifecycle

/// Keys and the spend log in PostgreSQL, for gateways that run as several instances or whose
/// spend data feeds other systems. Costs are stored as exact decimal text.
///
/// ```yaml
/// database_url: postgres://gateway:env-password@db.internal:5432/llm?sslmode=verify-full
/// ```
/// The client is a `Service`: the gateway runs it beside the HTTP server.
public struct PostgresGatewayDatabase: GatewayDatabase, Service {
    /// The connection pool.
    public let client: PostgresClient
    private let logger: Logger

    /// A database at `postgres://user:password@host:port/database?sslmode=disable|prefer|require|verify-full`
    /// (default `verify-full`: TLS with certificate and host checks).
    /// - Throws: `invalidArgument` for a URL it cannot use.
    public init(url: String, logger: Logger = Logger(label: "nimbus.gateway.postgres")) throws {
        let configuration = try PostgresClient.Configuration(url: url)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public func run() async throws { await client.run() }

    public func migrate() async throws {
        try await client.query("""
            CREATE TABLE IF NOT EXISTS nimbus_api_keys (
                id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, models TEXT NOT NULL,
                rpm BIGINT, tpm BIGINT, max_budget TEXT, spent TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE)
            """)
        try await client.query("""
            CREATE TABLE IF NOT EXISTS nimbus_spend_log (
                id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, key_id TEXT, route TEXT NOT NULL, model TEXT NOT NULL,
                deployment TEXT NOT NULL, provider TEXT NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, cost TEXT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
                outcome TEXT NOT NULL, cached BOOLEAN NOT NULL)
            """)
        try await client.query("CREATE INDEX IF NOT EXISTS nimbus_spend_log_key ON nimbus_spend_log(key_id, at)")
        try await client.query("""
            CREATE TABLE IF NOT EXISTS nimbus_responses (
                id TEXT PRIMARY KEY, key_id TEXT, created_at DOUBLE PRECISION NOT NULL, body TEXT NOT NULL, conversation TEXT NOT NULL)
            """)
        try await client.query("CREATE INDEX IF NOT EXISTS nimbus_responses_created ON nimbus_responses(created_at)")
    }

    public func saveResponse(_ response: StoredResponse, expiringBefore: Date) async throws {
        let created = response.createdAt.timeIntervalSince1970, cutoff = expiringBefore.timeIntervalSince1970
        try await client.query("""
            INSERT INTO nimbus_responses (id, key_id, created_at, body, conversation)
            VALUES (\(response.id), \(response.keyID), \(created), \(response.body), \(response.conversation))
            ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, conversation = EXCLUDED.conversation
            """)
        try await client.query("DELETE FROM nimbus_responses WHERE created_at < \(cutoff)")
    }

    public func loadResponse(id: String) async throws -> StoredResponse? {
        let rows = try await client.query("SELECT id, key_id, created_at, body, conversation FROM nimbus_responses WHERE id = \(id)")
        for try await (id, key, created, body, conversation) in rows.decode((String, String?, Double, String, String).self) {
            return StoredResponse(id: id, keyID: key, createdAt: Date(timeIntervalSince1970: created), body: body, conversation: conversation)
        }
        return nil
    }

    public func deleteResponse(id: String) async throws -> Bool {
        let rows = try await client.query("DELETE FROM nimbus_responses WHERE id = \(id) RETURNING id")
        for try await _ in rows.decode(String.self) { return true }
        return false
    }

    public func activeKeys() async throws -> [(hash: String, key: VirtualKey)] {
        let rows = try await client.query("SELECT id, key_hash, name, models, rpm, tpm, max_budget, spent, created_at FROM nimbus_api_keys WHERE NOT revoked")
        var keys: [(hash: String, key: VirtualKey)] = []
        for try await (id, hash, name, models, rpm, tpm, budget, spent, created) in rows.decode((String, String, String, String, Int?, Int?, String?, String, Double).self) {
            keys.append((hash, VirtualKey(id: id, name: name, models: GatewayRows.models(models), rpm: rpm, tpm: tpm, maxBudget: budget.flatMap { Decimal(string: $0) },
                                          spent: Decimal(string: spent) ?? 0, createdAt: Date(timeIntervalSince1970: created))))
        }
        return keys
    }

    public func insert(_ key: VirtualKey, hash: String) async throws {
        let models = GatewayRows.modelsJSON(key.models), budget = key.maxBudget.map { "\($0)" }, created = key.createdAt.timeIntervalSince1970
        try await client.query("""
            INSERT INTO nimbus_api_keys (id, key_hash, name, models, rpm, tpm, max_budget, spent, created_at)
            VALUES (\(key.id), \(hash), \(key.name), \(models), \(key.rpm), \(key.tpm), \(budget), '0', \(created))
            """)
    }

    public func revoke(id: String) async throws {
        try await client.query("UPDATE nimbus_api_keys SET revoked = TRUE WHERE id = \(id)")
    }

    public func write(_ records: [SpendRecord], adding spent: [String: Decimal]) async throws -> [String: Decimal] {
        try await client.withTransaction(logger: logger) { connection in
            for record in records {
                let at = record.at.timeIntervalSince1970, cost = "\(record.cost)"
                let insert: PostgresQuery = """
                    INSERT INTO nimbus_spend_log (at, key_id, route, model, deployment, provider, input_tokens, output_tokens, cached_tokens,
                                                  reasoning_tokens, cost, latency_ms, outcome, cached)
                    VALUES (\(at), \(record.keyID), \(record.route), \(record.model), \(record.deployment), \(record.provider), \(record.inputTokens),
                            \(record.outputTokens), \(record.cachedTokens), \(record.reasoningTokens), \(cost), \(record.latencyMilliseconds),
                            \(record.outcome), \(record.cached))
                    """
                try await connection.query(insert, logger: logger)
            }
            // An addition in the database (exact NUMERIC), so instances sharing it never overwrite each other.
            var totals: [String: Decimal] = [:]
            for (id, delta) in spent {
                let text = "\(delta)"
                let update: PostgresQuery = "UPDATE nimbus_api_keys SET spent = (spent::numeric + \(text)::numeric)::text WHERE id = \(id) RETURNING spent"
                for try await total in try await connection.query(update, logger: logger).decode(String.self) {
                    totals[id] = Decimal(string: total)
                }
            }
            return totals
        }
    }

    public func spendByKey() async throws -> [SpendTotal] {
        let rows = try await client.query("""
            SELECT key_id, COUNT(*)::BIGINT, COALESCE(SUM(input_tokens), 0)::BIGINT, COALESCE(SUM(output_tokens), 0)::BIGINT, STRING_AGG(cost, ' ')
            FROM nimbus_spend_log GROUP BY key_id
            """)
        var totals: [SpendTotal] = []
        for try await (key, count, input, output, costs) in rows.decode((String?, Int, Int, Int, String?).self) {
            totals.append(SpendTotal(keyID: key, requests: count, inputTokens: input, outputTokens: output, cost: GatewayRows.sum(costs ?? "")))
        }
        return totals
    }

    public func spendLogCount() async throws -> Int {
        for try await count in try await client.query("SELECT COUNT(*)::BIGINT FROM nimbus_spend_log").decode(Int.self) { return count }
        return 0
    }
}
