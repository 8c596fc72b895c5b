import Foundation
import Crypto
@testable import NimbusAWS
import NimbusCore
import Testing

/// One case of the suites: a raw HTTP request.
struct RawRequest {
    var method: String
    var path: String
    var rawQuery: String?
    var headers: [(String, String)]
    var body: [UInt8]

    init(_ text: String) {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        let (head, body) = normalized.range(of: "\n\n").map { (String(normalized[..<$0.lowerBound]), String(normalized[$0.upperBound...])) } ?? (normalized, "")
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        method = requestLine[0]
        let target = requestLine.dropFirst().dropLast().joined(separator: " ")
        if let question = target.firstIndex(of: "?") {
            path = String(target[..<question])
            rawQuery = String(target[target.index(after: question)...])
        } else {
            path = target
        }
        headers = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].1 += "\n" + line          // a folded continuation line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        self.body = Array(body.utf8)
    }

    var sigV4: SigV4.Request { SigV4.Request(method: method, path: path, rawQuery: rawQuery, headers: headers, body: body) }
}

enum SuiteFiles {
    static let root = Bundle.module.url(forResource: "sigv4", withExtension: nil, subdirectory: "Fixtures")!

    static func text(_ url: URL) -> String? { try? String(contentsOf: url, encoding: .utf8) }

    /// Case directories (recursively: botocore nests normalize-path and post-sts-token).
    static func cases(_ suite: String, marker: (URL) -> Bool) -> [URL] {
        let base = root.appendingPathComponent(suite)
        let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isDirectoryKey])!
        var found: [URL] = []
        for case let url as URL in enumerator where (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true && marker(url) {
            found.append(url)
        }
        return found.sorted { $0.path < $1.path }
    }
}

@Suite("SigV4 test suites")
struct SigV4SuiteTests {
    static let awsCAuth = SuiteFiles.cases("aws-c-auth-v4") { FileManager.default.fileExists(atPath: $0.appendingPathComponent("context.json").path) }
    static let botocore = SuiteFiles.cases("botocore-aws4") { url in
        FileManager.default.fileExists(atPath: url.appendingPathComponent(url.lastPathComponent + ".req").path)
    }

    @Test func everyCaseIsThere() {
        #expect(Self.awsCAuth.count >= 38, "aws-c-auth v4 cases: \(Self.awsCAuth.count)")
        #expect(Self.botocore.count >= 34, "botocore cases: \(Self.botocore.count)")
    }

