import Foundation
import Logging
import NimbusCore
import PostgresNIO

/// Manages PostgreSQL declarative partitioning: partitions by range (and time), list and hash;
/// attach and detach; listing with bounds; retention by dropping time partitions that ended
/// before a cut-off. Identifiers are checked (`[a-z_][a-z0-9_]*`, up to 63 bytes) and quoted, and
/// bound values are quoted literals — DDL cannot take parameters.
///
/// ```swift
/// let partitions = PostgresPartitions(client: client)
/// try await partitions.createTable("events", columns: "id BIGINT, at TIMESTAMPTZ NOT NULL, body TEXT", partitionBy: .range("at"))
/// try await partitions.ensureTimePartitions(of: "events", every: .day, from: today, through: today.addingTimeInterval(7 * 86_400))
/// try await partitions.dropTimePartitions(of: "events", endingBefore: today.addingTimeInterval(-30 * 86_400))   // keep 30 days
/// ```
public struct PostgresPartitions: Sendable {
    /// How a table is partitioned.
    public enum Strategy: Sendable, Hashable {
        /// `PARTITION BY RANGE (column)`.
        case range(String)
        /// `PARTITION BY LIST (column)`.
        case list(String)
        /// `PARTITION BY HASH (column)`.
        case hash(String)
    }

    /// A calendar step for time partitions (UTC).
    public enum Interval: String, Sendable, Hashable {
        /// One partition per day, `<table>_pYYYYMMDD`.
        case day
        /// One partition per month, `<table>_pYYYYMM`.
        case month
    }

    /// One partition.
    public struct Partition: Sendable, Hashable {
        /// Its table name.
        public var name: String
        /// Its bound as PostgreSQL prints it (`FOR VALUES FROM (…) TO (…)`, `DEFAULT`).
        public var bound: String
    }

    /// The pool.
    public let client: PostgresClient
    private let logger: Logger

    /// Manages partitions through `client`.
    public init(client: PostgresClient, logger: Logger = Logger(label: "nimbus.sharding.partitions")) {
        self.client = client
        self.logger = logger
    }

    /// Creates a partitioned table if missing. `columns` is the column list as SQL (trusted: it is the schema).
    public func createTable(_ table: String, columns: String, partitionBy strategy: Strategy) async throws {
        let clause: String
        switch strategy {
        case .range(let column): clause = "RANGE (\(try Self.identifier(column)))"
        case .list(let column): clause = "LIST (\(try Self.identifier(column)))"
        case .hash(let column): clause = "HASH (\(try Self.identifier(column)))"
        }
        try await execute("CREATE TABLE IF NOT EXISTS \(try Self.identifier(table)) (\(columns)) PARTITION BY \(clause)")
    }

    /// Creates a range partition `[from, to)` if missing.
    public func createRangePartition(_ name: String, of table: String, from: String, to: String) async throws {
        try await execute("CREATE TABLE IF NOT EXISTS \(try Self.identifier(name)) PARTITION OF \(try Self.identifier(table)) FOR VALUES FROM (\(Self.literal(from))) TO (\(Self.literal(to)))")
    }

    /// Creates a list partition for `values` if missing.
    public func createListPartition(_ name: String, of table: String, values: [String]) async throws {
        guard !values.isEmpty else { throw NimbusError(.invalidArgument, "a list partition needs at least one value") }
        try await execute("CREATE TABLE IF NOT EXISTS \(try Self.identifier(name)) PARTITION OF \(try Self.identifier(table)) FOR VALUES IN (\(values.map(Self.literal).joined(separator: ", ")))")
    }

    /// Creates the `modulus` hash partitions `<table>_h0…` if missing.
    public func createHashPartitions(of table: String, modulus: Int) async throws {
        guard modulus >= 1, modulus <= 1024 else { throw NimbusError(.invalidArgument, "a hash modulus must be 1...1024 (got \(modulus))") }
        for remainder in 0..<modulus {
            try await execute("CREATE TABLE IF NOT EXISTS \(try Self.identifier("\(table)_h\(remainder)")) PARTITION OF \(try Self.identifier(table)) FOR VALUES WITH (MODULUS \(modulus), REMAINDER \(remainder))")
        }
    }

    /// Creates the default partition (rows no other partition takes) if missing.
    public func createDefaultPartition(of table: String) async throws {
        try await execute("CREATE TABLE IF NOT EXISTS \(try Self.identifier("\(table)_default")) PARTITION OF \(try Self.identifier(table)) DEFAULT")
    }

