/// A CBOR data item (RFC 8949), as WebAuthn's attestation objects, COSE keys and extension
/// outputs carry them.
///
/// Decoding is strict: definite lengths only, no duplicate map keys, lengths checked against the
/// bytes that remain before anything is allocated, and a nesting limit. Encoding writes the
/// CTAP2 canonical form (shortest integer heads, map keys sorted by their encoded bytes, length
/// first) that authenticators produce.
///
/// ```swift
/// let key = try CBOR.decode(coseKeyBytes)
/// let algorithm = key[3]?.int          // -7 for ES256
/// let bytes = CBOR.map([.init(.unsigned(1), .unsigned(2))]).encoded()
/// ```
public indirect enum CBOR: Sendable, Hashable {
    /// Major type 0.
    case unsigned(UInt64)
    /// Major type 1: the value is `-1 - n`.
    case negative(UInt64)
    /// Major type 2.
    case bytes([UInt8])
    /// Major type 3.
    case text(String)
    /// Major type 4.
    case array([CBOR])
    /// Major type 5, in the order the entries were read (or are to be written before sorting).
    case map([Entry])
    /// Major type 6.
    case tagged(UInt64, CBOR)
    /// `true` / `false`.
    case bool(Bool)
    /// `null`.
    case null
    /// `undefined`.
    case undefined
    /// A half, single or double precision float.
    case float(Double)
    /// Another simple value.
    case simple(UInt8)

    /// One key/value pair of a map.
    public struct Entry: Sendable, Hashable {
        /// The key.
        public var key: CBOR
        /// The value.
        public var value: CBOR
        /// Creates an entry.
        public init(_ key: CBOR, _ value: CBOR) {
            self.key = key
            self.value = value
        }
    }

    /// An integer item for `value` (major type 0 or 1).
    public static func int(_ value: Int) -> CBOR {
        value >= 0 ? .unsigned(UInt64(value)) : .negative(UInt64(-1 - value))
    }

    /// The value of an integer item that fits in `Int`.
    public var int: Int? {
        switch self {
        case .unsigned(let n): return n <= UInt64(Int.max) ? Int(n) : nil
        case .negative(let n): return n <= UInt64(Int.max) ? -1 - Int(n) : nil
        default: return nil
        }
    }

    /// The bytes of a byte string.
    public var bytes: [UInt8]? { if case .bytes(let b) = self { b } else { nil } }
    /// The text of a text string.
    public var text: String? { if case .text(let t) = self { t } else { nil } }
    /// The items of an array.
    public var array: [CBOR]? { if case .array(let a) = self { a } else { nil } }
    /// The entries of a map.
    public var entries: [Entry]? { if case .map(let m) = self { m } else { nil } }
    /// The value of a boolean.
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }

    /// The value under an integer key of a map (COSE labels).
    public subscript(key: Int) -> CBOR? { self[.int(key)] }
    /// The value under a text key of a map.
    public subscript(key: String) -> CBOR? { self[.text(key)] }
    /// The value under `key` of a map, or `nil` if this is not a map or has no such key.
    public subscript(key: CBOR) -> CBOR? { entries?.first { $0.key == key }?.value }
}

/// Why CBOR bytes were refused.
public struct CBORError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, with the offset where it was found.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { "CBOR: \(message)" }
}

extension CBOR {
    /// Limits on what the decoder accepts.
    public struct DecodingLimits: Sendable, Hashable {
        /// The deepest nesting of arrays, maps and tags.
        public var maxDepth: Int = 16
        /// The most items in one array or map.
        public var maxItems: Int = 4096
        /// Creates the default limits (depth 16, 4096 items per container).
        public init() {}
    }

    /// Decodes exactly one item that fills `bytes`.
    /// - Throws: ``CBORError`` for truncated, malformed, non-definite or trailing bytes.
    public static func decode(_ bytes: some Collection<UInt8>, limits: DecodingLimits = .init()) throws -> CBOR {
        let buffer = Array(bytes)
        var reader = Reader(bytes: buffer, limits: limits)
        let item = try reader.item(depth: 0)
        guard reader.offset == buffer.count else {
            throw CBORError("\(buffer.count - reader.offset) bytes follow the item at offset \(reader.offset)")
        }
        return item
    }

    /// Decodes the first item of `bytes` and says how many bytes it took (authenticator data
    /// carries a COSE key followed by an extensions map, with no length in between).
    public static func decodePrefix(_ bytes: some Collection<UInt8>, limits: DecodingLimits = .init()) throws -> (item: CBOR, length: Int) {
        var reader = Reader(bytes: Array(bytes), limits: limits)
        let item = try reader.item(depth: 0)
        return (item, reader.offset)
    }

    private struct Reader {
        let bytes: [UInt8]
        let limits: DecodingLimits
        var offset = 0

        init(bytes: [UInt8], limits: DecodingLimits) {
            self.bytes = bytes
            self.limits = limits
        }

