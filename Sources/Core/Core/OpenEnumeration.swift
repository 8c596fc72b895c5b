import Foundation

/// A value providers may extend: known cases are constants, an unknown one keeps its raw string
/// instead of failing the whole read (a new Stripe dispute status must not break a webhook handler).
public protocol OpenEnumeration: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible where RawValue == String {
    init(rawValue: String)
}

extension OpenEnumeration {
    public var description: String { rawValue }
    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
