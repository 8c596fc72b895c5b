import Foundation
import NimbusCore
import Synchronization

/// An AWS service as its model describes it: the metadata, every operation with its HTTP binding,
/// every shape, the paginators and the waiters — read from botocore's `service-2.json`,
/// `paginators-1.json` and `waiters-2.json`, committed under `Sources/Core/AWS/Resources/Models`
/// (`scripts/aws/import-models` refreshes them; `PROVENANCE.json` names the botocore release).
///
/// ```swift
/// let s3 = try AWSServiceModel.named("s3")
/// let list = try s3.operation("ListObjectsV2")       // GET /{Bucket}?list-type=2, Prefix → ?prefix=
/// let request = try AWSRequestSerializer.serialize(["Bucket": "docs", "Prefix": "2026/"], for: list, in: s3)
/// ```
public struct AWSServiceModel: Sendable {
    /// The model's name in Nimbus and botocore (`s3`, `dynamodb`, `sesv2`).
    public let name: String
    /// The service's metadata block.
    public let metadata: Metadata
    /// Operations by name.
    public let operations: [String: AWSOperationModel]
    /// Shapes by name.
    public let shapes: [String: AWSShape]
    /// Paginators by operation name.
    public let paginators: [String: AWSPaginatorModel]
    /// Waiters by name.
    public let waiters: [String: AWSWaiterModel]

    /// The metadata that decides the wire format.
    public struct Metadata: Sendable {
        /// `query`, `ec2`, `json`, `rest-json` or `rest-xml`.
        public var protocolName: String
        /// The API version (`2006-03-01`); query protocols send it as `Version`.
        public var apiVersion: String
        /// The first label of the endpoint host.
        public var endpointPrefix: String
        /// The SigV4 service name.
        public var signingName: String
        /// The service id (`AWS_ENDPOINT_URL_<ID>`).
        public var serviceID: String
        /// JSON protocols: `1.0` or `1.1`.
        public var jsonVersion: String?
        /// JSON protocols: the `X-Amz-Target` prefix.
        public var targetPrefix: String?
        /// Query and XML protocols: the namespace of request bodies.
        public var xmlNamespace: String?
        /// The one endpoint of a global service.
        public var globalEndpoint: String?
        /// A JSON service that also answers the query protocol (SQS): requests carry `x-amzn-query-mode`.
        public var isQueryCompatible: Bool
    }

    /// The service as ``AWSClient`` addresses and signs it.
    public var service: AWSService {
        let wire: AWSProtocol = switch metadata.protocolName {
        case "query": .query(version: metadata.apiVersion)
        case "ec2": .ec2(version: metadata.apiVersion)
        case "json": .json(version: metadata.jsonVersion ?? "1.0", targetPrefix: metadata.targetPrefix ?? "")
        case "rest-json": .restJSON
        default: .restXML
        }
        let global = metadata.globalEndpoint != nil && !["s3", "sts"].contains(metadata.endpointPrefix)
        return AWSService(signingName: metadata.signingName, endpointPrefix: metadata.endpointPrefix, serviceID: metadata.serviceID,
                          wireProtocol: wire, isGlobal: global)
    }

    /// The operation named `name`. - Throws: `notFound` listing the closest names.
    public func operation(_ name: String) throws -> AWSOperationModel {
        if let found = operations[name] { return found }
        if let folded = operations.values.first(where: { $0.name.lowercased() == name.lowercased().replacingOccurrences(of: "-", with: "") }) {
            return folded
        }
        let suggestions = Self.closeMatches(to: name, in: operations.keys.sorted())
        throw NimbusError(.notFound, "\(name) is not an operation of \(name == self.name ? "" : "")\(self.name)"
                          + (suggestions.isEmpty ? "; `nimbus aws operations \(self.name)` lists them" : "; did you mean \(suggestions.joined(separator: ", "))?"))
    }

