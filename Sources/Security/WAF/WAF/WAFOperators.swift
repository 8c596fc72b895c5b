import Foundation
import NimbusCore
import Synchronization

/// A compiled PCRE-style pattern (NSRegularExpression: ICU syntax, which covers what CRS uses).
///
/// An ICU matcher is not safe to share between threads, so the pattern keeps a small pool of
/// compiled copies: each match borrows one and gives it back.
final class CompiledPattern: Sendable {
    private let pattern: String
    private let options: NSRegularExpression.Options
    private let pool: Mutex<[NSRegularExpression]>

    init(_ source: String) throws {
        var text = source
        var options: NSRegularExpression.Options = []
        if text.hasPrefix("(?i)") { options.insert(.caseInsensitive); text.removeFirst(4) }
        let pruned = Self.pruneRunStarts(text)
        let first: NSRegularExpression
        if let optimized = try? NSRegularExpression(pattern: pruned, options: options) {
            first = optimized
            text = pruned
        } else {
            first = try NSRegularExpression(pattern: text, options: options)
        }
        pattern = text
        self.options = options
        pool = Mutex([first])
    }

    /// ICU tries a pattern at every start position and, unlike PCRE, has no required-character or
    /// auto-possessive optimisation, so a branch that starts with a run (`[a-z]+x`, `\d+-\d+`,
    /// `.*\.php$`) costs quadratic time on a long run. A leftmost match of such a branch always
    /// starts where the run starts (a match inside the run extends to its start), so each such
    /// top-level branch gets a lookbehind that skips the inner positions: `(?<![a-z])[a-z]+x`. The
    /// first match — what the rules use — is unchanged.
    static func pruneRunStarts(_ pattern: String) -> String {
        var branches: [String] = []
        var current = "", depth = 0, inClass = false, escaped = false, classStart = false
        for c in pattern {
            if escaped { current.append(c); escaped = false; classStart = false; continue }
            if c == "\\" { current.append(c); escaped = true; continue }
            if inClass {
                if c == "]", !classStart { inClass = false }
                classStart = classStart && c == "^"
                current.append(c)
                continue
            }
            switch c {
            case "[": inClass = true; classStart = true
            case "(": depth += 1
            case ")": depth -= 1
            case "|" where depth == 0:
                branches.append(current)
                current = ""
                continue
            default: break
            }
            current.append(c)
        }
        guard depth == 0, !inClass else { return pattern }
        branches.append(current)
        return branches.map(pruneBranch).joined(separator: "|")
    }

    static func pruneBranch(_ branch: String) -> String {
        let chars = Array(branch)
        var end: Int
        if chars.first == "[" {
            var i = 1
            if i < chars.count, chars[i] == "^" { i += 1 }
            if i < chars.count, chars[i] == "]" { i += 1 }
            while i < chars.count, chars[i] != "]" { i += chars[i] == "\\" ? 2 : 1 }
            guard i < chars.count else { return branch }
            end = i + 1
        } else if chars.count > 1, chars[0] == "\\", "dwsDWS".contains(chars[1]) {
            end = 2
        } else if chars.first == "." {
            end = 1
        } else if chars.count > 2, chars[0] == "(", chars[1] != "?" {
            // A capturing group that starts with a run and has no alternation: `(\d+)-(\d+)`.
            let inner = pruneBranch(String(chars[1...]))
            guard inner.hasPrefix("(?<!"), let close = inner.firstIndex(of: ")") else { return branch }
            var depth = 0, escaped = false, inClass = false
            for c in chars {
                if escaped { escaped = false; continue }
                if c == "\\" { escaped = true; continue }
                if inClass { if c == "]" { inClass = false }; continue }
                if c == "[" { inClass = true } else if c == "(" { depth += 1 } else if c == ")" { depth -= 1; if depth == 0 { break } } else if c == "|", depth == 1 { return branch }
            }
            return String(inner[...close]) + branch
        } else {
            return branch
        }
        guard end < chars.count, chars[end] == "+" || chars[end] == "*" else { return branch }
        if end + 1 < chars.count, chars[end + 1] == "?" { return branch }
        return "(?<!" + String(chars[0..<end]) + ")" + branch
    }

    private func withRegex<T>(_ body: (NSRegularExpression) -> T) -> T {
        let borrowed = pool.withLock { $0.popLast() } ?? (try? NSRegularExpression(pattern: pattern, options: options))
        guard let regex = borrowed else { preconditionFailure("a pattern that compiled once no longer compiles") }
        defer { pool.withLock { if $0.count < 8 { $0.append(regex) } } }
        return body(regex)
    }

