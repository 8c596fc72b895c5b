import Foundation
import NimbusCore
import NimbusLLM

/// Values for templates.
public typealias PromptValues = [String: String]

/// A text template with `{name}` variables (`{{` and `}}` are literal braces). Every variable must be
/// given: a missing one is an error naming it, not a silent blank.
public struct PromptTemplate: Runnable, Hashable {
    public let template: String
    public var name: String { "prompt" }

    /// Creates a template. - Throws: `invalidArgument` for an unclosed `{`.
    public init(_ template: String) throws {
        self.template = template
        _ = try Self.parse(template)
    }

    /// The variables the template uses.
    public var variables: [String] {
        ((try? Self.parse(template)) ?? []).compactMap { if case .variable(let name) = $0 { name } else { nil } }
    }

    enum Piece { case text(String), variable(String) }

    static func parse(_ template: String) throws -> [Piece] {
        var pieces: [Piece] = []
        var text = ""
        var index = template.startIndex
        while index < template.endIndex {
            let character = template[index]
            let next = template.index(after: index)
            if character == "{", next < template.endIndex, template[next] == "{" { text.append("{"); index = template.index(after: next); continue }
            if character == "}", next < template.endIndex, template[next] == "}" { text.append("}"); index = template.index(after: next); continue }
            if character == "{" {
                guard let close = template[next...].firstIndex(of: "}") else {
                    throw NimbusError(.invalidArgument, "the template has a '{' without '}' (write '{{' for a literal brace)")
                }
                if !text.isEmpty { pieces.append(.text(text)); text = "" }
                pieces.append(.variable(template[next..<close].trimmingCharacters(in: .whitespaces)))
                index = template.index(after: close)
                continue
            }
            text.append(character)
            index = next
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        return pieces
    }

    /// The text with the values filled in. - Throws: `invalidArgument` naming the missing variables.
    public func format(_ values: PromptValues) throws -> String {
        let pieces = try Self.parse(template)
        let missing = pieces.compactMap { piece -> String? in
            if case .variable(let name) = piece, values[name] == nil { return name }
            return nil
        }
        guard missing.isEmpty else {
            throw NimbusError(.invalidArgument, "the prompt needs values for \(missing.map { "'\($0)'" }.joined(separator: ", "))")
        }
        return pieces.map { piece in
            switch piece {
            case .text(let text): text
            case .variable(let name): values[name] ?? ""
            }
        }.joined()
    }

    public func run(_ input: PromptValues, context: ChainContext) async throws -> String { try format(input) }
}

/// The input of a chat template: text values and message lists for placeholders.
public struct ChatPromptInput: Sendable, ExpressibleByDictionaryLiteral {
    /// Text variables.
    public var values: PromptValues
    /// Message lists by placeholder name (conversation history, retrieved examples...).
    public var messages: [String: [ChatMessage]]

