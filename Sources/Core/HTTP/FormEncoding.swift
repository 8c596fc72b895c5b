import Foundation
import NimbusCore

/// Encodes values as `application/x-www-form-urlencoded`, with nested keys in brackets — the
/// form Stripe and many other APIs take: `metadata[order]=42&items[0][price]=price_1`.
///
/// ```swift
/// let body = try FormEncoder().encode(["amount": 2000, "metadata": ["order": "42"], "expand": ["customer"]])
/// // amount=2000&expand%5B0%5D=customer&metadata%5Border%5D=42
/// ```
/// Keys are sorted for a stable output; `null` members are left out; booleans are `true`/`false`.
public struct FormEncoder: Sendable {
    /// How array elements are keyed.
    public enum ArrayEncoding: Sendable {
        /// `items[0]=a&items[1]=b` (Stripe).
        case indexed
        /// `items[]=a&items[]=b` (Rails, PHP).
        case brackets
        /// `items=a&items=b` (Twilio, Go's url.Values).
        case repeated
    }

    /// How arrays are keyed.
    public var arrayEncoding: ArrayEncoding

    /// Creates an encoder.
    public init(arrayEncoding: ArrayEncoding = .indexed) { self.arrayEncoding = arrayEncoding }

    /// Encodes any `Encodable` (through its JSON form).
    public func encode<T: Encodable>(_ value: T) throws -> String {
        let json: JSONValue
        if let direct = value as? JSONValue { json = direct }
        else {
            do { json = try JSONValue(encoding: value, encoder: .nimbus) }
            catch { throw NimbusError(.invalidArgument, "cannot form-encode \(T.self): \(error)", underlying: error) }
        }
        guard case .object = json else {
            throw NimbusError(.invalidArgument, "a form body must be an object of fields, not a \(json.typeName)")
        }
        return pairs(json).map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
    }

    /// The flattened `(key, value)` pairs, in output order.
    public func pairs(_ value: JSONValue) -> [(String, String)] {
        var output: [(String, String)] = []
        flatten(value, key: nil, into: &output)
        return output
    }

    private func flatten(_ value: JSONValue, key: String?, into output: inout [(String, String)]) {
        switch value {
        case .null: return
        case .bool(let flag): if let key { output.append((key, flag ? "true" : "false")) }
        case .number(let number): if let key { output.append((key, Self.format(number))) }
        case .string(let text): if let key { output.append((key, text)) }
        case .array(let elements):
            guard let key else { return }
            for (index, element) in elements.enumerated() {
                switch arrayEncoding {
                case .indexed: flatten(element, key: "\(key)[\(index)]", into: &output)
                case .brackets: flatten(element, key: "\(key)[]", into: &output)
                case .repeated: flatten(element, key: key, into: &output)
                }
            }
        case .object(let members):
            for name in members.keys.sorted() {
                flatten(members[name] ?? .null, key: key.map { "\($0)[\(name)]" } ?? name, into: &output)
            }
        }
    }

    static func format(_ number: Double) -> String {
        if number.rounded() == number, abs(number) < 9.007e15 { return String(Int64(number)) }
        return String(number)
    }

    private static let unreserved: Set<UInt8> = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._".utf8)

    private static let rfc3986Unreserved: Set<UInt8> = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    /// Percent-encodes everything but RFC 3986's unreserved characters (space is `%20`): a path
    /// segment or a query value that must reach the server byte for byte (`#`, `+`, `/`, `'` included).
    public static func escapeComponent(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if rfc3986Unreserved.contains(byte) { output.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { output += String(format: "%%%02X", byte) }
        }
        return output
    }

    /// Percent-encodes per the WHATWG `application/x-www-form-urlencoded` serializer (space is `+`).
    public static func escape(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved.contains(byte) { output.unicodeScalars.append(Unicode.Scalar(byte)) }
            else if byte == 0x20 { output.append("+") }
            else { output += String(format: "%%%02X", byte) }
        }
        return output
    }
}

