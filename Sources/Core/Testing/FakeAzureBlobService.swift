import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NimbusAzure
import NimbusCore
import NimbusHTTP
import Synchronization

/// Azure Blob Storage's block blobs as Microsoft documents them ("Put Blob", "Put Block", "Put Block
/// List", "Get Blob", "Get Blob Properties", "Copy Blob", "Delete Blob", "Lease Blob", "List Blobs",
/// "Specifying conditional headers", "Authorize with Shared Key", "Create a service SAS", "Blob
/// service error codes"): Shared Key signatures recomputed for every request, service SAS checked
/// (signature, expiry, permissions), ETags and conditions, leases, `Content-MD5` checked on arrival,
/// block ids of one length per blob, listings in UTF-8 byte order with opaque markers, and Storage's
/// XML error bodies with `x-ms-error-code`.
///
/// Access tiers too: Put Blob and Put Block List with `x-ms-access-tier`, Set Blob Tier, an archived
/// blob refusing reads (`409 BlobArchived`) and rehydrating to an online tier after
/// ``State/rehydrationDelay`` (`x-ms-archive-status: rehydrate-pending-to-hot` meanwhile).
///
/// Every request is first checked against the committed extract of Microsoft's Swagger description
/// (`Fixtures/azure-blob-2024-08-04.json` in this module; see scripts/storage/azure-blob-extract).
///
/// ```swift
/// let fake = try await FakeAzureBlobService.start()
/// fake.createContainer("photos")
/// let storage = AzureStorageClient(configuration: .init(endpoint: fake.endpoint, credential: .sharedKey(FakeAzureBlobService.account)))
/// ```
public final class FakeAzureBlobService: Sendable {
    /// The account whose key every request must be signed with.
    public static let account = AzureStorageAccount(name: "nimbusfake", key: Secret(Data((0..<64).map { UInt8($0 * 7 % 256) }).base64EncodedString()))

    /// The server (its recorded requests, refusals).
    public let server: FakeHTTPServer
    /// The Blob endpoint.
    public var endpoint: String { server.baseURL }

    /// A stored blob.
    public struct Blob: Sendable {
        var data: ByteBuffer
        var contentType = "application/octet-stream"
        var headers: [String: String] = [:]     // content-encoding, content-language, content-disposition, cache-control
        var md5: String?
        var metadata: [(String, String)] = []
        var etag: String
        var modified: Date
        var tier = "Hot"
        var tierChanged: Date?
        /// A rehydration under way: the tier it goes to, and when it is done.
        var rehydrating: (tier: String, ready: Date)?
        var lease: Lease?
        var copyStatus: String?
    }

    struct Lease: Sendable {
        var id: String
        var expires: Date?     // nil: infinite
        var broken = false
        func active(at now: Date) -> Bool { !broken && (expires.map { $0 > now } ?? true) }
    }

    /// A blob name compared by its bytes: é composed and decomposed are two blobs, as in Azure.
    public struct Name: Hashable, Sendable {
        let bytes: [UInt8]
        init(_ text: String) { bytes = Array(text.utf8) }
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// What the service holds, and the faults to inject.
    public struct State: Sendable {
        var containers: [String: [Name: Blob]] = [:]
        /// container/blob → block id → bytes
        var blocks: [String: [String: ByteBuffer]] = [:]
        var counter = 0
        /// The next answers to replace with 503 ServerBusy (Retry-After: 1).
        public var busy = 0
        /// The next copies to report as pending (one poll each).
        public var pendingCopies = 0
        var pendingPolls: [String: Int] = [:]
        /// Ranged reads to corrupt (one byte flipped in transit).
        public var corruptReads = 0
        /// How long a rehydration from Archive takes.
        public var rehydrationDelay: Duration = .milliseconds(500)
        /// While set, rehydrations stay under way whatever the time (for a test that looks at them).
        public var holdRehydrations = false
    }
    /// The state, for a test to inject faults.
    public let state = Mutex(State())

    /// Microsoft's Swagger description of the Blob service (the extract), as a checker.
    public static let spec = SwaggerRequestChecker.fixture("azure-blob-2024-08-04", in: .module)
    static let sasParameters: Set<String> = ["sv", "ss", "srt", "sp", "se", "st", "spr", "sip", "si", "sr", "sig", "rscc", "rscd", "rsce", "rscl", "rsct"]

