import Foundation

/// Version orderings of the ecosystems OSV advisories name.
public enum VersionOrder {
    /// Compares two Debian versions exactly as `dpkg --compare-versions` does:
    /// `[epoch:]upstream[-revision]`, where `~` sorts before everything (even the end of the
    /// string), letters before non-letters, and digit runs compare as numbers.
    public static func debian(_ a: String, _ b: String) -> ComparisonResult {
        func split(_ v: String) -> (Int, String, String) {
            var rest = Substring(v)
            var epoch = 0
            if let colon = rest.firstIndex(of: ":"), let value = Int(rest[..<colon]) {
                epoch = value
                rest = rest[rest.index(after: colon)...]
            }
            if let dash = rest.lastIndex(of: "-") { return (epoch, String(rest[..<dash]), String(rest[rest.index(after: dash)...])) }
            return (epoch, String(rest), "")
        }
        let (ea, ua, ra) = split(a), (eb, ub, rb) = split(b)
        if ea != eb { return ea < eb ? .orderedAscending : .orderedDescending }
        let upstream = debianPart(ua, ub)
        return upstream != .orderedSame ? upstream : debianPart(ra, rb)
    }

    static func debianWeight(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if c == UInt8(ascii: "~") { return -1 }
        if (65...90).contains(c) || (97...122).contains(c) { return Int(c) }
        return Int(c) + 256
    }

    static func debianPart(_ a: String, _ b: String) -> ComparisonResult {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { (48...57).contains(c) }
        while i < x.count || j < y.count {
            var first = 0
            while (i < x.count && !isDigit(x[i])) || (j < y.count && !isDigit(y[j])) {
                let wa = debianWeight(i < x.count && !isDigit(x[i]) ? x[i] : nil)
                let wb = debianWeight(j < y.count && !isDigit(y[j]) ? y[j] : nil)
                if wa != wb { return wa < wb ? .orderedAscending : .orderedDescending }
                if i < x.count, !isDigit(x[i]) { i += 1 }
                if j < y.count, !isDigit(y[j]) { j += 1 }
            }
            while i < x.count, x[i] == 48 { i += 1 }
            while j < y.count, y[j] == 48 { j += 1 }
            while i < x.count, isDigit(x[i]), j < y.count, isDigit(y[j]) {
                if first == 0 { first = Int(x[i]) - Int(y[j]) }
                i += 1
                j += 1
            }
            if i < x.count, isDigit(x[i]) { return .orderedDescending }
            if j < y.count, isDigit(y[j]) { return .orderedAscending }
            if first != 0 { return first < 0 ? .orderedAscending : .orderedDescending }
        }
        return .orderedSame
    }

    /// Compares two Semantic Versioning 2.0 versions (a leading `v` is allowed; build metadata is
    /// ignored; pre-release identifiers compare numerically or lexically, numeric ones first).
    public static func semver(_ a: String, _ b: String) -> ComparisonResult {
        func parse(_ v: String) -> (core: [Int], pre: [String]) {
            var text = v.hasPrefix("v") ? String(v.dropFirst()) : v
            if let plus = text.firstIndex(of: "+") { text = String(text[..<plus]) }
            let dash = text.firstIndex(of: "-")
            let core = (dash.map { String(text[..<$0]) } ?? text).split(separator: ".").map { Int($0) ?? 0 }
            let pre = dash.map { text[text.index(after: $0)...].split(separator: ".").map(String.init) } ?? []
            return (core + Array(repeating: 0, count: max(0, 3 - core.count)), pre)
        }
        let x = parse(a), y = parse(b)
        for (p, q) in zip(x.core, y.core) where p != q { return p < q ? .orderedAscending : .orderedDescending }
        if x.core.count != y.core.count { return x.core.count < y.core.count ? .orderedAscending : .orderedDescending }
        if x.pre.isEmpty || y.pre.isEmpty {
            if x.pre.isEmpty == y.pre.isEmpty { return .orderedSame }
            return x.pre.isEmpty ? .orderedDescending : .orderedAscending
        }
        for (p, q) in zip(x.pre, y.pre) where p != q {
            switch (Int(p), Int(q)) {
            case let (m?, n?): return m < n ? .orderedAscending : .orderedDescending
            case (_?, nil): return .orderedAscending
            case (nil, _?): return .orderedDescending
            default: return p < q ? .orderedAscending : .orderedDescending
            }
        }
        return x.pre.count == y.pre.count ? .orderedSame : (x.pre.count < y.pre.count ? .orderedAscending : .orderedDescending)
    }

    /// A PEP 440 version, normalized: epoch, release, pre-release, post-release, dev-release, local.
    struct PEP440: Comparable {
        var epoch = 0
        var release: [Int] = []
        var pre: (kind: Int, number: Int)?     // a = 0, b = 1, rc = 2
        var post: Int?
        var dev: Int?
        var local: [String] = []

