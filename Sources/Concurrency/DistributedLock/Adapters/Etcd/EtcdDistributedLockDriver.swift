import Foundation
import NIOCore
import NimbusCore
import NimbusDistributedLock
import NimbusHTTP

/// Locks in etcd 3.4+ through its JSON gateway (`/v3/...`): the lease is an etcd lease, the lock a
/// key attached to it and created only if absent (a transaction comparing `create_revision == 0`),
/// and the fencing token the **revision that created the key** — etcd's own cluster-wide counter,
/// the sequencer of etcd's concurrency API. When the lease ends the server deletes the key.
///
/// etcd leases are whole seconds with a server minimum (about 2 s on a default server): a `ttl` is
/// rounded up to whole seconds and the server may grant more.
///
/// ```swift
/// let locks = try await DistributedLocks.open("etcd://127.0.0.1:2379", openers: .distributedLock.withEtcd())
/// ```
public struct EtcdDistributedLockDriver: DistributedLockDriver {
    public var provider: String { "etcd" }
    /// The HTTP client on the gateway.
    public let http: NimbusHTTPClient

    /// Talks to the gateway at `endpoint` (`http://127.0.0.1:2379`).
    public init(endpoint: String, timeout: Duration = .seconds(10)) {
        self.http = NimbusHTTPClient(configuration: .init(service: "etcd", baseURL: endpoint, retry: .none, retryBudget: nil, timeout: timeout))
    }

