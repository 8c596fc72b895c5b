import Foundation
import NimbusCore

/// Nimbus' fast path for Mustache: templates are compiled once into a tree whose names are split
/// ahead of time, and rendered straight from `JSONValue` into one UTF-8 buffer — no `Any` casts, no
/// reflection. It keeps swift-mustache's semantics (stack lookup, standalone lines, partial indentation,
/// inheritance, transforms, sequence transforms) and is checked against swift-mustache's output in the
/// tests; templates that change their delimiters (`{{=<% %>=}}`) render through
/// swift-mustache instead.
struct CompiledTemplate: Sendable {
    indirect enum Node: Sendable {
        case text([UInt8])
        case variable(Lookup, escaped: Bool)
        case section(Lookup, [Node], inverted: Bool)
        case partial(String, indentation: [UInt8]?, overrides: [String: [Node]]?)
        case block(String, defaultContent: [Node], indentation: [UInt8])
        case contentType(html: Bool)
    }

    /// A name to look up: split once; `.` is the current value; `fn(name)` applies a transform.
    struct Lookup: Sendable {
        var path: [String]
        var current: Bool
        var topOnly: Bool
        var transforms: [String]
        var sequenceContext: Bool
        var source: String
    }

    let nodes: [Node]
    let isTextPart: Bool

    /// Thrown when a template uses something this compiler leaves to swift-mustache.
    struct Unsupported: Error {}

    init(source: String, isTextPart: Bool) throws {
        var parser = Parser(bytes: Array(source.utf8))
        nodes = try parser.parse(section: nil)
        self.isTextPart = isTextPart
    }

    // MARK: Parsing (the line and standalone-tag rules of swift-mustache and the Mustache spec)

    struct Parser {
        let bytes: [UInt8]
        var position = 0
        var newLine = true

        init(bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }

        func startsTag(at index: Int) -> Bool { index + 1 < bytes.count && bytes[index] == UInt8(ascii: "{") && bytes[index + 1] == UInt8(ascii: "{") }

        /// Whether only spaces or tabs remain on this line; if so, moves past its line break.
        mutating func finishStandalone() -> Bool {
            guard newLine else { return false }
            var index = position
            while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 { index += 1 }
            if index >= bytes.count { position = index; return true }
            if bytes[index] == 10 { position = index + 1; return true }
            if bytes[index] == 13, index + 1 < bytes.count, bytes[index + 1] == 10 { position = index + 2; return true }
            return false
        }

        mutating func readTagBody(close: [UInt8]) throws -> String {
            let start = position
            while position + close.count <= bytes.count {
                if Array(bytes[position..<position + close.count]) == close {
                    let body = String(decoding: bytes[start..<position], as: UTF8.self)
                    position += close.count
                    return body.trimmingCharacters(in: .whitespaces)
                }
                position += 1
            }
            throw NimbusError(.invalidArgument, "a Mustache tag is not closed")
        }

        static func lookup(_ raw: String) throws -> Lookup {
            var name = raw, transforms: [String] = []
            while let open = name.firstIndex(of: "("), name.hasSuffix(")") {
                transforms.append(String(name[..<open]))
                name = String(name[name.index(after: open)..<name.index(before: name.endIndex)])
            }
            guard !name.contains("(") && !name.contains(")") else { throw Unsupported() }
            if name == "." { return Lookup(path: [], current: true, topOnly: false, transforms: transforms, sequenceContext: false, source: raw) }
            if name.isEmpty {
                guard !transforms.isEmpty else { throw NimbusError(.invalidArgument, "an empty Mustache tag") }
                return Lookup(path: [], current: false, topOnly: false, transforms: transforms, sequenceContext: true, source: raw)
            }
            let topOnly = name.hasPrefix(".")
            return Lookup(path: name.split(separator: ".").map(String.init), current: false, topOnly: topOnly, transforms: transforms,
                          sequenceContext: false, source: raw)
        }

