import Foundation
import NimbusCore

/// A rule of the ModSecurity rule language (SecLang) subset NimbusWAF runs — enough for the OWASP
/// Core Rule Set's request rules. `docs/security.md` lists the supported variables, operators,
/// transformations and actions; anything else is refused when the rules load (or, for the two
/// libinjection operators, loaded as never matching and reported in ``WAFRuleSet/unsupported``).
public struct WAFRule: Sendable {
    /// One target of a rule: `ARGS`, `REQUEST_HEADERS:User-Agent`, `!REQUEST_COOKIES:/^_ga/`, `&TX:foo`.
    public struct Target: Sendable, Hashable {
        /// The collection (upper case).
        public var collection: String
        /// A key (lower-cased for case-insensitive collections) or nil for all.
        public var key: String?
        /// A key given as `/regex/`.
        public var keyPattern: String?
        /// `!` — an exclusion.
        public var excluded: Bool
        /// `&` — count the values instead.
        public var counted: Bool
    }

    /// The operator and its argument.
    public struct Operator: Sendable {
        public var name: String
        public var argument: String
        public var negated: Bool
    }

    public var id: Int
    public var phase: Int
    public var targets: [Target]
    public var op: Operator
    public var transformations: [String]
    /// Actions in order, as `(name, value)`.
    public var actions: [(name: String, value: String)]
    public var chained: [WAFRule] = []
    public var tags: [String]
    public var log: Bool
    public var capture: Bool
    public var multiMatch: Bool
    public var disruptive: String?
    public var skipAfter: String?
    /// Whether the operator can run (false for the libinjection operators).
    public var supported = true
    /// Whether the operator's argument holds `%{…}` macros to expand per request.
    public var argumentHasMacro = false

    func action(_ name: String) -> String? { actions.first { $0.name == name }?.value }
}

/// One entry of a rule list: a rule, a marker, or an unconditional action.
enum WAFEntry: Sendable {
    case rule(WAFRule)
    case marker(String)
}

/// Parses SecLang text into entries.
enum SecLangParser {
    static func fail(_ message: String, _ file: String, _ line: Int) -> NimbusError {
        NimbusError(.invalidArgument, "WAF rules \(file):\(line): \(message)")
    }

