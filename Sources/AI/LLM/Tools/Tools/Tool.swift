import Foundation
import NimbusCore
import NimbusLLM

/// A function the model can call: its definition (name, description, JSON Schema of the arguments)
/// and the Swift code that runs it.
///
/// The schema comes from the input type (``JSONSchema/derive(_:)``), and arguments are checked
/// against it before the body runs — a call that does not fit goes back to the model as an error
/// result naming each problem, so the model can correct itself instead of the service crashing.
///
/// ```swift
/// struct WeatherInput: Codable, Sendable { var city: String; var unit: Unit?; enum Unit: String, Codable, CaseIterable { case c, f } }
/// let weather = try Tool("get_weather", description: "Current weather for a city") { (input: WeatherInput) in
///     try await forecasts.current(input.city)        // any Encodable result; a String is sent as is
/// }
/// ```
public struct Tool: Sendable {
    /// What the model sees.
    public var definition: ToolDefinition
    /// Whether a person must approve each call first (payments, deletes, outbound messages...).
    public var requiresApproval: Bool
    /// How long a call may run (`nil`: the registry's default).
    public var timeout: Duration?
    private let body: @Sendable (ToolInvocation) async throws -> ToolOutput

    /// The name the model calls.
    public var name: String { definition.name }

    /// A tool over raw JSON arguments (already checked against `definition.parameters`), for tools
    /// whose schema comes from elsewhere (MCP servers, configuration).
    public init(definition: ToolDefinition, requiresApproval: Bool = false, timeout: Duration? = nil,
                _ body: @escaping @Sendable (ToolInvocation) async throws -> ToolOutput) throws {
        try Self.checkName(definition.name)
        self.definition = definition
        self.requiresApproval = requiresApproval
        self.timeout = timeout
        self.body = body
    }

    /// A typed tool: arguments are decoded as `Input` (dates as ISO 8601); the result is sent as
    /// text when it is a `String`, as is when it is a ``ToolOutput``, else as JSON.
    /// - Throws: `invalidArgument` for a name providers refuse or an input type whose schema cannot be derived.
    public init<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String, description: String, input: Input.Type = Input.self, requiresApproval: Bool = false,
        timeout: Duration? = nil, strict: Bool? = nil, _ body: @escaping @Sendable (Input) async throws -> Output
    ) throws {
        let definition = ToolDefinition(name: name, description: description, parameters: try JSONSchema.derive(Input.self), strict: strict)
        try self.init(definition: definition, requiresApproval: requiresApproval, timeout: timeout) { invocation in
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let input: Input
            do { input = try invocation.arguments.decode(Input.self, decoder: decoder) } catch {
                throw ToolArgumentError(problems: ["the arguments do not decode as \(Input.self): \(error)"])
            }
            return try ToolOutput(encoding: try await body(input))
        }
    }

    /// Runs the body (arguments are checked by the registry before).
    public func callAsFunction(_ invocation: ToolInvocation) async throws -> ToolOutput { try await body(invocation) }

    static func checkName(_ name: String) throws {
        let allowed = name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
        guard allowed, (1...64).contains(name.utf8.count) else {
            throw NimbusError(.invalidArgument, "tool name '\(name)' is not accepted by providers: use 1–64 letters, digits, '_' or '-'")
        }
    }
}

/// One call being run.
public struct ToolInvocation: Sendable {
    /// The model's call.
    public var call: ToolCall
    /// Its arguments, parsed and checked against the schema.
    public var arguments: JSONValue
}

/// What a tool returns to the model.
public struct ToolOutput: Sendable, Hashable {
    /// The content (text, or images where the provider accepts them in tool results).
    public var content: [ContentPart]
    /// Whether this reports a failure (sent as an error result: Anthropic `is_error`, a marked text elsewhere).
    public var isError: Bool

    /// Creates an output.
    public init(content: [ContentPart], isError: Bool = false) {
        self.content = content
        self.isError = isError
    }

    /// A text result.
    public static func text(_ text: String) -> ToolOutput { ToolOutput(content: [.text(text)]) }

    /// An error result the model reads.
    public static func error(_ text: String) -> ToolOutput { ToolOutput(content: [.text(text)], isError: true) }

    /// A `String` as text, a `ToolOutput` as is, anything else as compact JSON with sorted keys.
    public init(encoding value: some Encodable) throws {
        if let output = value as? ToolOutput { self = output; return }
        if let text = value as? String { self = .text(text); return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        self = .text(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// The text parts joined.
    public var text: String { content.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined() }
}

/// Thrown by a tool body when its arguments are unusable; reported to the model like a schema mismatch.
public struct ToolArgumentError: Error, Sendable, Hashable {
    /// What is wrong, one entry per problem.
    public var problems: [String]
    /// Creates the error.
    public init(problems: [String]) { self.problems = problems }
}