        mutating func parse(section: String?) throws -> [Node] {
            var nodes: [Node] = []
            var pendingWhitespace: [UInt8] = []
            func flushWhitespace() {
                if !pendingWhitespace.isEmpty { nodes.append(.text(pendingWhitespace)); pendingWhitespace = [] }
            }
            while !atEnd {
                if newLine {
                    let start = position
                    while position < bytes.count, bytes[position] == 32 || bytes[position] == 9 { position += 1 }
                    pendingWhitespace = Array(bytes[start..<position])
                }
                // Text up to a tag or the end of the line.
                let start = position
                while position < bytes.count, bytes[position] != 10, !startsTag(at: position) { position += 1 }
                if position < bytes.count, bytes[position] == 10 {
                    nodes.append(.text(pendingWhitespace + Array(bytes[start...position])))
                    pendingWhitespace = []
                    position += 1
                    newLine = true
                    continue
                }
                if position > start {
                    nodes.append(.text(pendingWhitespace + Array(bytes[start..<position])))
                    pendingWhitespace = []
                    newLine = false
                }
                if atEnd { break }
                position += 2                                              // past "{{"
                guard position < bytes.count else { throw NimbusError(.invalidArgument, "a Mustache tag is not closed") }
                let sigil = bytes[position]
                var standalone = false
                switch sigil {
                case UInt8(ascii: "#"), UInt8(ascii: "^"):
                    position += 1
                    let name = try readTagBody(close: [125, 125])
                    if finishStandalone() { standalone = true } else { flushWhitespace() }
                    newLine = standalone
                    let body = try parse(section: name)
                    nodes.append(.section(try Self.lookup(name), body, inverted: sigil == UInt8(ascii: "^")))
                    newLine = standalone                                   // as swift-mustache: the opening tag's line state
                    continue
                case UInt8(ascii: "/"):
                    position += 1
                    let name = try readTagBody(close: [125, 125])
                    guard name == section else { throw NimbusError(.invalidArgument, "the Mustache section '\(section ?? "")' is closed by '\(name)'") }
                    if finishStandalone() { pendingWhitespace = [] } else { flushWhitespace() }
                    newLine = false
                    return nodes
                case UInt8(ascii: "!"):
                    position += 1
                    _ = try readTagBody(close: [125, 125])
                    standalone = finishStandalone()
                    if standalone { pendingWhitespace = [] }
                case UInt8(ascii: "{"):
                    flushWhitespace()
                    position += 1
                    let name = try readTagBody(close: [125, 125, 125])
                    nodes.append(.variable(try Self.lookup(name), escaped: false))
                case UInt8(ascii: "&"):
                    flushWhitespace()
                    position += 1
                    nodes.append(.variable(try Self.lookup(try readTagBody(close: [125, 125])), escaped: false))
                case UInt8(ascii: ">"):
                    position += 1
                    let name = try readTagBody(close: [125, 125])
                    guard !name.hasPrefix("*") else {
                        throw NimbusError(.invalidArgument, "dynamic partials ({{>*\(name.dropFirst())}}) are not supported; name the partial")
                    }
                    let indentation = pendingWhitespace
                    flushWhitespace()
                    if finishStandalone() {
                        standalone = true
                        nodes.append(.partial(name, indentation: indentation, overrides: nil))
                    } else {
                        nodes.append(.partial(name, indentation: nil, overrides: nil))
                    }
                case UInt8(ascii: "<"):
                    position += 1
                    let name = try readTagBody(close: [125, 125])
                    guard !name.hasPrefix("*") else {
                        throw NimbusError(.invalidArgument, "dynamic parents ({{<*\(name.dropFirst())}}) are not supported; name the parent")
                    }
                    let indentation = pendingWhitespace
                    flushWhitespace()
                    standalone = finishStandalone()
                    newLine = standalone
                    var overrides: [String: [Node]] = [:]
                    for node in try parseOverrides(name) {
                        guard case .block(let blockName, let content, _) = node else { continue }
                        overrides[blockName] = content
                    }
                    nodes.append(.partial(name, indentation: indentation, overrides: overrides))
                    newLine = standalone
                    continue
                case UInt8(ascii: "$"):
                    position += 1
                    let name = try readTagBody(close: [125, 125])
                    let indentation = pendingWhitespace
                    flushWhitespace()
                    standalone = finishStandalone()
                    newLine = standalone
                    let body = try parse(section: name)
                    nodes.append(.block(name, defaultContent: body, indentation: indentation))
                    newLine = standalone
                    continue
                case UInt8(ascii: "%"):
                    position += 1
                    let pragma = try readTagBody(close: [125, 125]).replacingOccurrences(of: " ", with: "")
                    switch pragma {
                    case "CONTENT_TYPE:TEXT": nodes.append(.contentType(html: false))
                    case "CONTENT_TYPE:HTML": nodes.append(.contentType(html: true))
                    default: throw Unsupported()
                    }
                    standalone = finishStandalone()
                case UInt8(ascii: "="):
                    throw Unsupported()                                      // set delimiters: swift-mustache renders these
                default:
                    flushWhitespace()
                    nodes.append(.variable(try Self.lookup(try readTagBody(close: [125, 125])), escaped: true))
                }
                newLine = standalone
            }
            guard section == nil else { throw NimbusError(.invalidArgument, "the Mustache section '\(section ?? "")' is not closed") }
            flushWhitespace()
            return nodes
        }