    /// Creates the daily or monthly partitions covering `from` through `through` (UTC) that are missing;
    /// returns the names created or already there, in order.
    @discardableResult
    public func ensureTimePartitions(of table: String, every interval: Interval, from: Date, through: Date) async throws -> [String] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .gmt
        let unit: Calendar.Component = interval == .day ? .day : .month
        var start = calendar.dateInterval(of: unit, for: from)?.start ?? from
        var names: [String] = []
        while start <= through {
            guard let end = calendar.date(byAdding: unit, value: 1, to: start) else { break }
            let name = Self.timePartitionName(table, start, interval, calendar)
            try await createRangePartition(name, of: table, from: Self.timestamp(start), to: Self.timestamp(end))
            names.append(name)
            start = end
            guard names.count <= 10_000 else { throw NimbusError(.invalidArgument, "more than 10,000 partitions requested; narrow the range") }
        }
        return names
    }

    /// The partitions of `table`, by name.
    public func partitions(of table: String) async throws -> [Partition] {
        let rows = try await client.query("""
            SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = \(table) ORDER BY c.relname
            """, logger: logger)
        var result: [Partition] = []
        for try await (name, bound) in rows.decode((String, String).self) { result.append(Partition(name: name, bound: bound)) }
        return result
    }

    /// Detaches a partition (it stays a table). `concurrently` avoids blocking writers (it cannot run in a transaction).
    public func detach(_ partition: String, from table: String, concurrently: Bool = false) async throws {
        try await execute("ALTER TABLE \(try Self.identifier(table)) DETACH PARTITION \(try Self.identifier(partition))\(concurrently ? " CONCURRENTLY" : "")")
    }

    /// Attaches an existing table as the range partition `[from, to)`.
    public func attach(_ partition: String, to table: String, from: String, to upper: String) async throws {
        try await execute("ALTER TABLE \(try Self.identifier(table)) ATTACH PARTITION \(try Self.identifier(partition)) FOR VALUES FROM (\(Self.literal(from))) TO (\(Self.literal(upper)))")
    }

    /// Drops the range partitions of `table` whose upper bound is at or before `cutoff` (retention);
    /// returns the names dropped. Partitions with other bounds (list, hash, default) are left alone.
    @discardableResult
    public func dropTimePartitions(of table: String, endingBefore cutoff: Date) async throws -> [String] {
        var dropped: [String] = []
        for partition in try await partitions(of: table) {
            guard let upper = Self.upperTimeBound(partition.bound), upper <= cutoff else { continue }
            try await execute("DROP TABLE IF EXISTS \(try Self.identifier(partition.name))")
            dropped.append(partition.name)
        }
        return dropped
    }

    // MARK: SQL text

    private func execute(_ sql: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// A checked, quoted identifier. - Throws: `invalidArgument` for anything but `[a-z_][a-z0-9_]*` of up to 63 bytes.
    public static func identifier(_ name: String) throws -> String {
        let valid = !name.isEmpty && name.utf8.count <= 63 && name.unicodeScalars.enumerated().allSatisfy { index, scalar in
            (scalar >= "a" && scalar <= "z") || scalar == "_" || (index > 0 && scalar >= "0" && scalar <= "9")
        }
        guard valid else { throw NimbusError(.invalidArgument, "'\(name.prefix(80))' is not a plain lower-case SQL identifier of up to 63 bytes") }
        return "\"\(name)\""
    }

    /// A quoted string literal (single quotes doubled; no backslash escapes under standard_conforming_strings).
    public static func literal(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func timePartitionName(_ table: String, _ start: Date, _ interval: Interval, _ calendar: Calendar) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: start)
        let year = parts.year ?? 0, month = parts.month ?? 0, day = parts.day ?? 0
        let two = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return interval == .day ? "\(table)_p\(year)\(two(month))\(two(day))" : "\(table)_p\(year)\(two(month))"
    }

    /// The `TO ('…')` of a range bound read as a timestamp, if it is one.
    static func upperTimeBound(_ bound: String) -> Date? {
        guard let to = bound.range(of: "TO ('") else { return nil }
        let rest = bound[to.upperBound...]
        guard let end = rest.firstIndex(of: "'") else { return nil }
        let text = String(rest[..<end])
        // PostgreSQL prints timestamptz bounds as "2026-12-01 00:00:00+00".
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        for format in ["yyyy-MM-dd HH:mm:ssXXX", "yyyy-MM-dd HH:mm:ssX", "yyyy-MM-dd HH:mm:ss.SSSSSSX", "yyyy-MM-dd"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
