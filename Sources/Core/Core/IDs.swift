import Foundation
import Synchronization

/// Generates time-ordered identifiers: UUIDv7 (RFC 9562) and ULID.
///
/// Both put the Unix time in milliseconds in their first 48 bits, so they sort by creation
/// time as bytes and as text. Within one millisecond the generator is monotonic: the random
/// part of the next id is the previous one plus one (RFC 9562 §6.2 method 2, the ULID spec's
/// monotonic mode), so ids made in a burst still sort in the order they were made.
///
/// ```swift
/// let id = IDGenerator.shared.ulid()        // 01JDQ3V5Y7M8Z5X2K9T4W6C3R1
/// let uuid = IDGenerator.shared.uuidV7()    // 019364a2-7c5e-7b41-9d2e-...
/// ```
public final class IDGenerator: Sendable {
    private struct State {
        var millis: UInt64 = 0
        var random: (high: UInt16, low: UInt64) = (0, 0)   // 80 bits: 16 + 64
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> UInt64

    /// A process-wide generator on the system clock.
    public static let shared = IDGenerator()

    /// Creates a generator; `now` returns Unix milliseconds (inject a fixed clock in tests).
    public init(now: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }) {
        self.now = now
    }

    /// 48 bits of time and 80 bits that are random, or the previous id's plus one.
    private func next(randomBits: Int) -> (millis: UInt64, high: UInt16, low: UInt64) {
        state.withLock { state in
            let current = now()
            if current > state.millis {
                state.millis = current
                var generator = SystemRandomNumberGenerator()
                state.random = (UInt16.random(in: 0...UInt16.max, using: &generator), generator.next())
                // Leave headroom so the increment within the millisecond rarely overflows.
                if randomBits < 80 { state.random.high &= UInt16((1 << (randomBits - 64)) - 1) >> 1 }
            } else {
                // Same (or an earlier, if the clock stepped back) millisecond: increment.
                let (low, overflow) = state.random.low.addingReportingOverflow(1)
                state.random.low = low
                if overflow {
                    let limit = randomBits < 80 ? UInt16((1 << (randomBits - 64)) - 1) : UInt16.max
                    if state.random.high >= limit {
                        state.millis += 1   // random space exhausted: borrow the next millisecond
                        state.random = (0, 0)
                    } else {
                        state.random.high += 1
                    }
                }
            }
            return (state.millis, state.random.high, state.random.low)
        }
    }

    /// A new ULID.
    public func ulid() -> ULID {
        let (millis, high, low) = next(randomBits: 80)
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - i))) }
        bytes[6] = UInt8(truncatingIfNeeded: high >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: high)
        for i in 0..<8 { bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (8 * (7 - i))) }
        return ULID(checkedBytes: bytes)
    }

    /// A new version-7 UUID: 48 bits of milliseconds, version `7`, 74 monotonic random bits, variant `10`.
    public func uuidV7() -> UUID {
        // 74 bits: 12 (rand_a) + 62 (rand_b), kept as high (10 bits above the low 64) for the counter.
        let (millis, high, low) = next(randomBits: 74)
        // Lay the 74 bits out: rand_a = top 12 bits, rand_b = low 62 bits.
        let combinedHigh = (UInt64(high) << 2) | (low >> 62)       // 12 bits
        let randB = low & 0x3FFF_FFFF_FFFF_FFFF                    // 62 bits
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - i))) }
        b[6] = 0x70 | UInt8(truncatingIfNeeded: (combinedHigh >> 8) & 0x0F)
        b[7] = UInt8(truncatingIfNeeded: combinedHigh)
        b[8] = 0x80 | UInt8(truncatingIfNeeded: (randB >> 56) & 0x3F)
        for i in 1..<8 { b[8 + i] = UInt8(truncatingIfNeeded: randB >> (8 * (7 - i))) }
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// A Universally Unique Lexicographically Sortable Identifier: 128 bits, written as 26
/// Crockford base-32 characters (`01ARZ3NDEKTSV4RRFFQ69G5FAV`).
public struct ULID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The 16 bytes, big-endian: 6 of time, 10 of randomness.
    public let bytes: [UInt8]

    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Wraps 16 bytes; `nil` unless there are exactly 16.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    init(checkedBytes bytes: [UInt8]) { self.bytes = bytes }

    /// Parses the 26-character text form; case-insensitive, and `I`/`L` read as `1`, `O` as `0`.
    public init?(_ text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 26 else { return nil }
        var value: (UInt64, UInt64) = (0, 0)   // high 64, low 64
        for (index, char) in chars.enumerated() {
            guard let digit = ULID.decode(char) else { return nil }
            if index == 0 && digit > 7 { return nil }   // would overflow 128 bits
            value.0 = (value.0 << 5) | (value.1 >> 59)
            value.1 = (value.1 << 5) | UInt64(digit)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: value.0 >> (8 * (7 - i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: value.1 >> (8 * (7 - i)))
        }
        self.bytes = bytes
    }

    private static func decode(_ char: UInt8) -> UInt8? {
        var c = char
        if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") { c -= 32 }
        switch c {
        case UInt8(ascii: "I"), UInt8(ascii: "L"): return 1
        case UInt8(ascii: "O"): return 0
        default: return alphabet.firstIndex(of: c).map(UInt8.init)
        }
    }

    /// Milliseconds since the Unix epoch.
    public var timestampMilliseconds: UInt64 {
        bytes[0..<6].reduce(0) { ($0 << 8) | UInt64($1) }
    }

    public var description: String {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = (high << 8) | UInt64(bytes[i]); low = (low << 8) | UInt64(bytes[8 + i]) }
        var out = [UInt8](repeating: 0, count: 26)
        for index in (0..<26).reversed() {
            out[index] = ULID.alphabet[Int(low & 0x1F)]
            low = (low >> 5) | (high << 59)
            high >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (lhs: ULID, rhs: ULID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = ULID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a ULID: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
