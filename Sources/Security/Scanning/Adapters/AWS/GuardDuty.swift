import Foundation
import NimbusAWS
import NimbusCore

/// Amazon GuardDuty management through the model-driven AWS core: detectors, finding filters
/// (suppression rules) and trusted IP lists.
///
/// ```swift
/// let guardDuty = GuardDuty(aws: AWSClient())
/// let detector = try await guardDuty.detectorIDs().first ?? guardDuty.createDetector(frequency: .fifteenMinutes)
/// try await guardDuty.createFilter(detector, GuardDuty.Filter(name: "ignore-scanner", action: .archive, rank: 1,
///                                  criteria: ["service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": .equals(["198.51.100.7"])]))
/// ```
///
/// Values the service answers outside the model's enums (a status added later) are refused with
/// an error naming them, never read as a default.
public struct GuardDuty: Sendable {
    /// How often updated findings are exported.
    public enum FindingFrequency: String, Sendable, CaseIterable {
        case fifteenMinutes = "FIFTEEN_MINUTES", oneHour = "ONE_HOUR", sixHours = "SIX_HOURS"
    }

    /// A detector's settings.
    public struct Detector: Sendable, Hashable {
        public var id: String
        public var isEnabled: Bool
        public var frequency: FindingFrequency
        public var createdAt: String?
        public var updatedAt: String?
    }

    /// One condition of a filter's criteria (GuardDuty's `Condition`).
    public struct Condition: Sendable, Hashable {
        var fields: [String: JSONValue]
        /// The field equals one of `values`.
        public static func equals(_ values: [String]) -> Condition { Condition(fields: ["Equals": .array(values.map(JSONValue.string))]) }
        /// The field equals none of `values`.
        public static func notEquals(_ values: [String]) -> Condition { Condition(fields: ["NotEquals": .array(values.map(JSONValue.string))]) }
        /// The field is above `value` (timestamps in milliseconds, severities).
        public static func greaterThan(_ value: Int64) -> Condition { Condition(fields: ["GreaterThan": .number(Double(value))]) }
        /// The field is at least `value`.
        public static func atLeast(_ value: Int64) -> Condition { Condition(fields: ["GreaterThanOrEqual": .number(Double(value))]) }
        /// The field is below `value`.
        public static func lessThan(_ value: Int64) -> Condition { Condition(fields: ["LessThan": .number(Double(value))]) }
        /// The field is at most `value`.
        public static func atMost(_ value: Int64) -> Condition { Condition(fields: ["LessThanOrEqual": .number(Double(value))]) }
    }

    /// A saved filter: findings that match are archived automatically (`archive`) or only grouped (`noop`).
    public struct Filter: Sendable, Hashable {
        public enum Action: String, Sendable { case noop = "NOOP", archive = "ARCHIVE" }
        /// 3–64 characters from `A–Z a–z 0–9 - _ .`.
        public var name: String
        public var action: Action
        /// The order filters apply in (1–100).
        public var rank: Int
        public var description: String?
        /// Finding field → condition.
        public var criteria: [String: Condition]

        public init(name: String, action: Action, rank: Int, description: String? = nil, criteria: [String: Condition]) {
            self.name = name
            self.action = action
            self.rank = rank
            self.description = description
            self.criteria = criteria
        }
    }

    /// A trusted IP list: traffic from its addresses raises no findings.
    public struct IPSet: Sendable, Hashable {
        public enum Format: String, Sendable { case txt = "TXT", stix = "STIX", otxCSV = "OTX_CSV", alienVault = "ALIEN_VAULT", proofPoint = "PROOF_POINT", fireEye = "FIRE_EYE" }
        public enum Status: String, Sendable {
            case inactive = "INACTIVE", activating = "ACTIVATING", active = "ACTIVE", deactivating = "DEACTIVATING", error = "ERROR"
            case deletePending = "DELETE_PENDING", deleted = "DELETED"
        }
        public var id: String
        public var name: String
        public var format: Format
        /// The list's object (`https://s3.amazonaws.com/bucket/key` or `s3://bucket/key`).
        public var location: String
        public var status: Status
    }

    /// The AWS client.
    public let aws: AWSClient

