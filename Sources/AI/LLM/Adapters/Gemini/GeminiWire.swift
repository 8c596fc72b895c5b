import Foundation
import NimbusCore
import NimbusLLM

/// The Gemini API's JSON (the `generativelanguage.v1beta` protos in their JSON mapping; Vertex AI
/// speaks the same shapes): `generateContent`, `streamGenerateContent?alt=sse`, `embedContent`,
/// `batchEmbedContents`. Unknown fields are ignored and unknown enum values kept as strings.
public enum GeminiWire {
    /// `GenerateContentRequest` without the `model` path field.
    public struct GenerateContentRequest: Codable, Sendable {
        public var contents: [Content]
        public var systemInstruction: Content?
        public var tools: [Tool]?
        public var toolConfig: ToolConfig?
        public var generationConfig: GenerationConfig?
        public var safetySettings: [JSONValue]?
        public var cachedContent: String?
    }

    /// `Content`: a role (`user` or `model`) and parts.
    public struct Content: Codable, Sendable, Hashable {
        public var role: String?
        public var parts: [Part]
    }

    /// `Part`: one of text, inline data, file data, function call, function response; `thought` marks reasoning.
    public struct Part: Codable, Sendable, Hashable {
        public var text: String?
        public var inlineData: Blob?
        public var fileData: FileData?
        public var functionCall: FunctionCall?
        public var functionResponse: FunctionResponse?
        public var thought: Bool?
        public var thoughtSignature: String?

        public init(text: String? = nil, inlineData: Blob? = nil, fileData: FileData? = nil, functionCall: FunctionCall? = nil,
                    functionResponse: FunctionResponse? = nil, thought: Bool? = nil, thoughtSignature: String? = nil) {
            self.text = text; self.inlineData = inlineData; self.fileData = fileData; self.functionCall = functionCall
            self.functionResponse = functionResponse; self.thought = thought; self.thoughtSignature = thoughtSignature
        }
    }

    /// Inline bytes.
    public struct Blob: Codable, Sendable, Hashable { public var mimeType: String; public var data: String }
    /// A file by URI (Files API or `gs://`).
    public struct FileData: Codable, Sendable, Hashable { public var mimeType: String?; public var fileUri: String }
    /// A function call; `id` is optional in Gemini.
    public struct FunctionCall: Codable, Sendable, Hashable { public var id: String?; public var name: String; public var args: JSONValue? }
    /// A function's result (`response` must be an object).
    public struct FunctionResponse: Codable, Sendable, Hashable { public var id: String?; public var name: String; public var response: JSONValue }

    /// `Tool` with function declarations.
    public struct Tool: Codable, Sendable, Hashable { public var functionDeclarations: [FunctionDeclaration] }
    /// `FunctionDeclaration`, with the arguments as JSON Schema (`parametersJsonSchema`).
    public struct FunctionDeclaration: Codable, Sendable, Hashable {
        public var name: String
        public var description: String
        public var parametersJsonSchema: JSONValue?
    }
    /// `ToolConfig`.
    public struct ToolConfig: Codable, Sendable, Hashable {
        public var functionCallingConfig: FunctionCallingConfig
        public struct FunctionCallingConfig: Codable, Sendable, Hashable {
            public var mode: String
            public var allowedFunctionNames: [String]?
        }
    }
    /// `GenerationConfig`, the fields Nimbus sets.
    public struct GenerationConfig: Codable, Sendable, Hashable {
        public var stopSequences: [String]?
        public var maxOutputTokens: Int?
        public var temperature: Double?
        public var topP: Double?
        public var seed: Int?
        public var responseMimeType: String?
        public var responseJsonSchema: JSONValue?
        public var thinkingConfig: ThinkingConfig?
        public struct ThinkingConfig: Codable, Sendable, Hashable { public var includeThoughts: Bool?; public var thinkingBudget: Int? }

        var isEmpty: Bool {
            stopSequences == nil && maxOutputTokens == nil && temperature == nil && topP == nil && seed == nil
                && responseMimeType == nil && responseJsonSchema == nil && thinkingConfig == nil
        }
    }

    /// `GenerateContentResponse`.
    public struct GenerateContentResponse: Codable, Sendable {
        public var candidates: [Candidate]?
        public var promptFeedback: PromptFeedback?
        public var usageMetadata: UsageMetadata?
        public var modelVersion: String?
        public var responseId: String?

        public struct Candidate: Codable, Sendable {
            public var content: Content?
            public var finishReason: String?
            public var index: Int?
        }
        public struct PromptFeedback: Codable, Sendable { public var blockReason: String? }
        public struct UsageMetadata: Codable, Sendable, Hashable {
            public var promptTokenCount: Int?
            public var candidatesTokenCount: Int?
            public var cachedContentTokenCount: Int?
            public var thoughtsTokenCount: Int?
            public var totalTokenCount: Int?

            /// Portable usage: Gemini counts thoughts apart from candidates; both are output.
            public var portable: Usage {
                let thoughts = thoughtsTokenCount ?? 0
                return Usage(inputTokens: promptTokenCount ?? 0, outputTokens: (candidatesTokenCount ?? 0) + thoughts,
                             cachedInputTokens: cachedContentTokenCount ?? 0, reasoningTokens: thoughts)
            }
        }
    }

    /// `{"error": {"code", "message", "status", "details"}}` (google.rpc.Status).
    public struct ErrorBody: Codable, Sendable {
        public var error: Status
        public struct Status: Codable, Sendable {
            public var code: Int?
            public var message: String?
            public var status: String?
            public var details: [JSONValue]?
        }
    }

    /// The portable finish reason of a candidate; function calls finish as `toolCalls`.
    public static func finishReason(_ raw: String?, hasCalls: Bool) -> FinishReason {
        switch raw {
        case "STOP"?, nil: hasCalls ? .toolCalls : .stop
        case "MAX_TOKENS"?: .length
        case "SAFETY"?, "RECITATION"?, "BLOCKLIST"?, "PROHIBITED_CONTENT"?, "SPII"?, "IMAGE_SAFETY"?, "IMAGE_PROHIBITED_CONTENT"?: .contentFilter
        case "MALFORMED_FUNCTION_CALL"?: .error
        case let other?: .other(other)
        }
    }
}
