import Foundation
import Hummingbird
import NIOCore
import NimbusCore
import NimbusLLM

/// A failed gateway call, written the way each vendor's SDK expects: OpenAI's
/// `{"error": {"message", "type", "param", "code"}}` or Anthropic's `{"type": "error", "error": {...}}`.
struct GatewayError: Error, Sendable {
    var status: HTTPResponse.Status
    var type: String
    var code: String?
    var message: String
    var retryAfter: Duration?
    /// The request field at fault (OpenAI's `param`).
    var param: String?

    init(status: HTTPResponse.Status, type: String, code: String?, message: String, retryAfter: Duration? = nil, param: String? = nil) {
        self.param = param
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    /// The answer for an error from the router or a provider. An upstream's refusal of the
    /// gateway's own credentials is a 502, not the client's 401.
    init(_ error: any Error) {
        let error = NimbusError.wrap(error, "gateway")
        let kind = error.llmFailure?.kind
        message = error.llmFailure.map { "\($0.provider): \($0.message)" } ?? error.message
        retryAfter = error.retryAfter
        code = error.llmFailure?.providerCode
        switch error.code {
        case .invalidArgument:
            status = .badRequest; type = "invalid_request_error"
            if kind == .contextLengthExceeded { code = "context_length_exceeded" }
        case .failedPrecondition:
            status = .badRequest; type = "invalid_request_error"
            if kind == .contentFiltered { code = "content_filter" }
        case .notFound: status = .notFound; type = "invalid_request_error"; code = code ?? "model_not_found"
        case .permissionDenied: status = .forbidden; type = "permission_error"
        case .unauthenticated: status = .badGateway; type = "api_error"; message = "the upstream provider rejected the gateway's credentials: " + message
        case .resourceExhausted: status = .tooManyRequests; type = kind == .quotaExceeded ? "insufficient_quota" : "rate_limit_error"
        case .deadlineExceeded: status = .gatewayTimeout; type = "timeout_error"
        case .unavailable:
            // Overloaded upstreams and deployments in cooldown say when to come back: 503; a failed upstream is a 502.
            let busy = kind == .overloaded || error.retryAfter != nil
            status = busy ? .serviceUnavailable : .badGateway
            type = busy ? "overloaded_error" : "api_error"
        case .dataLoss: status = .badGateway; type = "api_error"
        case .canceled: status = .init(code: 499, reasonPhrase: "Client Closed Request"); type = "api_error"
        default: status = .internalServerError; type = "api_error"
        }
    }

    var openAIBody: JSONValue {
        ["error": ["message": .string(message), "type": .string(type), "param": param.map(JSONValue.string) ?? .null, "code": code.map(JSONValue.string) ?? .null]]
    }

    /// The Anthropic error type for this status.
    var anthropicType: String {
        switch status.code {
        case 400, 413: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        case 504: "timeout_error"
        default: "api_error"
        }
    }

    func openAI() -> Response { response(openAIBody) }

    func anthropic() -> Response {
        response(["type": "error", "error": ["type": .string(anthropicType), "message": .string(message)], "request_id": .string(IDGenerator.shared.ulid().description)])
    }

    private func response(_ body: JSONValue) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(Int(max(0, retryAfter.nimbusSeconds).rounded(.up))) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.description)))
    }
}
