import Foundation
import NIOCore
import NimbusCore

/// The namespace of the generated AWS services (`AWS.S3`, `AWS.DynamoDB`, `AWS.SQS`…), written by
/// `scripts/aws/generate.swift` from the committed models into `Sources/Core/AWS/Services`.
///
/// ```swift
/// let s3 = AWS.S3(client: AWSClient())
/// let page = try await s3.listObjectsV2(.init(bucket: "docs", prefix: "2026/"))
/// for object in page.contents ?? [] { print(object.key ?? "", object.size ?? 0) }
/// ```
public enum AWS {}

/// A generated service: its model's name and the client it calls through.
public protocol AWSServiceAPI: Sendable {
    /// The committed model's name (`s3`).
    static var modelName: String { get }
    /// The client that signs and sends.
    var client: AWSClient { get }
}

/// A generated input: encoded to JSON by the model's member names, plus a streaming payload.
public protocol AWSEncodableShape: Encodable, Sendable {
    /// The bytes of a streaming payload member (S3 `PutObject`'s `Body`), sent as they are.
    var payload: ByteBuffer? { get }
}

extension AWSEncodableShape {
    public var payload: ByteBuffer? { nil }
}

/// A generated output: decoded from the parsed JSON, plus a streaming payload.
public protocol AWSDecodableShape: Decodable, Sendable {
    /// Receives a streaming payload (S3 `GetObject`'s `Body`).
    mutating func setPayload(_ bytes: ByteBuffer)
}

extension AWSDecodableShape {
    public mutating func setPayload(_ bytes: ByteBuffer) {}
}

/// An operation without output.
public struct AWSNoOutput: AWSDecodableShape {}

/// A string enum of a model, open: a value the model does not list is kept, not refused (AWS adds
/// values before models catch up; the input validator still checks what is sent).
public protocol AWSOpenEnum: RawRepresentable, Codable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible
    where RawValue == String {
    init(rawValue: String)
}

extension AWSOpenEnum {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    public var description: String { rawValue }
}

/// A member whose shape contains itself (DynamoDB's `AttributeValue`-like cycles outside lists).
public final class AWSIndirect<Wrapped: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    /// The value.
    public let value: Wrapped
    public init(_ value: Wrapped) { self.value = value }
    public required init(from decoder: any Decoder) throws { value = try Wrapped(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    public static func == (lhs: AWSIndirect, rhs: AWSIndirect) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

extension AWSClient {
    static let shapeEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(AWSWireFormat.iso8601(date))
        }
        return encoder
    }()

    static let shapeDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            if let seconds = try? container.decode(Double.self) { return Date(timeIntervalSince1970: seconds) }
            let text = try container.decode(String.self)
            guard let date = AWSWireFormat.instant(.string(text)) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a timestamp")
            }
            return date
        }
        return decoder
    }()

    /// Calls a generated operation: the typed input becomes the model-named JSON that ``call(_:_:input:payload:maxAttempts:)`` binds.
    public func perform<Input: AWSEncodableShape, Output: AWSDecodableShape>(_ service: String, _ operation: String, _ input: Input,
                                                                             maxAttempts: Int? = nil) async throws -> Output {
        let json = try JSONValue.parse(try Self.shapeEncoder.encode(input))
        return try decode(try await call(service, operation, input: json, payload: input.payload, maxAttempts: maxAttempts), service, operation)
    }

    /// Calls a generated operation that takes no input.
    public func perform<Output: AWSDecodableShape>(_ service: String, _ operation: String, maxAttempts: Int? = nil) async throws -> Output {
        try decode(try await call(service, operation, maxAttempts: maxAttempts), service, operation)
    }

    private func decode<Output: AWSDecodableShape>(_ result: OperationResult, _ service: String, _ operation: String) throws -> Output {
        var output: Output
        do { output = try result.output.decode(Output.self, decoder: Self.shapeDecoder) } catch {
            throw NimbusError(.dataLoss, "\(service) \(operation) answered a shape Nimbus cannot read as \(Output.self): \(error)", underlying: error)
        }
        if let payload = result.payload { output.setPayload(payload) }
        return output
    }
}
