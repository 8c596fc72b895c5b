import Foundation
import NimbusCore

/// An email address with an optional display name, checked when it is made.
///
/// The domain may be internationalized (`müller.de`): it is kept as given and converted to its
/// ASCII form (`xn--mller-kva.de`, IDNA with Punycode) for the SMTP envelope and headers. A local
/// part with non-ASCII characters is allowed but needs a server that offers SMTPUTF8.
///
/// ```swift
/// let from = try EmailAddress("Zoë Example <zoe@example.com>")
/// let list = try EmailAddress.list("a@example.com, \"Doe, Jane\" <jane@example.org>")
/// from.smtpAddress       // "zoe@example.com"
/// ```
public struct EmailAddress: Sendable, Hashable, StringCodable, CustomStringConvertible {
    /// The display name (`Zoë Example`), if any.
    public var name: String?
    /// What comes before the `@`, without quotes.
    public let localPart: String
    /// The domain as given (lower-cased), Unicode allowed.
    public let domain: String
    /// The domain in ASCII (Punycode labels prefixed `xn--`).
    public let asciiDomain: String

    /// Parses `Name <local@domain>`, `"Quoted, Name" <local@domain>` or a bare `local@domain`.
    /// - Throws: `invalidArgument` saying what is wrong with the address.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            let phrase = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            let inner = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            try self.init(address: inner, name: phrase.isEmpty ? nil : Self.unquote(phrase))
        } else {
            try self.init(address: trimmed, name: nil)
        }
    }

    /// Makes an address from its parts.
    /// - Throws: `invalidArgument` saying what is wrong with the address.
    public init(address: String, name: String? = nil) throws {
        guard let at = address.lastIndex(of: "@") else {
            throw NimbusError(.invalidArgument, "'\(address)' is not an email address: it has no '@'")
        }
        var local = String(address[..<at])
        let domain = String(address[address.index(after: at)...]).lowercased()
        if local.hasPrefix("\""), local.hasSuffix("\""), local.count >= 2 {
            local = Self.unquote(local)
        } else {
            try Self.checkDotAtom(local, in: address)
        }
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw NimbusError(.invalidArgument, "'\(address)': the part before '@' must have 1 to 64 bytes")
        }
        guard !local.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw NimbusError(.invalidArgument, "'\(address)': line breaks are not allowed in an address")
        }
        self.localPart = local
        self.domain = domain
        self.asciiDomain = try IDNA.toASCII(domain)
        if let name, name.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw NimbusError(.invalidArgument, "the display name of '\(address)' has a line break")
        }
        self.name = name
    }

    /// Parses a comma-separated list (commas inside quotes belong to the name).
    public static func list(_ text: String) throws -> [EmailAddress] {
        var items: [String] = [], current = "", quoted = false, angle = false, escaped = false
        for character in text {
            if escaped { current.append(character); escaped = false; continue }
            switch character {
            case "\\" where quoted: escaped = true; current.append(character)
            case "\"": quoted.toggle(); current.append(character)
            case "<" where !quoted: angle = true; current.append(character)
            case ">" where !quoted: angle = false; current.append(character)
            case ",", ";":
                if quoted || angle { current.append(character) } else { items.append(current); current = "" }
            default: current.append(character)
            }
        }
        items.append(current)
        return try items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { try EmailAddress($0) }
    }

    /// `local@domain` as given.
    public var address: String { "\(Self.quotedIfNeeded(localPart))@\(domain)" }

    /// `local@ascii-domain`: the form for the SMTP envelope.
    public var smtpAddress: String { "\(Self.quotedIfNeeded(localPart))@\(asciiDomain)" }

    /// Whether sending needs SMTPUTF8 (the local part has non-ASCII characters).
    public var requiresSMTPUTF8: Bool { !localPart.utf8.allSatisfy { $0 < 0x80 } }

    /// `Name <local@domain>` or `local@domain`.
    public var description: String { name.map { "\($0) <\(address)>" } ?? address }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(localPart)
        hasher.combine(asciiDomain)
    }

    /// Equal when the mailbox is the same (display names do not count; domains compare in ASCII).
    public static func == (lhs: EmailAddress, rhs: EmailAddress) -> Bool {
        lhs.localPart == rhs.localPart && lhs.asciiDomain == rhs.asciiDomain
    }

    public init(parsing text: String) throws { try self.init(text) }

    /// `"Name" <local@domain>` or `local@domain`: the JSON form.
    public var encodedText: String { name.map { "\(Self.quotedPhrase($0)) <\(address)>" } ?? address }

    // MARK: Syntax (RFC 5322 §3.2.3 and §3.4.1)

    /// `atext`: what a dot-atom may hold besides dots (UTF-8 allowed, RFC 6532).
    static func isAtext(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value >= 0x80 { return true }
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9": return true
        default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
        }
    }

    static func checkDotAtom(_ local: String, in address: String) throws {
        guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            throw NimbusError(.invalidArgument, "'\(address)': the part before '@' may not start or end with a dot or hold two dots in a row")
        }
        if let bad = local.unicodeScalars.first(where: { $0 != "." && !isAtext($0) }) {
            throw NimbusError(.invalidArgument, "'\(address)': '\(bad)' is not allowed before '@' unless that part is quoted")
        }
    }

    /// The local part as written in an address: quoted when it is not a dot-atom.
    static func quotedIfNeeded(_ local: String) -> String {
        let dotAtom = !local.hasPrefix(".") && !local.hasSuffix(".") && !local.contains("..")
            && local.unicodeScalars.allSatisfy { $0 == "." || isAtext($0) }
        return dotAtom ? local : quote(local)
    }

    /// A display name as an RFC 5322 phrase: as is when it is all atoms, quoted otherwise.
    static func quotedPhrase(_ name: String) -> String {
        let atoms = name.split(separator: " ", omittingEmptySubsequences: false)
        let plain = !atoms.contains(where: \.isEmpty) && atoms.allSatisfy { $0.unicodeScalars.allSatisfy(isAtext) }
        return plain ? name : quote(name)
    }

    static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func unquote(_ text: String) -> String {
        guard text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 else { return text }
        var result = "", escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped { result.append(character); escaped = false } else if character == "\\" { escaped = true } else { result.append(character) }
        }
        return result
    }
}