        init?(_ text: String) {
            var s = text.lowercased().trimmingCharacters(in: .whitespaces)
            if s.hasPrefix("v") { s.removeFirst() }
            if let plus = s.firstIndex(of: "+") {
                local = s[s.index(after: plus)...].split(whereSeparator: { ".-_".contains($0) }).map(String.init)
                s = String(s[..<plus])
            }
            if let bang = s.firstIndex(of: "!") {
                guard let e = Int(s[..<bang]) else { return nil }
                epoch = e
                s = String(s[s.index(after: bang)...])
            }
            var index = s.startIndex
            func number() -> Int? {
                let start = index
                while index < s.endIndex, s[index].isNumber { index = s.index(after: index) }
                return start == index ? nil : Int(s[start..<index])
            }
            func skipSeparator() { if index < s.endIndex, ".-_".contains(s[index]) { index = s.index(after: index) } }
            guard let first = number() else { return nil }
            release = [first]
            while index < s.endIndex, s[index] == ".", let next = s.index(index, offsetBy: 1, limitedBy: s.endIndex), next < s.endIndex, s[next].isNumber {
                index = next
                release.append(number()!)
            }
            func take(_ words: [String]) -> String? {
                for word in words.sorted(by: { $0.count > $1.count }) where s[index...].hasPrefix(word) {
                    index = s.index(index, offsetBy: word.count)
                    return word
                }
                return nil
            }
            // Pre-release: [sep] a|b|rc… [sep] N
            var mark = index
            skipSeparator()
            if let word = take(["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]) {
                let kind = ["alpha": 0, "a": 0, "beta": 1, "b": 1][word] ?? 2
                skipSeparator()
                pre = (kind, number() ?? 0)
            } else {
                index = mark
            }
            // Post-release: -N (implicit), or [sep] post|rev|r [sep] N
            if index < s.endIndex, s[index] == "-", let next = s.index(index, offsetBy: 1, limitedBy: s.endIndex), next < s.endIndex, s[next].isNumber {
                index = next
                post = number()
            } else {
                mark = index
                skipSeparator()
                if take(["post", "rev", "r"]) != nil {
                    skipSeparator()
                    post = number() ?? 0
                } else {
                    index = mark
                }
            }
            // Development release: [sep] dev [sep] N
            mark = index
            skipSeparator()
            if take(["dev"]) != nil {
                skipSeparator()
                dev = number() ?? 0
            } else {
                index = mark
            }
            guard index == s.endIndex else { return nil }
            while release.count > 1, release.last == 0 { release.removeLast() }
        }

        /// The sort key of PEP 440's ordering: a dev release sorts before its pre-releases, which
        /// sort before the final release, which sorts before its post-releases.
        var key: (Int, [Int], Int, Int, Int, Int, Int, Int) {
            let preKey: (Int, Int, Int) = pre.map { (1, $0.kind, $0.number) } ?? (post == nil && dev != nil ? (0, 0, 0) : (2, 0, 0))
            let postKey = post.map { $0 + 1 } ?? 0
            let devKey = dev ?? Int.max
            return (epoch, release, preKey.0, preKey.1, preKey.2, postKey, devKey, 0)
        }

        static func < (a: PEP440, b: PEP440) -> Bool {
            let x = a.key, y = b.key
            if x.0 != y.0 { return x.0 < y.0 }
            let length = max(x.1.count, y.1.count)
            let p = x.1 + Array(repeating: 0, count: length - x.1.count), q = y.1 + Array(repeating: 0, count: length - y.1.count)
            if p != q { return p.lexicographicallyPrecedes(q) }
            if (x.2, x.3, x.4) != (y.2, y.3, y.4) { return (x.2, x.3, x.4) < (y.2, y.3, y.4) }
            if x.5 != y.5 { return x.5 < y.5 }
            if x.6 != y.6 { return x.6 < y.6 }
            return localPrecedes(a.local, b.local)
        }

        static func == (a: PEP440, b: PEP440) -> Bool { !(a < b) && !(b < a) }

        /// Local segments: absent sorts first; numeric segments after alphanumeric ones.
        static func localPrecedes(_ a: [String], _ b: [String]) -> Bool {
            for (p, q) in zip(a, b) where p != q {
                switch (Int(p), Int(q)) {
                case let (m?, n?): return m < n
                case (nil, _?): return true
                case (_?, nil): return false
                default: return p < q
                }
            }
            return a.count < b.count
        }
    }

    /// Compares two PyPI versions by PEP 440; versions that are not PEP 440 compare as text.
    public static func pypi(_ a: String, _ b: String) -> ComparisonResult {
        guard let x = PEP440(a), let y = PEP440(b) else { return a == b ? .orderedSame : (a < b ? .orderedAscending : .orderedDescending) }
        return x < y ? .orderedAscending : (y < x ? .orderedDescending : .orderedSame)
    }
}