    /// GuardDuty through `aws`.
    public init(aws: AWSClient) { self.aws = aws }

    @discardableResult
    func call(_ operation: String, _ input: [String: JSONValue]) async throws -> JSONValue {
        try await aws.call("guardduty", operation, input: .object(input)).output
    }


    // MARK: - Detectors

    /// Creates the region's detector (one per account and region) and returns its id.
    public func createDetector(enabled: Bool = true, frequency: FindingFrequency = .sixHours) async throws -> String {
        let output = try await call("CreateDetector", ["Enable": .bool(enabled), "FindingPublishingFrequency": .string(frequency.rawValue),
                                                       "ClientToken": .string(UUID().uuidString)])
        guard let id = output["DetectorId"]?.stringValue else { throw NimbusError(.internal, "GuardDuty CreateDetector answered without a DetectorId") }
        return id
    }

    /// The detectors of the region.
    public func detectorIDs() async throws -> [String] {
        var ids: [String] = []
        for try await page in aws.pages("guardduty", "ListDetectors") { ids += page["DetectorIds"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        return ids
    }

    /// A detector's settings.
    public func detector(_ id: String) async throws -> Detector {
        let output = try await call("GetDetector", ["DetectorId": .string(id)])
        let status = try output["Status"].awsEnum(RawStatus.self, "detector status", service: "GuardDuty")
        return Detector(id: id, isEnabled: status == .enabled, frequency: try output["FindingPublishingFrequency"].awsEnum(FindingFrequency.self, "finding frequency", service: "GuardDuty"),
                        createdAt: output["CreatedAt"]?.stringValue, updatedAt: output["UpdatedAt"]?.stringValue)
    }

    enum RawStatus: String { case enabled = "ENABLED", disabled = "DISABLED" }

    /// Enables or suspends a detector, or changes its export frequency.
    public func updateDetector(_ id: String, enabled: Bool? = nil, frequency: FindingFrequency? = nil) async throws {
        var input: [String: JSONValue] = ["DetectorId": .string(id)]
        if let enabled { input["Enable"] = .bool(enabled) }
        if let frequency { input["FindingPublishingFrequency"] = .string(frequency.rawValue) }
        try await call("UpdateDetector", input)
    }

    /// Deletes a detector (its findings go with it).
    public func deleteDetector(_ id: String) async throws { try await call("DeleteDetector", ["DetectorId": .string(id)]) }

    // MARK: - Filters

    static func validate(_ filter: Filter) throws {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
        guard (3...64).contains(filter.name.count), filter.name.allSatisfy(allowed.contains) else {
            throw NimbusError(.invalidArgument, "a GuardDuty filter name has 3–64 characters from A–Z a–z 0–9 - _ . (got \"\(filter.name.prefix(70))\")")
        }
        guard (1...100).contains(filter.rank) else { throw NimbusError(.invalidArgument, "a GuardDuty filter rank is 1–100 (got \(filter.rank))") }
        guard !filter.criteria.isEmpty else { throw NimbusError(.invalidArgument, "a GuardDuty filter needs at least one criterion") }
    }

    static func criteria(_ criteria: [String: Condition]) -> JSONValue {
        ["Criterion": .object(criteria.mapValues { .object($0.fields) })]
    }

    /// Creates a filter on `detector`.
    public func createFilter(_ detector: String, _ filter: Filter) async throws {
        try Self.validate(filter)
        var input: [String: JSONValue] = ["DetectorId": .string(detector), "Name": .string(filter.name), "Action": .string(filter.action.rawValue),
                                          "Rank": .number(Double(filter.rank)), "FindingCriteria": Self.criteria(filter.criteria),
                                          "ClientToken": .string(UUID().uuidString)]
        if let description = filter.description { input["Description"] = .string(description) }
        try await call("CreateFilter", input)
    }

    /// Replaces a filter's action, rank, description and criteria.
    public func updateFilter(_ detector: String, _ filter: Filter) async throws {
        try Self.validate(filter)
        var input: [String: JSONValue] = ["DetectorId": .string(detector), "FilterName": .string(filter.name), "Action": .string(filter.action.rawValue),
                                          "Rank": .number(Double(filter.rank)), "FindingCriteria": Self.criteria(filter.criteria)]
        if let description = filter.description { input["Description"] = .string(description) }
        try await call("UpdateFilter", input)
    }

    /// A filter by name.
    public func filter(_ detector: String, named name: String) async throws -> Filter {
        let output = try await call("GetFilter", ["DetectorId": .string(detector), "FilterName": .string(name)])
        var criteria: [String: Condition] = [:]
        if case .object(let items)? = output["FindingCriteria"]?["Criterion"] {
            for (field, condition) in items {
                guard case .object(var fields) = condition else { continue }
                for legacy in ["Eq", "Neq", "Gt", "Gte", "Lt", "Lte"] where fields[legacy] != nil {   // moto and old filters answer the deprecated names
                    let modern = ["Eq": "Equals", "Neq": "NotEquals", "Gt": "GreaterThan", "Gte": "GreaterThanOrEqual", "Lt": "LessThan", "Lte": "LessThanOrEqual"][legacy]!
                    if fields[modern] == nil { fields[modern] = fields[legacy] }
                    fields[legacy] = nil
                }
                criteria[field] = Condition(fields: fields)
            }
        }
        return Filter(name: output["Name"]?.stringValue ?? name, action: try output["Action"].awsEnum(Filter.Action.self, "filter action", service: "GuardDuty"),
                      rank: Int(output["Rank"]?.numberValue ?? 1), description: output["Description"]?.stringValue, criteria: criteria)
    }

    /// Deletes a filter.
    public func deleteFilter(_ detector: String, named name: String) async throws {
        try await call("DeleteFilter", ["DetectorId": .string(detector), "FilterName": .string(name)])
    }

    // MARK: - Trusted IP lists

    /// Creates a trusted IP list from an S3 object.
    public func createIPSet(_ detector: String, name: String, format: IPSet.Format, location: String, activate: Bool = true) async throws -> String {
        guard location.hasPrefix("s3://") || location.hasPrefix("https://") else {
            throw NimbusError(.invalidArgument, "a GuardDuty IP list lives in S3: s3://bucket/key or https://s3.amazonaws.com/bucket/key (got \(location.prefix(60)))")
        }
        let output = try await call("CreateIPSet", ["DetectorId": .string(detector), "Name": .string(name), "Format": .string(format.rawValue),
                                                    "Location": .string(location), "Activate": .bool(activate), "ClientToken": .string(UUID().uuidString)])
        guard let id = output["IpSetId"]?.stringValue else { throw NimbusError(.internal, "GuardDuty CreateIPSet answered without an IpSetId") }
        return id
    }

    /// A trusted IP list.
    public func ipSet(_ detector: String, id: String) async throws -> IPSet {
        let output = try await call("GetIPSet", ["DetectorId": .string(detector), "IpSetId": .string(id)])
        return IPSet(id: id, name: output["Name"]?.stringValue ?? "", format: try output["Format"].awsEnum(IPSet.Format.self, "IP set format", service: "GuardDuty"),
                     location: output["Location"]?.stringValue ?? "", status: try output["Status"].awsEnum(IPSet.Status.self, "IP set status", service: "GuardDuty"))
    }

    /// The trusted IP lists of `detector`.
    public func ipSetIDs(_ detector: String) async throws -> [String] {
        var ids: [String] = []
        for try await page in aws.pages("guardduty", "ListIPSets", input: ["DetectorId": .string(detector)]) {
            ids += page["IpSetIds"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        return ids
    }

    /// Renames, moves or (de)activates a trusted IP list.
    public func updateIPSet(_ detector: String, id: String, name: String? = nil, location: String? = nil, activate: Bool? = nil) async throws {
        var input: [String: JSONValue] = ["DetectorId": .string(detector), "IpSetId": .string(id)]
        if let name { input["Name"] = .string(name) }
        if let location { input["Location"] = .string(location) }
        if let activate { input["Activate"] = .bool(activate) }
        try await call("UpdateIPSet", input)
    }

    /// Deletes a trusted IP list.
    public func deleteIPSet(_ detector: String, id: String) async throws {
        try await call("DeleteIPSet", ["DetectorId": .string(detector), "IpSetId": .string(id)])
    }
}
