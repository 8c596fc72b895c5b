import Crypto
import Foundation
import NimbusCore
import NimbusHTTP

/// A storage account's name and key.
public struct AzureStorageAccount: Sendable, Hashable, CustomStringConvertible {
    /// The account name.
    public var name: String
    /// The account key (base64). Never logged.
    public var key: Secret<String>

    /// Creates an account.
    public init(name: String, key: Secret<String>) {
        self.name = name
        self.key = key
    }

    public static func == (lhs: AzureStorageAccount, rhs: AzureStorageAccount) -> Bool { lhs.name == rhs.name && lhs.key.reveal() == rhs.key.reveal() }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
    public var description: String { "AzureStorageAccount(\(name), key: <redacted>)" }

    /// Base64 HMAC-SHA256 of `text` with the decoded key.
    /// - Throws: `invalidArgument` when the key is not base64.
    public func sign(_ text: String) throws -> String {
        guard let decoded = Data(base64Encoded: key.reveal()) else {
            throw NimbusError(.invalidArgument, "the key of storage account \(name) is not base64; copy it from the portal's Access keys")
        }
        return Data(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: decoded))).base64EncodedString()
    }
}

/// Shared Key authorization for Azure Storage (Blob, Queue and File; Table has its own, shorter string).
///
/// ```swift
/// var headers = [("x-ms-date", AzureSharedKey.date(Date())), ("x-ms-version", "2023-11-03"), ("Content-Length", "11")]
/// headers.append(("Authorization", try AzureSharedKey.authorization(account: account, method: "PUT", path: "/container/blob.txt",
///                                                                     query: [], headers: headers)))
/// ```
public enum AzureSharedKey {
    /// The standard headers in string-to-sign order.
    static let standardHeaders = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                                  "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]

    /// The string to sign of a Blob/Queue/File request. `path` is the request's (encoded) path, `query` its decoded parameters.
    public static func stringToSign(account: String, method: String, path: String, query: [(String, String)], headers: [(String, String)]) -> String {
        var lookup: [String: String] = [:]
        for (name, value) in headers { lookup[name.lowercased()] = value }
        var lines = [method.uppercased()]
        for name in standardHeaders {
            var value = lookup[name] ?? ""
            if name == "content-length" && value == "0" { value = "" }        // since version 2015-02-21
            if name == "date" && lookup["x-ms-date"] != nil { value = "" }
            lines.append(value)
        }
        let canonicalHeaders = headers
            .filter { $0.0.lowercased().hasPrefix("x-ms-") }
            .map { ($0.0.lowercased(), unfold($0.1)) }
            .sorted { $0.0 < $1.0 }
            .map { "\($0.0):\($0.1)\n" }.joined()
        return lines.joined(separator: "\n") + "\n" + canonicalHeaders + canonicalResource(account: account, path: path, query: query)
    }

    /// `/account/path` then `\nname:value,value` per query parameter (names lower-cased and sorted, values sorted).
    static func canonicalResource(account: String, path: String, query: [(String, String)]) -> String {
        var resource = "/\(account)\(path.isEmpty ? "/" : path)"
        var grouped: [String: [String]] = [:]
        for (name, value) in query { grouped[name.lowercased(), default: []].append(value) }
        for name in grouped.keys.sorted() {
            resource += "\n\(name):\(grouped[name]!.sorted().joined(separator: ","))"
        }
        return resource
    }

    /// `SharedKey account:signature`.
    public static func authorization(account: AzureStorageAccount, method: String, path: String, query: [(String, String)], headers: [(String, String)]) throws -> String {
        "SharedKey \(account.name):\(try account.sign(stringToSign(account: account.name, method: method, path: path, query: query, headers: headers)))"
    }

