import Foundation

/// A value read from and written as one JSON string, checked when read (an email address, a phone number):
/// a string that does not parse is a `DecodingError` carrying the parser's message.
///
/// ```swift
/// extension PhoneNumber: StringCodable {
///     public init(parsing text: String) throws { try self.init(text) }
///     public var encodedText: String { e164 }
/// }
/// ```
public protocol StringCodable: Codable {
    /// Parses the string form. - Throws: `NimbusError` saying what is wrong.
    init(parsing text: String) throws
    /// The string written.
    var encodedText: String { get }
}

extension StringCodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do { try self.init(parsing: try container.decode(String.self)) } catch let error as NimbusError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(encodedText)
    }
}
