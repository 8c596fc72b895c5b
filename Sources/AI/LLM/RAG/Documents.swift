import Foundation
import NimbusCore

/// A source text with its metadata (`source` path or URL, `title`...).
public struct Document: Sendable, Hashable, Codable {
    /// Unique id (by default the source path).
    public var id: String
    /// The text.
    public var text: String
    /// Filterable fields, copied to every chunk.
    public var metadata: [String: JSONValue]

    /// Creates a document.
    public init(id: String, text: String, metadata: [String: JSONValue] = [:]) {
        self.id = id
        self.text = text
        self.metadata = metadata
    }
}

/// A piece of a document: what is embedded, indexed and cited.
public struct Chunk: Sendable, Hashable, Codable {
    /// `<document id>#<n>`.
    public var id: String
    /// The document it comes from.
    public var documentID: String
    /// The text (exactly the document's text over `span`).
    public var text: String
    /// Where it is in the document: UTF-8 byte offsets, start inclusive, end exclusive.
    public var span: Range<Int>
    /// The document's metadata plus the splitter's (`headings`, `h1`, `h2`...).
    public var metadata: [String: JSONValue]

    /// Creates a chunk.
    public init(id: String, documentID: String, text: String, span: Range<Int>, metadata: [String: JSONValue] = [:]) {
        self.id = id
        self.documentID = documentID
        self.text = text
        self.span = span
        self.metadata = metadata
    }
}

/// Reads files into documents: plain text, Markdown (kept as is; the first `#` heading becomes the
/// title) and HTML (converted to text, headings kept as Markdown `#` lines so the header-aware
/// splitter can use them; scripts, styles and tags dropped; entities decoded).
///
/// ```swift
/// let documents = try DocumentLoader().load(path: "docs/")       // a file or a directory, recursively
/// ```
public struct DocumentLoader: Sendable {
    /// Extensions read as plain text.
    public var textExtensions: Set<String> = ["txt", "text", "rst", "log", "csv"]
    /// Extensions read as Markdown.
    public var markdownExtensions: Set<String> = ["md", "markdown", "mdx"]
    /// Extensions read as HTML.
    public var htmlExtensions: Set<String> = ["html", "htm", "xhtml"]
    /// Files larger than this are refused (a misplaced binary or dump).
    public var maxFileSize: Int = 20 * 1024 * 1024

    /// Creates a loader.
    public init() {}

    /// Loads a file, or every readable file under a directory (sorted by path; hidden entries skipped).
    /// - Throws: `notFound` for a missing path, `invalidArgument` for a file of an unknown kind, too large, or not UTF-8.
    public func load(path: String) throws -> [Document] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NimbusError(.notFound, "nothing to load at \(path)")
        }
        guard isDirectory.boolValue else { return [try loadFile(path)] }
        let root = URL(fileURLWithPath: path)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            return []
        }
        var files: [String] = []
        for case let url as URL in walker where kind(of: url.path) != nil {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true { files.append(url.path) }
        }
        return try files.sorted().map(loadFile)
    }

    private enum Kind { case text, markdown, html }

    private func kind(of path: String) -> Kind? {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if textExtensions.contains(ext) { return .text }
        if markdownExtensions.contains(ext) { return .markdown }
        if htmlExtensions.contains(ext) { return .html }
        return nil
    }

    /// Loads one file.
    public func loadFile(_ path: String) throws -> Document {
        guard let kind = kind(of: path) else {
            throw NimbusError(.invalidArgument, "\(path) is not a text, Markdown or HTML file (by its extension)")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > maxFileSize {
            throw NimbusError(.invalidArgument, "\(path) has \(size) bytes, more than the \(maxFileSize) a document may have")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw NimbusError(.notFound, "cannot read \(path)") }
        guard let raw = String(data: data, encoding: .utf8) else { throw NimbusError(.invalidArgument, "\(path) is not UTF-8 text") }
        var metadata: [String: JSONValue] = ["source": .string(path)]
        let text: String
        switch kind {
        case .text: text = raw
        case .markdown:
            text = raw
            if let title = MarkdownText.firstHeading(raw) { metadata["title"] = .string(title) }
        case .html:
            let converted = HTMLText.convert(raw)
            text = converted.text
            if let title = converted.title { metadata["title"] = .string(title) }
        }
        return Document(id: path, text: text, metadata: metadata)
    }
}