        /// The inside of `{{<parent}}…{{/parent}}`: block definitions (their standalone tags trimmed), text ignored.
        mutating func parseOverrides(_ parent: String) throws -> [Node] {
            var blocks: [Node] = []
            while !atEnd {
                while position < bytes.count, !startsTag(at: position) {
                    if bytes[position] == 10 { newLine = true } else if bytes[position] != 32 && bytes[position] != 9 { newLine = false }
                    position += 1
                }
                if atEnd { break }
                let lineStart = newLine
                position += 2
                guard position < bytes.count else { break }
                let sigil = bytes[position]
                position += 1
                let name = try readTagBody(close: [125, 125])
                switch sigil {
                case UInt8(ascii: "$"):
                    newLine = lineStart
                    let standalone = finishStandalone()
                    newLine = standalone
                    let body = try parse(section: name)
                    blocks.append(.block(name, defaultContent: body, indentation: []))
                case UInt8(ascii: "/"):
                    guard name == parent else { throw NimbusError(.invalidArgument, "the Mustache parent '\(parent)' is closed by '\(name)'") }
                    newLine = lineStart
                    _ = finishStandalone()
                    return blocks
                case UInt8(ascii: "!"):
                    continue
                default:
                    throw Unsupported()
                }
            }
            throw NimbusError(.invalidArgument, "the Mustache parent '\(parent)' is not closed")
        }
    }
}

// MARK: - Rendering

/// Renders compiled templates from `JSONValue` into one UTF-8 buffer.
struct CompiledRenderer {
    struct Sequence {
        var index: Int
        var count: Int
    }

    /// A partial the fast path cannot render (it is left to swift-mustache).
    struct NeedsFallback: Error {}

    let templates: [String: CompiledTemplate]
    let functions: TemplateFunctions
    let recordMissing: Bool
    var missing = Set<String>()
    var out: [UInt8] = []

    init(templates: [String: CompiledTemplate], functions: TemplateFunctions, recordMissing: Bool) {
        self.templates = templates
        self.functions = functions
        self.recordMissing = recordMissing
        out.reserveCapacity(4096)
    }

    mutating func render(_ template: CompiledTemplate, data: JSONValue) throws -> String {
        var stack = [data]
        try render(template.nodes, stack: &stack, sequence: nil, indentation: [], overrides: [:], html: !template.isTextPart)
        return String(decoding: out, as: UTF8.self)
    }

    mutating func render(_ nodes: [CompiledTemplate.Node], stack: inout [JSONValue], sequence: Sequence?, indentation: [UInt8],
                         overrides: [String: [CompiledTemplate.Node]], html: Bool) throws {
        var html = html
        let levelStart = out.count
        for node in nodes {
            let before = out.count
            let indent = !indentation.isEmpty && before > levelStart && out[before - 1] == 10
            switch node {
            case .text(let bytes):
                out += bytes
            case .contentType(let isHTML):
                html = isHTML
            case .variable(let lookup, let escaped):
                guard let value = resolve(lookup, stack: stack, sequence: sequence) else { break }
                write(value, escaped: escaped && html)
            case .section(let lookup, let body, let inverted):
                let value = resolve(lookup, stack: stack, sequence: sequence)
                try section(value, body: body, inverted: inverted, stack: &stack, indentation: indentation, overrides: overrides, html: html)
            case .partial(let name, let partialIndentation, let partialOverrides):
                guard let partial = templates[name] else {
                    if functions.fallbackNames.contains(name) { throw NeedsFallback() }
                    break
                }
                var merged = overrides
                for (key, value) in partialOverrides ?? [:] where merged[key] == nil { merged[key] = value }
                try render(partial.nodes, stack: &stack, sequence: nil, indentation: indentation + (partialIndentation ?? []), overrides: merged, html: true)
            case .block(let name, let defaultContent, let blockIndentation):
                try render(overrides[name] ?? defaultContent, stack: &stack, sequence: nil, indentation: indentation + blockIndentation,
                           overrides: overrides, html: html)
            }
            if indent, out.count > before { out.insert(contentsOf: indentation, at: before) }
        }
    }

