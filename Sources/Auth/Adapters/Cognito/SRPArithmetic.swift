/// Unsigned integers of any size, only as much as SRP needs: parse and print big-endian bytes,
/// add, subtract, multiply, reduce, and modular exponentiation (Montgomery, 64-bit limbs).
/// Values are not secret-independent in time; SRP's client side only exponentiates its own
/// ephemeral secret, which is fresh for every sign-in.
struct SRPInteger: Equatable, Sendable {
    /// Little-endian limbs, without high zero limbs (zero is `[]`).
    private(set) var limbs: [UInt64]

    init(limbs: [UInt64]) {
        self.limbs = limbs
        normalize()
    }

    init(_ value: UInt64) { self.init(limbs: [value]) }

    /// From big-endian bytes.
    init(bytes: some Collection<UInt8>) {
        var limbs: [UInt64] = []
        var current: UInt64 = 0, shift: UInt64 = 0
        for byte in bytes.reversed() {
            current |= UInt64(byte) << shift
            shift += 8
            if shift == 64 {
                limbs.append(current)
                current = 0
                shift = 0
            }
        }
        if shift > 0 { limbs.append(current) }
        self.init(limbs: limbs)
    }

    /// From hexadecimal digits (no prefix); `nil` for anything else.
    init?(hex: some StringProtocol) {
        var bytes: [UInt8] = []
        var digits = Array(hex.utf8)
        guard !digits.isEmpty else { return nil }
        if digits.count % 2 == 1 { digits.insert(UInt8(ascii: "0"), at: 0) }
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.init(bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private mutating func normalize() {
        while limbs.last == 0 { limbs.removeLast() }
    }

    var isZero: Bool { limbs.isEmpty }

    /// Minimal big-endian bytes (`[]` for zero).
    var bytes: [UInt8] {
        var out: [UInt8] = []
        for limb in limbs.reversed() {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: limb >> UInt64(shift))) }
        }
        return Array(out.drop { $0 == 0 })
    }

    /// Lowercase hexadecimal without leading zeros (`0` for zero).
    var hex: String {
        let trimmed = bytes.hexString.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    var bitWidth: Int { limbs.isEmpty ? 0 : limbs.count * 64 - limbs.last!.leadingZeroBitCount }

    func bit(_ index: Int) -> Bool {
        let limb = index / 64
        return limb < limbs.count && (limbs[limb] >> UInt64(index % 64)) & 1 == 1
    }

    static func < (lhs: SRPInteger, rhs: SRPInteger) -> Bool {
        if lhs.limbs.count != rhs.limbs.count { return lhs.limbs.count < rhs.limbs.count }
        for index in stride(from: lhs.limbs.count - 1, through: 0, by: -1) where lhs.limbs[index] != rhs.limbs[index] {
            return lhs.limbs[index] < rhs.limbs[index]
        }
        return false
    }

    static func + (lhs: SRPInteger, rhs: SRPInteger) -> SRPInteger {
        var out = [UInt64](repeating: 0, count: max(lhs.limbs.count, rhs.limbs.count) + 1)
        var carry: UInt64 = 0
        for index in 0..<(out.count - 1) {
            let a = index < lhs.limbs.count ? lhs.limbs[index] : 0
            let b = index < rhs.limbs.count ? rhs.limbs[index] : 0
            let (s1, c1) = a.addingReportingOverflow(b)
            let (s2, c2) = s1.addingReportingOverflow(carry)
            out[index] = s2
            carry = (c1 ? 1 : 0) + (c2 ? 1 : 0)
        }
        out[out.count - 1] = carry
        return SRPInteger(limbs: out)
    }

    /// `lhs - rhs`; requires `rhs <= lhs`.
    static func - (lhs: SRPInteger, rhs: SRPInteger) -> SRPInteger {
        precondition(!(lhs < rhs), "SRPInteger subtraction would go below zero")
        var out = lhs.limbs
        var borrow: UInt64 = 0
        for index in 0..<out.count {
            let b = index < rhs.limbs.count ? rhs.limbs[index] : 0
            let (d1, o1) = out[index].subtractingReportingOverflow(b)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            out[index] = d2
            borrow = (o1 ? 1 : 0) + (o2 ? 1 : 0)
        }
        return SRPInteger(limbs: out)
    }

    static func * (lhs: SRPInteger, rhs: SRPInteger) -> SRPInteger {
        guard !lhs.isZero, !rhs.isZero else { return SRPInteger(limbs: []) }
        var out = [UInt64](repeating: 0, count: lhs.limbs.count + rhs.limbs.count)
        for i in 0..<lhs.limbs.count {
            var carry: UInt64 = 0
            for j in 0..<rhs.limbs.count {
                let (high, low) = lhs.limbs[i].multipliedFullWidth(by: rhs.limbs[j])
                let (s1, c1) = low.addingReportingOverflow(out[i + j])
                let (s2, c2) = s1.addingReportingOverflow(carry)
                out[i + j] = s2
                carry = high &+ (c1 ? 1 : 0) &+ (c2 ? 1 : 0)
            }
            out[i + rhs.limbs.count] = carry
        }
        return SRPInteger(limbs: out)
    }

    /// `self mod modulus`, by shifting and subtracting (used once or twice per sign-in).
    func remainder(_ modulus: SRPInteger) -> SRPInteger {
        precondition(!modulus.isZero, "SRPInteger division by zero")
        guard !(self < modulus) else { return self }
        var remainder = SRPInteger(limbs: [])
        for index in stride(from: bitWidth - 1, through: 0, by: -1) {
            remainder = remainder.shiftedLeftOne(setting: bit(index))
            if !(remainder < modulus) { remainder = remainder - modulus }
        }
        return remainder
    }

    private func shiftedLeftOne(setting low: Bool) -> SRPInteger {
        var out = [UInt64](repeating: 0, count: limbs.count + 1)
        var carry: UInt64 = low ? 1 : 0
        for index in 0..<limbs.count {
            out[index] = limbs[index] << 1 | carry
            carry = limbs[index] >> 63
        }
        out[limbs.count] = carry
        return SRPInteger(limbs: out)
    }
}

