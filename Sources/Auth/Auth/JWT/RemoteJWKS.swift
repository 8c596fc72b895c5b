import Foundation
import Logging
import NimbusCore
import NimbusHTTP

/// An issuer's JWKS fetched over HTTPS, cached, and fetched again when it is old or when a token
/// names a key id it lacks (the issuer rotated its keys) — at most once per ``Configuration/cooldown``,
/// so a flood of tokens with made-up `kid`s cannot turn into a flood of requests to the issuer.
///
/// ```swift
/// let jwks = RemoteJWKS(url: "https://www.googleapis.com/oauth2/v3/certs")
/// let verifier = JWTVerifier(keys: jwks, configuration: .init(issuers: ["https://accounts.google.com"], audiences: [clientID]))
/// ```
///
/// Concurrent callers share one fetch. When a fetch fails and keys are cached, the cached keys
/// go on being used (and the failure is logged); with nothing cached the error is thrown.
public actor RemoteJWKS: JWTKeyProvider {
    /// Caching and refetching rules.
    public struct Configuration: Sendable {
        /// How long a fetched key set is used before it is fetched again, unless the answer's
        /// `Cache-Control: max-age` says otherwise (kept between ``cooldown`` and a day).
        public var maxAge: Duration
        /// The shortest time between two fetches caused by unknown key ids.
        public var cooldown: Duration
        /// The largest JWKS document accepted.
        public var maxSize: Int

        /// Creates a configuration (10 minutes, 30 seconds, 512 KiB by default).
        /// How the document lists its keys.
        public var format: Format

        /// A key document's format.
        public enum Format: Sendable, Hashable {
            /// A JWK Set (RFC 7517): `{"keys": [...]}`.
            case jwks
            /// A map of key id to PEM X.509 certificate, as Google publishes Firebase and Identity
            /// Platform keys (`robot/v1/metadata/x509/securetoken@system.gserviceaccount.com`); every
            /// key verifies `algorithm` only.
            case x509Certificates(algorithm: JWSAlgorithm)
        }

        public init(maxAge: Duration = .seconds(600), cooldown: Duration = .seconds(30), maxSize: Int = 512 * 1024, format: Format = .jwks) {
            self.maxAge = maxAge
            self.cooldown = cooldown
            self.maxSize = maxSize
            self.format = format
        }
    }

    /// Where the JWKS is.
    public let url: String
    /// The rules.
    public let configuration: Configuration
    /// How many times the document was fetched (for tests and metrics).
    public private(set) var fetchCount = 0

    private let http: NimbusHTTPClient
    private let now: @Sendable () -> Date
    private let logger: Logger
    private var cached: (keys: JWTKeySet, fetchedAt: Date, maxAge: TimeInterval)?
    private var lastFetch: Date?
    private var inFlight: Task<JWTKeySet, any Error>?

    /// A JWKS at `url`, fetched with `http` (by default a client that retries transient failures).
    public init(url: String, configuration: Configuration = .init(), http: NimbusHTTPClient? = nil,
                logger: Logger = Logger(label: "nimbus.auth.jwks"), now: @escaping @Sendable () -> Date = { Date() }) {
        self.url = url
        self.configuration = configuration
        self.http = http ?? NimbusHTTPClient(configuration: .init(service: "jwks", timeout: .seconds(10)), httpClient: NimbusHTTPClient.defaultTransport)
        self.logger = logger
        self.now = now
    }

    public func currentKeys() async throws -> JWTKeySet {
        if let cached, now().timeIntervalSince(cached.fetchedAt) < cached.maxAge { return cached.keys }
        return try await refresh(reason: cached == nil ? "first use" : "cache expired")
    }

    public func keys(missing kid: String) async throws -> JWTKeySet {
        if let lastFetch, now().timeIntervalSince(lastFetch) < configuration.cooldown.nimbusSeconds, let cached {
            return cached.keys      // fetched moments ago: a made-up kid does not cause another request
        }
        return try await refresh(reason: "unknown key id")
    }

    /// Fetches the document now (sharing a fetch already under way).
    @discardableResult
    public func refresh(reason: String = "asked") async throws -> JWTKeySet {
        if let inFlight { return try await inFlight.value }
        let task = Task { try await self.fetch() }
        inFlight = task
        defer { inFlight = nil }
        lastFetch = now()
        do {
            return try await task.value
        } catch {
            if let cached {
                logger.warning("JWKS fetch failed; using the keys fetched earlier", metadata: ["url": "\(url)", "reason": "\(reason)", "error": "\(error)"])
                return cached.keys
            }
            throw error
        }
    }

    private func fetch() async throws -> JWTKeySet {
        fetchCount += 1
        var request = NimbusHTTPRequest(.GET, url, operation: "jwks.get")
        request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
        let response = try await http.send(request, errorMapper: NimbusHTTPClient.defaultErrorMapper)
        let body = try await response.collect(upTo: configuration.maxSize)
        let keys: JWTKeySet
        switch configuration.format {
        case .jwks:
            keys = try await JWTKeySet(jwks: body.readableBytesView)
        case .x509Certificates(let algorithm):
            guard case .object(let certificates)? = try? JSONValue.parse(Array(body.readableBytesView)) else {
                throw NimbusError(.internal, "\(url) did not answer a JSON object of key id to PEM certificate")
            }
            var set = JWTKeySet()
            for (kid, pem) in certificates.sorted(by: { $0.key < $1.key }) {
                guard let text = pem.stringValue else { continue }
                set = set + (try await JWTKeySet.pem(text, id: kid, algorithms: [algorithm]))
            }
            keys = set
        }
        if !keys.skipped.isEmpty { logger.debug("JWKS keys skipped", metadata: ["url": "\(url)", "skipped": "\(keys.skipped)"]) }
        var maxAge = configuration.maxAge.nimbusSeconds
        if let control = response.headers.first(name: "Cache-Control"),
           let directive = control.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { $0.hasPrefix("max-age=") }),
           let seconds = TimeInterval(directive.dropFirst("max-age=".count)) {
            maxAge = min(86_400, max(configuration.cooldown.nimbusSeconds, seconds))
        }
        cached = (keys, now(), maxAge)
        return keys
    }
}
