import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NimbusCore
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fetches a URL that a caller supplied — an image to inline for a provider that takes bytes only, a
/// document to load — without letting the caller use the server as a proxy into its own network
/// (server-side request forgery):
///
/// - its own HTTP client, which never carries a provider's credentials and follows no redirects
///   (a public host could otherwise bounce the request to an internal one);
/// - the host is resolved first and refused if any address it resolves to is loopback, private,
///   link-local (cloud metadata at 169.254.169.254), shared, multicast or reserved — after DNS, so
///   `localhost`, `0x7f000001` or a public name pointing inward do not pass;
/// - `http` and `https` only, no user-info, a size cap, a time limit, and a cap on fetches per call.
///
/// ```swift
/// let fetcher = UntrustedURLFetcher(policy: .init(maxBytes: 5 * 1024 * 1024))
/// let image = try await fetcher.fetch("https://upload.wikimedia.org/cat.png")
/// ```
/// What is left: a name that resolves to a public address when checked and to a private one a moment
/// later (DNS rebinding) can still slip between the check and the connection; networks that need
/// that closed put an egress proxy in front.
public struct UntrustedURLFetcher: Sendable {
    /// What may be fetched.
    public struct Policy: Sendable, Hashable {
        /// The largest body accepted, in bytes.
        public var maxBytes: Int
        /// The most URLs one call may fetch (see ``Budget``).
        public var maxFetches: Int
        /// Time limit of one fetch.
        public var timeout: Duration
        /// Allow loopback and private addresses: for tests and for intranets whose every host may be reached by every caller.
        public var allowPrivateNetworks: Bool

        /// Creates a policy.
        public init(maxBytes: Int = 20 * 1024 * 1024, maxFetches: Int = 8, timeout: Duration = .seconds(10), allowPrivateNetworks: Bool = false) {
            self.maxBytes = maxBytes
            self.maxFetches = maxFetches
            self.timeout = timeout
            self.allowPrivateNetworks = allowPrivateNetworks
        }
    }

    /// A fetched body.
    public struct Fetched: Sendable {
        public var bytes: ByteBuffer
        /// The media type the server named, without parameters.
        public var mediaType: String?
    }

    /// The rules.
    public let policy: Policy
    private let httpClient: HTTPClient

    /// An HTTP client for untrusted URLs: redirects are never followed.
    public static let transport: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(5)
        configuration.httpVersion = .automatic
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Creates a fetcher; `httpClient` must not follow redirects (the default does not).
    public init(policy: Policy = .init(), httpClient: HTTPClient = UntrustedURLFetcher.transport) {
        self.policy = policy
        self.httpClient = httpClient
    }

    /// Counts the fetches of one call against ``Policy/maxFetches``.
    public final class Budget: Sendable {
        private let used = Mutex(0)
        let limit: Int
        /// A budget of `limit` fetches.
        public init(limit: Int) { self.limit = limit }
        func take() throws {
            let allowed = used.withLock { used -> Bool in
                guard used < limit else { return false }
                used += 1
                return true
            }
            guard allowed else { throw NimbusError(.invalidArgument, "more than \(limit) URLs to fetch in one request; send the content inline instead") }
        }
    }

    /// A budget for one call.
    public func budget() -> Budget { Budget(limit: policy.maxFetches) }

