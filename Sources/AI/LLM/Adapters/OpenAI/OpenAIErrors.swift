import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM

/// OpenAI's error bodies (`{"error": {"message", "type", "param", "code"}}`) → ``LLMFailure``.
enum OpenAIErrors {
    static func failure(status: Int?, body: OpenAIWire.ErrorBody?, raw: String, provider: String) -> LLMFailure {
        let detail = body?.error
        let code = detail?.code
        let type = detail?.type
        let message = detail?.message ?? (raw.isEmpty ? "HTTP \(status ?? 0) with an empty body" : String(raw.prefix(300)))
        var kind = status.map(LLMFailure.kind(forStatus:)) ?? .unavailable
        switch code ?? type ?? "" {
        case "context_length_exceeded", "string_above_max_length": kind = .contextLengthExceeded
        case "content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation": kind = .contentFiltered
        case "insufficient_quota", "billing_hard_limit_reached": kind = .quotaExceeded
        case "rate_limit_exceeded", "rate_limit_error", "tokens", "requests": kind = .rateLimited
        case "invalid_api_key", "authentication_error": kind = .unauthenticated
        case "model_not_found", "DeploymentNotFound": kind = .modelNotFound
        case "server_error", "api_error": kind = status == 503 ? .overloaded : .unavailable
        default:
            if kind == .invalidRequest, LLMFailure.mentionsContextLength(message) { kind = .contextLengthExceeded }
            if status == nil, type == "overloaded_error" { kind = .overloaded }
        }
        return LLMFailure(kind: kind, provider: provider, status: status, providerType: type, providerCode: code, message: message, rawBody: raw)
    }

    /// The error for a non-2xx answer, with `Retry-After` or Azure's `retry-after-ms`.
    static func error(for response: NimbusHTTPResponse, body: ByteBuffer, provider: String) -> NimbusError {
        let raw = String(buffer: body)
        let decoded = try? JSONDecoder().decode(OpenAIWire.ErrorBody.self, from: Data(raw.utf8))
        let failure = failure(status: Int(response.status.code), body: decoded, raw: raw, provider: provider)
        var retryAfter = response.retryAfter()
        if let milliseconds = response.headers.first(name: "retry-after-ms").flatMap(Double.init), milliseconds >= 0 {
            retryAfter = .milliseconds(Int64(milliseconds))
        }
        return failure.nimbusError(retryAfter: retryAfter)
    }
}
