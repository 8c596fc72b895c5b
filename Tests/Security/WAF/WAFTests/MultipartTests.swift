import Foundation
import NimbusCore
@testable import NimbusWAF
import Testing

@Suite("WAF multipart/form-data bodies")
struct MultipartTests {
    static let headers: [(name: String, value: String)] = [("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"), ("Accept", "text/html")]

    static func body(_ parts: [(headers: [String], value: String)], boundary: String = "----nimbus7MA4YWxk", closing: Bool = true, lineBreak: String = "\r\n") -> [UInt8] {
        var text = ""
        for part in parts {
            text += "--\(boundary)\(lineBreak)" + part.headers.map { $0 + lineBreak }.joined() + lineBreak + part.value + lineBreak
        }
        if closing { text += "--\(boundary)--\(lineBreak)" }
        return Array(text.utf8)
    }

    static func transaction(_ body: [UInt8], contentType: String = "multipart/form-data; boundary=----nimbus7MA4YWxk") throws -> WAFTransaction {
        let request = WAFRequest(method: "POST", uri: "/upload", headers: headers + [("Content-Type", contentType)], body: body)
        var transaction = WAFTransaction(request: request, rules: try WAFRuleSet(files: []), configuration: .init())
        transaction.processBody()
        return transaction
    }

    static func flag(_ transaction: WAFTransaction, _ name: String) -> String {
        String(decoding: transaction.collections[name]?.first?.value ?? [], as: UTF8.self)
    }

    @Test("fields become ARGS_POST, file parts FILES/FILES_NAMES/FILES_SIZES, header lines MULTIPART_PART_HEADERS; a well-formed body has no strict error")
    func parse() throws {
        let body = Self.body([(["Content-Disposition: form-data; name=\"title\""], "Holiday"),
                              (["Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"", "Content-Type: image/jpeg"], "\u{FF}JPEGDATA")])
        let transaction = try Self.transaction(body)
        #expect(transaction.collections["ARGS_POST"]?.map(\.name) == ["title"] && transaction.collections["ARGS_POST"]?.first?.value == Array("Holiday".utf8))
        #expect(transaction.collections["FILES"]?.first.map { ($0.name, String(decoding: $0.value, as: UTF8.self)) } ?? ("", "") == ("photo", "beach.jpg"))
        #expect(transaction.collections["FILES_NAMES"]?.map(\.name) == ["photo"] && Self.flag(transaction, "FILES_COMBINED_SIZE") == String("\u{FF}JPEGDATA".utf8.count))
        #expect(transaction.collections["MULTIPART_PART_HEADERS"]?.contains { $0.name == "photo" && String(decoding: $0.value, as: UTF8.self) == "Content-Type: image/jpeg" } == true)
        #expect(Self.flag(transaction, "MULTIPART_STRICT_ERROR") == "0" && Self.flag(transaction, "REQBODY_ERROR") == "0")
    }

    @Test("irregular bodies set their flags and MULTIPART_STRICT_ERROR", arguments: [
        ("a quoted boundary", "MULTIPART_BOUNDARY_QUOTED"), ("data before the first boundary", "MULTIPART_DATA_BEFORE"),
        ("no closing boundary", "MULTIPART_UNMATCHED_BOUNDARY"), ("a folded header", "MULTIPART_HEADER_FOLDING"),
        ("a part without a name", "MULTIPART_INVALID_PART"), ("an unterminated quote", "MULTIPART_INVALID_QUOTING"),
        ("LF-only lines", "MULTIPART_LF_LINE"), ("data after the closing boundary", "MULTIPART_DATA_AFTER"),
    ])
    func flags(_ irregularity: String, _ flag: String) throws {
        let field = (headers: ["Content-Disposition: form-data; name=\"a\""], value: "1")
        var contentType = "multipart/form-data; boundary=----nimbus7MA4YWxk"
        var body: [UInt8]
        switch irregularity {
        case "a quoted boundary": contentType = "multipart/form-data; boundary=\"----nimbus7MA4YWxk\""; body = Self.body([field])
        case "data before the first boundary": body = Array("preamble\r\n".utf8) + Self.body([field])
        case "no closing boundary": body = Self.body([field], closing: false)
        case "a folded header": body = Self.body([(["Content-Disposition: form-data;", " name=\"a\""], "1")])
        case "a part without a name": body = Self.body([(["Content-Disposition: form-data"], "1")])
        case "an unterminated quote": body = Self.body([(["Content-Disposition: form-data; name=\"a"], "1")])
        case "LF-only lines": body = Self.body([field], lineBreak: "\n")
        default: body = Self.body([field]) + Array("epilogue".utf8)
        }
        let transaction = try Self.transaction(body, contentType: contentType)
        #expect(Self.flag(transaction, flag) == "1", "\(irregularity)")
        #expect(Self.flag(transaction, "MULTIPART_STRICT_ERROR") == "1", "\(irregularity)")
    }

    @Test("a body without a boundary is a body error")
    func noBoundary() throws {
        let transaction = try Self.transaction(Self.body([(["Content-Disposition: form-data; name=\"a\""], "1")]), contentType: "multipart/form-data")
        #expect(Self.flag(transaction, "REQBODY_ERROR") == "1" && Self.flag(transaction, "MULTIPART_STRICT_ERROR") == "1")
    }

    @Test("with the CRS: SQL injection in a multipart field is denied, a _charset_ part (922100) and Content-Transfer-Encoding (922120) are caught, a clean upload passes")
    func coreRuleSet() throws {
        let waf = WAF(rules: try .coreRuleSet())
        func evaluate(_ parts: [(headers: [String], value: String)]) -> WAFResult {
            let body = Self.body(parts)
            return waf.evaluate(WAFRequest(method: "POST", uri: "/upload", headers: Self.headers + [("Content-Type", "multipart/form-data; boundary=----nimbus7MA4YWxk"),
                                                                                                     ("Content-Length", String(body.count))], body: body))
        }
        let sqli = evaluate([(["Content-Disposition: form-data; name=\"q\""], "1' UNION SELECT password FROM users--")])
        #expect(sqli.denied && sqli.matchedIDs.contains(where: { (942000..<943000).contains($0) }), "\(sqli.matchedIDs.sorted())")
        let charset = evaluate([(["Content-Disposition: form-data; name=\"_charset_\""], "utf-7"), (["Content-Disposition: form-data; name=\"a\""], "b")])
        #expect(charset.matchedIDs.contains(922100), "\(charset.matchedIDs.sorted())")
        let encoding = evaluate([(["Content-Disposition: form-data; name=\"a\"", "Content-Transfer-Encoding: base64"], "YQ==")])
        #expect(encoding.matchedIDs.contains(922120), "\(encoding.matchedIDs.sorted())")
        let clean = evaluate([(["Content-Disposition: form-data; name=\"title\""], "Holiday at the beach"),
                              (["Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"", "Content-Type: image/jpeg"], "JPEGDATA")])
        #expect(!clean.denied && clean.anomalyScore == 0, "\(clean.matchedIDs.sorted())")
    }
}
