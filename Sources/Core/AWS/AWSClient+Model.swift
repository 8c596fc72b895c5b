import Foundation
import NIOCore
import NIOHTTP1
import NimbusCore

extension AWSClient {
    /// What an operation answered.
    public struct OperationResult: Sendable {
        /// The output, named by the output shape's members (timestamps ISO 8601, blobs base64).
        public var output: JSONValue
        /// The streaming payload's bytes (S3 `GetObject`'s `Body`), when the operation has one.
        public var payload: ByteBuffer?
        /// The HTTP status.
        public var status: Int
        /// The response headers.
        public var headers: [(String, String)]
    }

    /// Calls any operation of a committed model: the input is validated against the input shape,
    /// bound to URI, query, headers and body as the model says, signed, sent (standard retry mode),
    /// and the answer read into JSON by the output shape.
    ///
    /// ```swift
    /// let page = try await aws.call("s3", "ListObjectsV2", input: ["Bucket": "docs", "Prefix": "2026/"])
    /// let object = try await aws.call("s3", "GetObject", input: ["Bucket": "docs", "Key": "a b/ü.txt"])   // object.payload
    /// try await aws.call("s3", "PutObject", input: ["Bucket": "docs", "Key": "k", "ContentType": "text/plain"], payload: bytes)
    /// ```
    /// - Parameters:
    ///   - payload: the bytes of a streaming payload member (S3 `Body`), rather than base64 in `input`.
    ///   - maxAttempts: overrides the configuration's (a portable type that retries passes 1).
    /// - Throws: `notFound` for an unknown service or operation (with close matches), `invalidArgument`
    ///   for input the model refuses (every problem listed), and the service's errors mapped.
    @discardableResult
    public func call(_ service: String, _ operation: String, input: JSONValue = [:], payload: ByteBuffer? = nil,
                     maxAttempts: Int? = nil) async throws -> OperationResult {
        let model = try AWSServiceModel.named(service)
        return try await call(model, try model.operation(operation), input: input, payload: payload, maxAttempts: maxAttempts)
    }

    /// Calls `operation` of `model` (see ``call(_:_:input:payload:maxAttempts:)``).
    @discardableResult
    public func call(_ model: AWSServiceModel, _ operation: AWSOperationModel, input: JSONValue = [:], payload: ByteBuffer? = nil,
                     maxAttempts: Int? = nil) async throws -> OperationResult {
        try AWSInputValidator.validate(input, for: operation, in: model)
        let request = try AWSRequestSerializer.serialize(input, for: operation, in: model, payload: payload)
        let service = model.service
        let response = try await execute(service, operation: operation.name, method: HTTPMethod(rawValue: request.method), path: request.path,
                                         query: request.query.map { ($0.name, $0.value) }, headers: request.headers.map { ($0.name, $0.value) },
                                         body: request.body, payload: request.payload, maxAttempts: maxAttempts, hostPrefix: request.hostPrefix,
                                         unsigned: operation.isUnsigned)
        // A streamed payload stays in its buffer; anything else is parsed from bytes.
        let streams = AWSResponseParser.streamsPayload(operation, in: model)
        let parsed = try AWSResponseParser.parse(status: response.status, headers: response.headers, body: streams ? [] : Array(response.body.readableBytesView),
                                                 for: operation, in: model)
        return OperationResult(output: parsed.output, payload: parsed.streamingMember == nil ? nil : response.body,
                               status: response.status, headers: response.headers)
    }