    /// Creates an input.
    public init(values: PromptValues = [:], messages: [String: [ChatMessage]] = [:]) {
        self.values = values
        self.messages = messages
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(values: Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// Chat messages with `{variables}` and placeholders for whole message lists (history).
///
/// ```swift
/// let prompt = try ChatPromptTemplate([.system("You are {persona}."), .placeholder("history"), .user("{question}")])
/// ```
public struct ChatPromptTemplate: Runnable {
    /// One entry of the template.
    public enum Entry: Sendable {
        /// A message whose text is a template (checked when the prompt is formatted).
        case message(ChatMessage.Role, String)
        /// A list of messages given at run time (missing: an error unless optional).
        case placeholder(String, optional: Bool)

        /// A system message template.
        public static func system(_ text: String) -> Entry { .message(.system, text) }
        /// A user message template.
        public static func user(_ text: String) -> Entry { .message(.user, text) }
        /// An assistant message template.
        public static func assistant(_ text: String) -> Entry { .message(.assistant, text) }
        /// A required placeholder.
        public static func placeholder(_ name: String) -> Entry { .placeholder(name, optional: false) }
    }

    public let entries: [Entry]
    public var name: String { "chat-prompt" }

    /// Creates a template.
    public init(_ entries: [Entry]) { self.entries = entries }

    /// The messages. - Throws: `invalidArgument` for a malformed template, a missing variable or a missing required placeholder.
    public func format(_ input: ChatPromptInput) throws -> [ChatMessage] {
        var messages: [ChatMessage] = []
        for entry in entries {
            switch entry {
            case .message(let role, let template):
                let text = try PromptTemplate(template).format(input.values)
                messages.append(ChatMessage(role: role, content: [.text(text)]))
            case .placeholder(let name, let optional):
                guard let list = input.messages[name] else {
                    if optional { continue }
                    throw NimbusError(.invalidArgument, "the chat prompt needs messages for the placeholder '\(name)'")
                }
                messages += list
            }
        }
        return messages
    }

    public func run(_ input: ChatPromptInput, context: ChainContext) async throws -> [ChatMessage] { try format(input) }
}

/// A model call: messages in, response out. When the chain is streamed, it streams and reports tokens.
public struct ModelStep: Runnable {
    /// The model.
    public let model: ChatModel
    /// Settings of the request (model id, temperature, response format...); its messages are replaced.
    public var request: ChatRequest
    public var name: String { "model" }

    /// Creates the step.
    public init(_ model: ChatModel, request: ChatRequest = ChatRequest(messages: [])) {
        self.model = model
        self.request = request
    }

    public func run(_ input: [ChatMessage], context: ChainContext) async throws -> ChatResponse {
        var request = request
        request.messages = input
        guard let emit = context.emit else { return try await model.chat(request) }
        var accumulator = ChatResponseAccumulator()
        for try await event in try await model.stream(request) {
            accumulator.add(event)
            if case .textDelta(let text) = event { emit(.token(text)) }
        }
        return try accumulator.response()
    }
}

/// The reply's text.
public struct TextParser: Runnable {
    public var name: String { "text" }
    /// Creates the parser.
    public init() {}
    public func run(_ input: ChatResponse, context: ChainContext) async throws -> String { input.message.text }
}

/// The reply as a list: one item per line, bullets and numbering removed, blank lines skipped.
public struct ListParser: Runnable {
    public var name: String { "list" }
    /// Creates the parser.
    public init() {}
    public func run(_ input: ChatResponse, context: ChainContext) async throws -> [String] {
        input.message.text.split(whereSeparator: \.isNewline).compactMap { line in
            var item = line.trimmingCharacters(in: .whitespaces)
            if let marker = item.firstIndex(where: { !"-*•0123456789.)".contains($0) }), marker != item.startIndex,
               item[..<marker].allSatisfy({ "-*•0123456789.)".contains($0) }) {
                item = item[marker...].trimmingCharacters(in: .whitespaces)
            }
            return item.isEmpty ? nil : item
        }
    }
}

/// The reply as one of an enum's cases (by raw value, case-insensitive, surrounding punctuation ignored).
public struct ChoiceParser<Choice: CaseIterable & RawRepresentable & Sendable>: Runnable where Choice.RawValue == String {
    public var name: String { "choice" }
    /// Creates the parser.
    public init(_ type: Choice.Type = Choice.self) {}
    public func run(_ input: ChatResponse, context: ChainContext) async throws -> Choice {
        let answer = input.message.text.trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters)).lowercased()
        if let exact = Choice.allCases.first(where: { $0.rawValue.lowercased() == answer }) { return exact }
        let mentioned = Choice.allCases.filter { answer.range(of: "\\b\($0.rawValue.lowercased())\\b", options: .regularExpression) != nil }
        guard mentioned.count == 1, let only = mentioned.first else {
            throw NimbusError(.invalidArgument, "the reply '\(input.message.text.prefix(100))' is not one of \(Choice.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return only
    }
}

/// The reply as a `Decodable` value, checked against the schema derived from the type. When it does
/// not fit (malformed JSON, a missing field, a wrong type), the model is asked once to repair it —
/// shown its reply, the problems and the schema — and the repair is checked the same way.
///
/// ```swift
/// struct Ticket: Codable, Sendable { var title: String; var priority: Priority; enum Priority: String, Codable, CaseIterable { case low, high } }
/// let triage = ChatPromptTemplate([.system(JSONParser<Ticket>.instructions()), .user("{email}")])
///     .then(ModelStep(model, request: JSONParser<Ticket>.request()))
///     .then(try JSONParser<Ticket>(repairingWith: model))
/// ```
public struct JSONParser<Value: Decodable & Sendable>: Runnable {
    /// The schema replies must fit.
    public let schema: JSONValue
    /// Asked to repair a reply that does not fit (`nil`: no repair, fail at once).
    public let repairModel: ChatModel?
    public var name: String { "json" }

    /// Creates the parser. - Throws: `invalidArgument` when no schema can be derived from `Value`.
    public init(repairingWith repairModel: ChatModel? = nil) throws {
        self.schema = try JSONSchema.derive(Value.self)
        self.repairModel = repairModel
    }

    /// A request asking for JSON that fits the schema (providers with structured output enforce it).
    public static func request(name: String = "output") throws -> ChatRequest {
        ChatRequest(messages: [], responseFormat: .jsonSchema(name: name, schema: try JSONSchema.derive(Value.self), strict: true))
    }

    /// Instructions to put in a prompt for models without structured output.
    public static func instructions() -> String {
        let schema = (try? JSONSchema.derive(Value.self))?.description ?? "{}"
        return "Answer with only a JSON value that matches this JSON Schema, no prose and no code fence:\n\(schema)"
    }

    public func run(_ input: ChatResponse, context: ChainContext) async throws -> Value {
        let first = input.message.text
        switch parse(first) {
        case .success(let value): return value
        case .failure(let problems):
            guard let repairModel else { throw Self.failure(problems, first) }
            let reply = try await repairModel.chat(ChatRequest(messages: [
                .system("You fix JSON so that it matches a JSON Schema. Answer with only the corrected JSON."),
                .user("JSON Schema:\n\(schema.description)\n\nThis reply does not match it:\n\(first)\n\nProblems:\n"
                      + problems.map { "- \($0)" }.joined(separator: "\n")),
            ], responseFormat: .jsonSchema(name: "repair", schema: schema, strict: true), temperature: 0))
            switch parse(reply.message.text) {
            case .success(let value): return value
            case .failure(let again): throw Self.failure(again, reply.message.text, repaired: true)
            }
        }
    }

    enum Outcome { case success(Value), failure([String]) }

    func parse(_ text: String) -> Outcome {
        let json: JSONValue
        do { json = try JSONValue.parse(Data(Self.stripFence(text).utf8)) } catch {
            return .failure(["the reply is not JSON: \(error)"])
        }
        let problems = JSONSchema.validate(json, against: schema)
        guard problems.isEmpty else { return .failure(problems) }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return .success(try json.decode(Value.self, decoder: decoder))
        } catch {
            return .failure(["the JSON does not decode as \(Value.self): \(error)"])
        }
    }

    /// The JSON inside a Markdown code fence, or the text itself.
    static func stripFence(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("```"), let firstLine = trimmed.firstIndex(of: "\n"), trimmed.hasSuffix("```") else { return trimmed }
        return String(trimmed[trimmed.index(after: firstLine)..<trimmed.index(trimmed.endIndex, offsetBy: -3)])
    }

    static func failure(_ problems: [String], _ text: String, repaired: Bool = false) -> NimbusError {
        NimbusError(.dataLoss, "the model's reply\(repaired ? ", even after one repair," : "") does not fit \(Value.self): "
                    + problems.joined(separator: "; ") + " (reply starts: \(text.prefix(120)))")
    }
}