/// Decodes `application/x-www-form-urlencoded` back into nested values: `a[b][0]=x` becomes
/// `{"a": {"b": ["x"]}}`. Every leaf is a string (forms carry no types).
public enum FormDecoder {
    /// The flat pairs, percent-decoded (`+` is a space).
    public static func pairs(_ body: String) -> [(String, String)] {
        body.split(separator: "&", omittingEmptySubsequences: true).map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = unescape(String(pieces[0]))
            return (key, pieces.count > 1 ? unescape(String(pieces[1])) : "")
        }
    }

    /// The nested value. - Throws: `invalidArgument` when a key's brackets do not balance or a key is
    /// used both as a leaf and as a container.
    public static func decode(_ body: String) throws -> JSONValue {
        var root = Node.object([])
        for (key, value) in pairs(body) {
            try root.insert(try parse(key: key)[...], value: value, fullKey: key)
        }
        return root.json
    }

    private static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? text
    }

    /// `a[b][0][]` → ["a", "b", "0", ""].
    static func parse(key: String) throws -> [String] {
        guard let open = key.firstIndex(of: "[") else { return [key] }
        var parts = [String(key[..<open])]
        var rest = key[open...]
        while !rest.isEmpty {
            guard rest.first == "[", let close = rest.firstIndex(of: "]") else {
                throw NimbusError(.invalidArgument, "form key '\(key)' has unbalanced brackets")
            }
            parts.append(String(rest[rest.index(after: rest.startIndex)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return parts
    }

    private indirect enum Node {
        case leaf(String)
        case object([(String, Node)])
        case list([Node])

        var isEmptyContainer: Bool {
            switch self {
            case .object(let members): members.isEmpty
            case .list(let elements): elements.isEmpty
            case .leaf: false
            }
        }

        mutating func insert(_ path: ArraySlice<String>, value: String, fullKey: String) throws {
            guard let head = path.first else {
                if case .leaf = self { self = .leaf(value); return }      // a repeated key: the last wins
                guard isEmptyContainer else { throw conflict(fullKey) }
                self = .leaf(value)
                return
            }
            let tail = path.dropFirst()
            var child = Node.object([])
            try child.insert(tail, value: value, fullKey: fullKey)
            switch self {
            case .leaf:
                throw conflict(fullKey)
            case .list(var elements) where head.isEmpty:
                elements.append(child)
                self = .list(elements)
            case .object(let members) where head.isEmpty && members.isEmpty:
                self = .list([child])
            case .object(var members) where !head.isEmpty:
                if let index = members.firstIndex(where: { $0.0 == head }) {
                    try members[index].1.insert(tail, value: value, fullKey: fullKey)
                } else {
                    members.append((head, child))
                }
                self = .object(members)
            default:
                throw NimbusError(.invalidArgument, "form key '\(fullKey)' mixes [] and named keys at one level")
            }
        }

        private func conflict(_ key: String) -> NimbusError {
            NimbusError(.invalidArgument, "form key '\(key)' is used both as a value and as a container")
        }

        var json: JSONValue {
            switch self {
            case .leaf(let value): return .string(value)
            case .list(let elements): return .array(elements.map(\.json))
            case .object(let members):
                // {"0": a, "1": b} written with indexes is an array.
                let indexes = members.compactMap { Int($0.0) }
                if !members.isEmpty, indexes.count == members.count, Set(indexes) == Set(0..<members.count) {
                    let byIndex = Dictionary(members.map { (Int($0.0) ?? 0, $0.1) }, uniquingKeysWith: { _, last in last })
                    return .array((0..<members.count).map { byIndex[$0]?.json ?? .null })
                }
                return .object(Dictionary(members.map { ($0.0, $0.1.json) }, uniquingKeysWith: { _, last in last }))
            }
        }
    }
}