/// Markdown helpers.
public enum MarkdownText {
    /// The text of the first ATX heading outside code fences.
    public static func firstHeading(_ text: String) -> String? {
        var fenced = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") { fenced.toggle(); continue }
            if !fenced, let heading = heading(String(line)) { return heading.text }
        }
        return nil
    }

    /// `(level, text)` when the line is an ATX heading (`## Title`).
    public static func heading(_ line: String) -> (level: Int, text: String)? {
        var level = 0
        var index = line.startIndex
        while index < line.endIndex, line[index] == "#", level < 7 { level += 1; index = line.index(after: index) }
        guard (1...6).contains(level), index == line.endIndex || line[index] == " " || line[index] == "\t" else { return nil }
        var text = line[index...].trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("#") { text.removeLast() }
        text = text.trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? nil : (level, text)
    }
}

/// HTML to text, keeping structure a reader (and a splitter) can use.
public enum HTMLText {
    private static let blockTags: Set<String> = ["p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "table", "tr",
                                                  "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "figure", "figcaption", "form", "hr", "address"]
    private static let skippedTags: Set<String> = ["script", "style", "noscript", "template", "svg", "head"]

    /// The text of an HTML page and its `<title>`.
    public static func convert(_ html: String) -> (text: String, title: String?) {
        var output = ""
        var title: String?
        var scanner = html[...]
        var skipping: String?
        var inTitle = false, titleText = ""
        var inPre = false
        while !scanner.isEmpty {
            guard let open = scanner.firstIndex(of: "<") else {
                append(decode(String(scanner)), to: &output, inTitle: inTitle, title: &titleText, skipping: skipping, pre: inPre)
                break
            }
            append(decode(String(scanner[..<open])), to: &output, inTitle: inTitle, title: &titleText, skipping: skipping, pre: inPre)
            scanner = scanner[open...]
            if scanner.hasPrefix("<!--") {
                scanner = scanner.range(of: "-->").map { scanner[$0.upperBound...] } ?? ""
                continue
            }
            guard let close = scanner.firstIndex(of: ">") else { break }
            let tag = scanner[scanner.index(after: open)..<close]
            scanner = scanner[scanner.index(after: close)...]
            let closing = tag.hasPrefix("/")
            let name = tag.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }.lowercased()
            if let skipped = skipping {
                if closing, name == skipped { skipping = nil }
                continue
            }
            if !closing, skippedTags.contains(name), name != "head" || !tag.hasSuffix("/") {
                if name == "head" { continue }        // the head's title is still read
                skipping = name
                continue
            }
            switch name {
            case "title":
                inTitle = !closing
                if closing { title = titleText.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty }
            case "h1", "h2", "h3", "h4", "h5", "h6":
                let level = Int(String(name.last!))!
                output += closing ? "\n\n" : "\n\n" + String(repeating: "#", count: level) + " "
            case "br": output += "\n"
            case "li": if !closing { output += "\n- " }
            case "td", "th": if !closing { output += " " }
            case "pre":
                inPre = !closing
                output += "\n\n"
            default:
                if blockTags.contains(name) { output += "\n\n" }
            }
        }
        return (normalize(output), title)
    }

    private static func append(_ text: String, to output: inout String, inTitle: Bool, title: inout String, skipping: String?, pre: Bool) {
        guard skipping == nil else { return }
        if inTitle { title += text; return }
        if pre { output += text; return }
        var collapsed = ""
        var lastWasSpace = output.last.map { $0 == " " || $0 == "\n" } ?? true
        for character in text {
            if character.isWhitespace {
                if !lastWasSpace { collapsed.append(" ") }
                lastWasSpace = true
            } else {
                collapsed.append(character)
                lastWasSpace = false
            }
        }
        output += collapsed
    }

    /// Trims lines and keeps at most one blank line between blocks.
    private static func normalize(_ text: String) -> String {
        var lines: [String] = []
        var blank = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                if !blank, !lines.isEmpty { lines.append("") }
                blank = true
            } else {
                lines.append(trimmed)
                blank = false
            }
        }
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    private static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "mdash": "—", "ndash": "–", "hellip": "…",
        "copy": "©", "reg": "®", "trade": "™", "euro": "€", "laquo": "«", "raquo": "»", "rsquo": "’", "lsquo": "‘", "rdquo": "”", "ldquo": "“",
    ]

    /// Decodes named and numeric character references.
    public static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var result = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            result += rest[..<amp]
            rest = rest[amp...]
            guard let semicolon = rest.prefix(12).firstIndex(of: ";") else {
                result.append("&")
                rest = rest.dropFirst()
                continue
            }
            let name = rest[rest.index(after: rest.startIndex)..<semicolon]
            var decoded: String?
            if name.hasPrefix("#x") || name.hasPrefix("#X") {
                decoded = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
            } else if name.hasPrefix("#") {
                decoded = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
            } else {
                decoded = entities[String(name)]
            }
            if let decoded {
                result += decoded
                rest = rest[rest.index(after: semicolon)...]
            } else {
                result.append("&")
                rest = rest.dropFirst()
            }
        }
        return result + rest
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
