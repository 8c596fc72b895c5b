import Foundation

/// CLDR cardinal plural categories (https://www.unicode.org/cldr/charts/latest/supplemental/language_plural_rules.html)
/// for the languages notifications are most often written in; others fall back to English's one/other.
public enum PluralRules {
    /// A plural category.
    public enum Category: String, Sendable, CaseIterable { case zero, one, two, few, many, other }

    /// The category of `number` in `language` (an ISO 639 code: `en`, `pt`, `ru`...).
    public static func category(of number: Double, language: String) -> Category {
        let n = abs(number)
        let isInteger = n.rounded() == n
        let i = Int(n.rounded(.towardZero))
        let v = isInteger ? 0 : 1                                   // visible fraction digits (enough for these rules)
        switch language.lowercased() {
        case "ja", "zh", "ko", "vi", "th", "id", "ms", "yue":
            return .other
        case "fr", "hy", "kab":
            return i == 0 || i == 1 ? .one : (i != 0 && i % 1_000_000 == 0 && v == 0 ? .many : .other)
        case "pt":
            return i == 0 || i == 1 ? .one : (i != 0 && i % 1_000_000 == 0 && v == 0 ? .many : .other)
        case "es", "it", "ca":
            if n == 1 { return .one }
            return i != 0 && i % 1_000_000 == 0 && v == 0 ? .many : .other
        case "ru", "uk", "be":
            guard v == 0 else { return .other }
            if i % 10 == 1 && i % 100 != 11 { return .one }
            if (2...4).contains(i % 10) && !(12...14).contains(i % 100) { return .few }
            return .many
        case "pl":
            guard v == 0 else { return .other }
            if i == 1 { return .one }
            if (2...4).contains(i % 10) && !(12...14).contains(i % 100) { return .few }
            return .many
        case "cs", "sk":
            guard v == 0 else { return .many }
            if i == 1 { return .one }
            return (2...4).contains(i) ? .few : .other
        case "ar":
            guard isInteger else { return .other }
            if i == 0 { return .zero }
            if i == 1 { return .one }
            if i == 2 { return .two }
            if (3...10).contains(i % 100) { return .few }
            if (11...99).contains(i % 100) { return .many }
            return .other
        case "he":
            if i == 1 && v == 0 { return .one }
            if i == 2 && v == 0 { return .two }
            return .other
        default:                                                    // en, de, nl, sv, da, nb, fi, el, hu, tr, et...
            return i == 1 && v == 0 ? .one : .other
        }
    }
}

/// A readable plain-text version of an HTML email: paragraphs and line breaks kept, list items as `- `,
/// links as `text (url)`, headings on their own lines, `<style>`/`<script>`/`<head>` dropped, entities decoded.
public enum HTMLToText {
    public static func convert(_ html: String) -> String {
        var text = ""
        var index = html.startIndex
        var linkTarget: String?
        var linkTextStart: String.Index?
        while index < html.endIndex {
            let character = html[index]
            guard character == "<", let close = html[index...].firstIndex(of: ">") else {
                text.append(character == "\n" || character == "\r" || character == "\t" ? " " : character)
                index = html.index(after: index)
                continue
            }
            let tag = html[html.index(after: index)..<close]
            let name = tag.prefix { !$0.isWhitespace && $0 != "/" && $0 != ">" }.lowercased()
            let closing = tag.hasPrefix("/")
            let closingName = closing ? tag.dropFirst().prefix { !$0.isWhitespace && $0 != ">" }.lowercased() : ""
            index = html.index(after: close)
            if !closing, ["style", "script", "head", "title"].contains(name) {
                if let end = html.range(of: "</\(name)", options: .caseInsensitive, range: index..<html.endIndex),
                   let after = html[end.upperBound...].firstIndex(of: ">") {
                    index = html.index(after: after)
                }
                continue
            }
            switch closing ? closingName : name {
            case "br": text += "\n"
            case "p", "div", "table", "tr", "ul", "ol", "blockquote", "section", "article", "header", "footer":
                text += closing && ["p", "blockquote"].contains(closingName) ? "\n\n" : "\n"
            case "h1", "h2", "h3", "h4", "h5", "h6": text += closing ? "\n\n" : "\n\n"
            case "li": if !closing { text += "\n- " }
            case "td", "th": if closing { text += " " }
            case "hr": text += "\n----\n"
            case "a":
                if !closing {
                    linkTarget = attribute("href", in: String(tag))
                    linkTextStart = text.endIndex
                } else if let target = linkTarget, let start = linkTextStart {
                    let label = text[start...].trimmingCharacters(in: .whitespaces)
                    if !target.hasPrefix("#"), !target.lowercased().hasPrefix("mailto:") || label.isEmpty, label != target {
                        text += label.isEmpty ? target : " (\(target))"
                    }
                    linkTarget = nil
                    linkTextStart = nil
                }
            case "img":
                if let alt = attribute("alt", in: String(tag)), !alt.isEmpty { text += alt }
            default: break
            }
        }
        // Entities, then tidy spaces and blank lines.
        let decoded = decodeEntities(text)
        var lines = decoded.components(separatedBy: "\n").map { line in
            line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        }
        var result: [String] = []
        for line in lines where !(line.isEmpty && (result.last?.isEmpty ?? true)) { result.append(line) }
        while result.last?.isEmpty == true { result.removeLast() }
        lines = result
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    static func attribute(_ name: String, in tag: String) -> String? {
        guard let range = tag.range(of: "\(name)=", options: .caseInsensitive) else { return nil }
        let rest = tag[range.upperBound...]
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return rest.prefix { !$0.isWhitespace && $0 != ">" }.description }
        let value = rest.dropFirst().prefix { $0 != quote }
        return decodeEntities(String(value))
    }

    static let named: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "copy": "©", "reg": "®",
                                          "mdash": "—", "ndash": "–", "hellip": "…", "euro": "€", "pound": "£", "rsquo": "’", "lsquo": "‘",
                                          "rdquo": "”", "ldquo": "“", "middot": "·", "times": "×"]

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = "", index = text.startIndex
        while index < text.endIndex {
            if text[index] == "&", let semicolon = text[index...].prefix(12).firstIndex(of: ";") {
                let entity = text[text.index(after: index)..<semicolon]
                var replacement: String?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    replacement = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) }
                } else if entity.hasPrefix("#") {
                    replacement = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init).map { String($0) }
                } else {
                    replacement = named[String(entity)]
                }
                if let replacement {
                    out += replacement
                    index = text.index(after: semicolon)
                    continue
                }
            }
            out.append(text[index])
            index = text.index(after: index)
        }
        return out
    }
}
