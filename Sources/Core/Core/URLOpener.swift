import Foundation

/// A domain's table of URL schemes and the code that opens each one.
///
/// Every domain has one (`Cache.openers`, later `EmailClient.openers`...). An adapter module
/// registers its schemes; the application opens whatever URL its configuration holds.
///
/// ```swift
/// var openers = URLOpenerRegistry<any CacheDriver>(domain: "cache")
/// openers.register("mem") { url in MemoryCacheDriver(maxEntries: try url.options.int("maxEntries") ?? 10_000) }
/// let driver = try await openers.open("mem://?maxEntries=100")
/// ```
public struct URLOpenerRegistry<Resource: Sendable>: Sendable {
    /// Opens one parsed URL.
    public typealias Opener = @Sendable (OpenURL) async throws -> Resource

    /// The domain's name, used in error messages (`cache`, `email`).
    public let domain: String
    private var openers: [String: Opener] = [:]

    /// Creates an empty registry.
    public init(domain: String) { self.domain = domain }

    /// Registers `opener` for each scheme (case-insensitive). A later registration replaces an earlier one.
    public mutating func register(_ schemes: String..., opener: @escaping Opener) {
        for scheme in schemes { openers[scheme.lowercased()] = opener }
    }

    /// Adds `mem://` (and `memory://`): an embedded resource in process memory, volatile — the one
    /// meaning `mem://` has in every domain. It takes no options, so any option is refused.
    ///
    /// ```swift
    /// public func withMemory() -> Self { withInProcess { MemorySMSDriver() } }
    /// ```
    public func withInProcess(_ make: @escaping @Sendable () throws -> Resource) -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: [], for: "mem://")
            return try make()
        }
        return copy
    }

    /// The registered schemes, sorted.
    public var schemes: [String] { openers.keys.sorted() }

    /// Parses `url` and hands it to the opener of its scheme.
    /// - Throws: `invalidArgument` when the URL does not parse or no opener knows its scheme
    ///   (the message lists the known schemes).
    public func open(_ url: String) async throws -> Resource {
        let parsed = try OpenURL(url)
        guard let opener = openers[parsed.scheme] else {
            let known = schemes.map { "\($0)://" }.joined(separator: ", ")
            throw NimbusError(.invalidArgument, "no \(domain) opener for scheme '\(parsed.scheme)://' (known: \(known.isEmpty ? "none" : known)); import and register the adapter module that provides it")
        }
        return try await opener(parsed)
    }
}

/// A URL taken apart for an opener: scheme, host, port, credentials (kept secret), path and options.
public struct OpenURL: Sendable, CustomStringConvertible {
    /// The scheme, lowercased (`redis`).
    public let scheme: String
    /// The host, or `nil` (`mem://`).
    public let host: String?
    /// The port, or `nil`.
    public let port: Int?
    /// The user name, percent-decoded.
    public let user: String?
    /// The password, percent-decoded and redacted.
    public let password: Secret<String>?
    /// The path, percent-decoded (`/2` in `redis://host/2`).
    public let path: String
    /// The query items.
    public var options: URLOptions

