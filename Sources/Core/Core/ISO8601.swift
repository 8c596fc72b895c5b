import Foundation

extension Date {
    /// Reads an RFC 3339 / ISO 8601 internet date-time, with or without fractional seconds
    /// (`2026-11-26T10:00:00Z`, `2026-11-26T10:00:00.123+01:00`); `nil` for anything else.
    ///
    /// ```swift
    /// Date(iso8601: "2026-11-26T10:00:00.669Z")
    /// ```
    public init?(iso8601 text: String) {
        if let date = ISO8601DateFormatter().date(from: text) {
            self = date
            return
        }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = fractional.date(from: text) else { return nil }
        self = date
    }
}

extension Date {
    /// The date as an RFC 3339 internet date-time in UTC, to the second (`2026-11-26T10:00:00Z`).
    public var iso8601: String { ISO8601DateFormatter().string(from: self) }
}

extension Date {
    /// Milliseconds since 1970, rounded down (the time unit of Redis scores, Kafka and JavaScript).
    public var nimbusMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
}