    /// Starts the service on a free loopback port.
    public static func start() async throws -> FakeAzureBlobService {
        let fake = FakeAzureBlobService(server: try await FakeHTTPServer.start())
        let checker = try spec.get()
        fake.server.refuseRequests(failing: { request in
            // A SAS's parameters belong to the authorization scheme, not to any operation.
            // With a SAS, `sv` names the version and x-ms-version may be left out.
            var described = request
            if described.queryItem("sv") != nil, described.header("x-ms-version") == nil { described.headers.append(("x-ms-version", "2024-08-04")) }
            described.query.removeAll { sasParameters.contains($0.0) }
            return checker.check(described).map(\.description)
        }) { problems in error(400, "InvalidInput", problems.joined(separator: "; ")) }
        for method in [NIOHTTP1.HTTPMethod.GET, .HEAD, .PUT, .DELETE] {
            fake.server.route(method, "/{path...}") { request in fake.handle(request) }
        }
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    /// Creates a container (tests start with one).
    public func createContainer(_ name: String) { state.withLock { if $0.containers[name] == nil { $0.containers[name] = [:] } } }

    static func error(_ status: Int, _ code: String, _ message: String, head: Bool = false, headers: [(String, String)] = []) -> FakeHTTPServer.Reply {
        let common = [("x-ms-error-code", code), ("x-ms-request-id", UUID().uuidString.lowercased()), ("x-ms-version", "2024-08-04")] + headers
        if head { return .response(status: status, headers: common, body: ByteBuffer()) }
        let body = #"<?xml version="1.0" encoding="utf-8"?><Error><Code>\#(code)</Code><Message>\#(XMLElement.escape(message))"#
            + "\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-12-07T12:00:00.0000000Z</Message></Error>"
        return .response(status: status, headers: [("Content-Type", "application/xml")] + common, body: ByteBuffer(string: body))
    }

    // MARK: Dispatch

    func handle(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let head = request.method == "HEAD"
        if let refusal = authorize(request) { return refusal }
        let busy = state.withLock { state -> Bool in
            guard state.busy > 0 else { return false }
            state.busy -= 1
            return true
        }
        if busy { return Self.error(503, "ServerBusy", "The server is busy.", head: head, headers: [("Retry-After", "1")]) }
        let raw = request.path.dropFirst().split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let container = raw[0].removingPercentEncoding ?? raw[0]
        guard state.withLock({ $0.containers[container] != nil }) || (request.method == "PUT" && request.queryItem("restype") == "container") else {
            return Self.error(404, "ContainerNotFound", "The specified container does not exist.", head: head)
        }
        guard raw.count == 2 else { return containerOperation(request, container) }
        let name = raw[1].removingPercentEncoding ?? raw[1]
        settleRehydration(container, name)
        switch (request.method, request.queryItem("comp")) {
        case ("HEAD", nil): return properties(container, name, request)
        case ("GET", nil): return download(container, name, request)
        case ("PUT", nil) where request.header("x-ms-copy-source") != nil: return copyBlob(container, name, request)
        case ("PUT", nil): return putBlob(container, name, request)
        case ("PUT", "block"): return putBlock(container, name, request)
        case ("PUT", "blocklist"): return putBlockList(container, name, request)
        case ("PUT", "lease"): return lease(container, name, request)
        case ("PUT", "tier"): return setTier(container, name, request)
        case ("DELETE", nil): return deleteBlob(container, name, request)
        default: return Self.error(400, "UnsupportedHttpVerb", "the fake does not serve \(request.method) comp=\(request.queryItem("comp") ?? "")")
        }
    }

    // MARK: Authorization

    /// `nil` when the request is authorized; otherwise Azure's 403.
    func authorize(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply? {
        let head = request.method == "HEAD"
        if let signature = request.queryItem("sig") {
            return checkSAS(request, signature: signature) ? nil
                : Self.error(403, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.", head: head)
        }
        guard let authorization = request.header("authorization") else {
            return Self.error(401, "NoAuthenticationInformation", "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.", head: head)
        }
        guard let date = request.header("x-ms-date").flatMap(HTTPDate.parse), abs(date.timeIntervalSinceNow) < 15 * 60 else {
            return Self.error(403, "AuthenticationFailed", "Request date header too old or missing", head: head)
        }
        let query = request.query.map { ($0.0, $0.1) }
        let expected = try? AzureSharedKey.authorization(account: Self.account, method: request.method, path: request.path, query: query, headers: request.headers)
        guard let expected, Self.constantTimeEqual(expected, authorization) else {
            return Self.error(403, "AuthenticationFailed", "The MAC signature found in the HTTP request is not the same as any computed signature.", head: head)
        }
        return nil
    }

    /// A service SAS (version 2022-11-02 layout): signature over the documented string, expiry, and the permission the method needs.
    func checkSAS(_ request: FakeHTTPServer.CapturedRequest, signature: String) -> Bool {
        func value(_ name: String) -> String { request.queryItem(name) ?? "" }
        guard value("sv") == "2022-11-02", let expiry = Date(iso8601: value("se")), expiry > Date() else { return false }
        if let start = Date(iso8601: value("st")), start > Date().addingTimeInterval(60) { return false }
        let needed: Character = switch request.method { case "GET", "HEAD": "r"; case "DELETE": "d"; default: "w" }
        guard value("sp").contains(needed) || (needed == "w" && value("sp").contains("c")) else { return false }
        let decodedPath = request.path.removingPercentEncoding ?? request.path
        let canonical = "/blob/\(Self.account.name)" + decodedPath
        let toSign = [value("sp"), value("st"), value("se"), canonical, value("si"), value("sip"), value("spr"), value("sv"), value("sr"),
                      "", "", value("rscc"), value("rscd"), value("rsce"), value("rscl"), value("rsct")].joined(separator: "\n")
        guard let expected = try? Self.account.sign(toSign) else { return false }
        return Self.constantTimeEqual(expected, signature)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: Containers

    func containerOperation(_ request: FakeHTTPServer.CapturedRequest, _ container: String) -> FakeHTTPServer.Reply {
        switch (request.method, request.queryItem("comp")) {
        case ("PUT", nil):
            let created = state.withLock { state -> Bool in
                guard state.containers[container] == nil else { return false }
                state.containers[container] = [:]
                return true
            }
            return created ? .response(status: 201, headers: [("ETag", "\"0x8DC0000000000\"")], body: ByteBuffer())
                : Self.error(409, "ContainerAlreadyExists", "The specified container already exists.")
        case ("DELETE", nil):
            _ = state.withLock { $0.containers.removeValue(forKey: container) }
            return .response(status: 202, headers: [], body: ByteBuffer())
        case ("GET", "list"):
            return list(container, request)
        default:
            return Self.error(400, "UnsupportedHttpVerb", "the fake does not serve \(request.method) on a container with comp=\(request.queryItem("comp") ?? "")")
        }
    }

    func list(_ container: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let prefix = request.queryItem("prefix") ?? ""
        let delimiter = request.queryItem("delimiter")
        let maxResults = request.queryItem("maxresults").flatMap(Int.init) ?? 5000
        let marker = request.queryItem("marker")
        let start: String?
        if let marker {
            guard let data = Data(base64Encoded: marker), let decoded = String(data: data, encoding: .utf8), decoded.hasPrefix("2!") else {
                return Self.error(400, "OutOfRangeInput", "One of the request inputs is out of range.")
            }
            start = String(decoded.dropFirst(2))
        } else {
            start = nil
        }
        let blobs = state.withLock { $0.containers[container] ?? [:] }
        // Entries in byte order, each blob as itself or folded into its prefix.
        var entries: [(name: String, blob: Blob?)] = []
        for key in blobs.keys.filter({ $0.bytes.starts(with: prefix.utf8) }).sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            let name = key.text
            if let delimiter, let range = name.utf8.dropFirst(prefix.utf8.count).firstRange(of: delimiter.utf8) {
                let folded = String(decoding: name.utf8[..<range.upperBound], as: UTF8.self)
                if entries.last?.name.utf8.elementsEqual(folded.utf8) != true { entries.append((folded, nil)) }
            } else {
                entries.append((name, blobs[key]))
            }
        }
        if let start { entries.removeAll { $0.name.utf8.lexicographicallyPrecedes(start.utf8) } }
        let page = entries.prefix(maxResults)
        let next = entries.count > maxResults ? Data(("2!" + entries[maxResults].name).utf8).base64EncodedString() : ""
        var xml = #"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="\#(endpoint)/" ContainerName="\#(XMLElement.escapeAttribute(container))">"#
        if !prefix.isEmpty { xml += "<Prefix>\(XMLElement.escape(prefix))</Prefix>" }
        if let marker { xml += "<Marker>\(marker)</Marker>" }
        xml += "<MaxResults>\(maxResults)</MaxResults>"
        if let delimiter { xml += "<Delimiter>\(XMLElement.escape(delimiter))</Delimiter>" }
        xml += "<Blobs>"
        for entry in page {
            guard let blob = entry.blob else { xml += "<BlobPrefix><Name>\(XMLElement.escape(entry.name))</Name></BlobPrefix>"; continue }
            xml += "<Blob><Name>\(XMLElement.escape(entry.name))</Name><Properties><Creation-Time>\(HTTPDate.format(blob.modified))</Creation-Time>"
                + "<Last-Modified>\(HTTPDate.format(blob.modified))</Last-Modified><Etag>\(blob.etag)</Etag><Content-Length>\(blob.data.readableBytes)</Content-Length>"
                + "<Content-Type>\(XMLElement.escape(blob.contentType))</Content-Type><Content-MD5>\(blob.md5 ?? "")</Content-MD5><BlobType>BlockBlob</BlobType>"
                + "<AccessTier>\(blob.tier)</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>\(blob.lease.map { $0.active(at: Date()) ? "locked" : "unlocked" } ?? "unlocked")</LeaseStatus>"
                + "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties><OrMetadata /></Blob>"
        }
        xml += "</Blobs><NextMarker>\(next)</NextMarker></EnumerationResults>"
        return .response(status: 200, headers: [("Content-Type", "application/xml")], body: ByteBuffer(string: xml))
    }

    // MARK: Blobs

    func key(_ container: String, _ name: String) -> String { container + "/" + name }

    /// Azure's conditional headers on the blob now at the key (`nil`: none). `write` decides 409 vs 412 for `If-None-Match: *`.
    func conditionFailure(_ blob: Blob?, _ request: FakeHTTPServer.CapturedRequest, write: Bool) -> FakeHTTPServer.Reply? {
        let head = request.method == "HEAD"
        if let match = request.header("if-match"), match != "*" ? blob?.etag != match : blob == nil {
            return Self.error(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.", head: head)
        }
        if let noneMatch = request.header("if-none-match") {
            if noneMatch == "*", blob != nil {
                return write ? Self.error(409, "BlobAlreadyExists", "The specified blob already exists.")
                    : Self.error(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.", head: head)
            }
            if let blob, blob.etag == noneMatch {
                return write ? Self.error(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.", head: head)
                    : .response(status: 304, headers: [("ETag", blob.etag)], body: ByteBuffer())
            }
        }
        return nil
    }

    /// A write or delete on a leased blob needs the lease's id.
    func leaseFailure(_ blob: Blob?, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply? {
        guard let lease = blob?.lease, lease.active(at: Date()) else {
            return request.header("x-ms-lease-id") == nil ? nil
                : Self.error(412, "LeaseNotPresentWithBlobOperation", "There is currently no lease on the blob.")
        }
        guard let given = request.header("x-ms-lease-id") else {
            return Self.error(412, "LeaseIdMissing", "There is currently a lease on the blob and no lease ID was specified in the request.")
        }
        return given == lease.id ? nil : Self.error(412, "LeaseIdMismatchWithBlobOperation", "The lease ID specified did not match the lease ID for the blob.")
    }

    func responseHeaders(_ blob: Blob) -> [(String, String)] {
        var headers = [("ETag", blob.etag), ("Last-Modified", HTTPDate.format(blob.modified)), ("Content-Type", blob.contentType),
                       ("x-ms-blob-type", "BlockBlob"), ("x-ms-access-tier", blob.tier), ("Accept-Ranges", "bytes"),
                       ("x-ms-lease-status", blob.lease.map { $0.active(at: Date()) ? "locked" : "unlocked" } ?? "unlocked"), ("x-ms-server-encrypted", "true")]
        if let md5 = blob.md5 { headers.append(("Content-MD5", md5)) }
        if let changed = blob.tierChanged { headers.append(("x-ms-access-tier-change-time", HTTPDate.format(changed))) }
        if let rehydrating = blob.rehydrating { headers.append(("x-ms-archive-status", "rehydrate-pending-to-\(rehydrating.tier.lowercased())")) }
        if let status = blob.copyStatus { headers.append(("x-ms-copy-status", status)) }
        for (name, value) in blob.headers.sorted(by: { $0.key < $1.key }) { headers.append((name, value)) }
        for (name, value) in blob.metadata { headers.append(("x-ms-meta-" + name, value)) }
        return headers
    }

    func properties(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let id = key(container, name)
        let blob = state.withLock { state -> Blob? in
            guard var blob = state.containers[container]?[Name(name)] else { return nil }
            if blob.copyStatus == "pending" {
                let polls = state.pendingPolls[id, default: 0]
                if polls == 0 { blob.copyStatus = "success"; state.containers[container]?[Name(name)] = blob } else { state.pendingPolls[id] = polls - 1 }
            }
            return blob
        }
        guard let blob else { return Self.error(404, "BlobNotFound", "The specified blob does not exist.", head: true) }
        if let failure = conditionFailure(blob, request, write: false) { return failure }
        return .response(status: 200, headers: responseHeaders(blob) + [("Content-Length", "\(blob.data.readableBytes)")], body: ByteBuffer())
    }

    func download(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let blob = state.withLock({ $0.containers[container]?[Name(name)] }) else { return Self.error(404, "BlobNotFound", "The specified blob does not exist.") }
        if let failure = conditionFailure(blob, request, write: false) { return failure }
        if blob.tier == "Archive" { return Self.error(409, "BlobArchived", "This operation is not permitted on an archived blob.") }
        guard let range = request.header("x-ms-range") ?? request.header("range") else {
            return .response(status: 200, headers: responseHeaders(blob), body: blob.data)
        }
        let size = blob.data.readableBytes
        let bounds = range.dropFirst("bytes=".count).split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard range.hasPrefix("bytes="), bounds.count == 2, let first = bounds[0], first < size else {
            return Self.error(416, "InvalidRange", "The range specified is invalid for the current size of the resource.", headers: [("Content-Range", "bytes */\(size)")])
        }
        let last = min(bounds[1] ?? size - 1, size - 1)
        var slice = blob.data.getSlice(at: blob.data.readerIndex + first, length: last - first + 1) ?? ByteBuffer()
        let corrupt = state.withLock { state -> Bool in
            guard state.corruptReads > 0 else { return false }
            state.corruptReads -= 1
            return true
        }
        if corrupt, let byte: UInt8 = slice.getInteger(at: slice.readerIndex) { slice.setInteger(byte ^ 0x20, at: slice.readerIndex) }
        return .response(status: 206, headers: responseHeaders(blob) + [("Content-Range", "bytes \(first)-\(last)/\(size)")], body: slice)
    }

    func newETag() -> String {
        state.withLock { state in
            state.counter += 1
            return "\"0x8DD\(String(format: "%011X", state.counter))\""
        }
    }

    /// The properties a Put Blob or Put Block List sets (`x-ms-blob-*`), and the metadata.
    func apply(_ request: FakeHTTPServer.CapturedRequest, to blob: inout Blob) {
        blob.contentType = request.header("x-ms-blob-content-type") ?? "application/octet-stream"
        blob.headers = [:]
        for name in ["content-encoding", "content-language", "content-disposition", "cache-control"] {
            if let value = request.header("x-ms-blob-" + name) { blob.headers[name] = value }
        }
        blob.metadata = request.headers.filter { $0.0.hasPrefix("x-ms-meta-") }.map { (String($0.0.dropFirst("x-ms-meta-".count)), $0.1) }
        if let tier = request.header("x-ms-access-tier") { blob.tier = tier }
        if let md5 = request.header("x-ms-blob-content-md5") { blob.md5 = md5 }
    }

    func putBlob(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let current = state.withLock { $0.containers[container]?[Name(name)] }
        if let failure = leaseFailure(current, request) ?? conditionFailure(current, request, write: true) { return failure }
        if let claimed = request.header("content-length").flatMap(Int.init), claimed != request.body.readableBytes {
            return Self.error(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        }
        let md5 = Data(request.body.withUnsafeReadableBytes { Array(Insecure.MD5.hash(data: $0)) }).base64EncodedString()
        if let sent = request.header("content-md5"), sent != md5 {
            return Self.error(400, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 value calculated by the server.")
        }
        var blob = Blob(data: request.body, etag: newETag(), modified: Date())
        apply(request, to: &blob)
        blob.md5 = request.header("x-ms-blob-content-md5") ?? md5
        blob.lease = current?.lease
        state.withLock { $0.containers[container]?[Name(name)] = blob }
        return .response(status: 201, headers: [("ETag", blob.etag), ("Last-Modified", HTTPDate.format(blob.modified)), ("Content-MD5", md5),
                                                ("x-ms-request-server-encrypted", "true")], body: ByteBuffer())
    }

    func putBlock(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let id = request.queryItem("blockid"), let raw = Data(base64Encoded: id), raw.count <= 64 else {
            return Self.error(400, "InvalidQueryParameterValue", "Value for one of the query parameters specified in the request URI is invalid.")
        }
        let md5 = Data(request.body.withUnsafeReadableBytes { Array(Insecure.MD5.hash(data: $0)) }).base64EncodedString()
        if let sent = request.header("content-md5"), sent != md5 {
            return Self.error(400, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 value calculated by the server.")
        }
        let stored = state.withLock { state -> Bool in
            let slot = key(container, name)
            // Every block id of a blob has one length.
            if let other = state.blocks[slot]?.keys.first, Data(base64Encoded: other)?.count != raw.count { return false }
            state.blocks[slot, default: [:]][id] = request.body
            return true
        }
        return stored ? .response(status: 201, headers: [("Content-MD5", md5), ("x-ms-request-server-encrypted", "true")], body: ByteBuffer())
            : Self.error(400, "InvalidBlobOrBlock", "The specified blob or block content is invalid.")
    }

    func putBlockList(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let list = try? XMLElement.parse(Data(request.body.readableBytesView)), list.name == "BlockList" else {
            return Self.error(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")
        }
        let current = state.withLock { $0.containers[container]?[Name(name)] }
        if let failure = leaseFailure(current, request) ?? conditionFailure(current, request, write: true) { return failure }
        let slot = key(container, name)
        let uncommitted = state.withLock { $0.blocks[slot] ?? [:] }
        var data = ByteBuffer()
        for entry in list.children {
            guard var block = uncommitted[entry.text] else {
                return Self.error(400, "InvalidBlockList", "The specified block list is invalid.")
            }
            data.writeBuffer(&block)
        }
        var blob = Blob(data: data, etag: newETag(), modified: Date())
        apply(request, to: &blob)
        blob.lease = current?.lease
        state.withLock {
            $0.containers[container]?[Name(name)] = blob
            $0.blocks[slot] = nil
        }
        return .response(status: 201, headers: [("ETag", blob.etag), ("Last-Modified", HTTPDate.format(blob.modified)), ("x-ms-request-server-encrypted", "true")],
                         body: ByteBuffer())
    }

    func copyBlob(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let source = request.header("x-ms-copy-source"), source.hasPrefix(endpoint + "/") else {
            return Self.error(400, "CannotVerifyCopySource", "the copy source is not a blob of this account")
        }
        let parts = source.dropFirst(endpoint.count + 1).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).removingPercentEncoding ?? String($0) }
        guard parts.count == 2, var copied = state.withLock({ $0.containers[parts[0]]?[Name(parts[1])] }) else {
            return Self.error(404, "CannotVerifyCopySource", "The specified blob does not exist.")
        }
        let current = state.withLock { $0.containers[container]?[Name(name)] }
        if let failure = leaseFailure(current, request) ?? conditionFailure(current, request, write: true) { return failure }
        copied.etag = newETag()
        copied.modified = Date()
        copied.lease = current?.lease
        let pending = state.withLock { state -> Bool in
            guard state.pendingCopies > 0 else { return false }
            state.pendingCopies -= 1
            state.pendingPolls[key(container, name)] = 1
            return true
        }
        copied.copyStatus = pending ? "pending" : "success"
        state.withLock { $0.containers[container]?[Name(name)] = copied }
        return .response(status: 202, headers: [("ETag", copied.etag), ("Last-Modified", HTTPDate.format(copied.modified)),
                                                ("x-ms-copy-id", UUID().uuidString.lowercased()), ("x-ms-copy-status", copied.copyStatus!)], body: ByteBuffer())
    }

    func deleteBlob(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let current = state.withLock({ $0.containers[container]?[Name(name)] }) else { return Self.error(404, "BlobNotFound", "The specified blob does not exist.") }
        if let failure = leaseFailure(current, request) ?? conditionFailure(current, request, write: true) { return failure }
        state.withLock { _ = $0.containers[container]?.removeValue(forKey: Name(name)) }
        return .response(status: 202, headers: [("x-ms-delete-type-permanent", "true")], body: ByteBuffer())
    }

    /// A rehydration whose time has come ends: the blob is in its new tier.
    func settleRehydration(_ container: String, _ name: String) {
        state.withLock { state in
            guard !state.holdRehydrations, var blob = state.containers[container]?[Name(name)], let rehydrating = blob.rehydrating,
                  rehydrating.ready <= Date() else { return }
            blob.tier = rehydrating.tier
            blob.tierChanged = rehydrating.ready
            blob.rehydrating = nil
            state.containers[container]?[Name(name)] = blob
        }
    }

    /// Set Blob Tier: online tiers change at once (200); leaving Archive is a rehydration (202), done after `rehydrationDelay`.
    func setTier(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard var blob = state.withLock({ $0.containers[container]?[Name(name)] }) else { return Self.error(404, "BlobNotFound", "The specified blob does not exist.") }
        guard let tier = request.header("x-ms-access-tier"), ["Hot", "Cool", "Cold", "Archive"].contains(tier) else {
            return Self.error(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        }
        if let failure = leaseFailure(blob, request) { return failure }
        let now = Date()
        if blob.tier == "Archive" && tier != "Archive" {
            guard blob.rehydrating == nil else {
                return Self.error(409, "BlobBeingRehydrated", "This operation is not permitted because the blob is being rehydrated.")
            }
            let delay = state.withLock { $0.rehydrationDelay }
            blob.rehydrating = (tier, now.addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18))
            state.withLock { $0.containers[container]?[Name(name)] = blob }
            return .response(status: 202, headers: [], body: ByteBuffer())
        }
        blob.tier = tier
        blob.tierChanged = now
        state.withLock { $0.containers[container]?[Name(name)] = blob }
        return .response(status: 200, headers: [], body: ByteBuffer())
    }

    func lease(_ container: String, _ name: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard var blob = state.withLock({ $0.containers[container]?[Name(name)] }) else { return Self.error(404, "BlobNotFound", "The specified blob does not exist.") }
        let now = Date()
        let held = blob.lease.flatMap { $0.active(at: now) ? $0 : nil }
        var headers: [(String, String)] = [("ETag", blob.etag), ("Last-Modified", HTTPDate.format(blob.modified))]
        var status = 200
        switch request.header("x-ms-lease-action") {
        case "acquire":
            guard let seconds = request.header("x-ms-lease-duration").flatMap(Int.init), seconds == -1 || (15...60).contains(seconds) else {
                return Self.error(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
            }
            let id = request.header("x-ms-proposed-lease-id") ?? UUID().uuidString.lowercased()
            if let held, held.id != id { return Self.error(409, "LeaseAlreadyPresent", "There is already a lease present.") }
            blob.lease = Lease(id: id, expires: seconds == -1 ? nil : now.addingTimeInterval(Double(seconds)))
            headers.append(("x-ms-lease-id", id))
            status = 201
        case "renew", "release", "change":
            guard let held else { return Self.error(409, "LeaseNotPresentWithLeaseOperation", "There is currently no lease on the blob.") }
            guard request.header("x-ms-lease-id") == held.id else {
                return Self.error(409, "LeaseIdMismatchWithLeaseOperation", "The lease ID specified did not match the lease ID for the blob.")
            }
            switch request.header("x-ms-lease-action") {
            case "renew": headers.append(("x-ms-lease-id", held.id))
            case "release": blob.lease = nil
            default:
                guard let proposed = request.header("x-ms-proposed-lease-id") else {
                    return Self.error(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.")
                }
                blob.lease?.id = proposed
                headers.append(("x-ms-lease-id", proposed))
            }
        case "break":
            guard held != nil else { return Self.error(409, "LeaseNotPresentWithLeaseOperation", "There is currently no lease on the blob.") }
            blob.lease?.broken = true
            headers.append(("x-ms-lease-time", "0"))
            status = 202
        default:
            return Self.error(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        }
        state.withLock { $0.containers[container]?[Name(name)] = blob }
        return .response(status: status, headers: headers, body: ByteBuffer())
    }
}
