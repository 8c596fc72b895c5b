import Foundation
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// An error as AWS answered it, kept as the `underlying` of the `NimbusError` the client throws.
public struct AWSServiceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error code (`NoSuchKey`, `ThrottlingException`, `InvalidVpcID.NotFound`).
    public var code: String
    /// AWS's message.
    public var message: String
    /// The request id, for AWS support.
    public var requestID: String?
    /// The HTTP status.
    public var status: Int

    public var description: String { "\(code): \(message)\(requestID.map { " [request \($0)]" } ?? "")" }

    static let notFound: Set<String> = ["NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NoSuchVersion", "ResourceNotFoundException", "NotFound",
                                        "NoSuchEntity", "NotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                                        "ParameterNotFound", "NoSuchHostedZone", "StateMachineDoesNotExist", "ExecutionDoesNotExist",
                                        "UserNotFoundException", "WAFNonexistentItemException"]
    static let throttled: Set<String> = ["Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
                                         "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
                                         "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
                                         "EC2ThrottledException", "TooManyFailedAttemptsException", "WAFLimitsExceededException"]
    static let denied: Set<String> = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden"]
    static let unauthenticated: Set<String> = ["InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                                               "ExpiredToken", "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken",
                                               "AuthFailure", "InvalidSignatureException", "RequestExpired", "RequestTimeTooSkewed", "InvalidToken"]
    /// A user's own credentials refused (Cognito's wrong password, bad code): no hint about AWS keys.
    static let userRefused: Set<String> = ["NotAuthorizedException", "CodeMismatchException", "ExpiredCodeException"]
    static let exists: Set<String> = ["BucketAlreadyExists", "BucketAlreadyOwnedByYou", "ResourceInUseException", "EntityAlreadyExists",
                                      "ResourceExistsException", "AlreadyExistsException", "QueueAlreadyExists", "QueueNameExists",
                                      "AWS.SimpleQueueService.QueueNameExists", "StateMachineAlreadyExists",
                                      "UsernameExistsException", "GroupExistsException", "AliasExistsException", "WAFDuplicateItemException"]
    static let precondition: Set<String> = ["ConditionalCheckFailedException", "PreconditionFailed", "ConflictException", "InvalidStateException",
                                            "TransactionCanceledException", "BucketNotEmpty", "DependencyViolation", "IncorrectState",
                                            "UserNotConfirmedException", "PasswordResetRequiredException",
                                            "WAFOptimisticLockException", "WAFAssociatedItemException", "WAFUnavailableEntityException"]
    static let invalid: Set<String> = ["InvalidPasswordException", "InvalidParameterException", "WAFInvalidParameterException",
                                       "WAFInvalidResourceException", "WAFInvalidOperationException", "WAFSubscriptionNotFoundException"]
    static let transient: Set<String> = ["RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "InternalServerError",
                                         "ServiceUnavailable", "ServiceUnavailableException", "InternalServiceError", "InternalServerException"]

    /// Whether the clock is to blame (the request's time was refused).
    var isClockSkew: Bool { ["RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"].contains(code)
        || (code == "InvalidSignatureException" && message.contains("Signature expired")) }

    /// The portable code.
    var nimbusCode: NimbusError.Code {
        if Self.notFound.contains(code) || code.hasSuffix(".NotFound") || code.hasSuffix("NotFound") { return .notFound }
        if Self.throttled.contains(code) { return .resourceExhausted }
        if Self.denied.contains(code) { return .permissionDenied }
        if Self.unauthenticated.contains(code) || Self.userRefused.contains(code) { return .unauthenticated }
        if Self.invalid.contains(code) { return .invalidArgument }
        if Self.exists.contains(code) || code.hasSuffix(".Duplicate") { return .alreadyExists }
        if Self.precondition.contains(code) { return .failedPrecondition }
        if Self.transient.contains(code) { return .unavailable }
        return status >= 500 ? .unavailable : HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
    }

    /// Reads the error of any protocol: JSON (`__type`, `code`, `message`), query/rest-xml
    /// (`<Error><Code>`), EC2 (`<Response><Errors><Error>`), or a bodiless status (HEAD).
    static func parse(status: Int, headers: [(String, String)], body: [UInt8]) -> AWSServiceError {
        func header(_ name: String) -> String? { headers.header(name) }
        let requestID = header("x-amzn-requestid") ?? header("x-amz-request-id")
        var code = header("x-amzn-errortype").map(Self.cleanCode)
        var message: String?
        var bodyRequestID: String?
        let trimmed = body.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if trimmed.first == UInt8(ascii: "{"), let json = try? JSONValue.parse(Array(trimmed)) {
            code = code ?? (json["__type"] ?? json["code"] ?? json["Code"])?.stringValue.map(Self.cleanCode)
            message = (json["message"] ?? json["Message"] ?? json["errorMessage"])?.stringValue
        } else if trimmed.first == UInt8(ascii: "<"), let xml = try? XMLElement.parse(Array(trimmed)) {
            let error = xml.name == "Error" ? xml : (xml["Error"] ?? xml["Errors"]?["Error"])
            code = code ?? error?["Code"]?.text
            message = error?["Message"]?.text
            bodyRequestID = xml["RequestId"]?.text ?? xml["RequestID"]?.text ?? error?["RequestId"]?.text
        }
        let fallback: String = switch status {
        case 304: "NotModified"
        case 400: "BadRequest"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 412: "PreconditionFailed"
        default: "HTTP\(status)"
        }
        let text = message ?? (body.isEmpty ? "HTTP \(status) without a body" : String(decoding: body.prefix(300), as: UTF8.self))
        return AWSServiceError(code: code ?? fallback, message: text, requestID: requestID ?? bodyRequestID, status: status)
    }

    /// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` → `ResourceNotFoundException`;
    /// `ValidationException:http://internal…` → `ValidationException`.
    static func cleanCode(_ raw: String) -> String {
        var code = raw
        if let hash = code.lastIndex(of: "#") { code = String(code[code.index(after: hash)...]) }
        if let colon = code.firstIndex(of: ":") { code = String(code[..<colon]) }
        return code
    }

    /// The `NimbusError` thrown for this error.
    func nimbusError(service: String, operation: String, retryAfter: Duration?) -> NimbusError {
        let code = nimbusCode
        let hint: String = switch code {
        case .unauthenticated where !Self.userRefused.contains(self.code): "; check the access key and secret (and the clock)"
        case .permissionDenied: "; the credentials lack the permission"
        default: ""
        }
        return NimbusError(code, "\(service) \(operation): \(description)\(hint)", underlying: self, retryAfter: retryAfter,
                           retryable: code == .resourceExhausted || code == .unavailable ? true : nil)
    }
}