/// Internationalized domain names: Unicode labels to their ASCII (`xn--`) form, as IDNA2008 applications
/// send them (lower-cased, NFC-normalized, Punycode, RFC 3492), with the DNS length and hyphen rules.
public enum IDNA {
    /// `bücher.example` → `xn--bcher-kva.example`. ASCII labels are checked (letters, digits,
    /// hyphens; no leading or trailing hyphen; at most 63 bytes) and kept.
    /// - Throws: `invalidArgument` naming the label at fault.
    /// An address literal (RFC 5321 §4.1.3): a dotted IPv4 address or `IPv6:` and an IPv6 address —
    /// nothing else, so that no CR, LF or other text rides a `[…]` into `RCPT TO` or a header.
    /// - Throws: `invalidArgument` for any other literal.
    static func addressLiteral(_ text: String, in domain: String) throws -> String {
        let inner = String(text.dropFirst().dropLast())
        let octets = inner.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets.allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } && Int($0)! <= 255 }) {
            return text
        }
        if inner.lowercased().hasPrefix("ipv6:") {
            let address = inner.dropFirst(5)
            if !address.isEmpty, address.count <= 45, address.contains(":"),
               address.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }) {
                return "[IPv6:" + address.lowercased() + "]"
            }
        }
        throw NimbusError(.invalidArgument, "'\(domain.debugDescription)' is not an address literal: use [192.0.2.1] or [IPv6:2001:db8::1]")
    }

    public static func toASCII(_ domain: String) throws -> String {
        var text = domain.precomposedStringWithCanonicalMapping.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        // The dot-like separators IDNA treats as dots.
        text = String(text.map { "。．｡".contains($0) ? "." : $0 })
        if text.hasPrefix("[") && text.hasSuffix("]") { return try addressLiteral(text, in: domain) }   // [192.0.2.1], [IPv6:2001:db8::1]
        guard !text.isEmpty else { throw NimbusError(.invalidArgument, "the domain is empty") }
        var labels: [String] = []
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw NimbusError(.invalidArgument, "'\(domain)' has an empty label (two dots in a row, or a leading dot)") }
            let ascii = label.unicodeScalars.allSatisfy(\.isASCII) ? String(label) : "xn--" + (try Punycode.encode(String(label)))
            guard ascii.utf8.count <= 63 else { throw NimbusError(.invalidArgument, "the label '\(label)' of '\(domain)' is longer than 63 bytes") }
            guard !ascii.hasPrefix("-"), !ascii.hasSuffix("-") else {
                throw NimbusError(.invalidArgument, "the label '\(label)' of '\(domain)' may not start or end with a hyphen")
            }
            if let bad = ascii.unicodeScalars.first(where: { !($0 == "-" || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_") }) {
                throw NimbusError(.invalidArgument, "'\(bad)' is not allowed in the domain '\(domain)'")
            }
            labels.append(ascii)
        }
        let result = labels.joined(separator: ".")
        guard result.utf8.count <= 253 else { throw NimbusError(.invalidArgument, "the domain '\(domain)' is longer than 253 bytes") }
        return result
    }

    /// `xn--bcher-kva.example` → `bücher.example` (labels that do not decode are kept).
    public static func toUnicode(_ domain: String) -> String {
        domain.split(separator: ".", omittingEmptySubsequences: false).map { label in
            label.lowercased().hasPrefix("xn--") ? ((try? Punycode.decode(String(label.dropFirst(4)))) ?? String(label)) : String(label)
        }.joined(separator: ".")
    }
}