    /// The shape named `name`. - Throws: `internal` when the model refers to a shape it lacks.
    public func shape(_ name: String) throws -> AWSShape {
        guard let shape = shapes[name] else { throw NimbusError(.internal, "the \(self.name) model has no shape \(name)") }
        return shape
    }

    // MARK: Loading

    /// The committed models' names (`dynamodb`, `ec2`, `s3`…).
    public static let available: [String] = {
        guard let folder = Bundle.module.url(forResource: "Models", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { !$0.hasSuffix(".json") }.sorted()
    }()

    private static let cache = Mutex<[String: AWSServiceModel]>([:])

    /// The committed model of `name` (botocore's name: `s3`, `sesv2`, `stepfunctions`; `sfn` and
    /// `ses` are accepted too), loaded once per process.
    /// - Throws: `notFound` listing the close matches among the committed models.
    public static func named(_ name: String) throws -> AWSServiceModel {
        let aliases = ["sfn": "stepfunctions", "ses": "sesv2", "states": "stepfunctions", "secrets-manager": "secretsmanager"]
        let key = aliases[name.lowercased()] ?? name.lowercased()
        if let cached = cache.withLock({ $0[key] }) { return cached }
        guard available.contains(key), let folder = Bundle.module.url(forResource: "Models", withExtension: nil)?.appendingPathComponent(key) else {
            let suggestions = closeMatches(to: key, in: available)
            throw NimbusError(.notFound, "no AWS model named '\(name)'"
                              + (suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?")
                              + " (models: \(available.joined(separator: ", ")); scripts/aws/import-models adds more)")
        }
        func read(_ file: String) throws -> OrderedJSON? {
            let url = folder.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return try OrderedJSON.parse(Array(try Data(contentsOf: url)))
        }
        guard let service = try read("service-2.json") else { throw NimbusError(.notFound, "the \(key) model has no service-2.json") }
        let model = try AWSServiceModel(name: key, service: service, paginators: try read("paginators-1.json"), waiters: try read("waiters-2.json"))
        cache.withLock { $0[key] = model }
        return model
    }

    init(name: String, service: OrderedJSON, paginators: OrderedJSON?, waiters: OrderedJSON?) throws {
        self.name = name
        let meta = service["metadata"] ?? .object([])
        let protocolName = meta["protocol"]?.string ?? meta["protocols"]?.items.first?.string ?? "json"
        metadata = Metadata(protocolName: protocolName, apiVersion: meta["apiVersion"]?.string ?? "",
                            endpointPrefix: meta["endpointPrefix"]?.string ?? name, signingName: meta["signingName"]?.string ?? meta["endpointPrefix"]?.string ?? name,
                            serviceID: meta["serviceId"]?.string ?? name, jsonVersion: meta["jsonVersion"]?.string, targetPrefix: meta["targetPrefix"]?.string,
                            xmlNamespace: meta["xmlNamespace"]?.string, globalEndpoint: meta["globalEndpoint"]?.string,
                            isQueryCompatible: meta["awsQueryCompatible"] != nil)
        var shapes: [String: AWSShape] = [:]
        let rawShapes = service["shapes"]?.members ?? []
        let traitsByShape = Dictionary(rawShapes.map { ($0.0, AWSSerialization(shapeLevel: $0.1)) }, uniquingKeysWith: { first, _ in first })
        for (shapeName, raw) in rawShapes {
            shapes[shapeName] = AWSShape(name: shapeName, raw: raw, traits: traitsByShape)
        }
        self.shapes = shapes
        var operations: [String: AWSOperationModel] = [:]
        for (operationName, raw) in service["operations"]?.members ?? [] {
            operations[operationName] = AWSOperationModel(name: operationName, raw: raw, traits: traitsByShape)
        }
        self.operations = operations
        var pages: [String: AWSPaginatorModel] = [:]
        for (operationName, raw) in paginators?["pagination"]?.members ?? [] {
            pages[operationName] = AWSPaginatorModel(operation: operationName, raw: raw)
        }
        self.paginators = pages
        var waiting: [String: AWSWaiterModel] = [:]
        for (waiterName, raw) in waiters?["waiters"]?.members ?? [] {
            waiting[waiterName] = try AWSWaiterModel(name: waiterName, raw: raw)
        }
        self.waiters = waiting
    }

    /// The names in `candidates` closest to `name` (edit distance, case-insensitive; prefixes first).
    public static func closeMatches(to name: String, in candidates: [String], limit: Int = 3) -> [String] {
        let lowered = name.lowercased()
        let scored = candidates.map { candidate -> (String, Int) in
            let other = candidate.lowercased()
            if other.hasPrefix(lowered) || lowered.hasPrefix(other) { return (candidate, 0) }
            return (candidate, editDistance(Array(lowered), Array(other)))
        }
        let threshold = max(2, name.count / 3)
        return scored.filter { $0.1 <= threshold }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(limit).map(\.0)
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// How a value is written on the wire: the traits of a shape merged with those of the member that
/// refers to it (a member's own `locationName` or `xmlNamespace` wins, as in botocore).
public struct AWSSerialization: Sendable, Hashable {
    /// `locationName`: the name on the wire (header name, query key, XML element, JSON key).
    public var name: String?
    /// `uri`, `querystring`, `header`, `headers`, `statusCode`, or nil for the body.
    public var location: String?
    /// EC2's `queryName`.
    public var queryName: String?
    /// Lists and maps written without a wrapper element.
    public var flattened = false
    /// A timestamp's format override (`iso8601`, `unixTimestamp`, `rfc822`).
    public var timestampFormat: String?
    /// The XML namespace (`uri`, `prefix`).
    public var xmlNamespace: (uri: String, prefix: String?)?
    /// Written as an XML attribute.
    public var xmlAttribute = false
    /// A header holding base64 JSON.
    public var jsonValue = false
    /// Part of the host prefix.
    public var hostLabel = false
    /// A streaming payload.
    public var streaming = false
    /// An event stream.
    public var eventStream = false
    /// The output's wrapper element (query protocol).
    public var resultWrapper: String?
    /// Filled with a fresh UUID when absent (a member-level trait).
    public var idempotencyToken = false

    init() {}

    init(shapeLevel raw: OrderedJSON) {
        merge(raw)
    }

    mutating func merge(_ raw: OrderedJSON) {
        if let value = raw["locationName"]?.string { name = value }
        if let value = raw["location"]?.string { location = value }
        if let value = raw["queryName"]?.string { queryName = value }
        if let value = raw["flattened"]?.bool { flattened = value }
        if let value = raw["timestampFormat"]?.string { timestampFormat = value }
        if let namespace = raw["xmlNamespace"] {
            if let uri = namespace.string { xmlNamespace = (uri, nil) } else if let uri = namespace["uri"]?.string { xmlNamespace = (uri, namespace["prefix"]?.string) }
        }
        if let value = raw["xmlAttribute"]?.bool { xmlAttribute = value }
        if let value = raw["jsonvalue"]?.bool { jsonValue = value }
        if let value = raw["hostLabel"]?.bool { hostLabel = value }
        if let value = raw["streaming"]?.bool { streaming = value }
        if let value = raw["eventstream"]?.bool { eventStream = value }
        if let value = raw["resultWrapper"]?.string { resultWrapper = value }
        if let value = raw["idempotencyToken"]?.bool { idempotencyToken = value }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.name == rhs.name && lhs.location == rhs.location && lhs.queryName == rhs.queryName && lhs.flattened == rhs.flattened
            && lhs.timestampFormat == rhs.timestampFormat && lhs.xmlNamespace?.uri == rhs.xmlNamespace?.uri && lhs.xmlNamespace?.prefix == rhs.xmlNamespace?.prefix
            && lhs.xmlAttribute == rhs.xmlAttribute && lhs.jsonValue == rhs.jsonValue && lhs.hostLabel == rhs.hostLabel && lhs.streaming == rhs.streaming
            && lhs.eventStream == rhs.eventStream && lhs.resultWrapper == rhs.resultWrapper && lhs.idempotencyToken == rhs.idempotencyToken
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(name); hasher.combine(location) }
}

/// A reference to a shape with the serialization traits that apply at this place.
public struct AWSShapeRef: Sendable, Hashable {
    /// The shape's name.
    public var shape: String
    /// The merged traits.
    public var serialization: AWSSerialization

    init(raw: OrderedJSON, traits: [String: AWSSerialization]) {
        shape = raw["shape"]?.string ?? ""
        var merged = traits[shape] ?? AWSSerialization()
        merged.merge(raw)
        serialization = merged
    }
}

/// One shape of a model.
public struct AWSShape: Sendable {
    /// The shape types of the AWS models.
    public enum Kind: String, Sendable {
        case structure, list, map, string, integer, long, float, double, boolean, timestamp, blob
    }

    /// Its name.
    public var name: String
    /// Its type.
    public var kind: Kind
    /// Structure members in model order.
    public var members: [(name: String, ref: AWSShapeRef)]
    /// Members that must be present.
    public var required: Set<String>
    /// A list's element.
    public var member: AWSShapeRef?
    /// A map's key and value.
    public var key: AWSShapeRef?, value: AWSShapeRef?
    /// The allowed values of a string enum.
    public var enumValues: [String]?
    /// Minimum and maximum (a number's value; a string's, list's or map's length).
    public var min: Double?, max: Double?
    /// The member that is the HTTP body (REST protocols).
    public var payload: String?
    /// The shape's own traits.
    public var serialization: AWSSerialization
    /// An error shape, with its code and HTTP status.
    public var isException: Bool
    public var errorCode: String?, errorStatus: Int?
    /// A document (free-form JSON) or a union.
    public var isDocument: Bool, isUnion: Bool

    /// A member's reference.
    public func member(_ name: String) -> AWSShapeRef? { members.first { $0.name == name }?.ref }

    init(name: String, raw: OrderedJSON, traits: [String: AWSSerialization]) {
        self.name = name
        kind = Kind(rawValue: raw["type"]?.string ?? "") ?? .string
        members = raw["members"]?.members.map { ($0.0, AWSShapeRef(raw: $0.1, traits: traits)) } ?? []
        required = Set(raw["required"]?.items.compactMap(\.string) ?? [])
        member = raw["member"].map { AWSShapeRef(raw: $0, traits: traits) }
        key = raw["key"].map { AWSShapeRef(raw: $0, traits: traits) }
        value = raw["value"].map { AWSShapeRef(raw: $0, traits: traits) }
        enumValues = raw["enum"]?.items.compactMap(\.string)
        min = raw["min"]?.number
        max = raw["max"]?.number
        payload = raw["payload"]?.string
        serialization = AWSSerialization(shapeLevel: raw)
        isException = raw["exception"]?.bool ?? false
        errorCode = raw["error"]?["code"]?.string
        errorStatus = raw["error"]?["httpStatusCode"]?.number.map { Int($0) }
        isDocument = raw["document"]?.bool ?? false
        isUnion = raw["union"]?.bool ?? false
    }
}

/// One operation: its HTTP binding, input, output and errors.
public struct AWSOperationModel: Sendable {
    /// Its name (`ListObjectsV2`).
    public var name: String
    /// The HTTP method.
    public var method: String
    /// The URI template (`/{Bucket}/{Key+}?x-id=GetObject`).
    public var requestURI: String
    /// The success status code, when the model states one.
    public var responseCode: Int?
    /// The input and output (a reference keeps `resultWrapper` and friends).
    public var input: AWSShapeRef?, output: AWSShapeRef?
    /// The error shapes it declares.
    public var errors: [String]
    /// `{Bucket}.` style host prefix, filled from `hostLabel` members.
    public var hostPrefix: String?
    /// Operations that need a `Content-MD5` or checksum header.
    public var checksumRequired: Bool
    /// Operations called without credentials (`"authtype": "none"`: Cognito's `InitiateAuth`, STS's
    /// `AssumeRoleWithWebIdentity`): they are sent unsigned, as the SDKs send them.
    public var isUnsigned: Bool

    init(name: String, raw: OrderedJSON, traits: [String: AWSSerialization]) {
        self.name = name
        method = raw["http"]?["method"]?.string ?? "POST"
        requestURI = raw["http"]?["requestUri"]?.string ?? "/"
        responseCode = raw["http"]?["responseCode"]?.number.map { Int($0) }
        input = raw["input"].map { AWSShapeRef(raw: $0, traits: traits) }
        output = raw["output"].map { AWSShapeRef(raw: $0, traits: traits) }
        errors = raw["errors"]?.items.compactMap { $0["shape"]?.string } ?? []
        hostPrefix = raw["endpoint"]?["hostPrefix"]?.string
        checksumRequired = raw["httpChecksumRequired"]?.bool == true || raw["httpChecksum"]?["requestChecksumRequired"]?.bool == true
        isUnsigned = raw["authtype"]?.string == "none" || raw["auth"]?.items.compactMap(\.string) == ["smithy.api#noAuth"]
    }
}

/// How an operation pages (botocore's `paginators-1.json`).
public struct AWSPaginatorModel: Sendable {
    /// The operation.
    public var operation: String
    /// Input members that carry the token (usually one).
    public var inputTokens: [String]
    /// Expressions into the output that yield the next token(s) (`NextToken`, `NextMarker || Contents[-1].Key`).
    public var outputTokens: [String]
    /// A member saying whether more pages exist (`IsTruncated`).
    public var moreResults: String?
    /// The page-size input member.
    public var limitKey: String?
    /// The members that hold a page's items.
    public var resultKeys: [String]

    init(operation: String, raw: OrderedJSON) {
        self.operation = operation
        func strings(_ value: OrderedJSON?) -> [String] { value?.string.map { [$0] } ?? value?.items.compactMap(\.string) ?? [] }
        inputTokens = strings(raw["input_token"])
        outputTokens = strings(raw["output_token"])
        moreResults = raw["more_results"]?.string
        limitKey = raw["limit_key"]?.string
        resultKeys = strings(raw["result_key"])
    }
}

/// A waiter (botocore's `waiters-2.json`): poll an operation until an acceptor matches.
public struct AWSWaiterModel: Sendable {
    /// Its name (`BucketExists`, `TableExists`).
    public var name: String
    /// The operation it polls.
    public var operation: String
    /// Seconds between attempts, and how many.
    public var delay: Int, maxAttempts: Int
    /// The acceptors in order.
    public var acceptors: [Acceptor]

    /// One acceptor.
    public struct Acceptor: Sendable {
        /// `path`, `pathAll`, `pathAny`, `status` or `error`.
        public var matcher: String
        /// What the waiter becomes when it matches: `success`, `failure` or `retry`.
        public var state: String
        /// The JMESPath expression (path matchers).
        public var argument: String?
        /// The expected value.
        public var expected: JSONValue
        let expression: JMESPath?
    }

    init(name: String, raw: OrderedJSON) throws {
        self.name = name
        operation = raw["operation"]?.string ?? ""
        delay = Int(raw["delay"]?.number ?? 15)
        maxAttempts = Int(raw["maxAttempts"]?.number ?? 40)
        acceptors = try raw["acceptors"]?.items.map { acceptor in
            let argument = acceptor["argument"]?.string
            return Acceptor(matcher: acceptor["matcher"]?.string ?? "", state: acceptor["state"]?.string ?? "", argument: argument,
                            expected: acceptor["expected"]?.json ?? .null, expression: try argument.map(JMESPath.init))
        } ?? []
    }
}
