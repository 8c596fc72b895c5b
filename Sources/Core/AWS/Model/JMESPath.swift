import Foundation
import NimbusCore

/// The part of JMESPath the AWS paginators and waiters use: fields, `.`, indexes (`[-1]`),
/// projections (`[]`, `[*]`, `[?cond]`), `length()`, comparisons with `` `literal` `` and
/// `'raw'` values, `||`, `&&`, `!` and parentheses.
///
/// ```swift
/// let names = try JMESPath("Reservations[].Instances[].State.Name").evaluate(output)
/// ```
struct JMESPath: Sendable {
    indirect enum Node: Sendable {
        case chain([Step])
        case literal(JSONValue)
        case or(Node, Node), and(Node, Node), not(Node)
        case compare(String, Node, Node)
        case function(String, [Node])
    }

    enum Step: Sendable {
        case start(Node)           // the chain's first value (a literal, a function, a parenthesised expression)
        case current
        case field(String)
        case index(Int)
        case flatten, wildcard
        case filter(Node)
    }

    let root: Node
    let text: String

    init(_ text: String) throws {
        self.text = text
        var parser = Parser(chars: Array(text))
        root = try parser.expression()
        parser.skipSpace()
        guard parser.index == parser.chars.count else { throw parser.failure("unexpected '\(parser.chars[parser.index])'") }
    }

    /// The expression's value on `value` (`null` where a field is missing).
    func evaluate(_ value: JSONValue) -> JSONValue { Self.eval(root, value) }

    static func eval(_ node: Node, _ value: JSONValue) -> JSONValue {
        switch node {
        case .literal(let literal): return literal
        case .chain(let steps): return run(steps, from: 0, to: steps.count, on: value)
        case .or(let left, let right):
            let first = eval(left, value)
            return truthy(first) ? first : eval(right, value)
        case .and(let left, let right):
            let first = eval(left, value)
            return truthy(first) ? eval(right, value) : first
        case .not(let inner): return .bool(!truthy(eval(inner, value)))
        case .compare(let op, let left, let right):
            let a = eval(left, value), b = eval(right, value)
            switch op {
            case "==": return .bool(a == b)
            case "!=": return .bool(a != b)
            default:
                guard let x = a.numberValue, let y = b.numberValue else { return .null }
                switch op {
                case "<": return .bool(x < y)
                case "<=": return .bool(x <= y)
                case ">": return .bool(x > y)
                default: return .bool(x >= y)
                }
            }
        case .function(let name, let arguments):
            let values = arguments.map { eval($0, value) }
            switch (name, values.first) {
            case ("length", .array(let items)?): return .number(Double(items.count))
            case ("length", .string(let text)?): return .number(Double(text.unicodeScalars.count))
            case ("length", .object(let members)?): return .number(Double(members.count))
            case ("contains", .array(let items)?): return .bool(values.count > 1 && items.contains(values[1]))
            case ("contains", .string(let text)?): return .bool(values.count > 1 && values[1].stringValue.map(text.contains) == true)
            default: return .null
            }
        }
    }

    static func run(_ steps: [Step], from start: Int, to end: Int, on value: JSONValue) -> JSONValue {
        var current = value
        var index = start
        while index < end {
            switch steps[index] {
            case .start(let node): current = eval(node, current); index += 1
            case .current: index += 1
            case .field(let name): current = current[name] ?? .null; index += 1
            case .index(let position):
                guard case .array(let items) = current else { current = .null; index += 1; continue }
                let resolved = position < 0 ? items.count + position : position
                current = items.indices.contains(resolved) ? items[resolved] : .null
                index += 1
            case .flatten, .wildcard, .filter:
                var base: [JSONValue]
                switch (steps[index], current) {
                case (.flatten, .array(let items)): base = items.flatMap { if case .array(let inner) = $0 { inner } else { [$0] } }
                case (.wildcard, .array(let items)): base = items
                case (.wildcard, .object(let members)): base = Array(members.values)
                case (.filter(let condition), .array(let items)): base = items.filter { truthy(eval(condition, $0)) }
                default: return .null
                }
                var next = index + 1
                while next < end { if case .flatten = steps[next] { break }; next += 1 }
                let body = index + 1
                current = .array(base.compactMap { element in
                    let projected = run(steps, from: body, to: next, on: element)
                    return projected == .null ? nil : projected
                })
                index = next
            }
        }
        return current
    }