    @Test("aws-c-auth v4", arguments: awsCAuth)
    func awsCAuthCase(_ directory: URL) throws {
        let context = try JSONValue.parse(try Data(contentsOf: directory.appendingPathComponent("context.json")))
        let credentials = AWSCredentials(accessKeyID: context["credentials"]?["access_key_id"]?.stringValue ?? "",
                                         secretAccessKey: Secret(context["credentials"]?["secret_access_key"]?.stringValue ?? ""),
                                         sessionToken: context["credentials"]?["token"]?.stringValue.map { Secret($0) })
        let date = ISO8601DateFormatter().date(from: context["timestamp"]?.stringValue ?? "")!
        let options = SigV4.Options(normalizePath: context["normalize"]?.boolValue ?? true, doubleEncodePath: true,
                                    contentSHA256Header: context["sign_body"]?.boolValue ?? false,
                                    sessionTokenAfterSigning: context["omit_session_token"]?.boolValue ?? false)
        let signer = SigV4(service: context["service"]?.stringValue ?? "", region: context["region"]?.stringValue ?? "", options: options)
        let request = RawRequest(SuiteFiles.text(directory.appendingPathComponent("request.txt"))!).sigV4
        let header = signer.sign(request, credentials: credentials, date: date)
        #expect(header.canonicalRequest == SuiteFiles.text(directory.appendingPathComponent("header-canonical-request.txt")))
        #expect(header.stringToSign == SuiteFiles.text(directory.appendingPathComponent("header-string-to-sign.txt")))
        #expect(header.signature == SuiteFiles.text(directory.appendingPathComponent("header-signature.txt"))?.trimmingCharacters(in: .whitespacesAndNewlines))
        if let expected = SuiteFiles.text(directory.appendingPathComponent("query-canonical-request.txt")) {
            var presigner = signer
            presigner.options.contentSHA256Header = false
            let query = presigner.presign(request, credentials: credentials, date: date, expires: context["expiration_in_seconds"]?.numberValue.map { Int($0) } ?? 3600)
            #expect(query.canonicalRequest == expected)
            #expect(query.stringToSign == SuiteFiles.text(directory.appendingPathComponent("query-string-to-sign.txt")))
            #expect(query.signature == SuiteFiles.text(directory.appendingPathComponent("query-signature.txt"))?.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test("botocore aws4_testsuite", arguments: botocore)
    func botocoreCase(_ directory: URL) throws {
        let name = directory.lastPathComponent
        func file(_ suffix: String) -> String? { SuiteFiles.text(directory.appendingPathComponent("\(name).\(suffix)")) }
        let raw = RawRequest(file("req")!)
        let stamp = raw.headers.first { $0.0.lowercased() == "x-amz-date" }!.1
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                         sessionToken: name.contains("with-session-token") ? Secret("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267") : nil)
        let signed = SigV4(service: "service", region: "us-east-1").sign(raw.sigV4, credentials: credentials, date: formatter.date(from: stamp)!)
        #expect(signed.canonicalRequest == file("creq"))
        #expect(signed.stringToSign == file("sts"))
        #expect(signed.headers.first { $0.name == "Authorization" }?.value == file("authz"))
    }

    @Test func s3PathsAreSignedAsSentAndPresignedWithUnsignedPayload() {
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
        let date = ISO8601DateFormatter().date(from: "2013-05-24T00:00:00Z")!
        // AWS's documented S3 example: GET /test.txt with a Range header, signed in the header.
        let get = SigV4.Request(method: "GET", path: "/test.txt", headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")])
        let signed = SigV4(service: "s3", region: "us-east-1", options: .s3).sign(get, credentials: credentials, date: date)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        // AWS's documented presigned URL example (UNSIGNED-PAYLOAD, 86400 s).
        var presign = SigV4.Options.s3
        presign.unsignedPayload = true
        let url = SigV4(service: "s3", region: "us-east-1", options: presign)
            .presign(SigV4.Request(method: "GET", path: "/test.txt", headers: [("Host", "examplebucket.s3.amazonaws.com")]), credentials: credentials, date: date, expires: 86_400)
        #expect(url.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        // S3 keeps repeated slashes and dot segments, and does not encode the path again.
        let s3 = SigV4(service: "s3", region: "us-east-1", options: .s3)
        #expect(s3.canonicalPath("/my-object//example//photo.user") == "/my-object//example//photo.user")
        #expect(s3.canonicalPath("/a%20b/c") == "/a%20b/c")
        #expect(SigV4(service: "service", region: "us-east-1").canonicalPath("/a%20b/c") == "/a%2520b/c", "other services encode twice")
    }

    @Test func amzDatesMatchFoundationsCalendarOnAnyDay() {
        let formatter = ISO8601DateFormatter()
        var generator = SystemRandomNumberGenerator()
        let signer = SigV4(service: "service", region: "us-east-1")
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: Secret("s"))
        let samples = [0, 951_782_400, 1_709_164_799, 4_107_542_399] + (0..<500).map { _ in Int.random(in: 0...4_102_444_800, using: &generator) }
        for seconds in samples {
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let expected = formatter.string(from: date).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
            let signed = signer.sign(SigV4.Request(method: "GET", path: "/", headers: [("Host", "h")]), credentials: credentials, date: date)
            #expect(signed.headers.first { $0.name == "X-Amz-Date" }?.value == expected, "\(seconds)")
        }
    }

    @Test func theNormalizationFastPathAgreesWithTheFullAlgorithm() {
        let signer = SigV4(service: "service", region: "us-east-1")
        for path in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "//a", "/a//", "/./a", "/a/.", "/a/..", "/a/../b", "/.hidden", "/..x", "/...", "/a/.../b"] {
            let expected = SigV4.uriEncode(SigV4Reference.normalize(path), keepSlash: true)
            #expect(signer.canonicalPath(path) == expected, "\(path)")
        }
    }

    @Test func thePreparedHMACEqualsSwiftCryptosHMAC() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 55, 56, 63, 64, 65, 200, 1000] {
            let key = SymmetricKey(data: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let prepared = message.withUnsafeBytes { PreparedHMAC(key: key).authenticationCode(for: $0) }
            #expect(Array(prepared) == Array(HMAC<SHA256>.authenticationCode(for: message, using: key)), "\(length) bytes")
        }
    }

    @Test func headerOrderAndGroupingAgreeWithASimpleSortOfLowerCasedNames() {
        // Names sharing a 16-byte prefix (the slow comparison), mixed case, blanks around names, repeated names in order.
        let headers = [("X-Amz-Meta-Long-Prefix-Beta", "2"), ("host", "h"), ("x-amz-meta-long-prefix-alpha", " a   b "), (" Content-Type ", "t"),
                       ("X-AMZ-META-LONG-PREFIX-BETA", "1"), ("x-amz-meta-long-prefix", "short"), ("User-Agent", "never signed"), ("X-Amz-Date", "replaced")]
        let signed = SigV4(service: "service", region: "us-east-1")
            .sign(SigV4.Request(method: "get", path: "/", headers: headers), credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: Secret("s")),
                  date: Date(timeIntervalSince1970: 0))
        let lines = signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "GET")
        #expect(Array(lines[3...9]) == ["content-type:t", "host:h", "x-amz-date:19700101T000000Z", "x-amz-meta-long-prefix:short",
                                        "x-amz-meta-long-prefix-alpha:a b", "x-amz-meta-long-prefix-beta:2,1", ""])
        #expect(lines[10] == "content-type;host;x-amz-date;x-amz-meta-long-prefix;x-amz-meta-long-prefix-alpha;x-amz-meta-long-prefix-beta")
    }

    @Test func secretsNeverShowInDescriptions() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: Secret("very-secret"), sessionToken: Secret("token-secret"))
        #expect(!"\(credentials)".contains("very-secret") && !"\(credentials)".contains("token-secret"))
    }
}

/// The full normalization, written independently of the fast path, for comparison.
enum SigV4Reference {
    static func normalize(_ path: String) -> String {
        var output: [String] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." { _ = output.popLast(); continue }
            output.append(String(segment))
        }
        let trailing = path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..")
        let joined = "/" + output.joined(separator: "/")
        return trailing && joined != "/" ? joined + "/" : joined
    }
}