    /// Directives with their arguments, continuation lines joined and comments dropped.
    static func directives(_ text: String, file: String) throws -> [(line: Int, name: String, arguments: [String])] {
        var result: [(Int, String, [String])] = []
        var pending = "", start = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            if pending.isEmpty {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                start = index + 1
            }
            if line.hasSuffix("\\") {
                pending += String(line.dropLast()) + " "
                continue
            }
            pending += line
            let tokens = try tokenize(pending, file: file, line: start)
            pending = ""
            guard let name = tokens.first else { continue }
            result.append((start, name, Array(tokens.dropFirst())))
        }
        return result
    }

    /// Splits a directive into words: bare, or double-quoted with `\"` escapes.
    static func tokenize(_ text: String, file: String, line: Int) throws -> [String] {
        var tokens: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if c == " " || c == "\t" { index = text.index(after: index); continue }
            if c == "\"" {
                var value = ""
                index = text.index(after: index)
                var closed = false
                while index < text.endIndex {
                    let d = text[index]
                    if d == "\\", text.index(after: index) < text.endIndex, text[text.index(after: index)] == "\"" {
                        value.append("\"")
                        index = text.index(index, offsetBy: 2)
                        continue
                    }
                    if d == "\"" { closed = true; index = text.index(after: index); break }
                    value.append(d)
                    index = text.index(after: index)
                }
                guard closed else { throw fail("unterminated quoted argument", file, line) }
                tokens.append(value)
            } else {
                var value = ""
                while index < text.endIndex, text[index] != " ", text[index] != "\t" {
                    value.append(text[index])
                    index = text.index(after: index)
                }
                tokens.append(value)
            }
        }
        return tokens
    }

    /// Splits an action list at commas outside single quotes.
    static func actions(_ text: String) -> [(name: String, value: String)] {
        var parts: [String] = []
        var current = "", quoted = false
        var previous: Character = " "
        for c in text {
            if c == "'" && previous != "\\" { quoted.toggle() }
            if c == ",", !quoted { parts.append(current); current = "" } else { current.append(c) }
            previous = c
        }
        parts.append(current)
        return parts.compactMap { part in
            let trimmed = part.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { return nil }
            guard let colon = trimmed.firstIndex(of: ":") else { return (trimmed, "") }
            var value = String(trimmed[trimmed.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") { value = String(value.dropFirst().dropLast()) }
            return (String(trimmed[..<colon]), value)
        }
    }

    static let caseInsensitive: Set<String> = ["REQUEST_HEADERS", "REQUEST_HEADERS_NAMES", "TX", "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES", "MULTIPART_PART_HEADERS"]

    /// Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-/`.
    static func targets(_ text: String) -> [WAFRule.Target] {
        var targets: [WAFRule.Target] = []
        var parts: [String] = []
        var current = "", inRegex = false
        for c in text {
            // `/regex/` selectors; XML's selectors are XPath (`XML:/*`), not patterns.
            if c == "/" && ((current.hasSuffix(":") && !current.uppercased().hasSuffix("XML:")) || inRegex) { inRegex.toggle() }
            if c == "|", !inRegex { parts.append(current); current = "" } else { current.append(c) }
        }
        parts.append(current)
        for var part in parts where !part.isEmpty {
            var excluded = false, counted = false
            if part.hasPrefix("!") { excluded = true; part.removeFirst() }
            if part.hasPrefix("&") { counted = true; part.removeFirst() }
            var collection = part, key: String?, pattern: String?
            if let colon = part.firstIndex(of: ":") {
                collection = String(part[..<colon])
                let selector = String(part[part.index(after: colon)...])
                if selector.count >= 2, selector.hasPrefix("/"), selector.hasSuffix("/") {
                    pattern = String(selector.dropFirst().dropLast())
                } else {
                    key = selector
                }
            }
            collection = collection.uppercased()
            if caseInsensitive.contains(collection) { key = key?.lowercased() }
            targets.append(.init(collection: collection, key: key, keyPattern: pattern, excluded: excluded, counted: counted))
        }
        return targets
    }

    static let operators: Set<String> = ["rx", "pm", "pmFromFile", "pmf", "contains", "containsWord", "beginsWith", "endsWith", "streq", "eq", "ge", "gt", "le", "lt",
                                         "within", "ipMatch", "validateByteRange", "validateUrlEncoding", "validateUtf8Encoding", "unconditionalMatch",
                                         "noMatch", "strmatch", "detectSQLi", "detectXSS"]
    static let unsupportedOperators: Set<String> = ["detectSQLi", "detectXSS"]

    static func rule(targets targetText: String, operator operatorText: String, actions actionText: String, file: String, line: Int,
                     defaultPhase: Int) throws -> WAFRule {
        var text = operatorText
        var negated = false
        if text.hasPrefix("!") { negated = true; text.removeFirst() }
        var name = "rx", argument = text
        if text.hasPrefix("@") {
            let space = text.firstIndex(of: " ") ?? text.endIndex
            name = String(text[text.index(after: text.startIndex)..<space])
            argument = space == text.endIndex ? "" : String(text[text.index(after: space)...])
        }
        guard operators.contains(name) else { throw fail("operator @\(name) is not supported", file, line) }
        let actions = Self.actions(actionText)
        var transformations: [String] = []
        for action in actions where action.name == "t" {
            if action.value == "none" { transformations.removeAll() } else { transformations.append(action.value) }
        }
        for t in transformations where !WAFTransformations.known.contains(t) { throw fail("transformation t:\(t) is not supported", file, line) }
        let id = actions.first { $0.name == "id" }.flatMap { Int($0.value) } ?? 0
        let disruptive = actions.first { ["deny", "block", "drop", "allow", "redirect", "pass"].contains($0.name) }?.name
        return WAFRule(id: id, phase: actions.first { $0.name == "phase" }.flatMap { Int($0.value) } ?? defaultPhase,
                       targets: targets(targetText), op: .init(name: name, argument: argument, negated: negated), transformations: transformations,
                       actions: actions, tags: actions.filter { $0.name == "tag" }.map(\.value),
                       log: !actions.contains { $0.name == "nolog" }, capture: actions.contains { $0.name == "capture" },
                       multiMatch: actions.contains { $0.name == "multiMatch" }, disruptive: disruptive,
                       skipAfter: actions.first { $0.name == "skipAfter" }?.value, supported: !unsupportedOperators.contains(name),
                       argumentHasMacro: argument.contains("%{"))
    }

    /// Parses a rule file into entries (chains folded into their starter) and target updates.
    static func parse(_ text: String, file: String) throws -> (entries: [WAFEntry], updates: [(id: Int, targets: String)]) {
        var entries: [WAFEntry] = []
        var updates: [(Int, String)] = []
        var chainStarter: WAFRule?
        var chainOpen = false
        func closeChain() {
            if let starter = chainStarter { entries.append(.rule(starter)) }
            chainStarter = nil
        }
        for directive in try directives(text, file: file) {
            switch directive.name {
            case "SecRule":
                guard directive.arguments.count >= 2 else { throw fail("SecRule needs targets and an operator", file, directive.line) }
                let parsed = try rule(targets: directive.arguments[0], operator: directive.arguments[1],
                                      actions: directive.arguments.count > 2 ? directive.arguments[2] : "", file: file, line: directive.line,
                                      defaultPhase: chainStarter?.phase ?? 2)
                let chains = parsed.actions.contains { $0.name == "chain" }
                if chainOpen, var starter = chainStarter {
                    var link = parsed
                    link.phase = starter.phase
                    starter.chained.append(link)
                    chainStarter = starter
                    if !chains { closeChain(); chainOpen = false }
                } else {
                    closeChain()
                    chainStarter = parsed
                    chainOpen = chains
                    if !chains { closeChain() }
                }
            case "SecAction":
                closeChain(); chainOpen = false
                let parsed = try rule(targets: "", operator: "@unconditionalMatch", actions: directive.arguments.first ?? "", file: file,
                                      line: directive.line, defaultPhase: 2)
                entries.append(.rule(parsed))
            case "SecMarker":
                closeChain(); chainOpen = false
                entries.append(.marker(directive.arguments.first ?? ""))
            case "SecRuleUpdateTargetById":
                guard directive.arguments.count == 2, let id = Int(directive.arguments[0]) else { throw fail("SecRuleUpdateTargetById ID TARGETS", file, directive.line) }
                updates.append((id, directive.arguments[1]))
            case "SecComponentSignature":
                continue
            default:
                throw fail("directive \(directive.name) is not supported", file, directive.line)
            }
        }
        closeChain()
        return (entries, updates)
    }
}