    /// Fetches `url` under the policy.
    /// - Throws: `invalidArgument` for a URL that is not allowed (scheme, user-info, an address that is not public,
    ///   a redirect, too large, over the fetch budget) or an answer that is not 2xx; `deadlineExceeded` past the time limit.
    public func fetch(_ url: String, budget: Budget? = nil) async throws -> Fetched {
        try budget?.take()
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parsed.host, !host.isEmpty else {
            throw NimbusError(.invalidArgument, "only http(s) URLs with a host can be fetched, not '\(Redaction.url(url))'")
        }
        guard parsed.user == nil, parsed.password == nil else {
            throw NimbusError(.invalidArgument, "URLs with user-info are not fetched: '\(Redaction.url(url))'")
        }
        if !policy.allowPrivateNetworks {
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            let addresses = try await Self.resolve(bare)
            if let inward = addresses.first(where: { !Self.isPublic($0) }) {
                throw NimbusError(.invalidArgument, "\(host) resolves to \(Self.describe(inward)), which is not a public address; "
                                  + "URLs that reach loopback, private or link-local networks are not fetched")
            }
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response: HTTPClientResponse
        do { response = try await httpClient.execute(request, timeout: .nanoseconds(policy.timeout.nimbusNanoseconds)) } catch let error as HTTPClientError {
            if error == .deadlineExceeded { throw NimbusError(.deadlineExceeded, "fetching \(Redaction.url(url)) took over \(policy.timeout)", underlying: error) }
            throw NimbusError(.invalidArgument, "\(Redaction.url(url)) could not be fetched: \(error)", underlying: error)
        }
        if (300..<400).contains(response.status.code) {
            throw NimbusError(.invalidArgument, "\(Redaction.url(url)) answered with a redirect (HTTP \(response.status.code)); redirects are not followed, give the final URL")
        }
        guard (200..<300).contains(response.status.code) else {
            throw NimbusError(.invalidArgument, "\(Redaction.url(url)) could not be fetched (HTTP \(response.status.code))")
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > policy.maxBytes {
            throw NimbusError(.invalidArgument, "\(Redaction.url(url)) is \(length) bytes, over the \(policy.maxBytes)-byte limit")
        }
        let bytes: ByteBuffer
        do { bytes = try await response.body.collect(upTo: policy.maxBytes) } catch is NIOTooManyBytesError {
            throw NimbusError(.invalidArgument, "\(Redaction.url(url)) is over the \(policy.maxBytes)-byte limit")
        }
        let mediaType = response.headers.first(name: "Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        return Fetched(bytes: bytes, mediaType: mediaType)
    }

    // MARK: Addresses

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
    public typealias Address = [UInt8]

    /// Every address `host` resolves to (a literal resolves to itself).
    /// - Throws: `invalidArgument` when it resolves to nothing.
    public static func resolve(_ host: String) async throws -> [Address] {
        let addresses = try await NIOThreadPool.singleton.runIfActive { () -> [Address] in
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
            hints.ai_socktype = SOCK_STREAM
            #endif
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
            defer { freeaddrinfo(list) }
            var found: [Address] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor?.pointee {
                if let raw = entry.ai_addr {
                    if entry.ai_family == AF_INET {
                        raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                            withUnsafeBytes(of: pointer.pointee.sin_addr) { found.append(Array($0)) }
                        }
                    } else if entry.ai_family == AF_INET6 {
                        raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            withUnsafeBytes(of: pointer.pointee.sin6_addr) { found.append(Array($0)) }
                        }
                    }
                }
                cursor = entry.ai_next
            }
            return found
        }
        guard !addresses.isEmpty else { throw NimbusError(.invalidArgument, "the host \(host) does not resolve") }
        return addresses
    }

    /// Whether an address is on the public internet: not loopback, private (RFC 1918, unique-local),
    /// shared (100.64/10), link-local, multicast, documentation, benchmarking or reserved; IPv4 inside
    /// IPv6 (mapped, NAT64, 6to4) is judged by the IPv4 address.
    public static func isPublic(_ address: Address) -> Bool {
        if address.count == 4 { return isPublicV4(address) }
        guard address.count == 16 else { return false }
        let a = address
        if a.allSatisfy({ $0 == 0 }) { return false }                                     // ::
        if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return false }               // ::1
        if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xff && a[11] == 0xff { return isPublicV4(Array(a[12..<16])) }   // ::ffff:a.b.c.d
        if a[0..<12].allSatisfy({ $0 == 0 }) { return false }                              // deprecated IPv4-compatible
        if a[0] == 0x00, a[1] == 0x64, a[2] == 0xff, a[3] == 0x9b, a[4..<12].allSatisfy({ $0 == 0 }) { return isPublicV4(Array(a[12..<16])) }   // 64:ff9b::/96
        if a[0] == 0x20, a[1] == 0x02 { return isPublicV4(Array(a[2..<6])) }              // 2002::/16 (6to4)
        if a[0] & 0xfe == 0xfc { return false }                                            // fc00::/7 unique local
        if a[0] == 0xfe, a[1] & 0xc0 == 0x80 { return false }                              // fe80::/10 link-local
        if a[0] == 0xfe, a[1] & 0xc0 == 0xc0 { return false }                              // fec0::/10 site-local (deprecated)
        if a[0] == 0xff { return false }                                                   // multicast
        if a[0] == 0x20, a[1] == 0x01, a[2] == 0x0d, a[3] == 0xb8 { return false }         // 2001:db8::/32 documentation
        if a[0] == 0x20, a[1] == 0x01, a[2] == 0x00, a[3] == 0x00 { return false }         // 2001::/32 Teredo
        if a[0] == 0x01, a[1] == 0x00, a[2..<8].allSatisfy({ $0 == 0 }) { return false }   // 100::/64 discard
        return true
    }

    static func isPublicV4(_ a: Address) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return false                        // this network, private, loopback
        case (100, 64...127): return false                                   // shared (carrier-grade NAT)
        case (169, 254): return false                                        // link-local, cloud metadata
        case (172, 16...31): return false                                    // private
        case (192, 168): return false                                        // private
        case (198, 18...19): return false                                    // benchmarking
        case (224...255, _): return false                                    // multicast, reserved, broadcast
        default: break
        }
        if a[0] == 192, a[1] == 0, a[2] == 0 || a[2] == 2 { return false }   // IETF protocol assignments, TEST-NET-1
        if a[0] == 198, a[1] == 51, a[2] == 100 { return false }             // TEST-NET-2
        if a[0] == 203, a[1] == 0, a[2] == 113 { return false }              // TEST-NET-3
        return true
    }

    static func describe(_ address: Address) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: address.count, by: 2).map { String(format: "%x", Int(address[$0]) << 8 | Int(address[$0 + 1])) }.joined(separator: ":")
    }
}
