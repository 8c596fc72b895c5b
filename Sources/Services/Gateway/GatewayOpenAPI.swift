import Foundation
import NimbusCore

/// The gateway's OpenAPI 3.1 document, served at `GET /openapi.json`: every route, its request body,
/// its answers, and the error shape of each vendor's SDK (OpenAI's `{"error": {...}}`, Anthropic's
/// `{"type": "error", ...}`). The configured model names are the `model` enum, so clients and fuzzers
/// (schemathesis runs against it in the test suite) see exactly what this instance serves.
enum GatewayOpenAPI {
    static func document(chatModels: [String], embeddingModels: [String]) -> JSONValue {
        let chatModel: JSONValue = ["type": "string", "enum": .array(chatModels.map(JSONValue.string))]
        let embeddingModel: JSONValue = ["type": "string", "enum": .array(embeddingModels.map(JSONValue.string))]
        let paths: [String: JSONValue] = [
            "/v1/chat/completions": ["post": operation("createChatCompletion", "OpenAI chat completions (stream with stream: true)",
                                                       body: chatCompletionRequest(chatModel), ok: object(["id", "object", "choices"]), streams: true)],
            "/v1/embeddings": ["post": operation("createEmbedding", "OpenAI embeddings", body: embeddingRequest(embeddingModel),
                                                 ok: object(["object", "data", "model", "usage"]))],
            "/v1/models": ["get": operation("listModels", "Models this key may use", ok: object(["object", "data"]))],
            "/v1/messages": ["post": operation("createMessage", "Anthropic messages (stream with stream: true)", body: messagesRequest(chatModel, maxTokens: true),
                                               ok: object(["id", "type", "role", "content"]), streams: true, anthropic: true)],
            "/v1/messages/count_tokens": ["post": operation("countTokens", "Anthropic token count", body: messagesRequest(chatModel, maxTokens: false),
                                                            ok: object(["input_tokens"]), anthropic: true)],
            "/v1/responses": ["post": operation("createResponse", "OpenAI Responses API (stream with stream: true)", body: responsesRequest(chatModel),
                                                ok: object(["id", "object", "status", "output"]), streams: true)],
            "/v1/responses/{response_id}": [
                "parameters": [["name": "response_id", "in": "path", "required": true, "schema": ["type": "string"]]],
                "get": operation("getResponse", "A stored response", ok: object(["id", "object"])),
                "delete": operation("deleteResponse", "Deletes a stored response", ok: object(["id", "object", "deleted"])),
            ],
            "/key/generate": ["post": operation("generateKey", "Creates a virtual key (master key)", body: keyRequest, ok: object(["key", "key_id"]))],
            "/key/info": ["get": operation("keyInfo", "A key's settings and spend", parameters: [["name": "key_id", "in": "query", "schema": ["type": "string"]]],
                                          ok: object(["key_id", "spent"]))],
            "/key/delete": ["post": operation("deleteKey", "Revokes a key (master key)",
                                              body: ["type": "object", "required": ["key_id"], "properties": ["key_id": ["type": "string"]]],
                                              ok: object(["deleted", "key_id"]))],
            "/v1/gateway/spend": ["get": operation("spend", "Spend per key (master key)", ok: object(["keys"]))],
        ]
        return [
            "openapi": "3.1.0",
            "info": ["title": "Nimbus LLM gateway", "version": "1", "description": "OpenAI- and Anthropic-compatible gateway (nimbus serve)."],
            "paths": .object(paths),
            "security": [["bearer": .array([])]],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": ["OpenAIError": openAIError, "AnthropicError": anthropicError],
            ],
        ]
    }

    static func object(_ required: [String]) -> JSONValue {
        ["type": "object", "required": .array(required.map(JSONValue.string))]
    }

    /// One Server-Sent Event of a streamed answer (each `data` is a JSON chunk, `[DONE]` closes OpenAI's chat streams).
    static let serverSentEvent: JSONValue = [
        "type": "object", "required": ["data"],
        "properties": ["event": ["type": "string"], "data": ["type": "string"], "id": ["type": "string"], "retry": ["type": "integer"]],
    ]

    static let openAIError: JSONValue = [
        "type": "object", "required": ["error"],
        "properties": ["error": ["type": "object", "required": ["message", "type"],
                                 "properties": ["message": ["type": "string"], "type": ["type": "string"],
                                                "param": ["type": ["string", "null"]], "code": ["type": ["string", "null"]]]]],
    ]

    static let anthropicError: JSONValue = [
        "type": "object", "required": ["type", "error"],
        "properties": ["type": ["const": "error"],
                       "error": ["type": "object", "required": ["type", "message"], "properties": ["type": ["type": "string"], "message": ["type": "string"]]]],
    ]

    /// An operation: its body, the 200 answer (JSON, or SSE when it streams) and every error status in the vendor's shape.
    static func operation(_ id: String, _ summary: String, parameters: [JSONValue] = [], body: JSONValue? = nil, ok: JSONValue,
                          streams: Bool = false, anthropic: Bool = false) -> JSONValue {
        let error: JSONValue = ["description": "an error, in the SDK's shape",
                                "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(anthropic ? "AnthropicError" : "OpenAIError")")]]]]
        var success: [String: JSONValue] = ["application/json": ["schema": ok]]
        if streams { success["text/event-stream"] = ["schema": serverSentEvent] }
        var responses: [String: JSONValue] = ["200": ["description": "OK", "content": .object(success)]]
        for status in ["400", "401", "403", "404", "413", "429"] { responses[status] = error }
        var operation: [String: JSONValue] = ["operationId": .string(id), "summary": .string(summary), "responses": .object(responses)]
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body { operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]] }
        return .object(operation)
    }

    static let textOrParts: JSONValue = ["oneOf": [["type": "string"], ["type": "array", "items": ["type": "object", "required": ["type"],
                                                                                                     "properties": ["type": ["type": "string"], "text": ["type": "string"]]]]]]

    static func chatCompletionRequest(_ model: JSONValue) -> JSONValue {
        ["type": "object", "required": ["model", "messages"], "properties": [
            "model": model,
            "messages": ["type": "array", "minItems": 1, "items": [
                "type": "object", "required": ["role", "content"],
                "properties": ["role": ["enum": ["system", "developer", "user"]], "content": textOrParts, "name": ["type": "string"]]]],
            "temperature": ["type": "number", "minimum": 0, "maximum": 2], "top_p": ["type": "number", "minimum": 0, "maximum": 1],
            "max_tokens": ["type": "integer", "minimum": 1, "maximum": 16_777_216], "max_completion_tokens": ["type": "integer", "minimum": 1, "maximum": 16_777_216],
            "n": ["type": "integer", "minimum": 1, "maximum": 8], "stream": ["type": "boolean"], "seed": ["type": "integer"],
            "stop": ["oneOf": [["type": "string"], ["type": "array", "items": ["type": "string"], "maxItems": 4]]], "user": ["type": "string"],
        ]]
    }

    static func messagesRequest(_ model: JSONValue, maxTokens: Bool) -> JSONValue {
        var properties: [String: JSONValue] = [
            "model": model,
            "messages": ["type": "array", "minItems": 1, "items": ["type": "object", "required": ["role", "content"],
                                                                   "properties": ["role": ["const": "user"], "content": textOrParts]]],
            "system": ["type": "string"], "temperature": ["type": "number", "minimum": 0, "maximum": 1], "stream": ["type": "boolean"],
        ]
        if maxTokens { properties["max_tokens"] = ["type": "integer", "minimum": 1, "maximum": 16_777_216] }
        return ["type": "object", "required": .array((maxTokens ? ["model", "max_tokens", "messages"] : ["model", "messages"]).map(JSONValue.string)),
                "properties": .object(properties)]
    }

    static func responsesRequest(_ model: JSONValue) -> JSONValue {
        ["type": "object", "required": ["model", "input"], "additionalProperties": false, "properties": [
            "model": model,
            "input": ["oneOf": [["type": "string"], ["type": "array", "items": ["type": "object", "required": ["role", "content"],
                                                                               "properties": ["role": ["enum": ["user", "system", "developer"]], "content": ["type": "string"]]]]]],
            "instructions": ["type": "string"], "stream": ["type": "boolean"], "store": ["type": "boolean"],
            "max_output_tokens": ["type": "integer", "minimum": 16, "maximum": 16_777_216],
            "temperature": ["type": "number", "minimum": 0, "maximum": 2], "top_p": ["type": "number", "minimum": 0, "maximum": 1],
        ]]
    }

    static func embeddingRequest(_ model: JSONValue) -> JSONValue {
        ["type": "object", "required": ["model", "input"], "properties": [
            "model": model,
            "input": ["oneOf": [["type": "string"], ["type": "array", "items": ["type": "string"], "minItems": 1, "maxItems": 2048]]],
            "dimensions": ["type": "integer", "minimum": 1, "maximum": 65_536], "encoding_format": ["enum": ["float", "base64"]],
        ]]
    }

    static let keyRequest: JSONValue = ["type": "object", "properties": [
        "name": ["type": "string"], "models": ["type": "array", "items": ["type": "string"]],
        "rpm": ["type": "integer", "minimum": 1], "tpm": ["type": "integer", "minimum": 1], "max_budget": ["type": "number", "minimum": 0],
    ]]
}
