import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NimbusAzure
import NimbusBlob
import NimbusCore
import NimbusHTTP

/// Azure Blob Storage block blobs through the Blob service's REST API (version 2024-08-04) and
/// NimbusAzure's storage client: Shared Key, SAS or Entra ID tokens.
///
/// - **Versions are ETags**; conditions are `If-None-Match: *` (create only if absent) and `If-Match`
///   on Put Blob, Put Block List, Copy Blob and Delete Blob.
/// - **Checksums.** Every Put Blob and Put Block carries `Content-MD5`, which the service checks on
///   arrival. Block blobs keep no whole-object checksum of their own, so the whole object's CRC-32C
///   is kept in the reserved metadata entry `nimbus_crc32c` (left out of ``BlobAttributes/metadata``)
///   and every whole read is checked against it.
/// - **Reads** are Get Blob Properties, then ranged Get Blobs (`x-ms-range`) pinned to that ETag, so
///   memory stays bounded and a blob replaced mid-read is `dataLoss`, never a mixture.
/// - **Large writes** are blocks (Put Block, in parallel) committed with Put Block List.
///   Azure has no "abort": uncommitted blocks are dropped by the service after a week.
/// - **Copies** are Copy Blob, polled until `x-ms-copy-status` is no longer `pending`.
/// - **Leases** (``acquireLease(_:duration:)`` and the rest) lock a blob against other writers.
///
/// Keys with `.` or `..` segments are refused (`invalidArgument`): in a blob URL they are path
/// segments that HTTP stacks resolve, and Azure advises against them.
///
/// ```swift
/// let bucket = try await Bucket.open("azblob://photos?account=myaccount", openers: .blob.withAzure())   // key from AZURE_STORAGE_KEY
/// ```
public final class AzureBlobDriver: BlobMultipartDriver, BlobSigningDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The container.
        public var container: String
        /// The size of each ranged read (8 MiB).
        public var readChunkSize: Int
        /// How many ranged reads run ahead of the reader (4).
        public var readConcurrency: Int
        /// How often a pending copy is polled.
        public var copyPollInterval: Duration

        public init(container: String, readChunkSize: Int = 8 * 1024 * 1024, readConcurrency: Int = 4, copyPollInterval: Duration = .milliseconds(500)) {
            self.container = container; self.readChunkSize = readChunkSize; self.readConcurrency = readConcurrency; self.copyPollInterval = copyPollInterval
        }
    }

    /// The metadata entry holding the whole object's CRC-32C (8 hex digits).
    public static let crcMetadataName = "nimbus_crc32c"

    public let configuration: Configuration
    /// The storage client, for calls the portable API does not name.
    public let storage: AzureStorageClient
    public var provider: String { "azblob" }
    public let multipartLimits = BlobMultipartLimits(minimumPartSize: 1, maximumPartSize: 4000 * 1024 * 1024, maximumParts: 50_000, parallelParts: true)

    /// A driver for `configuration.container` through `storage`.
    public init(configuration: Configuration, storage: AzureStorageClient) {
        self.configuration = configuration
        self.storage = storage
    }

    var containerPath: String { "/" + Self.escape(configuration.container) }

    func path(_ key: String) throws -> String {
        guard !key.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) else {
            throw NimbusError(.invalidArgument, "\"\(key.prefix(200))\" has a . or .. segment, which a blob URL cannot carry as it is; rename the key")
        }
        return containerPath + "/" + Self.escape(key)
    }

    // MARK: Reads

    public func attributes(of key: String) async throws -> BlobAttributes {
        try await properties(key, conditions: .none)
    }

    func properties(_ key: String, conditions: BlobReadConditions) async throws -> BlobAttributes {
        var headers = HTTPHeaders()
        if let version = conditions.ifMatch { headers.add(name: "If-Match", value: Self.quoted(version)) }
        if let version = conditions.ifNoneMatch { headers.add(name: "If-None-Match", value: Self.quoted(version)) }
        let response = try await call(.HEAD, try path(key), headers: headers, key: key, operation: "Get Blob Properties")
        return try Self.attributes(response.headers, key: key)
    }

    public func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        let attributes = try await properties(key, conditions: conditions)
        let span = try (range ?? BlobRange(offset: 0)).clipped(to: attributes.size)
        let (storage, path, etag) = (self.storage, try self.path(key), attributes.etag)
        let body = BlobChunkedReads(range: span, chunk: configuration.readChunkSize, concurrency: configuration.readConcurrency) { start, end in
            var headers: HTTPHeaders = ["x-ms-range": "bytes=\(start)-\(end - 1)"]
            if let etag { headers.add(name: "If-Match", value: Self.quoted(etag)) }
            do {
                let response = try await storage.send(.GET, path: path, headers: headers, operation: "Get Blob")
                return try await response.collect(upTo: Int(end - start))
            } catch let error as NimbusError where error.code == .failedPrecondition && error.message.contains("ConditionNotMet") {
                throw NimbusError(.dataLoss, "\(key) was replaced while it was being read; read it again")
            }
        }
        return BlobReader(attributes: attributes, body: BlobBody(body), range: span)
    }

    // MARK: Writes

    public func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        let crc = checksums.crc32c ?? CRC32C.checksum(bytes.readableBytesView)
        var headers = try Self.headers(for: options, crc32c: crc, prefix: "x-ms-blob-")
        headers.add(name: "x-ms-blob-type", value: "BlockBlob")
        let md5 = Self.md5Digest(bytes)
        headers.add(name: "Content-MD5", value: Data(md5).base64EncodedString())
        Self.add(options.condition, to: &headers)
        let response = try await call(.PUT, try path(key), headers: headers, body: bytes, key: key, operation: "Put Blob")
        return BlobAttributes(key: key, size: Int64(bytes.readableBytes), contentType: options.contentType ?? "application/octet-stream",
                              contentEncoding: options.contentEncoding, contentDisposition: options.contentDisposition,
                              contentLanguage: options.contentLanguage, cacheControl: options.cacheControl, metadata: options.metadata,
                              etag: response.headers.first(name: "ETag").map(Self.unquoted),
                              lastModified: response.headers.first(name: "Last-Modified").flatMap(HTTPDate.parse),
                              checksums: BlobChecksums(crc32c: crc, md5: md5),
                              storageClass: options.storageClass ?? "Hot")
    }

    public func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        var headers: HTTPHeaders = ["x-ms-copy-source": storage.configuration.endpoint + (try path(source))]
        Self.add(condition, to: &headers)
        let response: NimbusHTTPResponse
        do {
            response = try await storage.send(.PUT, path: try path(destination), headers: headers, operation: "Copy Blob")
        } catch let error as NimbusError where error.code == .notFound {
            throw BlobErrors.notFound(source)
        } catch let error as NimbusError where error.code == .failedPrecondition || error.code == .alreadyExists {
            throw BlobErrors.conditionFailed(destination)
        }
        var status = response.headers.first(name: "x-ms-copy-status") ?? "success"
        var attributes: BlobAttributes?
        while status == "pending" {
            try await Task.sleep(for: configuration.copyPollInterval)
            let head = try await call(.HEAD, try path(destination), key: destination, operation: "Get Blob Properties")
            status = head.headers.first(name: "x-ms-copy-status") ?? "success"
            attributes = try Self.attributes(head.headers, key: destination)
        }
        guard status == "success" else {
            throw NimbusError(.unavailable, "copying \(source) to \(destination) ended \(status); copy it again")
        }
        if let attributes { return attributes }
        return try await self.attributes(of: destination)
    }

    public func delete(_ key: String, condition: BlobWriteCondition?) async throws {
        var headers: HTTPHeaders = ["x-ms-delete-snapshots": "include"]
        if case .ifMatch(let version) = condition { headers.add(name: "If-Match", value: Self.quoted(version)) }
        if case .ifAbsent = condition { throw BlobErrors.conditionFailed(key) }   // deleting requires an object
        _ = try await call(.DELETE, try path(key), headers: headers, key: key, operation: "Delete Blob")
    }

    public func list(_ options: BlobListOptions) async throws -> BlobListPage {
        var query: [(String, String)] = [("restype", "container"), ("comp", "list")]
        if !options.prefix.isEmpty { query.append(("prefix", options.prefix)) }
        if let delimiter = options.delimiter { query.append(("delimiter", delimiter)) }
        if let marker = options.pageToken { query.append(("marker", marker)) }
        query.append(("maxresults", "\(min(max(options.pageSize, 1), 5000))"))
        let response = try await call(.GET, containerPath, query: query, key: options.prefix, operation: "List Blobs")
        let data = try await response.collect(upTo: 32 * 1024 * 1024)
        let root = try XMLElement.parse(Data(data.readableBytesView))
        guard root.name == "EnumerationResults" else { throw NimbusError(.dataLoss, "List Blobs answered <\(root.name)>, not <EnumerationResults>") }
        let blobs = root["Blobs"]
        let objects = try (blobs?.all("Blob") ?? []).map { blob -> BlobListEntry in
            guard let name = blob["Name"], let properties = blob["Properties"], let size = properties["Content-Length"].flatMap({ Int64($0.text) }) else {
                throw NimbusError(.dataLoss, "List Blobs answered a <Blob> without Name or Properties/Content-Length")
            }
            return BlobListEntry(key: try Self.name(name), size: size, etag: properties["Etag"].map { Self.unquoted($0.text) },
                                 lastModified: properties["Last-Modified"].flatMap { HTTPDate.parse($0.text) })
        }
        let prefixes = try (blobs?.all("BlobPrefix") ?? []).compactMap { try $0["Name"].map(Self.name) }
        let next = root["NextMarker"]?.text
        return BlobListPage(objects: objects, prefixes: prefixes, nextPageToken: next?.isEmpty == false ? next : nil)
    }

    // MARK: Blocks

    public func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession {
        _ = try path(key)
        _ = try Self.headers(for: options, crc32c: 0, prefix: "x-ms-blob-")   // refuse bad options before any block is sent
        // Block ids must be of one length within a blob: a random upload prefix and a 6-digit part number.
        return BlobUploadSession(key: key, id: String(IDGenerator.shared.ulid().description.prefix(20)), options: options, partSize: partSize)
    }

    /// The block id of part `number` of `session` (base64 of `PREFIX-NNNNNN`).
    static func blockID(_ session: BlobUploadSession, _ number: Int) -> String {
        Data("\(session.id)-\(String(format: "%06d", number))".utf8).base64EncodedString()
    }

    public func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart {
        let id = Self.blockID(session, number)
        _ = try await call(.PUT, try path(session.key), query: [("comp", "block"), ("blockid", id)], headers: ["Content-MD5": Self.md5(bytes)],
                           body: bytes, key: session.key, operation: "Put Block")
        return BlobUploadedPart(number: number, tag: id, size: bytes.readableBytes)
    }

    public func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes {
        var xml = #"<?xml version="1.0" encoding="utf-8"?><BlockList>"#
        for part in parts.sorted(by: { $0.number < $1.number }) { xml += "<Latest>\(XMLElement.escape(part.tag))</Latest>" }
        xml += "</BlockList>"
        var headers = try Self.headers(for: session.options, crc32c: checksums.crc32c, prefix: "x-ms-blob-")
        headers.add(name: "Content-Type", value: "application/xml")
        Self.add(session.options.condition, to: &headers)
        _ = try await call(.PUT, try path(session.key), query: [("comp", "blocklist")], headers: headers, body: ByteBuffer(string: xml),
                           key: session.key, operation: "Put Block List")
        return try await attributes(of: session.key)
    }

    /// Azure has no call that drops uncommitted blocks: the service discards them a week after the last Put Block.
    public func abortUpload(_ session: BlobUploadSession) async throws {}

    // MARK: Signed URLs

    public func signedURL(for key: String, method: BlobSignedMethod, expiresIn: Duration, contentType: String?) async throws -> String {
        guard case .sharedKey(let account) = storage.configuration.credential else {
            throw NimbusError(.failedPrecondition, "signing a URL needs the account key (a Shared Key credential); this driver has \(storage.configuration.credential)")
        }
        let permissions = switch method { case .get: "r"; case .put: "cw"; case .delete: "d" }
        let expiry = Date().addingTimeInterval(Double(expiresIn.components.seconds))
        let https = storage.configuration.endpoint.hasPrefix("https://")
        let query = try AzureSAS.blob(account: account, container: configuration.container, blob: key, permissions: permissions, expiry: expiry,
                                      protocolRestriction: https ? "https" : "https,http")
        return storage.configuration.endpoint + (try path(key)) + "?" + query.map { "\($0.0)=\(FormEncoder.escapeComponent($0.1))" }.joined(separator: "&")
    }

    public func signedURLHeaders(for method: BlobSignedMethod) -> [(String, String)] {
        method == .put ? [("x-ms-blob-type", "BlockBlob")] : []
    }

    // MARK: Leases

    /// A lease on a blob: while it is held, writes and deletes without its id fail (`failedPrecondition`).
    public struct Lease: Sendable, Hashable {
        public var key: String
        public var id: String
    }

    /// Acquires a lease for `duration` (15–60 seconds) or, when `nil`, until it is released or broken.
    /// - Throws: `failedPrecondition` when another lease is held.
    public func acquireLease(_ key: String, duration: Duration?, proposedID: String? = nil) async throws -> Lease {
        let seconds = duration.map { Int($0.components.seconds) } ?? -1
        guard seconds == -1 || (15...60).contains(seconds) else { throw NimbusError(.invalidArgument, "a lease lasts 15 to 60 seconds, or until released (nil)") }
        var headers: HTTPHeaders = ["x-ms-lease-action": "acquire", "x-ms-lease-duration": "\(seconds)"]
        if let proposedID { headers.add(name: "x-ms-proposed-lease-id", value: proposedID) }
        let response = try await call(.PUT, try path(key), query: [("comp", "lease")], headers: headers, key: key, operation: "Lease Blob (acquire)")
        guard let id = response.headers.first(name: "x-ms-lease-id") else { throw NimbusError(.dataLoss, "Lease Blob answered without x-ms-lease-id") }
        return Lease(key: key, id: id)
    }

    /// Renews a lease (its duration starts again).
    public func renewLease(_ lease: Lease) async throws {
        _ = try await call(.PUT, try path(lease.key), query: [("comp", "lease")], headers: ["x-ms-lease-action": "renew", "x-ms-lease-id": lease.id],
                           key: lease.key, operation: "Lease Blob (renew)")
    }

    /// Gives up a lease.
    public func releaseLease(_ lease: Lease) async throws {
        _ = try await call(.PUT, try path(lease.key), query: [("comp", "lease")], headers: ["x-ms-lease-action": "release", "x-ms-lease-id": lease.id],
                           key: lease.key, operation: "Lease Blob (release)")
    }

    /// Changes a lease's id to `newID`.
    public func changeLease(_ lease: Lease, to newID: String) async throws -> Lease {
        _ = try await call(.PUT, try path(lease.key), query: [("comp", "lease")],
                           headers: ["x-ms-lease-action": "change", "x-ms-lease-id": lease.id, "x-ms-proposed-lease-id": newID],
                           key: lease.key, operation: "Lease Blob (change)")
        return Lease(key: lease.key, id: newID)
    }

    /// Breaks whatever lease `key` has, now (`period` 0) or after `period` seconds; returns the seconds until it is broken.
    @discardableResult
    public func breakLease(_ key: String, period: Int = 0) async throws -> Int {
        let response = try await call(.PUT, try path(key), query: [("comp", "lease")], headers: ["x-ms-lease-action": "break", "x-ms-lease-break-period": "\(period)"],
                                      key: key, operation: "Lease Blob (break)")
        return response.headers.first(name: "x-ms-lease-time").flatMap(Int.init) ?? 0
    }

    // MARK: Access tiers

    /// A blob's access tier, and the rehydration under way when it is leaving Archive.
    public struct TierStatus: Sendable, Hashable {
        /// `Hot`, `Cool`, `Cold` or `Archive`.
        public var tier: String
        /// `rehydrate-pending-to-hot` (…`-to-cool`, …`-to-cold`) while a rehydration is under way.
        public var archiveStatus: String?
        /// When the tier last changed.
        public var changedAt: Date?
    }

    /// The blob's tier and archive status (Get Blob Properties). - Throws: `notFound`.
    public func tierStatus(_ key: String) async throws -> TierStatus {
        let response = try await call(.HEAD, try path(key), key: key, operation: "Get Blob Properties")
        return TierStatus(tier: response.headers.first(name: "x-ms-access-tier") ?? "Hot", archiveStatus: response.headers.first(name: "x-ms-archive-status"),
                          changedAt: response.headers.first(name: "x-ms-access-tier-change-time").flatMap(HTTPDate.parse))
    }

    /// Set Blob Tier: moves the blob to `tier`. Leaving `Archive` is a rehydration that takes hours (`High`
    /// priority: under an hour for blobs under 10 GB); the blob stays unreadable until it ends.
    /// - Throws: `notFound`; `failedPrecondition` while a rehydration is already under way.
    public func setTier(_ key: String, tier: String, rehydratePriority: String? = nil) async throws {
        var headers: HTTPHeaders = ["x-ms-access-tier": tier]
        if let rehydratePriority { headers.add(name: "x-ms-rehydrate-priority", value: rehydratePriority) }
        do {
            _ = try await call(.PUT, try path(key), query: [("comp", "tier")], headers: headers, key: key, operation: "Set Blob Tier")
        } catch let error as NimbusError where error.message.contains("BlobBeingRehydrated") {
            throw NimbusError(.failedPrecondition, "\(key.prefix(200)) is being rehydrated already; wait for it")
        }
    }

    // MARK: Plumbing

    func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
              key: String, operation: String) async throws -> NimbusHTTPResponse {
        do {
            return try await storage.send(method, path: path, query: query, headers: headers, body: body, operation: operation)
        } catch let error as NimbusError {
            switch error.code {
            case .notFound where !error.message.contains("ContainerNotFound"): throw BlobErrors.notFound(key)
            case .notFound: throw NimbusError(.notFound, "container \(configuration.container) does not exist; create it first (\(error.message))")
            case .failedPrecondition where !error.message.contains("Lease"): throw BlobErrors.conditionFailed(key)
            default: throw error
            }
        }
    }

    /// The properties and metadata headers of a write: `x-ms-blob-content-type`… (Put Blob, Put Block List), the tier, the CRC-32C entry.
    static func headers(for options: BlobWriteOptions, crc32c: UInt32?, prefix: String) throws -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: prefix + "content-type", value: options.contentType ?? "application/octet-stream")
        for (name, value) in [("content-encoding", options.contentEncoding), ("content-language", options.contentLanguage),
                              ("content-disposition", options.contentDisposition), ("cache-control", options.cacheControl)] {
            if let value { headers.add(name: prefix + name, value: value) }
        }
        for (name, value) in options.metadata.sorted(by: { $0.key < $1.key }) {
            guard name != crcMetadataName else { throw NimbusError(.invalidArgument, "metadata name \(crcMetadataName) is reserved for the object's CRC-32C") }
            guard let first = name.first, first.isLetter || first == "_" else {
                throw NimbusError(.invalidArgument, "Azure metadata names are C# identifiers: \"\(name)\" must start with a letter or _")
            }
            headers.add(name: "x-ms-meta-" + name, value: value)
        }
        if let crc32c { headers.add(name: "x-ms-meta-" + crcMetadataName, value: String(format: "%08x", crc32c)) }
        if let tier = options.storageClass { headers.add(name: "x-ms-access-tier", value: tier) }
        return headers
    }

    static func add(_ condition: BlobWriteCondition?, to headers: inout HTTPHeaders) {
        switch condition {
        case .ifAbsent: headers.add(name: "If-None-Match", value: "*")
        case .ifMatch(let version): headers.add(name: "If-Match", value: quoted(version))
        case nil: break
        }
    }

    static func attributes(_ headers: HTTPHeaders, key: String) throws -> BlobAttributes {
        guard let size = headers.first(name: "Content-Length").flatMap(Int64.init) else {
            throw NimbusError(.dataLoss, "Get Blob Properties answered without Content-Length")
        }
        var metadata: [String: String] = [:]
        var crc: UInt32?
        for header in headers where header.name.lowercased().hasPrefix("x-ms-meta-") {
            let name = String(header.name.dropFirst("x-ms-meta-".count)).lowercased()
            if name == crcMetadataName { crc = UInt32(header.value, radix: 16) } else { metadata[name] = header.value }
        }
        let md5 = headers.first(name: "Content-MD5").flatMap { Data(base64Encoded: $0) }.map(Array.init)
        return BlobAttributes(key: key, size: size, contentType: headers.first(name: "Content-Type"), contentEncoding: headers.first(name: "Content-Encoding"),
                              contentDisposition: headers.first(name: "Content-Disposition"), contentLanguage: headers.first(name: "Content-Language"),
                              cacheControl: headers.first(name: "Cache-Control"), metadata: metadata, etag: headers.first(name: "ETag").map(unquoted),
                              lastModified: headers.first(name: "Last-Modified").flatMap(HTTPDate.parse), checksums: BlobChecksums(crc32c: crc, md5: md5),
                              storageClass: headers.first(name: "x-ms-access-tier"))
    }

    /// A listed `<Name>`: as it is, or percent-decoded when `Encoded="true"` (names with characters XML cannot carry).
    static func name(_ element: XMLElement) throws -> String {
        guard element.attributes["Encoded"] == "true" else { return element.text }
        guard let decoded = element.text.removingPercentEncoding else { throw NimbusError(.dataLoss, "List Blobs answered an encoded name that does not decode") }
        return decoded
    }

    /// A path segment: every byte but unreserved characters and `/` percent-encoded.
    static func escape(_ text: String) -> String {
        FormEncoder.escapeComponent(text).replacingOccurrences(of: "%2F", with: "/")
    }

    static func md5Digest(_ bytes: ByteBuffer) -> [UInt8] { bytes.withUnsafeReadableBytes { Array(Insecure.MD5.hash(data: $0)) } }
    static func md5(_ bytes: ByteBuffer) -> String { Data(md5Digest(bytes)).base64EncodedString() }
    static func quoted(_ etag: String) -> String { etag.hasPrefix("\"") ? etag : "\"\(etag)\"" }
    static func unquoted(_ etag: String) -> String { etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
}