/// Arithmetic modulo one odd modulus in Montgomery form.
struct SRPModulus: Sendable {
    let modulus: SRPInteger
    private let n: [UInt64]
    private let inverse: UInt64
    private let rSquared: [UInt64]
    private let one: [UInt64]

    init(_ modulus: SRPInteger) {
        precondition(modulus.bit(0), "Montgomery arithmetic needs an odd modulus")
        self.modulus = modulus
        n = modulus.limbs
        var inverse: UInt64 = 1
        for _ in 0..<6 { inverse = inverse &* (2 &- n[0] &* inverse) }
        self.inverse = 0 &- inverse
        let r = SRPInteger(limbs: [UInt64](repeating: 0, count: n.count) + [1]).remainder(modulus)
        rSquared = Self.padded((r * r).remainder(modulus), n.count)
        one = Self.padded(SRPInteger(1), n.count)
    }

    private static func padded(_ value: SRPInteger, _ count: Int) -> [UInt64] {
        value.limbs + [UInt64](repeating: 0, count: count - value.limbs.count)
    }

    /// a·b·R⁻¹ mod N (CIOS).
    private func multiply(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        let count = n.count
        var t = [UInt64](repeating: 0, count: count + 2)
        for i in 0..<count {
            var carry: UInt64 = 0
            for j in 0..<count {
                let (high, low) = a[i].multipliedFullWidth(by: b[j])
                let (s1, c1) = low.addingReportingOverflow(t[j])
                let (s2, c2) = s1.addingReportingOverflow(carry)
                t[j] = s2
                carry = high &+ (c1 ? 1 : 0) &+ (c2 ? 1 : 0)
            }
            let (top, overflow) = t[count].addingReportingOverflow(carry)
            t[count] = top
            t[count + 1] = overflow ? 1 : 0
            let m = t[0] &* inverse
            let (high0, low0) = m.multipliedFullWidth(by: n[0])
            carry = high0 &+ (low0.addingReportingOverflow(t[0]).overflow ? 1 : 0)
            for j in 1..<count {
                let (high, low) = m.multipliedFullWidth(by: n[j])
                let (s1, c1) = low.addingReportingOverflow(t[j])
                let (s2, c2) = s1.addingReportingOverflow(carry)
                t[j - 1] = s2
                carry = high &+ (c1 ? 1 : 0) &+ (c2 ? 1 : 0)
            }
            let (last, c3) = t[count].addingReportingOverflow(carry)
            t[count - 1] = last
            t[count] = t[count + 1] &+ (c3 ? 1 : 0)
        }
        var result = SRPInteger(limbs: Array(t[0...count]))
        if !(result < modulus) { result = result - modulus }
        return Self.padded(result, count)
    }

    /// `base^exponent mod N`; `base` must be below N.
    func power(_ base: SRPInteger, _ exponent: SRPInteger) -> SRPInteger {
        precondition(base < modulus, "the base of a modular power must be reduced first")
        let montgomeryBase = multiply(Self.padded(base, n.count), rSquared)
        var accumulator = multiply(one, rSquared)
        for index in stride(from: exponent.bitWidth - 1, through: 0, by: -1) {
            accumulator = multiply(accumulator, accumulator)
            if exponent.bit(index) { accumulator = multiply(accumulator, montgomeryBase) }
        }
        return SRPInteger(limbs: multiply(accumulator, one))
    }

    /// `a·b mod N` for `a`, `b` below N.
    func product(_ a: SRPInteger, _ b: SRPInteger) -> SRPInteger {
        let montgomery = multiply(multiply(Self.padded(a, n.count), rSquared), Self.padded(b, n.count))
        return SRPInteger(limbs: montgomery)
    }
}