/// Punycode (RFC 3492): the Bootstring encoding of Unicode labels in the DNS's letters, digits and hyphens.
public enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128

    private static func adapt(_ delta: Int, _ numPoints: Int, _ firstTime: Bool) -> Int {
        var delta = firstTime ? delta / damp : delta / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    private static func digit(_ value: Int) -> Character {
        Character(Unicode.Scalar(UInt8(value < 26 ? value + 97 : value + 22)))      // a–z, then 0–9
    }

    /// Encodes a label (without the `xn--` prefix).
    public static func encode(_ input: String) throws -> String {
        let scalars = input.unicodeScalars.map { Int($0.value) }
        var output = String(String.UnicodeScalarView(input.unicodeScalars.filter(\.isASCII)))
        let basicCount = output.unicodeScalars.count
        var handled = basicCount
        if basicCount > 0 { output.append("-") }
        var n = initialN, delta = 0, bias = initialBias
        while handled < scalars.count {
            guard let next = scalars.filter({ $0 >= n }).min() else { break }
            let (product, overflow) = (next - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= Int(Int32.max) - product else { throw NimbusError(.invalidArgument, "'\(input)' is too long for Punycode") }
            delta += product
            n = next
            for scalar in scalars {
                if scalar < n { delta += 1 }
                if scalar == n {
                    var q = delta, k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
    }

    /// Decodes a label (without the `xn--` prefix).
    public static func decode(_ input: String) throws -> String {
        let bytes = Array(input.utf8)
        var output: [Int] = []
        var start = 0
        if let dash = bytes.lastIndex(of: UInt8(ascii: "-")) {
            output = bytes[..<dash].map(Int.init)
            start = dash + 1
        }
        var n = initialN, i = 0, bias = initialBias, position = start
        while position < bytes.count {
            let oldI = i
            var w = 1, k = base
            while true {
                guard position < bytes.count else { throw NimbusError(.invalidArgument, "'\(input)' is truncated Punycode") }
                let byte = bytes[position]
                position += 1
                let value: Int
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): value = Int(byte) - 97
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = Int(byte) - 65
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte) - 22
                default: throw NimbusError(.invalidArgument, "'\(input)' is not Punycode")
                }
                i += value * w
                let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                if value < t { break }
                w *= base - t
                k += base
                guard i < Int(Int32.max), w < Int(Int32.max) else { throw NimbusError(.invalidArgument, "'\(input)' overflows Punycode") }
            }
            bias = adapt(i - oldI, output.count + 1, oldI == 0)
            n += i / (output.count + 1)
            i %= output.count + 1
            guard n <= 0x10FFFF else { throw NimbusError(.invalidArgument, "'\(input)' decodes outside Unicode") }
            output.insert(n, at: i)
            i += 1
        }
        var text = String.UnicodeScalarView()
        for value in output {
            guard let scalar = Unicode.Scalar(UInt32(value)) else { throw NimbusError(.invalidArgument, "'\(input)' decodes to a surrogate") }
            text.append(scalar)
        }
        return String(text)
    }
}
