import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line (`ts`, `level`, `label`, `msg`, then
/// the metadata), and redacts metadata whose key names a secret (`authorization`, `password`,
/// `token`, `api_key`...), whatever the caller passed.
///
/// ```swift
/// LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
/// ```
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// Creates a handler writing to standard error (or to `write`, for tests).
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: (@Sendable (String) -> Void)? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write ?? { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var object: [String: JSONValue] = [
            "ts": .string(ISO8601DateFormatter.nimbus.string(from: Date())),
            "level": .string(event.level.rawValue),
            "label": .string(label),
            "msg": .string(event.message.description),
        ]
        for (key, value) in merged where object[key] == nil {
            object[key] = LogRedaction.isSensitive(key) ? .string(LogRedaction.placeholder) : Self.json(value)
        }
        write(JSONValue.object(object).description)
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let members):
            .object(Dictionary(uniqueKeysWithValues: members.map { key, value in
                (key, LogRedaction.isSensitive(key) ? JSONValue.string(LogRedaction.placeholder) : json(value))
            }))
        }
    }
}

/// The one list of header and field names whose values never reach a log.
public enum LogRedaction {
    /// What a redacted value is replaced with.
    public static let placeholder = "<redacted>"

    /// Header names (lowercased) whose values are always redacted.
    public static let sensitiveHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-goog-api-key",
        "x-amz-security-token", "x-auth-token", "ocp-apim-subscription-key",
    ]

    /// Whether a header, metadata key or JSON field name carries a secret.
    public static func isSensitive(_ name: String) -> Bool {
        let lower = name.lowercased()
        if sensitiveHeaders.contains(lower) { return true }
        let markers = ["password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "authorization", "credential", "private_key"]
        return markers.contains { lower.contains($0) }
    }
}

extension ISO8601DateFormatter {
    /// ISO 8601 with fractional seconds, UTC. Formatter instances are thread-safe for formatting.
    nonisolated(unsafe) static let nimbus: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
