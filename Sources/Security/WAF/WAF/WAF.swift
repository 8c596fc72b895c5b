import Foundation
import NimbusCore

/// An HTTP request as the WAF inspects it.
public struct WAFRequest: Sendable {
    public var method: String
    /// The request target as sent: path and query, not decoded.
    public var uri: String
    public var version: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var remoteAddress: String

    /// Creates a request.
    public init(method: String, uri: String, version: String = "HTTP/1.1", headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                remoteAddress: String = "127.0.0.1") {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

extension WAFRequest {
    /// Parses a raw HTTP/1 request (request line, headers, blank line, body), as a file or a
    /// capture holds it. Lines may end in CRLF or LF.
    /// - Throws: `invalidArgument` when there is no request line.
    public init(raw bytes: [UInt8], remoteAddress: String = "127.0.0.1") throws {
        var headEnd = bytes.count, bodyStart = bytes.count
        for i in bytes.indices {
            if bytes[i...].starts(with: [13, 10, 13, 10]) { headEnd = i; bodyStart = i + 4; break }
            if bytes[i...].starts(with: [10, 10]) { headEnd = i; bodyStart = i + 2; break }
        }
        var lines = String(decoding: bytes[..<headEnd], as: UTF8.self).components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        let requestLine = lines.isEmpty ? [] : lines.removeFirst().split(separator: " ", maxSplits: 2).map(String.init)
        guard requestLine.count >= 2 else { throw NimbusError(.invalidArgument, "not an HTTP request: the first line must be METHOD TARGET [VERSION]") }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        self.init(method: requestLine[0], uri: requestLine[1], version: requestLine.count > 2 ? requestLine[2] : "HTTP/1.1", headers: headers,
                  body: Array(bytes[bodyStart...]), remoteAddress: remoteAddress)
    }
}

/// What the WAF decided about a request.
public struct WAFResult: Sendable {
    /// A rule that matched and logs.
    public struct Match: Sendable, Hashable {
        public var id: Int
        public var message: String
        public var tags: [String]
    }
    /// The logging rules that matched, in order.
    public var matches: [Match]
    /// The inbound anomaly score CRS computed (`tx.blocking_inbound_anomaly_score`).
    public var anomalyScore: Int
    /// Whether the request is refused: a `deny` rule fired (in ``WAF/Mode/block`` the request stops
    /// there), or a value was too long to inspect under ``WAF/OversizedValues/deny``. Detection
    /// mode reports what block mode would do.
    public var denied: Bool
    /// The status to answer with when denied (413 for a value too long to inspect).
    public var status: Int
    /// Whether a value was longer than ``WAF/Configuration/maximumInspectedValueLength`` (only its
    /// first bytes were inspected).
    public var oversized = false
    /// The ids of the matched rules.
    public var matchedIDs: Set<Int> { Set(matches.map(\.id)) }
}

/// A loaded rule set: rules in order per phase, markers, data files.
public struct WAFRuleSet: Sendable {
    var entries: [WAFEntry]
    var patterns: [String: CompiledPattern]
    var phraseMatchers: [String: PhraseMatcher]
    /// Rules whose operator cannot run here (libinjection's `@detectSQLi` / `@detectXSS`): they never match.
    public let unsupported: [Int]
    /// Rules whose pattern ICU could not compile (they never match), with the reason.
    public let uncompiled: [Int: String]
    /// The number of rules (chains count once).
    public var ruleCount: Int { entries.reduce(0) { if case .rule = $1 { return $0 + 1 } else { return $0 } } }

    /// Loads SecLang files in order; `data` holds the files `@pmFromFile` names.
    /// - Throws: `invalidArgument` for a directive, operator or transformation outside the subset.
    public init(files: [(name: String, text: String)], data: [String: String] = [:]) throws {
        var entries: [WAFEntry] = []
        var updates: [(Int, String)] = []
        for file in files {
            let parsed = try SecLangParser.parse(file.text, file: file.name)
            entries += parsed.entries
            updates += parsed.updates
        }
        for (id, targets) in updates {
            let extra = SecLangParser.targets(targets)
            entries = entries.map { entry in
                guard case .rule(var rule) = entry, rule.id == id else { return entry }
                rule.targets += extra
                return .rule(rule)
            }
        }
        var patterns: [String: CompiledPattern] = [:]
        var matchers: [String: PhraseMatcher] = [:]
        var unsupported: [Int] = [], uncompiled: [Int: String] = [:]
        func prepare(_ rule: WAFRule, starter: Int) {
            if !rule.supported { unsupported.append(starter) }
            switch rule.op.name {
            case "rx":
                if !rule.op.argument.contains("%{"), patterns[rule.op.argument] == nil {
                    do { patterns[rule.op.argument] = try CompiledPattern(rule.op.argument) } catch { uncompiled[starter] = "\(error)" }
                }
            case "pm":
                matchers[rule.op.argument] = PhraseMatcher(rule.op.argument.split(separator: " ").map(String.init))
            case "pmFromFile", "pmf":
                var phrases: [String] = []
                for name in rule.op.argument.split(separator: " ") {
                    let text = data[String(name)] ?? ""
                    phrases += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
                }
                matchers[rule.op.argument] = PhraseMatcher(phrases)
            default:
                break
            }
            for target in rule.targets where target.keyPattern != nil {
                if patterns[target.keyPattern!] == nil { patterns[target.keyPattern!] = try? CompiledPattern("(?i)" + target.keyPattern!) }
            }
        }
        for case .rule(let rule) in entries {
            prepare(rule, starter: rule.id)
            for link in rule.chained { prepare(link, starter: rule.id) }
        }
        self.entries = entries
        self.patterns = patterns
        self.phraseMatchers = matchers
        self.unsupported = unsupported
        self.uncompiled = uncompiled
    }

    /// The OWASP Core Rule Set's request rules bundled with NimbusWAF (see `Resources/crs/SOURCE.md`).
    public static func coreRuleSet() throws -> WAFRuleSet {
        guard let directory = Bundle.module.url(forResource: "crs", withExtension: nil) else {
            throw NimbusError(.notFound, "the bundled CRS rules are missing from NimbusWAF's resources")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let files = try names.filter { $0.hasSuffix(".conf") }.sorted().map { name in
            (name: name, text: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
        var data: [String: String] = [:]
        for name in names where name.hasSuffix(".data") { data[name] = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) }
        return try WAFRuleSet(files: files, data: data)
    }
}

/// A web application firewall running a SecLang rule set (the OWASP CRS by default) with anomaly
/// scoring and paranoia levels.
///
/// ```swift
/// let waf = try WAF(rules: .coreRuleSet(), configuration: .init(paranoiaLevel: 2))
/// let result = waf.evaluate(WAFRequest(method: "GET", uri: "/search?q=1%27%20OR%201=1--"))
/// result.denied          // true: 942100 … raised the anomaly score over the threshold
/// ```
public struct WAF: Sendable {
    /// Whether a `deny` stops the request or is only reported.
    public enum Mode: String, Sendable { case block, detect }

    /// The policy for values longer than ``Configuration/maximumInspectedValueLength``.
    public enum OversizedValues: String, Sendable { case deny, inspectPrefix }

    /// The CRS settings (what `crs-setup.conf` holds).
    public struct Configuration: Sendable {
        public var mode: Mode = .block
        /// Rules up to this paranoia level count towards blocking (1–4).
        public var paranoiaLevel = 1
        /// Rules up to this level run and log (≥ ``paranoiaLevel``).
        public var detectionParanoiaLevel: Int?
        /// The inbound anomaly score at which a request is denied (CRS default 5: one critical match).
        public var inboundAnomalyThreshold = 5
        /// More `SecAction` settings, `name=value` for `tx.name` (`allowed_methods=GET HEAD POST`).
        public var settings: [String: String] = [:]
        /// The longest value (argument, header, cookie, body) the operators inspect. ICU, which runs
        /// the patterns, lacks PCRE's optimisations, and some CRS patterns cost time quadratic in
        /// the value's length; this bound keeps a request's cost bounded.
        public var maximumInspectedValueLength = 4096
        /// What happens to a request with a longer value: denied with 413 in ``Mode/block``
        /// (nothing goes through uninspected), or inspected on its first bytes only.
        public var oversizedValues: OversizedValues = .deny
        /// Creates the default configuration (block, paranoia level 1, threshold 5).
        public init(mode: Mode = .block, paranoiaLevel: Int = 1, inboundAnomalyThreshold: Int = 5) {
            self.mode = mode
            self.paranoiaLevel = paranoiaLevel
            self.inboundAnomalyThreshold = inboundAnomalyThreshold
        }
    }

    public let rules: WAFRuleSet
    public let configuration: Configuration

    /// Creates a WAF.
    public init(rules: WAFRuleSet, configuration: Configuration = .init()) {
        self.rules = rules
        self.configuration = configuration
    }

    /// ``evaluate(_:)`` on a thread of its own rather than Swift's cooperative pool: rule
    /// evaluation is synchronous CPU work (hundreds of regular expressions), and a server's request
    /// tasks, timers and I/O share that pool's few threads.
    public func evaluateOffPool(_ request: WAFRequest) async -> WAFResult {
        await withCheckedContinuation { continuation in
            Self.queue.async { continuation.resume(returning: self.evaluate(request)) }
        }
    }

    /// Where off-pool evaluations run (concurrent: one evaluation per free core).
    static let queue = DispatchQueue(label: "nimbus.waf.evaluate", qos: .userInitiated, attributes: .concurrent)

    /// Runs phases 1 (headers) and 2 (body) over `request`.
    public func evaluate(_ request: WAFRequest) -> WAFResult {
        var transaction = WAFTransaction(request: request, rules: rules, configuration: configuration)
        transaction.run(phase: 1)
        if !(transaction.denied && configuration.mode == .block) {
            transaction.processBody()
            transaction.run(phase: 2)
        }
        var result = WAFResult(matches: transaction.matches, anomalyScore: Int(transaction.tx["blocking_inbound_anomaly_score"] ?? "") ?? 0,
                               denied: transaction.denied, status: transaction.status, oversized: transaction.oversized)
        if transaction.oversized, configuration.oversizedValues == .deny, !result.denied {
            result.denied = true
            result.status = 413
        }
        return result
    }
}

/// One request's evaluation state.
struct WAFTransaction {
    typealias Value = (name: String, value: [UInt8])

    let request: WAFRequest
    let rules: WAFRuleSet
    let configuration: WAF.Configuration
    var tx: [String: String] = [:]
    var matches: [WAFResult.Match] = []
    var denied = false
    var status = 403
    var removedIDs: [ClosedRange<Int>] = []
    var removedTags: [CompiledPattern] = []
    var removedTargets: [(tag: CompiledPattern?, id: Int?, target: WAFRule.Target)] = []
    var bodyProcessor: String?
    var forceBody = false
    var matchedVars: [Value] = []
    var collections: [String: [Value]] = [:]
    var oversized = false
    /// Transformed values by variable, value and transformation chain: rules share chains.
    var transformed: [TransformKey: [UInt8]] = [:]

    struct TransformKey: Hashable {
        var value: [UInt8]
        var chain: [String]
    }

    init(request: WAFRequest, rules: WAFRuleSet, configuration: WAF.Configuration) {
        self.request = request
        self.rules = rules
        self.configuration = configuration
        let level = max(1, min(4, configuration.paranoiaLevel))
        tx["crs_setup_version"] = "4280"
        tx["blocking_paranoia_level"] = String(level)
        tx["detection_paranoia_level"] = String(max(level, configuration.detectionParanoiaLevel ?? level))
        tx["inbound_anomaly_score_threshold"] = String(configuration.inboundAnomalyThreshold)
        for (name, value) in configuration.settings { tx[name.lowercased()] = value }
        buildCollections()
    }

    // MARK: Collections

    static func split(_ text: String, pairs separator: Character, _ assign: Character = "=") -> [(String, String)] {
        text.split(separator: separator, omittingEmptySubsequences: true).map { part in
            let pieces = part.split(separator: assign, maxSplits: 1, omittingEmptySubsequences: false)
            return (String(pieces[0]), pieces.count > 1 ? String(pieces[1]) : "")
        }
    }

    static func decode(_ text: String) -> [UInt8] { WAFTransformations.urlDecode(Array(text.utf8), unicode: false) }

    mutating func buildCollections() {
        let uri = request.uri
        let questionMark = uri.firstIndex(of: "?")
        let path = questionMark.map { String(uri[..<$0]) } ?? uri
        let query = questionMark.map { String(uri[uri.index(after: $0)...]) } ?? ""
        var headers: [Value] = [], headerNames: [Value] = []
        for header in request.headers {
            headers.append((header.name.lowercased(), Array(header.value.utf8)))
            headerNames.append((header.name.lowercased(), Array(header.name.utf8)))
        }
        var cookies: [Value] = [], cookieNames: [Value] = []
        for header in request.headers where header.name.lowercased() == "cookie" {
            for (name, value) in Self.split(header.value, pairs: ";") {
                let trimmed = name.trimmingCharacters(in: .whitespaces)
                cookies.append((trimmed.lowercased(), Array(value.utf8)))
                cookieNames.append((trimmed.lowercased(), Array(trimmed.utf8)))
            }
        }
        let argsGet: [Value] = Self.split(query, pairs: "&").map { (String(decoding: Self.decode($0.0), as: UTF8.self), Self.decode($0.1)) }
        collections["ARGS_GET"] = argsGet
        collections["ARGS_GET_NAMES"] = argsGet.map { ($0.name, Array($0.name.utf8)) }
        collections["REQUEST_HEADERS"] = headers
        collections["REQUEST_HEADERS_NAMES"] = headerNames
        collections["REQUEST_COOKIES"] = cookies
        collections["REQUEST_COOKIES_NAMES"] = cookieNames
        let filename = Array(path.utf8)
        collections["REQUEST_FILENAME"] = [("", filename)]
        collections["REQUEST_BASENAME"] = [("", Array((path.split(separator: "/").last.map(String.init) ?? "").utf8))]
        collections["REQUEST_URI"] = [("", Array(uri.utf8))]
        collections["REQUEST_URI_RAW"] = [("", Array(uri.utf8))]
        collections["REQUEST_LINE"] = [("", Array("\(request.method) \(uri) \(request.version)".utf8))]
        collections["REQUEST_METHOD"] = [("", Array(request.method.utf8))]
        collections["REQUEST_PROTOCOL"] = [("", Array(request.version.utf8))]
        collections["QUERY_STRING"] = [("", Array(query.utf8))]
        collections["REMOTE_ADDR"] = [("", Array(request.remoteAddress.utf8))]
        collections["UNIQUE_ID"] = [("", Array(UUID().uuidString.utf8))]
        collections["REQUEST_BODY_LENGTH"] = [("", Array(String(request.body.count).utf8))]
        collections["REQBODY_ERROR"] = [("", Array("0".utf8))]
        collections["MULTIPART_STRICT_ERROR"] = [("", Array("0".utf8))]
        collections["MULTIPART_UNMATCHED_BOUNDARY"] = [("", Array("0".utf8))]
        refreshArgs(post: [])
    }

    mutating func refreshArgs(post: [Value]) {
        let get = collections["ARGS_GET"] ?? []
        collections["ARGS_POST"] = post
        collections["ARGS_POST_NAMES"] = post.map { ($0.name, Array($0.name.utf8)) }
        collections["ARGS"] = get + post
        collections["ARGS_NAMES"] = (get + post).map { ($0.name, Array($0.name.utf8)) }
        let combined = (get + post).reduce(0) { $0 + $1.name.utf8.count + $1.value.count }
        collections["ARGS_COMBINED_SIZE"] = [("", Array(String(combined).utf8))]
    }

    /// Request body processing between phases 1 and 2: URL-encoded forms and JSON become ARGS_POST,
    /// XML text becomes `XML:/*`; REQUEST_BODY is set for URL-encoded bodies and bodies no processor
    /// parses (or when forced).
    mutating func processBody() {
        guard !request.body.isEmpty else { return }
        let contentType = request.headers.first { $0.name.lowercased() == "content-type" }?.value.lowercased() ?? ""
        // Without a ctl, the processor follows the content type, as ModSecurity's recommended
        // configuration does (its rules 200000 and 200001 pick XML and JSON).
        let processor = bodyProcessor ?? (contentType.hasPrefix("application/x-www-form-urlencoded") ? "URLENCODED"
            : contentType.hasPrefix("multipart/form-data") ? "MULTIPART"
            : contentType.range(of: #"^(?:application(?:/soap\+|/)|text/)xml"#, options: .regularExpression) != nil ? "XML"
            : contentType.hasPrefix("application/json") ? "JSON" : nil)
        collections["REQBODY_PROCESSOR"] = [("", Array((processor ?? "").utf8))]
        let text = String(decoding: request.body, as: UTF8.self)
        switch processor {
        case "URLENCODED":
            refreshArgs(post: Self.split(text, pairs: "&").map { (String(decoding: Self.decode($0.0), as: UTF8.self), Self.decode($0.1)) })
            collections["REQUEST_BODY"] = [("", request.body)]
        case "JSON":
            var values: [Value] = []
            if let json = try? JSONSerialization.jsonObject(with: Data(request.body), options: [.fragmentsAllowed]) { Self.flatten(json, "json", into: &values) } else {
                collections["REQBODY_ERROR"] = [("", Array("1".utf8))]
            }
            refreshArgs(post: values)
        case "XML":
            // `XML:/*` is the text of every element, `XML://@*` every attribute value.
            let stripped = text.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
            var values: [Value] = [("/*", Array(stripped.utf8))]
            let tags = Self.tagPattern(), attributes = Self.attributePattern()
            for tag in tags.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let tagRange = Range(tag.range, in: text) else { continue }
                let tagText = String(text[tagRange])
                for attribute in attributes.matches(in: tagText, range: NSRange(tagText.startIndex..., in: tagText)) {
                    for group in 1...2 {
                        if let r = Range(attribute.range(at: group), in: tagText) { values.append(("//@*", Array(tagText[r].utf8))) }
                    }
                }
            }
            collections["XML"] = values
        case "MULTIPART":
            processMultipart(contentType: request.headers.first { $0.name.lowercased() == "content-type" }?.value ?? "")
        case nil:
            // No processor: the raw body is still inspected as REQUEST_BODY (ModSecurity keeps it).
            collections["REQUEST_BODY"] = [("", request.body)]
        default:
            break
        }
        if forceBody { collections["REQUEST_BODY"] = [("", request.body)] }
    }

    /// `multipart/form-data` as ModSecurity's parser reads it: fields become ARGS_POST, file parts
    /// FILES (field → file name), FILES_NAMES, FILES_SIZES and FILES_COMBINED_SIZE, every part header
    /// line MULTIPART_PART_HEADERS (keyed by the part's name), and each irregularity sets its flag and
    /// MULTIPART_STRICT_ERROR: a quoted or spaced boundary, data before the first or after the last
    /// boundary, LF-only lines, folded headers, a part without a form-data name, bad quoting, a
    /// missing final boundary. A body that cannot be read at all sets REQBODY_ERROR.
    mutating func processMultipart(contentType: String) {
        var flags: [String: Bool] = ["MULTIPART_BOUNDARY_QUOTED": false, "MULTIPART_BOUNDARY_WHITESPACE": false, "MULTIPART_DATA_BEFORE": false,
                                     "MULTIPART_DATA_AFTER": false, "MULTIPART_HEADER_FOLDING": false, "MULTIPART_LF_LINE": false, "MULTIPART_CRLF_LF_LINES": false,
                                     "MULTIPART_INVALID_PART": false, "MULTIPART_INVALID_QUOTING": false, "MULTIPART_INVALID_HEADER_FOLDING": false,
                                     "MULTIPART_FILE_LIMIT_EXCEEDED": false, "MULTIPART_MISSING_SEMICOLON": false]
        func finish(error: Bool, unmatched: Bool) {
            for (name, value) in flags { collections[name] = [("", Array((value ? "1" : "0").utf8))] }
            collections["MULTIPART_UNMATCHED_BOUNDARY"] = [("", Array((unmatched ? "1" : "0").utf8))]
            let strict = error || unmatched || flags.values.contains(true)
            collections["MULTIPART_STRICT_ERROR"] = [("", Array((strict ? "1" : "0").utf8))]
            if error { collections["REQBODY_ERROR"] = [("", Array("1".utf8))] }
        }
        // The boundary parameter, possibly quoted (a flag), never empty.
        var boundary: String?
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pieces = parameter.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, pieces[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = String(pieces[1])
            if value != value.trimmingCharacters(in: .whitespaces) { flags["MULTIPART_BOUNDARY_WHITESPACE"] = true; value = value.trimmingCharacters(in: .whitespaces) }
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { flags["MULTIPART_BOUNDARY_QUOTED"] = true; value = String(value.dropFirst().dropLast()) }
            boundary = value
        }
        guard let boundary, !boundary.isEmpty, boundary.count <= 70 else { finish(error: true, unmatched: false); return }
        let body = request.body
        let delimiter = Array("--\(boundary)".utf8)
        // Delimiter positions: at the start of the body or right after a line break.
        var positions: [Int] = []
        var index = 0
        while index + delimiter.count <= body.count {
            if (index == 0 || body[index - 1] == 0x0A), body[index..<(index + delimiter.count)].elementsEqual(delimiter) {
                positions.append(index)
                index += delimiter.count
            } else {
                index += 1
            }
        }
        guard let first = positions.first else { finish(error: true, unmatched: false); return }
        if first > 0, body[..<first].contains(where: { $0 != 0x0D && $0 != 0x0A }) { flags["MULTIPART_DATA_BEFORE"] = true }
        var post: [Value] = [], files: [Value] = [], fileNames: [Value] = [], sizes: [Value] = [], partHeaders: [Value] = []
        var names: [Value] = [], filenames: [Value] = []
        var combined = 0, closed = false, unmatched = false
        for (number, start) in positions.enumerated() {
            let after = start + delimiter.count
            if body.count >= after + 2, body[after] == 0x2D, body[after + 1] == 0x2D {   // the closing delimiter
                closed = true
                let rest = body[(after + 2)...]
                if rest.contains(where: { $0 != 0x0D && $0 != 0x0A }) { flags["MULTIPART_DATA_AFTER"] = true }
                break
            }
            let end = number + 1 < positions.count ? positions[number + 1] : body.count
            var part = Array(body[after..<end])
            // A part runs to the line break before the next delimiter.
            if part.last == 0x0A { part.removeLast(); if part.last == 0x0D { part.removeLast() } else { flags["MULTIPART_LF_LINE"] = true } }
            guard part.first == 0x0D || part.first == 0x0A else { unmatched = true; continue }   // "--boundaryX": not this boundary
            var lines: [[UInt8]] = [], cursor = 0
            var headerEnd: Int?
            while cursor < part.count {
                guard let newline = part[cursor...].firstIndex(of: 0x0A) else { break }
                var line = Array(part[cursor..<newline])
                if line.last == 0x0D { line.removeLast() } else if cursor > 0 { flags["MULTIPART_LF_LINE"] = true }
                cursor = newline + 1
                if line.isEmpty, !lines.isEmpty || cursor > 2 { headerEnd = cursor; break }
                if !line.isEmpty { lines.append(line) }
            }
            guard let valueStart = headerEnd else { flags["MULTIPART_INVALID_PART"] = true; continue }
            var headers: [(name: String, value: String)] = []
            for line in lines {
                let text = String(decoding: line, as: UTF8.self)
                if text.first == " " || text.first == "\t" {
                    flags["MULTIPART_HEADER_FOLDING"] = true
                    if headers.isEmpty { flags["MULTIPART_INVALID_HEADER_FOLDING"] = true } else { headers[headers.count - 1].value += " " + text.trimmingCharacters(in: .whitespaces) }
                    continue
                }
                guard let colon = text.firstIndex(of: ":") else { flags["MULTIPART_INVALID_PART"] = true; continue }
                headers.append((String(text[..<colon]).trimmingCharacters(in: .whitespaces), String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
            guard let disposition = headers.first(where: { $0.name.lowercased() == "content-disposition" })?.value,
                  disposition.lowercased().hasPrefix("form-data") else { flags["MULTIPART_INVALID_PART"] = true; continue }
            var fieldName: String?, fileName: String?
            for parameter in disposition.split(separator: ";").dropFirst() {
                let pieces = parameter.split(separator: "=", maxSplits: 1)
                guard pieces.count == 2 else { continue }
                let key = pieces[0].trimmingCharacters(in: .whitespaces).lowercased()
                var value = pieces[1].trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("\"") {
                    guard value.count >= 2, value.hasSuffix("\"") else { flags["MULTIPART_INVALID_QUOTING"] = true; continue }
                    value = String(value.dropFirst().dropLast())
                } else if value.contains("'") || value.contains("\"") {
                    flags["MULTIPART_INVALID_QUOTING"] = true
                }
                if key == "name" { fieldName = value } else if key == "filename" { fileName = value }
            }
            if disposition.lowercased().hasPrefix("form-data"), disposition.count > "form-data".count,
               disposition.dropFirst("form-data".count).first != ";" { flags["MULTIPART_MISSING_SEMICOLON"] = true }
            guard let name = fieldName else { flags["MULTIPART_INVALID_PART"] = true; continue }
            for header in headers { partHeaders.append((name.lowercased(), Array("\(header.name): \(header.value)".utf8))) }
            names.append(("", Array(name.utf8)))
            let value = Array(part[valueStart...])
            if let fileName {
                files.append((name, Array(fileName.utf8)))
                fileNames.append((name, Array(name.utf8)))
                sizes.append((name, Array(String(value.count).utf8)))
                filenames.append(("", Array(fileName.utf8)))
                combined += value.count
            } else {
                post.append((name, value))
            }
        }
        if !closed { unmatched = true }
        collections["FILES"] = files
        collections["FILES_NAMES"] = fileNames
        collections["FILES_SIZES"] = sizes
        collections["FILES_COMBINED_SIZE"] = [("", Array(String(combined).utf8))]
        collections["MULTIPART_PART_HEADERS"] = partHeaders
        collections["MULTIPART_NAME"] = names
        collections["MULTIPART_FILENAME"] = filenames
        refreshArgs(post: post)
        finish(error: false, unmatched: unmatched)
    }

    static func tagPattern() -> NSRegularExpression { try! NSRegularExpression(pattern: #"<[^>]+>"#) }
    static func attributePattern() -> NSRegularExpression { try! NSRegularExpression(pattern: #"[\w:.-]+\s*=\s*(?:"([^"]*)"|'([^']*)')"#) }

    static func flatten(_ value: Any, _ prefix: String, into values: inout [Value]) {
        if let object = value as? [String: Any] {
            for (key, child) in object.sorted(by: { $0.key < $1.key }) { flatten(child, prefix + "." + key, into: &values) }
        } else if let array = value as? [Any] {
            for (index, child) in array.enumerated() { flatten(child, prefix + "." + String(index), into: &values) }
        } else if value is NSNull {
            values.append((prefix, []))
        } else if let string = value as? String {
            values.append((prefix, Array(string.utf8)))
        } else {
            values.append((prefix, Array("\(value)".utf8)))
        }
    }

    // MARK: Running

    mutating func run(phase: Int) {
        var skipTo: String?
        for entry in rules.entries {
            switch entry {
            case .marker(let name):
                if skipTo == name { skipTo = nil }
            case .rule(let rule):
                guard rule.phase == phase, skipTo == nil else { continue }
                if removedIDs.contains(where: { $0.contains(rule.id) }) { continue }
                if rule.tags.contains(where: { tag in removedTags.contains { $0.matches(tag) } }) { continue }
                // As in ModSecurity, each link's non-disruptive actions (setvar, ctl) run as soon as
                // that link matches, so a chained rule can test what its starter set.
                guard evaluate(rule, starter: rule) else { continue }
                perform(rule.actions, rule: rule)
                var chainMatched = true
                for link in rule.chained {
                    guard evaluate(link, starter: rule) else { chainMatched = false; break }
                    perform(link.actions, rule: rule)
                }
                guard chainMatched else { continue }
                if rule.log, rule.id != 0 {
                    matches.append(.init(id: rule.id, message: expand(rule.action("msg") ?? "", rule: rule), tags: rule.tags))
                }
                if rule.disruptive == "deny" || rule.disruptive == "drop" {
                    denied = true
                    if let code = rule.action("status").flatMap(Int.init) { status = code }
                    if configuration.mode == .block { return }
                }
                if let marker = rule.skipAfter { skipTo = marker }
            }
        }
    }

    /// Values of a rule's targets, exclusions applied.
    func values(_ rule: WAFRule, starter: WAFRule) -> [Value] {
        var result: [Value] = []
        let exclusions = rule.targets.filter(\.excluded) + removedTargets.filter { removal in
            (removal.id == starter.id) || (removal.tag.map { pattern in starter.tags.contains { pattern.matches($0) } } ?? false)
        }.map(\.target)
        for target in rule.targets where !target.excluded {
            var selected = collection(target.collection)
            if let key = target.key {
                let caseInsensitive = SecLangParser.caseInsensitive.contains(target.collection)
                selected = selected.filter { caseInsensitive ? $0.name.lowercased() == key : $0.name == key }
            } else if let pattern = target.keyPattern, let compiled = rules.patterns[pattern] {
                selected = selected.filter { compiled.matches($0.name) }
            }
            selected = selected.filter { value in
                !exclusions.contains { exclusion in
                    guard exclusion.collection == target.collection else { return false }
                    if let key = exclusion.key { return value.name.lowercased() == key.lowercased() }
                    if let pattern = exclusion.keyPattern { return (rules.patterns[pattern] ?? (try? CompiledPattern("(?i)" + pattern)))?.matches(value.name) ?? false }
                    return true
                }
            }
            if target.counted {
                result.append(("&" + target.collection, Array(String(selected.count).utf8)))
            } else {
                result += selected.map { ("\(target.collection):\($0.name)", $0.value) }
            }
        }
        return result
    }

    func collection(_ name: String) -> [Value] {
        switch name {
        case "TX": return tx.map { ($0.key, Array($0.value.utf8)) }
        case "MATCHED_VARS": return matchedVars
        case "MATCHED_VAR": return matchedVars.last.map { [("", $0.value)] } ?? []
        case "MATCHED_VAR_NAME": return matchedVars.last.map { [("", Array($0.name.utf8))] } ?? []
        case "MATCHED_VARS_NAMES": return matchedVars.map { ($0.name, Array($0.name.utf8)) }
        default: return collections[name] ?? []
        }
    }

    /// Runs one rule's operator over its values; records matched variables and captures.
    mutating func evaluate(_ rule: WAFRule, starter: WAFRule) -> Bool {
        guard rule.supported else { return false }
        if rule.op.name == "unconditionalMatch", rule.targets.isEmpty { return true }
        let argument = rule.argumentHasMacro ? expand(rule.op.argument, rule: starter) : rule.op.argument
        var matched: [Value] = []
        let limit = configuration.maximumInspectedValueLength
        for var value in values(rule, starter: starter) {
            if value.value.count > limit, !value.name.hasPrefix("TX:"), !value.name.hasPrefix("&") {
                value.value = Array(value.value.prefix(limit))
                oversized = true
            }
            var candidates: [[UInt8]]
            if rule.multiMatch {
                candidates = [value.value]
                var current = value.value
                for name in rule.transformations {
                    current = WAFTransformations.apply(name, current)
                    candidates.append(current)
                }
            } else if rule.transformations.isEmpty {
                candidates = [value.value]
            } else {
                let key = TransformKey(value: value.value, chain: rule.transformations)
                if let cached = transformed[key] {
                    candidates = [cached]
                } else {
                    let result = rule.transformations.reduce(value.value) { WAFTransformations.apply($1, $0) }
                    transformed[key] = result
                    candidates = [result]
                }
            }
            for candidate in candidates {
                let (hit, captures) = apply(rule, argument: argument, to: candidate)
                if hit != rule.op.negated {
                    matched.append((value.name, candidate))
                    if rule.capture, let captures { for (index, group) in captures.enumerated() { tx[String(index)] = group } }
                    break
                }
            }
        }
        guard !matched.isEmpty else { return false }
        matchedVars = matched
        return true
    }

    func apply(_ rule: WAFRule, argument: String, to value: [UInt8]) -> (Bool, [String]?) {
        switch rule.op.name {
        case "rx":
            guard let pattern = rules.patterns[argument] ?? (try? CompiledPattern(argument)) else { return (false, nil) }
            if rule.capture {
                let groups = pattern.firstMatch(value.latin1)
                return (groups != nil, groups)
            }
            return (pattern.matches(value.latin1), nil)
        case "pm", "pmFromFile", "pmf":
            return (rules.phraseMatchers[argument]?.matches(value) ?? false, nil)
        case "contains": return (value.latin1.contains(argument), nil)
        case "containsWord": return (value.latin1.range(of: "\\b" + NSRegularExpression.escapedPattern(for: argument) + "\\b", options: .regularExpression) != nil, nil)
        case "beginsWith": return (value.latin1.hasPrefix(argument), nil)
        case "endsWith": return (value.latin1.hasSuffix(argument), nil)
        case "streq": return (value.latin1 == argument, nil)
        case "strmatch": return (value.latin1.contains(argument), nil)
        case "within": return (!value.isEmpty && argument.contains(value.latin1), nil)
        case "eq", "ge", "gt", "le", "lt":
            let a = Int(value.latin1.trimmingCharacters(in: .whitespaces)) ?? 0, b = Int(argument.trimmingCharacters(in: .whitespaces)) ?? 0
            switch rule.op.name {
            case "eq": return (a == b, nil)
            case "ge": return (a >= b, nil)
            case "gt": return (a > b, nil)
            case "le": return (a <= b, nil)
            default: return (a < b, nil)
            }
        case "validateByteRange": return (ByteRanges(argument).violated(by: value), nil)
        case "validateUrlEncoding": return (WAFEncodingChecks.invalidURLEncoding(value), nil)
        case "validateUtf8Encoding": return (WAFEncodingChecks.invalidUTF8(value), nil)
        case "ipMatch": return (IPRanges(argument).contains(value.latin1), nil)
        case "unconditionalMatch": return (true, nil)
        default: return (false, nil)
        }
    }

    // MARK: Actions

    mutating func perform(_ actions: [(name: String, value: String)], rule: WAFRule) {
        for action in actions {
            switch action.name {
            case "setvar": setvar(action.value, rule: rule)
            case "ctl": control(action.value, rule: rule)
            default: continue
            }
        }
    }

    mutating func setvar(_ text: String, rule: WAFRule) {
        var expression = text
        let delete = expression.hasPrefix("!")
        if delete { expression.removeFirst() }
        let parts = expression.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = expand(parts[0], rule: rule).lowercased()
        guard name.hasPrefix("tx.") else { return }
        let key = String(name.dropFirst(3))
        if delete { tx[key] = nil; return }
        var value = parts.count > 1 ? expand(parts[1], rule: rule) : "1"
        if value.hasPrefix("+") || value.hasPrefix("-"), let delta = Int(value) {
            value = String((Int(tx[key] ?? "0") ?? 0) + delta)
        }
        tx[key] = value
    }

    mutating func control(_ text: String, rule: WAFRule) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return }
        switch parts[0] {
        case "ruleRemoveById":
            for piece in parts[1].split(separator: " ") {
                let bounds = piece.split(separator: "-").compactMap { Int($0) }
                if let low = bounds.first { removedIDs.append(low...(bounds.count > 1 ? bounds[1] : low)) }
            }
        case "ruleRemoveByTag":
            if let pattern = try? CompiledPattern(parts[1]) { removedTags.append(pattern) }
        case "ruleRemoveTargetByTag", "ruleRemoveTargetById":
            let pieces = parts[1].split(separator: ";", maxSplits: 1).map(String.init)
            guard pieces.count == 2, let target = SecLangParser.targets(pieces[1]).first else { return }
            if parts[0] == "ruleRemoveTargetById" { removedTargets.append((nil, Int(pieces[0]), target)) } else {
                removedTargets.append((try? CompiledPattern(pieces[0]), nil, target))
            }
        case "requestBodyProcessor": bodyProcessor = parts[1].uppercased()
        case "forceRequestBodyVariable": forceBody = parts[1].lowercased() == "on"
        default: return
        }
    }

    /// Expands `%{tx.name}`, `%{MATCHED_VAR}`, `%{MATCHED_VAR_NAME}`, `%{rule.id}`, `%{REQUEST_HEADERS.host}`, ….
    func expand(_ text: String, rule: WAFRule) -> String {
        guard text.contains("%{") else { return text }
        var out = "", rest = Substring(text)
        while let start = rest.range(of: "%{") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { out += rest[start.lowerBound...]; return out }
            let name = rest[start.upperBound..<end].lowercased()
            out += macro(name, rule: rule)
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    func macro(_ name: String, rule: WAFRule) -> String {
        if name.hasPrefix("tx.") { return tx[String(name.dropFirst(3))] ?? "" }
        switch name {
        case "matched_var": return matchedVars.last.map { $0.value.latin1 } ?? ""
        case "matched_var_name": return matchedVars.last?.name ?? ""
        case "rule.id": return String(rule.id)
        case "reqbody_processor": return collections["REQBODY_PROCESSOR"]?.first.map { $0.value.latin1 } ?? ""
        default:
            let pieces = name.split(separator: ".", maxSplits: 1).map(String.init)
            guard pieces.count == 2 else { return "" }
            return collection(pieces[0].uppercased()).first { $0.name.lowercased() == pieces[1] }.map { $0.value.latin1 } ?? ""
        }
    }
}
