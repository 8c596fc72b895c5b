import Crypto
import Foundation

/// SecLang transformations on bytes, as ModSecurity defines them.
enum WAFTransformations {
    static let known: Set<String> = ["lowercase", "urlDecodeUni", "urlDecode", "jsDecode", "htmlEntityDecode", "utf8toUnicode", "removeNulls",
                                     "cssDecode", "cmdLine", "removeWhitespace", "replaceComments", "removeCommentsChar", "removeComments",
                                     "normalizePath", "normalisePath", "normalizePathWin", "normalisePathWin", "escapeSeqDecode",
                                     "compressWhitespace", "length", "base64Decode", "base64decode", "sha1", "hexEncode", "trim", "trimLeft",
                                     "trimRight", "uppercase", "replaceNulls", "hexDecode", "urlEncode"]

    static func apply(_ name: String, _ input: [UInt8]) -> [UInt8] {
        switch name {
        case "lowercase": return input.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        case "uppercase": return input.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
        case "urlDecodeUni": return urlDecode(input, unicode: true)
        case "urlDecode": return urlDecode(input, unicode: false)
        case "jsDecode": return jsDecode(input)
        case "htmlEntityDecode": return htmlEntityDecode(input)
        case "utf8toUnicode": return utf8ToUnicode(input)
        case "removeNulls": return input.filter { $0 != 0 }
        case "replaceNulls": return input.map { $0 == 0 ? 32 : $0 }
        case "cssDecode": return cssDecode(input)
        case "cmdLine": return cmdLine(input)
        case "removeWhitespace": return input.filter { !isSpace($0) && $0 != 0xa0 }
        case "compressWhitespace": return compress(input)
        case "replaceComments": return replaceComments(input)
        case "removeCommentsChar": return removeCommentsChar(input)
        case "removeComments": return removeComments(input)
        case "normalizePath", "normalisePath": return normalizePath(input, windows: false)
        case "normalizePathWin", "normalisePathWin": return normalizePath(input, windows: true)
        case "escapeSeqDecode": return escapeSeqDecode(input)
        case "length": return Array(String(input.count).utf8)
        case "base64Decode", "base64decode": return base64Decode(input)
        case "sha1": return Array(Insecure.SHA1.hash(data: input))
        case "hexEncode": return Array(input.map { String(format: "%02x", $0) }.joined().utf8)
        case "hexDecode": return hexDecode(input)
        case "urlEncode": return urlEncode(input)
        case "trim": return trimRight(trimLeft(input))
        case "trimLeft": return trimLeft(input)
        case "trimRight": return trimRight(input)
        default: return input
        }
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 32 || (9...13).contains(c) }
    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }

    /// A %uHHHH / \uHHHH code point as one byte: the full-width ASCII forms map to ASCII, others keep their low byte.
    static func unicodeByte(_ code: Int) -> UInt8 {
        if (0xff01...0xff5e).contains(code) { return UInt8(code - 0xfee0) }
        return UInt8(code & 0xff)
    }

    static func urlDecode(_ s: [UInt8], unicode: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == UInt8(ascii: "%") {
                if unicode, i + 5 < s.count, s[i + 1] | 0x20 == UInt8(ascii: "u"),
                   let a = hex(s[i + 2]), let b = hex(s[i + 3]), let d = hex(s[i + 4]), let e = hex(s[i + 5]) {
                    out.append(unicodeByte(Int(a) << 12 | Int(b) << 8 | Int(d) << 4 | Int(e)))
                    i += 6
                    continue
                }
                if i + 2 < s.count, let a = hex(s[i + 1]), let b = hex(s[i + 2]) {
                    out.append(a << 4 | b)
                    i += 3
                    continue
                }
                out.append(c)
            } else if c == UInt8(ascii: "+") {
                out.append(32)
            } else {
                out.append(c)
            }
            i += 1
        }
        return out
    }

    static func jsDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "\\"), i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            let n = s[i + 1]
            if n | 0x20 == UInt8(ascii: "u"), i + 5 < s.count, let a = hex(s[i + 2]), let b = hex(s[i + 3]), let c = hex(s[i + 4]), let d = hex(s[i + 5]) {
                out.append(unicodeByte(Int(a) << 12 | Int(b) << 8 | Int(c) << 4 | Int(d)))
                i += 6
            } else if let (byte, next) = numericEscape(s, at: i) {
                out.append(byte)
                i = next
            } else {
                let map: [UInt8: UInt8] = [UInt8(ascii: "a"): 7, UInt8(ascii: "b"): 8, UInt8(ascii: "f"): 12, UInt8(ascii: "n"): 10,
                                           UInt8(ascii: "r"): 13, UInt8(ascii: "t"): 9, UInt8(ascii: "v"): 11]
                out.append(map[n] ?? n)
                i += 2
            }
        }
        return out
    }

    static let entities: [String: UInt8] = ["quot": 34, "amp": 38, "lt": 60, "gt": 62, "nbsp": 160, "apos": 39, "colon": 58, "sol": 47,
                                            "lpar": 40, "rpar": 41, "tab": 9, "newline": 10, "comma": 44, "period": 46, "num": 35, "bsol": 92]

    /// `\xHH` or an octal `\OOO` at `i` (the backslash): the byte and the index after the escape.
    static func numericEscape(_ s: [UInt8], at i: Int) -> (UInt8, Int)? {
        let n = s[i + 1]
        if n | 0x20 == UInt8(ascii: "x"), i + 3 < s.count, let a = hex(s[i + 2]), let b = hex(s[i + 3]) { return (a << 4 | b, i + 4) }
        guard (48...55).contains(n) else { return nil }
        var value = 0, j = i + 1
        while j < s.count, j < i + 4, (48...55).contains(s[j]) { value = value * 8 + Int(s[j] - 48); j += 1 }
        return (UInt8(value & 0xff), j)
    }

    static func htmlEntityDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "&"), i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            var j = i + 1
            if s[j] == UInt8(ascii: "#") {
                j += 1
                let isHex = j < s.count && s[j] | 0x20 == UInt8(ascii: "x")
                if isHex { j += 1 }
                var value = 0, digits = 0
                while j < s.count, digits < 8, let d = isHex ? hex(s[j]) : ((48...57).contains(s[j]) ? s[j] - 48 : nil) {
                    value = value * (isHex ? 16 : 10) + Int(d)
                    j += 1
                    digits += 1
                }
                if digits > 0 {
                    out.append(UInt8(value & 0xff))
                    if j < s.count, s[j] == UInt8(ascii: ";") { j += 1 }
                    i = j
                    continue
                }
            } else {
                while j < s.count, j - i <= 8, (s[j] | 0x20) >= 97, (s[j] | 0x20) <= 122 { j += 1 }
                if let byte = entities[String(decoding: s[(i + 1)..<j], as: UTF8.self).lowercased()] {
                    out.append(byte)
                    if j < s.count, s[j] == UInt8(ascii: ";") { j += 1 }
                    i = j
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    static func utf8ToUnicode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            var length = 0, code = 0
            if c & 0xe0 == 0xc0 { length = 2; code = Int(c & 0x1f) } else if c & 0xf0 == 0xe0 { length = 3; code = Int(c & 0x0f) } else if c & 0xf8 == 0xf0 { length = 4; code = Int(c & 0x07) }
            if length > 0, i + length <= s.count, s[(i + 1)..<(i + length)].allSatisfy({ $0 & 0xc0 == 0x80 }) {
                for k in 1..<length { code = code << 6 | Int(s[i + k] & 0x3f) }
                out += Array(String(format: "%%u%04x", code).utf8)
                i += length
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static func cssDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "\\"), i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            var j = i + 1, value = 0, digits = 0
            while j < s.count, digits < 6, let d = hex(s[j]) { value = value << 4 | Int(d); j += 1; digits += 1 }
            if digits > 0 {
                out.append(digits > 2 ? unicodeByte(value) : UInt8(value & 0xff))
                if j < s.count, isSpace(s[j]) { j += 1 }
                i = j
            } else if s[i + 1] == 10 {
                i += 2
            } else {
                out.append(s[i + 1])
                i += 2
            }
        }
        return out
    }

    static func cmdLine(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var space = false
        for c in s {
            switch c {
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "^"):
                continue
            case 32, 9, 10, 13, 11, 12, UInt8(ascii: ","), UInt8(ascii: ";"):
                space = true
            case UInt8(ascii: "/"), UInt8(ascii: "("):
                space = false
                out.append(c)
            default:
                if space, !out.isEmpty { out.append(32) }
                space = false
                out.append(c >= 65 && c <= 90 ? c + 32 : c)
            }
        }
        return out
    }

    static func compress(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var inSpace = false
        for c in s {
            if isSpace(c) || c == 0xa0 {
                if !inSpace { out.append(32) }
                inSpace = true
            } else {
                out.append(c)
                inSpace = false
            }
        }
        return out
    }

    static func replaceComments(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "/"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "*") {
                var j = i + 2
                while j + 1 < s.count, !(s[j] == UInt8(ascii: "*") && s[j + 1] == UInt8(ascii: "/")) { j += 1 }
                out.append(32)
                i = j + 1 < s.count ? j + 2 : s.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func removeComments(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "/"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "*") {
                var j = i + 2
                while j + 1 < s.count, !(s[j] == UInt8(ascii: "*") && s[j + 1] == UInt8(ascii: "/")) { j += 1 }
                i = j + 1 < s.count ? j + 2 : s.count
            } else if (s[i] == UInt8(ascii: "-") && i + 1 < s.count && s[i + 1] == UInt8(ascii: "-")) || s[i] == UInt8(ascii: "#") {
                break
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func removeCommentsChar(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if i + 1 < s.count, (s[i] == UInt8(ascii: "/") && s[i + 1] == UInt8(ascii: "*")) || (s[i] == UInt8(ascii: "*") && s[i + 1] == UInt8(ascii: "/"))
                || (s[i] == UInt8(ascii: "-") && s[i + 1] == UInt8(ascii: "-")) {
                i += 2
            } else if s[i] == UInt8(ascii: "#") {
                i += 1
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func normalizePath(_ s: [UInt8], windows: Bool) -> [UInt8] {
        let input = windows ? s.map { $0 == UInt8(ascii: "\\") ? UInt8(ascii: "/") : $0 } : s
        let absolute = input.first == UInt8(ascii: "/")
        let trailing = input.last == UInt8(ascii: "/")
        var parts: [ArraySlice<UInt8>] = []
        for part in input.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if let last = parts.last, !last.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { parts.removeLast() } else if !absolute { parts.append(part) }
                continue
            }
            parts.append(part)
        }
        var out: [UInt8] = absolute ? [UInt8(ascii: "/")] : []
        out += parts.map(Array.init).joined(separator: [UInt8(ascii: "/")])
        if trailing, out.last != UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
        return out
    }

    static func escapeSeqDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "\\"), i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            let n = s[i + 1]
            if let (byte, next) = numericEscape(s, at: i) {
                out.append(byte)
                i = next
            } else {
                let map: [UInt8: UInt8] = [UInt8(ascii: "a"): 7, UInt8(ascii: "b"): 8, UInt8(ascii: "f"): 12, UInt8(ascii: "n"): 10, UInt8(ascii: "r"): 13,
                                           UInt8(ascii: "t"): 9, UInt8(ascii: "v"): 11, UInt8(ascii: "\\"): 92, UInt8(ascii: "?"): 63,
                                           UInt8(ascii: "'"): 39, UInt8(ascii: "\""): 34]
                if let mapped = map[n] { out.append(mapped) } else { out += [s[i], n] }
                i += 2
            }
        }
        return out
    }

    static func base64Decode(_ s: [UInt8]) -> [UInt8] {
        var text = String(decoding: s.filter { !isSpace($0) }, as: UTF8.self)
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if let end = text.firstIndex(where: { !($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" || $0 == "=") }) { text = String(text[..<end]) }
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map(Array.init) ?? []
    }

    static func hexDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i + 1 < s.count { if let a = hex(s[i]), let b = hex(s[i + 1]) { out.append(a << 4 | b) }; i += 2 }
        return out
    }

    static func urlEncode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for c in s {
            if (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") {
                out.append(c)
            } else if c == 32 {
                out.append(UInt8(ascii: "+"))
            } else {
                out += Array(String(format: "%%%02x", c).utf8)
            }
        }
        return out
    }

    static func trimLeft(_ s: [UInt8]) -> [UInt8] { Array(s.drop { isSpace($0) }) }
    static func trimRight(_ s: [UInt8]) -> [UInt8] {
        var end = s.count
        while end > 0, isSpace(s[end - 1]) { end -= 1 }
        return Array(s[..<end])
    }
}