    /// The first match's groups (0 = whole match, up to 9), or nil.
    func firstMatch(_ subject: String) -> [String]? {
        withRegex { regex in
            let range = NSRange(subject.startIndex..., in: subject)
            guard let match = regex.firstMatch(in: subject, options: [], range: range) else { return nil }
            return (0..<min(match.numberOfRanges, 10)).map { index in
                let r = match.range(at: index)
                guard r.location != NSNotFound, let swiftRange = Range(r, in: subject) else { return "" }
                return String(subject[swiftRange])
            }
        }
    }

    func matches(_ subject: String) -> Bool {
        withRegex { $0.firstMatch(in: subject, options: [], range: NSRange(subject.startIndex..., in: subject)) != nil }
    }
}

/// Case-insensitive multi-phrase search (Aho-Corasick over bytes, sparse transitions), for `@pm`
/// and `@pmFromFile`.
final class PhraseMatcher: Sendable {
    private let transitions: [[UInt8: Int32]]
    private let fail: [Int32]
    private let output: [Bool]

    static func fold(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte + 32 : byte }

    init(_ phrases: [String]) {
        var transitions: [[UInt8: Int32]] = [[:]]
        var output = [false]
        for phrase in phrases where !phrase.isEmpty {
            var state = 0
            for byte in phrase.utf8 {
                let c = Self.fold(byte)
                if let next = transitions[state][c] {
                    state = Int(next)
                } else {
                    transitions.append([:])
                    output.append(false)
                    transitions[state][c] = Int32(transitions.count - 1)
                    state = transitions.count - 1
                }
            }
            output[state] = true
        }
        var fail = [Int32](repeating: 0, count: transitions.count)
        var queue = transitions[0].values.map(Int.init)
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            for (c, child) in transitions[state] {
                var f = Int(fail[state])
                while f != 0, transitions[f][c] == nil { f = Int(fail[f]) }
                let target = transitions[f][c].map(Int.init) ?? 0
                fail[Int(child)] = Int32(target == Int(child) ? 0 : target)
                output[Int(child)] = output[Int(child)] || output[Int(fail[Int(child)])]
                queue.append(Int(child))
            }
        }
        self.transitions = transitions
        self.fail = fail
        self.output = output
    }

    func matches(_ bytes: [UInt8]) -> Bool {
        var state = 0
        for byte in bytes {
            let c = Self.fold(byte)
            while state != 0, transitions[state][c] == nil { state = Int(fail[state]) }
            state = transitions[state][c].map(Int.init) ?? 0
            if output[state] { return true }
        }
        return false
    }
}

/// Byte ranges for `@validateByteRange 1-255` / `32-126,9,10`.
struct ByteRanges: Sendable {
    var allowed = [Bool](repeating: false, count: 256)
    init(_ text: String) {
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let low = bounds.first else { continue }
            let high = bounds.count > 1 ? bounds[1] : low
            guard low <= high else { continue }
            for b in max(0, low)...min(255, high) { allowed[b] = true }
        }
    }
    func violated(by bytes: [UInt8]) -> Bool { bytes.contains { !allowed[Int($0)] } }
}

/// IPv4/IPv6 addresses and CIDR ranges for `@ipMatch`.
struct IPRanges: Sendable {
    var ranges: [(bytes: [UInt8], prefix: Int)] = []
    init(_ text: String) {
        for part in text.split(separator: ",") {
            let pieces = part.trimmingCharacters(in: .whitespaces).split(separator: "/")
            guard let address = pieces.first, let bytes = IPAddress.bytes(String(address)) else { continue }
            ranges.append((bytes, pieces.count > 1 ? Int(pieces[1]) ?? bytes.count * 8 : bytes.count * 8))
        }
    }
    func contains(_ text: String) -> Bool {
        guard let bytes = IPAddress.bytes(text) else { return false }
        return ranges.contains { range in
            range.bytes.count == bytes.count && IPAddress.network(bytes, prefix: range.prefix) == IPAddress.network(range.bytes, prefix: range.prefix)
        }
    }
}

enum WAFEncodingChecks {
    /// Whether `%` escapes are malformed (ModSecurity's @validateUrlEncoding).
    static func invalidURLEncoding(_ s: [UInt8]) -> Bool {
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "%") {
                guard i + 2 < s.count, WAFTransformations.hex(s[i + 1]) != nil, WAFTransformations.hex(s[i + 2]) != nil else { return true }
                i += 3
            } else {
                i += 1
            }
        }
        return false
    }

    /// Whether the bytes are not valid UTF-8.
    static func invalidUTF8(_ s: [UInt8]) -> Bool { String(validating: s, as: UTF8.self) == nil }
}

extension Array where Element == UInt8 {
    /// The bytes as a string of the same length: each byte is the Unicode scalar of that value
    /// (ISO 8859-1), so byte-oriented patterns see every byte.
    var latin1: String { String(String.UnicodeScalarView(self.map { Unicode.Scalar($0) })) }
}
