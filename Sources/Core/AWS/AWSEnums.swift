import NimbusCore

extension JSONValue {
    /// An enum member a service answered, read into `T`; what the committed model does not know
    /// (a value added later) is refused by name rather than read as a default.
    ///
    /// ```swift
    /// let status = try output["Status"].awsEnum(DetectorStatus.self, "detector status", service: "GuardDuty")
    /// ```
    /// - Throws: `internal` naming the field when it is missing, or naming the unknown value.
    public func awsEnum<T: RawRepresentable>(_ type: T.Type, _ what: String, service: String) throws -> T where T.RawValue == String {
        guard let raw = stringValue else { throw NimbusError(.internal, "\(service) answered without \(what)") }
        guard let value = T(rawValue: raw) else { throw NimbusError(.internal, "\(service) answered an unknown \(what) \"\(raw.prefix(40))\"; update Nimbus's model") }
        return value
    }
}

extension Optional where Wrapped == JSONValue {
    /// ``JSONValue/awsEnum(_:_:service:)`` of a field that may be absent (absent is refused too).
    public func awsEnum<T: RawRepresentable>(_ type: T.Type, _ what: String, service: String) throws -> T where T.RawValue == String {
        guard let value = self else { throw NimbusError(.internal, "\(service) answered without \(what)") }
        return try value.awsEnum(type, what, service: service)
    }
}