    /// The Table service's string to sign: verb, Content-MD5, Content-Type, date (`x-ms-date` when set), and the resource with only `comp`.
    public static func tableStringToSign(account: String, method: String, path: String, query: [(String, String)], headers: [(String, String)]) -> String {
        var lookup: [String: String] = [:]
        for (name, value) in headers { lookup[name.lowercased()] = value }
        var resource = "/\(account)\(path.isEmpty ? "/" : path)"
        if let comp = query.first(where: { $0.0.lowercased() == "comp" }) { resource += "?comp=\(comp.1)" }
        return [method.uppercased(), lookup["content-md5"] ?? "", lookup["content-type"] ?? "", lookup["x-ms-date"] ?? lookup["date"] ?? "", resource]
            .joined(separator: "\n")
    }

    /// Unfolds a header value — a line break with the whitespace around it becomes one space — and trims it.
    /// Spaces inside a line are kept as they are (Azure signs them, as Microsoft's SDKs do).
    static func unfold(_ value: String) -> String {
        guard value.contains(where: { $0.isNewline }) else { return value.trimmingCharacters(in: .whitespaces) }
        let lines = value.split(whereSeparator: { $0.isNewline }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.joined(separator: " ")
    }

    /// An RFC 1123 date for `x-ms-date`.
    public static func date(_ date: Date) -> String { HTTPDate.format(date) }
}

/// Shared access signatures for Azure Storage.
public enum AzureSAS {
    /// The service version the signatures are built for (the string-to-sign layout depends on it).
    public static let version = "2022-11-02"

    /// `2024-05-01T12:00:00Z`.
    public static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// A service SAS for a blob (`resource: "b"`) or a container (`"c"`): the query parameters, `sig` last.
    public static func blob(account: AzureStorageAccount, container: String, blob: String?, permissions: String, expiry: Date, start: Date? = nil,
                            ip: String? = nil, protocolRestriction: String? = "https", identifier: String? = nil,
                            cacheControl: String? = nil, contentDisposition: String? = nil, contentEncoding: String? = nil,
                            contentLanguage: String? = nil, contentType: String? = nil) throws -> [(String, String)] {
        let resource = blob == nil ? "c" : "b"
        let canonical = "/blob/\(account.name)/\(container)" + (blob.map { "/\($0)" } ?? "")
        let startText = start.map(time) ?? "", expiryText = time(expiry)
        let toSign = [permissions, startText, expiryText, canonical, identifier ?? "", ip ?? "", protocolRestriction ?? "", version, resource,
                      "", "", cacheControl ?? "", contentDisposition ?? "", contentEncoding ?? "", contentLanguage ?? "", contentType ?? ""]
            .joined(separator: "\n")
        var query: [(String, String)] = [("sv", version)]
        if let protocolRestriction { query.append(("spr", protocolRestriction)) }
        if let start { query.append(("st", time(start))) }
        query += [("se", expiryText), ("sr", resource), ("sp", permissions)]
        if let ip { query.append(("sip", ip)) }
        if let identifier { query.append(("si", identifier)) }
        for (name, value) in [("rscc", cacheControl), ("rscd", contentDisposition), ("rsce", contentEncoding), ("rscl", contentLanguage), ("rsct", contentType)] {
            if let value { query.append((name, value)) }
        }
        query.append(("sig", try account.sign(toSign)))
        return query
    }

    /// An account SAS: `services` (b, q, t, f), `resourceTypes` (s, c, o), `permissions` (rwdlacup...).
    public static func account(_ account: AzureStorageAccount, services: String, resourceTypes: String, permissions: String, expiry: Date,
                               start: Date? = nil, ip: String? = nil, protocolRestriction: String? = "https") throws -> [(String, String)] {
        let startText = start.map(time) ?? "", expiryText = time(expiry)
        let toSign = [account.name, permissions, services, resourceTypes, startText, expiryText, ip ?? "", protocolRestriction ?? "", version, ""]
            .joined(separator: "\n") + "\n"
        var query: [(String, String)] = [("sv", version), ("ss", services), ("srt", resourceTypes), ("sp", permissions), ("se", expiryText)]
        if let start { query.append(("st", startText)) }
        if let protocolRestriction { query.append(("spr", protocolRestriction)) }
        if let ip { query.append(("sip", ip)) }
        query.append(("sig", try account.sign(toSign)))
        return query
    }
}
