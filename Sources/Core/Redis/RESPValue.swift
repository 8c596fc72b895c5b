import NimbusCore
import NIOCore

/// One reply (or one element of a reply) in the Redis serialization protocol, RESP2 or RESP3.
///
/// Error replies are values too (``error(_:)``): inside a pipeline one failed command must not
/// hide the replies of the others. Use the throwing accessors (``int(for:)``, ``bytes(for:)``...)
/// to read a reply as the type a command promises; they name the command when the type is wrong.
public enum RESPValue: Sendable, Hashable, CustomStringConvertible {
    /// `+OK` — a simple string.
    case simpleString(ByteBuffer)
    /// `-ERR ...` or `!` blob error — an error reply.
    case error(RedisServerError)
    /// `:42` — a signed 64-bit integer.
    case integer(Int64)
    /// `$5\r\nhello` — a binary-safe string.
    case bulkString(ByteBuffer)
    /// `*2 ...` — an array; `~` sets arrive as ``set(_:)``.
    case array([RESPValue])
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3).
    case null
    /// `,3.14` (RESP3), including `inf`, `-inf` and `nan`.
    case double(Double)
    /// `#t` / `#f` (RESP3).
    case boolean(Bool)
    /// `(3492890328409238509324850943850943825024385` (RESP3), kept as its decimal text.
    case bigNumber(String)
    /// `=15\r\ntxt:Some string` (RESP3): the 3-letter format and the text.
    case verbatimString(format: String, ByteBuffer)
    /// `%2 ...` (RESP3), in the server's order.
    case map([MapEntry])
    /// `~3 ...` (RESP3).
    case set([RESPValue])
    /// `>3 ...` (RESP3): an out-of-band push (pub/sub messages, client-side caching invalidations).
    case push([RESPValue])
    /// `|1 ...` (RESP3): a reply that came with attributes.
    indirect case attributed(attributes: [MapEntry], value: RESPValue)

    /// One key/value pair of a RESP3 map or attribute.
    public struct MapEntry: Sendable, Hashable {
        /// The key.
        public var key: RESPValue
        /// The value.
        public var value: RESPValue
        /// Creates a pair.
        public init(key: RESPValue, value: RESPValue) { self.key = key; self.value = value }
    }

    /// The RESP type name, as in Redis' documentation.
    public var typeName: String {
        switch self {
        case .simpleString: "simple string"
        case .error: "error"
        case .integer: "integer"
        case .bulkString: "bulk string"
        case .array: "array"
        case .null: "null"
        case .double: "double"
        case .boolean: "boolean"
        case .bigNumber: "big number"
        case .verbatimString: "verbatim string"
        case .map: "map"
        case .set: "set"
        case .push: "push"
        case .attributed(_, let value): value.typeName
        }
    }

    public var description: String {
        switch self {
        case .simpleString(let buffer): "+\(String(buffer: buffer))"
        case .error(let error): "-\(error.message)"
        case .integer(let value): ":\(value)"
        case .bulkString(let buffer): "\"\(String(buffer: buffer))\""
        case .array(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        case .null: "(nil)"
        case .double(let value): ",\(value)"
        case .boolean(let value): "#\(value ? "t" : "f")"
        case .bigNumber(let text): "(\(text)"
        case .verbatimString(let format, let buffer): "=\(format):\(String(buffer: buffer))"
        case .map(let entries): "{\(entries.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}"
        case .set(let values): "~[\(values.map(\.description).joined(separator: ", "))]"
        case .push(let values): ">[\(values.map(\.description).joined(separator: ", "))]"
        case .attributed(_, let value): value.description
        }
    }

    /// The reply without its RESP3 attributes.
    public var unwrapped: RESPValue {
        if case .attributed(_, let value) = self { return value }
        return self
    }

    private func wrongType(_ command: String, expected: String) -> NimbusError {
        NimbusError(.internal, "Redis replied to \(command) with a \(typeName) (\(description.prefix(80))) where \(expected) was expected; is this a Redis-compatible server?",
                    underlying: RedisProtocolError.unexpectedReply(command: command, reply: self))
    }

    /// Throws the server's error if this is an error reply.
    @discardableResult
    public func checked(for command: String) throws -> RESPValue {
        if case .error(let error) = unwrapped { throw error.nimbusError(command: command) }
        return unwrapped
    }

    /// The reply as an integer (`:n`, or RESP3 booleans as 0/1). - Throws: on an error reply or another type.
    public func int(for command: String) throws -> Int64 {
        switch try checked(for: command) {
        case .integer(let value): return value
        case .boolean(let value): return value ? 1 : 0
        default: throw wrongType(command, expected: "an integer")
        }
    }

    /// The reply as bytes, or `nil` for a null reply. - Throws: on an error reply or a non-string type.
    public func bytes(for command: String) throws -> ByteBuffer? {
        switch try checked(for: command) {
        case .bulkString(let buffer), .simpleString(let buffer), .verbatimString(_, let buffer): return buffer
        case .null: return nil
        default: throw wrongType(command, expected: "a string")
        }
    }

    /// The reply as an array (RESP3 sets too); `nil` for a null reply.
    public func array(for command: String) throws -> [RESPValue]? {
        switch try checked(for: command) {
        case .array(let values), .set(let values): return values
        case .null: return nil
        default: throw wrongType(command, expected: "an array")
        }
    }

    /// Whether the reply is `+OK`. `nil` replies (a `SET ... NX` that did not set) return `false`.
    public func isOK(for command: String) throws -> Bool {
        switch try checked(for: command) {
        case .simpleString(let buffer): return buffer.readableBytesView.elementsEqual("OK".utf8)
        case .null: return false
        case .bulkString: return true   // SET ... GET returns the old value
        default: throw wrongType(command, expected: "+OK or null")
        }
    }
}

/// An error reply from the server: `-WRONGTYPE Operation against a key holding the wrong kind of value`.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first word, the error's kind by Redis convention (`ERR`, `WRONGTYPE`, `NOAUTH`, `MOVED`...).
    public var code: String
    /// The whole error line.
    public var message: String

    /// Parses an error line.
    public init(message: String) {
        self.message = message
        self.code = message.split(separator: " ", maxSplits: 1).first.map(String.init) ?? "ERR"
    }

    public var description: String { message }

    /// The portable error for this reply to `command`.
    public func nimbusError(command: String) -> NimbusError {
        let kind: NimbusError.Code
        switch code {
        case "WRONGTYPE", "EXECABORT", "NOSCRIPT", "BUSYKEY": kind = .failedPrecondition
        case "NOAUTH", "WRONGPASS": kind = .unauthenticated
        case "NOPERM": kind = .permissionDenied
        case "OOM": kind = .resourceExhausted
        case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "MOVED", "ASK": kind = .unavailable
        default: kind = message.lowercased().contains("unknown command") ? .unimplemented : .invalidArgument
        }
        return NimbusError(kind, "Redis rejected \(command): \(message)", underlying: self)
    }
}

/// Why a byte stream is not valid RESP, or a reply not the one a command promises.
public enum RedisProtocolError: Error, Sendable, Hashable {
    /// The stream broke the protocol; the connection is closed since it can no longer be trusted.
    case malformed(String)
    /// A reply of another type than the command promises.
    case unexpectedReply(command: String, reply: RESPValue)
}