    mutating func section(_ value: JSONValue?, body: [CompiledTemplate.Node], inverted: Bool, stack: inout [JSONValue], indentation: [UInt8],
                          overrides: [String: [CompiledTemplate.Node]], html: Bool) throws {
        // Rendered in a level of its own, as swift-mustache does, so the indentation rule sees the same lines.
        switch value {
        case .none, .null?:
            if inverted { try render(body, stack: &stack, sequence: nil, indentation: indentation, overrides: overrides, html: html) }
        case .bool(let flag)?:
            if flag != inverted { try render(body, stack: &stack, sequence: nil, indentation: indentation, overrides: overrides, html: html) }
        case .array(let items)?:
            if inverted {
                if items.isEmpty { try render(body, stack: &stack, sequence: nil, indentation: indentation, overrides: overrides, html: html) }
            } else {
                for (index, item) in items.enumerated() {
                    stack.append(item)
                    defer { stack.removeLast() }
                    try render(body, stack: &stack, sequence: Sequence(index: index, count: items.count), indentation: indentation, overrides: overrides, html: html)
                }
            }
        case .some(let other):
            guard !inverted else { return }
            stack.append(other)
            defer { stack.removeLast() }
            try render(body, stack: &stack, sequence: nil, indentation: indentation, overrides: overrides, html: html)
        }
    }

    /// swift-mustache's lookup: the first name up the context stack, the rest inside it, then the transforms.
    mutating func resolve(_ lookup: CompiledTemplate.Lookup, stack: [JSONValue], sequence: Sequence?) -> JSONValue? {
        var value: JSONValue?
        if lookup.sequenceContext {
            guard let sequence, let transform = lookup.transforms.last else { return nil }
            switch transform {
            case "first": return .bool(sequence.index == 0)
            case "last": return .bool(sequence.index == sequence.count - 1)
            case "index": return .number(Double(sequence.index))
            case "even": return .bool(sequence.index & 1 == 0)
            case "odd": return .bool(sequence.index & 1 == 1)
            default: return nil
            }
        } else if lookup.current {
            value = stack.last
        } else if lookup.topOnly {
            guard var current = stack.last else { return nil }
            for name in lookup.path {
                if current == .null { return nil }
                guard let next = Self.child(name, of: current) else { note(name); return nil }
                current = next
            }
            value = current
        } else {
            guard let first = lookup.path.first else { return nil }
            var found: JSONValue?
            for object in stack.reversed() {
                if let child = Self.child(first, of: object) { found = child; break }
            }
            guard var current = found else { note(first); return nil }
            for name in lookup.path.dropFirst() {
                if current == .null { return nil }                     // below a null everything is empty, not missing
                guard let next = Self.child(name, of: current) else { note(name); return nil }
                current = next
            }
            value = current
        }
        guard var result = value else { return nil }
        for transform in lookup.transforms.reversed() {
            guard let transformed = functions.apply(transform, to: result) else { return nil }
            result = transformed
        }
        return result
    }

    mutating func note(_ name: String) {
        if recordMissing { missing.insert(name) }
    }

    static func child(_ name: String, of value: JSONValue) -> JSONValue? {
        switch value {
        case .object(let object): return object[name]
        case .array(let items):
            switch name {
            case "count": return .number(Double(items.count))
            case "first": return items.first
            case "last": return items.last
            default: return nil
            }
        default: return nil
        }
    }

    mutating func write(_ value: JSONValue, escaped: Bool) {
        switch value {
        case .string(let text): append(text, escaped: escaped)
        case .number(let number): append(TemplateFunctions.plain(number), escaped: false)
        case .bool(let flag): append(flag ? "true" : "false", escaped: false)
        case .null, .array: break
        case .object: append(functions.objectText(value), escaped: escaped)
        }
    }

    mutating func append(_ text: String, escaped: Bool) {
        var text = text
        text.withUTF8 { utf8 in
            guard escaped else { out.append(contentsOf: utf8); return }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "<"): out += [38, 108, 116, 59]                       // &lt;
                case UInt8(ascii: ">"): out += [38, 103, 116, 59]                       // &gt;
                case UInt8(ascii: "&"): out += [38, 97, 109, 112, 59]                   // &amp;
                case UInt8(ascii: "\""): out += [38, 113, 117, 111, 116, 59]            // &quot;
                case UInt8(ascii: "'"): out += [38, 35, 51, 57, 59]                     // &#39;
                default: out.append(byte)
                }
            }
        }
    }
}