    /// Every page of a paginated operation, following its model's paginator (input and output
    /// tokens, `more_results`, expressions such as S3's `NextMarker || Contents[-1].Key`).
    ///
    /// ```swift
    /// for try await page in aws.pages("s3", "ListObjectsV2", input: ["Bucket": "docs"]) { … page["Contents"] … }
    /// ```
    /// - Throws (from the sequence): `failedPrecondition` when the operation has no paginator; a token
    ///   that repeats ends the sequence instead of looping.
    public func pages(_ service: String, _ operation: String, input: JSONValue = [:]) -> AsyncThrowingStream<JSONValue, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let model = try AWSServiceModel.named(service)
                    let operationModel = try model.operation(operation)
                    guard let paginator = model.paginators[operationModel.name] else {
                        throw NimbusError(.failedPrecondition, "\(model.name) \(operationModel.name) does not page"
                                          + (model.paginators.isEmpty ? "" : "; paginated operations: \(model.paginators.keys.sorted().prefix(12).joined(separator: ", "))"))
                    }
                    let outputs = try paginator.outputTokens.map(JMESPath.init)
                    let more = try paginator.moreResults.map(JMESPath.init)
                    var request = input.objectValue ?? [:]
                    var seen: Set<[JSONValue]> = []
                    while true {
                        let page = try await call(model, operationModel, input: .object(request)).output
                        continuation.yield(page)
                        if let more, !JMESPath.truthy(more.evaluate(page)) { break }
                        let tokens = outputs.map { $0.evaluate(page) }
                        guard tokens.contains(where: { $0 != .null && $0 != .string("") }), seen.insert(tokens).inserted else { break }
                        for (name, token) in zip(paginator.inputTokens, tokens) {
                            request[name] = token == .null ? nil : token
                        }
                    }
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Waits with a waiter of the model (`s3` `BucketExists`, `dynamodb` `TableExists`): polls its
    /// operation until an acceptor says success (returning the last output) or failure.
    /// - Parameter delay: overrides the waiter's delay between attempts (tests pass a short one).
    /// - Throws: `failedPrecondition` when a failure acceptor matches, `deadlineExceeded` after the
    ///   waiter's attempts, the operation's own error when no acceptor expects it.
    @discardableResult
    public func wait(_ service: String, until waiterName: String, input: JSONValue = [:], delay: Duration? = nil,
                     maxAttempts: Int? = nil) async throws -> JSONValue {
        let model = try AWSServiceModel.named(service)
        guard let waiter = model.waiters[waiterName] else {
            let close = AWSServiceModel.closeMatches(to: waiterName, in: model.waiters.keys.sorted())
            throw NimbusError(.notFound, "\(model.name) has no waiter \(waiterName)"
                              + (close.isEmpty ? "; waiters: \(model.waiters.keys.sorted().joined(separator: ", "))" : "; did you mean \(close.joined(separator: ", "))?"))
        }
        let operation = try model.operation(waiter.operation)
        let attempts = maxAttempts ?? waiter.maxAttempts
        for attempt in 1...max(1, attempts) {
            var output: JSONValue = .null
            var status = 0
            var failure: AWSServiceError?
            var other: (any Error)?
            do {
                let result = try await call(model, operation, input: input)
                output = result.output
                status = result.status
            } catch let error as NimbusError {
                if let aws = error.underlying as? AWSServiceError {
                    failure = aws
                    status = aws.status
                } else {
                    other = error
                }
            }
            if let other { throw other }
            var decided: String?
            for acceptor in waiter.acceptors {
                if Self.matches(acceptor, output: output, status: status, error: failure) { decided = acceptor.state; break }
            }
            switch decided {
            case "success": return output
            case "failure":
                throw NimbusError(.failedPrecondition, "\(model.name) waiter \(waiterName) reached a failure state"
                                  + (failure.map { ": \($0)" } ?? ""))
            case "retry": break
            default:
                if let failure { throw failure.nimbusError(service: model.metadata.serviceID, operation: operation.name, retryAfter: nil) }
            }
            if attempt < attempts { try await Task.sleep(for: delay ?? .seconds(waiter.delay)) }
        }
        throw NimbusError(.deadlineExceeded, "\(model.name) waiter \(waiterName) gave up after \(attempts) attempts")
    }

    static func matches(_ acceptor: AWSWaiterModel.Acceptor, output: JSONValue, status: Int, error: AWSServiceError?) -> Bool {
        switch acceptor.matcher {
        case "status": return acceptor.expected.numberValue.map { Int($0) == status } ?? false
        case "error":
            if let expectsError = acceptor.expected.boolValue { return expectsError == (error != nil) }
            return error?.code == acceptor.expected.stringValue
        case "path":
            guard error == nil, let expression = acceptor.expression else { return false }
            return expression.evaluate(output) == acceptor.expected
        case "pathAll":
            guard error == nil, let expression = acceptor.expression, case .array(let items) = expression.evaluate(output), !items.isEmpty else { return false }
            return items.allSatisfy { $0 == acceptor.expected }
        case "pathAny":
            guard error == nil, let expression = acceptor.expression, case .array(let items) = expression.evaluate(output) else { return false }
            return items.contains(acceptor.expected)
        default: return false
        }
    }
}