extension AzureBlobDriver {
    /// The driver an `azblob://CONTAINER` URL names (options: `account`, `endpoint`, `readChunkSize`). Credentials, in order:
    /// `AZURE_STORAGE_CONNECTION_STRING`; `AZURE_STORAGE_KEY` with the account; `AZURE_STORAGE_SAS_TOKEN`;
    /// otherwise Entra ID through the default credential chain (`AZURE_CLIENT_ID`…).
    public static func open(_ url: OpenURL, environment: [String: String]) throws -> AzureBlobDriver {
        try url.options.validate(known: ["account", "endpoint", "readChunkSize"], for: "Azure blob store")
        guard let container = url.host, !container.isEmpty else { throw NimbusError(.invalidArgument, "azblob:// needs a container: azblob://photos?account=myaccount") }
        var endpoint = url.options.string("endpoint")
        let account = url.options.string("account") ?? environment["AZURE_STORAGE_ACCOUNT"]
        let credential: AzureStorageCredential
        if let connection = environment["AZURE_STORAGE_CONNECTION_STRING"] {
            let parsed = try AzureStorageClient.blobEndpoint(connectionString: connection)
            endpoint = endpoint ?? parsed.endpoint
            credential = parsed.credential
        } else if let key = environment["AZURE_STORAGE_KEY"], let account {
            credential = .sharedKey(AzureStorageAccount(name: account, key: Secret(key)))
        } else if let sas = environment["AZURE_STORAGE_SAS_TOKEN"] {
            credential = .sas(Secret(sas))
        } else {
            credential = .token(try AzureCredentialChain.default(environment: environment))
        }
        guard let endpoint = endpoint ?? account.map({ "https://\($0).blob.core.windows.net" }) else {
            throw NimbusError(.invalidArgument, "azblob:// needs ?account=NAME (or AZURE_STORAGE_ACCOUNT, or a connection string)")
        }
        return AzureBlobDriver(configuration: .init(container: container, readChunkSize: try url.options.int("readChunkSize") ?? 8 * 1024 * 1024),
                               storage: AzureStorageClient(configuration: .init(endpoint: endpoint, credential: credential, retry: RetryPolicy(maxAttempts: 1))))
    }
}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// Adds `azblob://CONTAINER` (see ``AzureBlobDriver/open(_:environment:)``).
    public func withAzure(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("azblob", "Azure Blob Storage") { url in try AzureBlobDriver.open(url, environment: environment) }
        return copy
    }
}