    public func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        // A lease that ran out between its grant and the transaction (a stalled client) is granted again.
        for attempt in 1...3 {
            do {
                return try await attemptAcquire(name, owner: owner, ttl: ttl)
            } catch let error as NimbusError where error.message.contains("lease not found") && attempt < 3 {
                continue
            }
        }
        return nil
    }

    func attemptAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        let lease = try await grant(ttl)
        let key = Self.base64(name)
        let reply = try await call("/v3/kv/txn", [
            "compare": [["key": .string(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
            "success": [["request_put": ["key": .string(key), "value": .string(Self.base64(owner)), "lease": .string(lease)]]],
            "failure": [],
        ])
        guard reply["succeeded"]?.boolValue == true else {
            try? await revoke(lease)
            return nil
        }
        return UInt64(clamping: try Self.int(reply["header"]?["revision"], "txn revision"))
    }

    public func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        guard let current = try await read(name), current.owner == owner, current.token == token else { return false }
        let reply = try await call("/v3/lease/keepalive", ["ID": .string(current.lease)])
        return (try? Self.int(reply["result"]?["TTL"], "keepalive TTL")) ?? 0 > 0
    }

    public func release(_ name: String, owner: String, token: UInt64) async throws -> Bool {
        guard let current = try await read(name), current.owner == owner, current.token == token else { return false }
        let key = Self.base64(name)
        let reply = try await call("/v3/kv/txn", [
            "compare": [["key": .string(key), "target": "CREATE", "result": "EQUAL", "create_revision": .string(String(token))]],
            "success": [["request_delete_range": ["key": .string(key)]]],
            "failure": [],
        ])
        try? await revoke(current.lease)
        return reply["succeeded"]?.boolValue == true
    }

    public func holder(of name: String) async throws -> LockHolder? {
        guard let current = try await read(name) else { return nil }
        let reply = try await call("/v3/lease/timetolive", ["ID": .string(current.lease)])
        let seconds = (try? Self.int(reply["TTL"], "lease TTL")) ?? 0
        return LockHolder(owner: current.owner, token: current.token, expiresIn: .seconds(Int64(max(0, seconds))))
    }

    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        // The stored value is "<token, 20 digits>:<value>", so byte order is token order: a write succeeds
        // if the stored value sorts before "<our token>;" (';' follows ':'), or if the key does not exist.
        let key = Self.base64(resource)
        let padded = Self.padded(token)
        let put: JSONValue = ["request_put": ["key": .string(key), "value": .string(Self.base64(padded + ":" + value))]]
        let reply = try await call("/v3/kv/txn", [
            "compare": [["key": .string(key), "target": "VALUE", "result": "LESS", "value": .string(Self.base64(padded + ";"))]],
            "success": [put],
            "failure": [["request_txn": [
                "compare": [["key": .string(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
                "success": [put],
                "failure": [],
            ]]],
        ])
        if reply["succeeded"]?.boolValue == true { return true }
        return reply["responses"]?.arrayValue?.first?["response_txn"]?["succeeded"]?.boolValue == true
    }

    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        let reply = try await call("/v3/kv/range", ["key": .string(Self.base64(resource))])
        guard let kv = reply["kvs"]?.arrayValue?.first, let text = kv["value"]?.stringValue.flatMap(Self.unbase64) else { return nil }
        guard let colon = text.firstIndex(of: ":"), let token = UInt64(text[..<colon]) else {
            throw NimbusError(.dataLoss, "etcd key '\(resource)' does not hold a fenced value ('<token>:<value>')")
        }
        return FencedValue(value: String(text[text.index(after: colon)...]), token: token)
    }

    // MARK: Gateway calls

    struct Current { var owner: String; var token: UInt64; var lease: String }

    func read(_ name: String) async throws -> Current? {
        let reply = try await call("/v3/kv/range", ["key": .string(Self.base64(name))])
        guard let kv = reply["kvs"]?.arrayValue?.first else { return nil }
        guard let owner = kv["value"]?.stringValue.flatMap(Self.unbase64) else {
            throw NimbusError(.dataLoss, "etcd returned lock '\(name)' without a readable value")
        }
        let token = try Self.int(kv["create_revision"], "create_revision")
        let lease = kv["lease"].flatMap { $0.stringValue ?? $0.numberValue.map { String(Int64($0)) } } ?? "0"
        return Current(owner: owner, token: UInt64(clamping: token), lease: lease)
    }

    func grant(_ ttl: Duration) async throws -> String {
        let seconds = max(1, ttl.components.seconds + (ttl.components.attoseconds > 0 ? 1 : 0))
        let reply = try await call("/v3/lease/grant", ["TTL": .string(String(seconds))])
        guard let id = reply["ID"]?.stringValue ?? reply["ID"]?.numberValue.map({ String(Int64($0)) }) else {
            throw NimbusError(.internal, "etcd granted a lease without an ID: \(reply)")
        }
        return id
    }

    func revoke(_ lease: String) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": .string(lease)], allowNotFound: true)
    }

    /// Posts `body` to a gateway endpoint (`/v3/kv/range`…) and returns the JSON answer: the escape
    /// hatch to etcd calls the lock API does not name. - Throws: `unavailable` for 5xx and non-JSON answers.
    public func call(_ path: String, _ body: JSONValue, allowNotFound: Bool = false) async throws -> JSONValue {
        var request = NimbusHTTPRequest(.POST, path, operation: "etcd \(path)")
        try request.setJSON(body)
        let response = try await http.send(request)
        let bytes = try await response.collect(upTo: 4 * 1024 * 1024)
        let json: JSONValue
        do { json = try JSONValue.parse(Array(bytes.readableBytesView)) } catch {
            throw NimbusError(.unavailable, "etcd answered \(path) with \(response.status.code) and a body that is not JSON", underlying: error)
        }
        guard response.isSuccess else {
            let message = json["message"]?.stringValue ?? json["error"]?.stringValue ?? "\(json)"
            if allowNotFound, message.contains("not found") { return json }
            let code: NimbusError.Code = response.status.code >= 500 ? .unavailable : .invalidArgument
            throw NimbusError(code, "etcd refused \(path): \(message)")
        }
        return json
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func unbase64(_ text: String) -> String? { Data(base64Encoded: text).map { String(decoding: $0, as: UTF8.self) } }
    static func padded(_ token: UInt64) -> String {
        let digits = String(token)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// An int64 field (the gateway writes them as strings, per the protobuf JSON mapping).
    static func int(_ value: JSONValue?, _ what: String) throws -> Int64 {
        if let text = value?.stringValue, let number = Int64(text) { return number }
        if let number = value?.numberValue { return Int64(number) }
        if value == nil { return 0 }          // proto3 JSON omits zero values
        throw NimbusError(.internal, "etcd sent \(what) as \(value.map { "\($0)" } ?? "nothing")")
    }
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// Adds `etcd://host:port` (the JSON gateway over HTTP) and `etcds://` (HTTPS).
    public func withEtcd() -> Self {
        var copy = self
        copy.register("etcd", "etcds") { url in
            try url.options.validate(known: ["timeout"], for: "etcd locks")
            let scheme = url.scheme == "etcds" ? "https" : "http"
            return EtcdDistributedLockDriver(endpoint: "\(scheme)://\(url.host ?? "127.0.0.1"):\(url.port ?? 2379)",
                                             timeout: try url.options.duration("timeout") ?? .seconds(10))
        }
        return copy
    }
}