        mutating func byte() throws -> UInt8 {
            guard offset < bytes.count else { throw CBORError("truncated at offset \(offset)") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func take(_ count: UInt64) throws -> ArraySlice<UInt8> {
            guard count <= UInt64(bytes.count - offset) else {
                throw CBORError("a length of \(count) at offset \(offset) runs past the end (\(bytes.count - offset) bytes left)")
            }
            defer { offset += Int(count) }
            return bytes[offset..<offset + Int(count)]
        }

        mutating func argument(_ info: UInt8) throws -> UInt64 {
            switch info {
            case 0..<24: return UInt64(info)
            case 24...27:
                let width = 1 << Int(info - 24)
                return try take(UInt64(width)).reduce(0) { $0 << 8 | UInt64($1) }
            case 31: throw CBORError("indefinite-length item at offset \(offset - 1); only definite lengths are accepted")
            default: throw CBORError("reserved additional information \(info) at offset \(offset - 1)")
            }
        }

        mutating func count(_ info: UInt8) throws -> Int {
            let n = try argument(info)
            guard n <= UInt64(limits.maxItems) else {
                throw CBORError("a container of \(n) items at offset \(offset) exceeds the limit of \(limits.maxItems)")
            }
            return Int(n)
        }

        mutating func item(depth: Int) throws -> CBOR {
            guard depth <= limits.maxDepth else { throw CBORError("nesting deeper than \(limits.maxDepth) at offset \(offset)") }
            let start = offset
            let initial = try byte()
            let major = initial >> 5, info = initial & 0x1f
            switch major {
            case 0: return .unsigned(try argument(info))
            case 1: return .negative(try argument(info))
            case 2: return .bytes(Array(try take(try argument(info))))
            case 3:
                let raw = try take(try argument(info))
                guard let text = String(validating: raw, as: UTF8.self) else { throw CBORError("text string at offset \(start) is not UTF-8") }
                return .text(text)
            case 4:
                let n = try count(info)
                var items: [CBOR] = []
                items.reserveCapacity(n)
                for _ in 0..<n { items.append(try item(depth: depth + 1)) }
                return .array(items)
            case 5:
                let n = try count(info)
                var entries: [Entry] = []
                var seen = Set<CBOR>()
                for _ in 0..<n {
                    let keyOffset = offset
                    let key = try item(depth: depth + 1)
                    guard seen.insert(key).inserted else { throw CBORError("duplicate map key at offset \(keyOffset)") }
                    entries.append(Entry(key, try item(depth: depth + 1)))
                }
                return .map(entries)
            case 6: return .tagged(try argument(info), try item(depth: depth + 1))
            default:
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22: return .null
                case 23: return .undefined
                case 24:
                    let value = try byte()
                    guard value >= 32 else { throw CBORError("simple value \(value) at offset \(start) must use the one-byte form") }
                    return .simple(value)
                case 25: return .float(Self.half(UInt16(try argument(info))))
                case 26: return .float(Double(Float(bitPattern: UInt32(try argument(info)))))
                case 27: return .float(Double(bitPattern: try argument(info)))
                case 31: throw CBORError("break code at offset \(start) outside an indefinite-length item")
                case 0..<20: return .simple(info)
                default: throw CBORError("reserved simple value \(info) at offset \(start)")
                }
            }
        }

        static func half(_ bits: UInt16) -> Double {
            let sign: Double = bits & 0x8000 == 0 ? 1 : -1
            let exponent = Int(bits >> 10 & 0x1f), fraction = Double(bits & 0x3ff)
            switch exponent {
            case 0: return sign * fraction * 0x1p-24
            case 31: return fraction == 0 ? sign * .infinity : .nan
            default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
            }
        }
    }
}

extension CBOR {
    /// The CTAP2 canonical encoding of this item.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    private static func head(_ major: UInt8, _ value: UInt64, into out: inout [UInt8]) {
        let m = major << 5
        switch value {
        case 0..<24: out.append(m | UInt8(value))
        case 24...0xff: out += [m | 24, UInt8(value)]
        case 0x100...0xffff: out += [m | 25, UInt8(value >> 8), UInt8(value & 0xff)]
        case 0x10000...0xffff_ffff: out.append(m | 26); for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(value >> UInt64(shift) & 0xff)) }
        default: out.append(m | 27); for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(value >> UInt64(shift) & 0xff)) }
        }
    }

    private func encode(into out: inout [UInt8]) {
        switch self {
        case .unsigned(let n): Self.head(0, n, into: &out)
        case .negative(let n): Self.head(1, n, into: &out)
        case .bytes(let b): Self.head(2, UInt64(b.count), into: &out); out += b
        case .text(let t): Self.head(3, UInt64(t.utf8.count), into: &out); out += Array(t.utf8)
        case .array(let items): Self.head(4, UInt64(items.count), into: &out); for item in items { item.encode(into: &out) }
        case .map(let entries):
            Self.head(5, UInt64(entries.count), into: &out)
            let sorted = entries.map { (key: $0.key.encoded(), value: $0.value) }.sorted { a, b in
                a.key.count != b.key.count ? a.key.count < b.key.count : a.key.lexicographicallyPrecedes(b.key)
            }
            for entry in sorted { out += entry.key; entry.value.encode(into: &out) }
        case .tagged(let tag, let item): Self.head(6, tag, into: &out); item.encode(into: &out)
        case .bool(let b): out.append(b ? 0xf5 : 0xf4)
        case .null: out.append(0xf6)
        case .undefined: out.append(0xf7)
        case .float(let d): out.append(0xfb); for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(d.bitPattern >> UInt64(shift) & 0xff)) }
        case .simple(let v): if v < 24 { out.append(0xe0 | v) } else { out += [0xf8, v] }
        }
    }
}