    /// Parses `text`.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme, !scheme.isEmpty else {
            throw NimbusError(.invalidArgument, "'\(OpenURL.redacting(text))' is not a URL; expected scheme://[user[:password]@]host[:port][/path][?option=value&...]")
        }
        self.scheme = scheme.lowercased()
        self.host = components.host.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding ?? $0 }
        self.port = components.port
        self.user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding ?? $0 }
        self.password = components.password.map { Secret($0.removingPercentEncoding ?? $0) }
        self.path = components.path.removingPercentEncoding ?? components.path
        var items: [(String, String)] = []
        for item in components.queryItems ?? [] { items.append((item.name, item.value ?? "")) }
        self.options = URLOptions(items)
    }

    /// The local file path a `file://` or `sqlite://` URL names: `scheme:///abs/path` and
    /// `scheme://abs/path` are absolute (`/abs/path`; a host is never contacted), and
    /// `scheme://./rel/path` is relative to the working directory.
    /// - Throws: `invalidArgument` when the URL names no path.
    public func localPath(example: String) throws -> String {
        let path: String
        switch host {
        case nil: path = self.path
        case "."?: path = "." + self.path
        case let host?: path = "/" + host + self.path
        }
        guard !path.isEmpty, path != "/", path != "." else {
            throw NimbusError(.invalidArgument, "\(scheme):// needs a path: \(example)")
        }
        return path
    }

    /// ``localPath(example:)`` for a file the opener will create: its directory is created first
    /// (`sqlite://./.nimbus/payments.sqlite` makes `.nimbus`).
    /// - Throws: `invalidArgument` when the URL names no path; `permissionDenied` when the directory cannot be made.
    public func localFilePath(example: String) throws -> String {
        let path = try localPath(example: example)
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return path }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw NimbusError(.permissionDenied, "cannot create \(directory) for \(scheme)://: \(error.localizedDescription)", underlying: error)
        }
        return path
    }

    /// The base URL of a vendor API a URL points at: `default` when it names no host, plain HTTP
    /// for a loopback host (a local server or fake), HTTPS otherwise (`stripe://127.0.0.1:12111`
    /// → `http://127.0.0.1:12111`; `stripe://` → `https://api.stripe.com`).
    public func serviceBaseURL(default fallback: String) -> String {
        guard let host, !host.isEmpty else { return fallback }
        return (Self.isLoopback(host) ? "http://" : "https://") + (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
    }

    /// Whether `host` is this machine (`localhost`, `127.x.x.x`, `::1`): where plain HTTP, opportunistic
    /// TLS or no master key is acceptable, and nowhere else.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The base URL of a vendor API with a path: ``serviceBaseURL(default:)`` plus the URL's path,
    /// or `defaultPath` when it has none. The option `tls=false` asks for plain HTTP on a host that
    /// is not loopback (a LAN server); `tls=true` for HTTPS on loopback. A path of `/` alone means the root.
    ///
    /// ```swift
    /// try OpenURL("openai://").endpoint(default: "https://api.openai.com", defaultPath: "/v1")                      // https://api.openai.com/v1
    /// try OpenURL("openai-compatible://10.0.0.5:8000/v1?tls=false").endpoint(default: "", defaultPath: "/v1")   // http://10.0.0.5:8000/v1
    /// ```
    public func endpoint(default fallback: String, defaultPath: String) throws -> String {
        guard let host, !host.isEmpty else { return fallback + defaultPath }
        var base = serviceBaseURL(default: fallback)
        if let tls = try options.bool("tls") {
            let bare = base.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
            base = (tls ? "https://" : "http://") + bare
        }
        // No path: the default one; `/` alone: the root (`gemini://127.0.0.1:9000/` is that server's root).
        guard !path.isEmpty else { return base + defaultPath }
        return base + (path.hasSuffix("/") ? String(path.dropLast()) : path)
    }

    /// A secret an opener needs, never written in the URL itself: the option `name` must be
    /// `env:VARIABLE` (read from `environment`); without the option, the first of `defaults` that is set.
    /// - Throws: `invalidArgument` for a literal secret in the URL (URLs end up in logs), or a variable that is not set.
    public func secret(_ name: String, environment: [String: String], defaults: [String] = []) throws -> Secret<String>? {
        if let value = options.string(name) {
            guard value.hasPrefix("env:") else {
                throw NimbusError(.invalidArgument, "\(scheme):// takes \(name)=env:VARIABLE, never the secret itself (URLs end up in logs)")
            }
            let variable = String(value.dropFirst(4))
            guard let found = environment[variable], !found.isEmpty else {
                throw NimbusError(.failedPrecondition, "\(scheme)://: \(name)=env:\(variable), but \(variable) is not set")
            }
            return Secret(found)
        }
        for variable in defaults { if let found = environment[variable], !found.isEmpty { return Secret(found) } }
        return nil
    }

    /// The URL without some options: for a client underneath that refuses options it does not
    /// know, when the opener reads those itself (`ttl`, `prefix`).
    public func removingOptions(_ names: Set<String>) -> OpenURL {
        var copy = self
        copy.options = URLOptions(options.items.filter { !names.contains($0.0) })
        return copy
    }

    /// The URL with the password replaced by `***`: safe to log.
    public var description: String {
        var text = "\(scheme)://"
        if let user { text += user + (password == nil ? "" : ":***") + "@" }
        else if password != nil { text += ":***@" }
        text += host ?? ""
        if let port { text += ":\(port)" }
        text += path
        if !options.isEmpty { text += "?" + options.items.map { "\($0.0)=\($0.1)" }.joined(separator: "&") }
        return text
    }

    static func redacting(_ text: String) -> String {
        // scheme://user:password@ → scheme://user:***@
        guard let at = text.firstIndex(of: "@"), let schemeEnd = text.range(of: "://")?.upperBound,
              let colon = text[schemeEnd..<at].firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }
}

/// The query options of an ``OpenURL``, with typed getters that say what is wrong.
public struct URLOptions: Sendable {
    /// The items in order.
    public let items: [(String, String)]

    /// Creates options from name/value pairs.
    public init(_ items: [(String, String)]) { self.items = items }

    /// Whether there are none.
    public var isEmpty: Bool { items.isEmpty }

    /// The last value given for `name`.
    public func string(_ name: String) -> String? { items.last { $0.0 == name }?.1 }

    /// An integer option. - Throws: `invalidArgument` when present but not an integer.
    public func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw invalid(name, text, "an integer") }
        return value
    }

    /// A boolean option: `true/false`, `1/0`, `yes/no`, `on/off`.
    public func bool(_ name: String) throws -> Bool? {
        guard let text = string(name) else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes", "on", "": return true
        case "false", "0", "no", "off": return false
        default: throw invalid(name, text, "true or false")
        }
    }

    /// A duration option: `250ms`, `2s`, `5m`, `1h`, or a bare number of seconds.
    public func duration(_ name: String) throws -> Duration? {
        guard let text = string(name) else { return nil }
        guard let value = Duration.nimbusParse(text) else { throw invalid(name, text, "a duration such as 250ms, 2s, 5m") }
        return value
    }

    /// Throws if an option is not one of `known`: a typo must not be silently ignored.
    public func validate(known: Set<String>, for what: String) throws {
        let unknown = items.map(\.0).filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw NimbusError(.invalidArgument, "unknown \(what) URL option(s) \(unknown.sorted().joined(separator: ", ")); known: \(known.sorted().joined(separator: ", "))")
        }
    }

    private func invalid(_ name: String, _ value: String, _ expected: String) -> NimbusError {
        NimbusError(.invalidArgument, "URL option \(name)=\(value) is not \(expected)")
    }
}

extension Duration {
    /// Parses `250ms`, `2s`, `1.5s`, `5m`, `1h`, `100us`, or a bare number of seconds.
    public static func nimbusParse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            return .nanoseconds(Int64((number * scale * 1e9).rounded()))
        }
        guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
}
