import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP

/// Asks the EU's VIES service whether a VAT number is registered — what syntax and check digits
/// (``VATNumber``) cannot tell. Uses the VIES REST API (`POST /check-vat-number`).
///
/// VIES is often down for one member state at a time: `MS_UNAVAILABLE`, `TIMEOUT` and the
/// concurrency limits come back as `unavailable` (retryable), never as "invalid".
///
/// ```swift
/// let vies = VIESClient()
/// let result = try await vies.check(try VATNumber("DE136695976"))
/// if result.isValid { /* B2B: reverse charge */ }
/// ```
public struct VIESClient: Sendable {
    /// A VIES answer.
    public struct Result: Sendable, Hashable, Codable {
        /// The number asked about.
        public var vatNumber: VATNumber
        /// Whether it is registered for intra-EU trade.
        public var isValid: Bool
        /// The registered name, when the member state discloses it.
        public var name: String?
        /// The registered address, when disclosed.
        public var address: String?
        /// VIES's consultation number, when a requester was given (proof of the check).
        public var requestIdentifier: String?
        /// When VIES answered.
        public var requestDate: String?
    }

    private let http: NimbusHTTPClient

    /// Creates a client for `baseURL` (the Commission's REST endpoint by default).
    public init(baseURL: String = "https://ec.europa.eu/taxation_customs/vies/rest-api", http: NimbusHTTPClient? = nil) {
        self.http = http ?? NimbusHTTPClient(configuration: .init(service: "vies", baseURL: baseURL, timeout: .seconds(30)))
    }

    /// Checks `vatNumber`, optionally as `requester` (your own VAT number) to get a consultation number.
    /// - Throws: `unavailable` when VIES or the member state cannot answer now (retry later);
    ///   `invalidArgument` when VIES refuses the input; `resourceExhausted` when VIES blocks the caller.
    public func check(_ vatNumber: VATNumber, requester: VATNumber? = nil) async throws -> Result {
        var body: [String: JSONValue] = ["countryCode": .string(vatNumber.countryCode), "vatNumber": .string(vatNumber.number)]
        if let requester {
            body["requesterMemberStateCode"] = .string(requester.countryCode)
            body["requesterNumber"] = .string(requester.number)
        }
        var request = NimbusHTTPRequest(.POST, "/check-vat-number", operation: "vies.check")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = ByteBuffer(string: JSONValue.object(body).description)
        request.safeToRetry = true        // a lookup changes nothing
        let response = try await http.send(request)
        let data = try await response.collect(upTo: 256 * 1024)
        let json = try? JSONValue.parse(Array(data.readableBytesView))
        if let error = Self.errorCode(json) { throw Self.map(error, vatNumber) }
        guard response.isSuccess, let json else {
            throw response.error("VIES answered \(response.status.code): \(String(decoding: data.readableBytesView.prefix(200), as: UTF8.self))")
        }
        guard let valid = json["valid"]?.boolValue ?? json["isValid"]?.boolValue else {
            throw NimbusError(.internal, "VIES answered without a verdict (valid): \(String(describing: json).prefix(200))")
        }
        func text(_ key: String) -> String? {
            guard let value = json[key]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty, value != "---" else { return nil }
            return value
        }
        return Result(vatNumber: vatNumber, isValid: valid, name: text("name"), address: text("address"),
                      requestIdentifier: text("requestIdentifier"), requestDate: text("requestDate"))
    }

    /// VIES's error: `{"errorWrappers": [{"error": "MS_UNAVAILABLE"}]}` or `{"userError": "..."}`.
    static func errorCode(_ json: JSONValue?) -> String? {
        if let wrapped = json?["errorWrappers"]?.arrayValue?.first?["error"]?.stringValue { return wrapped }
        if let user = json?["userError"]?.stringValue, !["VALID", "INVALID"].contains(user) { return user }
        return nil
    }

    static func map(_ code: String, _ number: VATNumber) -> NimbusError {
        switch code {
        case "MS_UNAVAILABLE", "SERVICE_UNAVAILABLE", "TIMEOUT", "GLOBAL_MAX_CONCURRENT_REQ", "GLOBAL_MAX_CONCURRENT_REQ_TIME",
             "MS_MAX_CONCURRENT_REQ", "MS_MAX_CONCURRENT_REQ_TIME", "SERVER_BUSY":
            return NimbusError(.unavailable, "VIES cannot check \(number) now (\(code)); this says nothing about the number — retry later", retryable: true)
        case "INVALID_INPUT", "INVALID_REQUESTER_INFO":
            return NimbusError(.invalidArgument, "VIES refused the request for \(number) (\(code))")
        case "IP_BLOCKED", "VAT_BLOCKED":
            return NimbusError(.resourceExhausted, "VIES blocked the request for \(number) (\(code))", retryable: false)
        default:
            return NimbusError(.unavailable, "VIES answered \(code) for \(number)")
        }
    }
}
