import Foundation
import NIOSSL
import NimbusCore
import PostgresNIO

extension PostgresClient.Configuration {
    /// A configuration from `postgres://user:password@host:port/database?sslmode=disable|prefer|require|verify-full`
    /// (default `verify-full`: TLS with certificate and host-name checks, like libpq's strictest mode).
    ///
    /// ```swift
    /// let client = PostgresClient(configuration: try .init(url: "postgres://app:secret@db.internal/app"))
    /// ```
    /// - Throws: `invalidArgument` for a URL it cannot use, naming what is wrong.
    public init(url: String) throws {
        try self.init(url: try OpenURL(url))
    }

    /// A configuration from a parsed `postgres://` URL (an opener's).
    public init(url parsed: OpenURL) throws {
        guard parsed.scheme == "postgres" || parsed.scheme == "postgresql" else {
            throw NimbusError(.invalidArgument, "'\(parsed)' is not a postgres:// URL")
        }
        try parsed.options.validate(known: ["sslmode"], for: "postgres")
        guard let host = parsed.host, !host.isEmpty else { throw NimbusError(.invalidArgument, "the postgres URL needs a host") }
        let database = parsed.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let tls: PostgresClient.Configuration.TLS
        switch parsed.options.string("sslmode") ?? "verify-full" {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require":
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(configuration)
        case "verify-full": tls = .require(.makeClientConfiguration())
        case let other: throw NimbusError(.invalidArgument, "sslmode '\(other)' is not one of disable, prefer, require, verify-full")
        }
        self.init(host: host, port: parsed.port ?? 5432, username: parsed.user ?? "postgres",
                  password: parsed.password?.reveal(), database: database.isEmpty ? nil : database, tls: tls)
    }
}