    static func truthy(_ value: JSONValue) -> Bool {
        switch value {
        case .null: false
        case .bool(let flag): flag
        case .string(let text): !text.isEmpty
        case .array(let items): !items.isEmpty
        case .object(let members): !members.isEmpty
        case .number: true
        }
    }

    struct Parser {
        let chars: [Character]
        var index = 0

        func failure(_ what: String) -> NimbusError { NimbusError(.invalidArgument, "JMESPath '\(String(chars))' at \(index): \(what)") }

        mutating func skipSpace() { while index < chars.count, chars[index].isWhitespace { index += 1 } }

        mutating func peek(_ token: String) -> Bool {
            skipSpace()
            let token = Array(token)
            return index + token.count <= chars.count && Array(chars[index..<index + token.count]) == token
        }

        mutating func take(_ token: String) -> Bool {
            guard peek(token) else { return false }
            index += token.count
            return true
        }

        mutating func expression() throws -> Node {
            var left = try conjunction()
            while take("||") { left = .or(left, try conjunction()) }
            return left
        }

        mutating func conjunction() throws -> Node {
            var left = try comparison()
            while take("&&") { left = .and(left, try comparison()) }
            return left
        }

        mutating func comparison() throws -> Node {
            let left = try unary()
            for op in ["==", "!=", "<=", ">=", "<", ">"] where take(op) {
                return .compare(op, left, try unary())
            }
            return left
        }

        mutating func unary() throws -> Node {
            if take("!") { return .not(try unary()) }
            return try chain()
        }

        mutating func chain() throws -> Node {
            var steps: [Step] = []
            skipSpace()
            guard index < chars.count else { throw failure("unexpected end") }
            let c = chars[index]
            if c == "(" {
                index += 1
                let inner = try expression()
                guard take(")") else { throw failure("expected ')'") }
                steps.append(.start(inner))
            } else if c == "`" {
                index += 1
                let start = index
                while index < chars.count, chars[index] != "`" { index += 1 }
                guard index < chars.count else { throw failure("unfinished literal") }
                let body = String(chars[start..<index])
                index += 1
                let literal = (try? JSONValue.parse(Data(body.utf8))) ?? .string(body)
                steps.append(.start(.literal(literal)))
            } else if c == "'" {
                index += 1
                let start = index
                while index < chars.count, chars[index] != "'" { index += 1 }
                guard index < chars.count else { throw failure("unfinished raw string") }
                steps.append(.start(.literal(.string(String(chars[start..<index])))))
                index += 1
            } else if c == "@" {
                index += 1
                steps.append(.current)
            } else if c == "[" {
                // a projection of the current value
            } else {
                let name = try identifier()
                if take("(") {
                    var arguments: [Node] = []
                    if !take(")") {
                        repeat { arguments.append(try expression()) } while take(",")
                        guard take(")") else { throw failure("expected ')'") }
                    }
                    steps.append(.start(.function(name, arguments)))
                } else {
                    steps.append(.field(name))
                }
            }
            while true {
                if take(".") {
                    if take("*") { steps.append(.wildcard); continue }
                    steps.append(.field(try identifier()))
                } else if take("[]") {
                    steps.append(.flatten)
                } else if take("[*]") {
                    steps.append(.wildcard)
                } else if take("[?") {
                    let condition = try expression()
                    guard take("]") else { throw failure("expected ']'") }
                    steps.append(.filter(condition))
                } else if take("[") {
                    skipSpace()
                    let start = index
                    if index < chars.count, chars[index] == "-" { index += 1 }
                    while index < chars.count, chars[index].isNumber { index += 1 }
                    guard let position = Int(String(chars[start..<index])), take("]") else { throw failure("expected an index") }
                    steps.append(.index(position))
                } else {
                    break
                }
            }
            return .chain(steps)
        }

        mutating func identifier() throws -> String {
            skipSpace()
            if index < chars.count, chars[index] == "\"" {
                index += 1
                let start = index
                while index < chars.count, chars[index] != "\"" { index += 1 }
                guard index < chars.count else { throw failure("unfinished quoted name") }
                defer { index += 1 }
                return String(chars[start..<index])
            }
            let start = index
            while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" { index += 1 }
            guard index > start else { throw failure("expected a name") }
            return String(chars[start..<index])
        }
    }
}
