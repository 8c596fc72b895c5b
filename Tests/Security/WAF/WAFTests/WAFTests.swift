import Foundation
import NimbusCore
import NimbusTesting
@testable import NimbusWAF
import Testing
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Synchronization

@Suite("WAF engine")
struct WAFTests {
    @Test("the bundled CRS loads; a SQL injection is denied at paranoia 1 and an ordinary request passes")
    func crsBlocks() throws {
        let waf = WAF(rules: try .coreRuleSet())
        let headers: [(name: String, value: String)] = [("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"), ("Accept", "text/html")]
        let attack = waf.evaluate(WAFRequest(method: "GET", uri: "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", headers: headers))
        #expect(attack.denied && attack.anomalyScore >= 5, "\(attack.matchedIDs.sorted())")
        #expect(attack.matchedIDs.contains(949110))
        let ordinary = waf.evaluate(WAFRequest(method: "GET", uri: "/search?q=blue+running+shoes&page=2", headers: headers))
        #expect(!ordinary.denied && ordinary.anomalyScore == 0, "\(ordinary.matchedIDs.sorted())")
        let form = waf.evaluate(WAFRequest(method: "POST", uri: "/login", headers: headers + [("Content-Type", "application/x-www-form-urlencoded")],
                                           body: Array("user=ada&next=%3Cscript%3Ealert(1)%3C%2Fscript%3E".utf8)))
        #expect(form.denied, "\(form.matchedIDs.sorted())")
    }

    @Test("detection mode reports the same matches without denying")
    func detectionMode() throws {
        let rules = try WAFRuleSet.coreRuleSet()
        let request = WAFRequest(method: "GET", uri: "/?file=../../../../etc/passwd", headers: [("Host", "x"), ("User-Agent", "curl/8"), ("Accept", "*/*")])
        let blocking = WAF(rules: rules).evaluate(request)
        let detecting = WAF(rules: rules, configuration: .init(mode: .detect)).evaluate(request)
        #expect(blocking.denied && detecting.denied)
        #expect(detecting.matchedIDs.isSuperset(of: blocking.matchedIDs))
    }

    @Test("a value longer than the inspection limit is denied with 413 (detect mode reports the same), or inspected by its prefix when allowed")
    func oversized() throws {
        let rules = try WAFRuleSet.coreRuleSet()
        let request = WAFRequest(method: "POST", uri: "/comment", headers: [("Host", "x"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*"),
                                                                          ("Content-Type", "application/x-www-form-urlencoded")],
                                 body: Array(("text=" + String(repeating: "padding ", count: 1000) + "%3Cscript%3Ealert(1)%3C/script%3E").utf8))
        let blocked = WAF(rules: rules).evaluate(request)
        #expect(blocked.denied && blocked.status == 413 && blocked.oversized)
        let detected = WAF(rules: rules, configuration: .init(mode: .detect)).evaluate(request)
        #expect(detected.oversized && detected.denied && detected.status == 413)
        var prefixOnly = WAF.Configuration()
        prefixOnly.oversizedValues = .inspectPrefix
        let padded = WAF(rules: rules, configuration: prefixOnly).evaluate(request)
        #expect(!padded.denied, "the payload after 4 KiB of padding is beyond the inspected prefix: that is the trade-off .inspectPrefix makes")
        prefixOnly.maximumInspectedValueLength = 16384
        #expect(WAF(rules: rules, configuration: prefixOnly).evaluate(request).denied)
    }

    @Test("patterns that start with a run get a lookbehind that keeps their first match", arguments: [
        (#"(\d+)-(\d+)"#, #"(?<!\d)(\d+)-(\d+)"#),
        (#"[a-z]+x|abc"#, #"(?<![a-z])[a-z]+x|abc"#),
        (#".*\.php$"#, #"(?<!.).*\.php$"#),
        (#"a+b"#, #"a+b"#),
        (#"[a-z]*?x"#, #"[a-z]*?x"#),
        (#"(\d+|x)y"#, #"(\d+|x)y"#),
    ] as [(String, String)])
    func pruning(pattern: String, expected: String) throws {
        #expect(CompiledPattern.pruneRunStarts(pattern) == expected)
        let original = try NSRegularExpression(pattern: pattern), pruned = try CompiledPattern(pattern)
        for subject in ["12-34", "x 123-456 y", "abcx", "zzzabc", "/a/b.php", "index.php\nx", "aab", "qqqx", "99y"] {
            let expectedMatch = original.firstMatch(in: subject, range: NSRange(subject.startIndex..., in: subject)).flatMap { Range($0.range, in: subject) }.map { String(subject[$0]) }
            #expect(pruned.firstMatch(subject)?.first == expectedMatch, "\(pattern) on \(subject)")
        }
    }

    @Test("rules outside the supported subset are refused when loading, naming file and line")
    func refusals() {
        for text in ["SecRule ARGS \"@inspectFile /bin/x\" \"id:1,phase:2,deny\"", "SecRule ARGS \"@rx a\" \"id:1,t:frobnicate\"",
                     "SecRuleScript /x.lua", "SecRule ARGS \"@rx a"] {
            #expect(throws: NimbusError.self, "\(text)") { _ = try WAFRuleSet(files: [("test.conf", text)]) }
        }
    }

    @Test("a small rule set: chains, skipAfter, setvar arithmetic, exclusions, counting, capture")
    func semantics() throws {
        let text = #"""
        SecRule REQUEST_HEADERS:User-Agent "@rx ^$" "id:10,phase:1,pass,log,setvar:tx.score=+3"
        SecRule &REQUEST_HEADERS:Host "@eq 0" "id:11,phase:1,pass,log,setvar:tx.score=+2"
        SecRule ARGS|!ARGS:safe "@rx (?i)(union)\s+select" "id:20,phase:2,pass,log,capture,setvar:tx.word=%{tx.1},chain"
            SecRule REQUEST_METHOD "@streq GET" "t:none,setvar:tx.score=+5"
        SecRule TX:score "@lt 5" "id:30,phase:2,pass,nolog,skipAfter:END"
        SecRule TX:score "@ge 5" "id:31,phase:2,deny,log,status:406"
        SecMarker END
        """#
        let waf = WAF(rules: try WAFRuleSet(files: [("test.conf", text)]))
        let attack = waf.evaluate(WAFRequest(method: "GET", uri: "/?q=UNION%20select%201", headers: [("Host", "h"), ("User-Agent", "x")]))
        #expect(attack.matchedIDs == [20, 31] && attack.denied && attack.status == 406)
        let excluded = waf.evaluate(WAFRequest(method: "GET", uri: "/?safe=union%20select", headers: [("Host", "h"), ("User-Agent", "x")]))
        #expect(excluded.matchedIDs.isEmpty && !excluded.denied)
        let post = waf.evaluate(WAFRequest(method: "POST", uri: "/", headers: [("Host", "h"), ("User-Agent", "x"), ("Content-Type", "application/x-www-form-urlencoded")],
                                           body: Array("q=union select".utf8)))
        #expect(post.matchedIDs.isEmpty, "the chain needs GET")
        let headless = waf.evaluate(WAFRequest(method: "GET", uri: "/", headers: [("User-Agent", "")]))
        #expect(headless.matchedIDs == [10, 11, 31], "\(headless.matchedIDs.sorted())")
    }

    @Test("transformations follow ModSecurity", arguments: [
        ("urlDecodeUni", "a%27b%u0027c%uff41+d", "a'b'ca d"),
        ("jsDecode", #"\x3cscript\u003e\101"#, "<script>A"),
        ("htmlEntityDecode", "&lt;a&#x3e;&#39;&quot&amp;", "<a>'\"&"),
        ("cssDecode", #"\6a avascript\3a"#, "javascript:"),
        ("cmdLine", #"C:\W"in\dows ;  CMD.exe /c"#, "c:windows cmd.exe/c"),
        ("replaceComments", "un/**/ion/* x", "un ion "),
        ("normalizePath", "/a/./b/../../c//d", "/c/d"),
        ("normalizePathWin", #"\a\..\..\b"#, "/b"),
        ("compressWhitespace", "a \t\n b", "a b"),
        ("removeWhitespace", "s e l\tect", "select"),
        ("utf8toUnicode", "é", "%u00e9"),
        ("length", "hello", "5"),
        ("base64Decode", "PHNjcmlwdD4=", "<script>"),
        ("escapeSeqDecode", #"\x41\102\n"#, "AB\n"),
    ] as [(String, String, String)])
    func transformation(name: String, input: String, expected: String) {
        #expect(String(decoding: WAFTransformations.apply(name, Array(input.utf8)), as: UTF8.self) == expected)
    }
}

@Suite("WAF middleware")
struct WAFMiddlewareTests {
    @Test("an attack gets 403 and never reaches the route; an ordinary request and its body pass through unchanged; an oversized body gets 413")
    func middleware() async throws {
        let reached = Reached()
        let router = Router()
        router.add(middleware: WAFMiddleware(waf: WAF(rules: try .coreRuleSet()), maximumBodySize: 4096))
        router.post("/comment") { request, _ -> String in
            reached.hit()
            return String(buffer: try await request.body.collect(upTo: 4096))
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            let headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .userAgent: "Mozilla/5.0", .accept: "text/html"]
            try await client.execute(uri: "/comment", method: .post, headers: headers, body: ByteBuffer(string: "text=nice+post")) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "text=nice+post", "\(response.status)")
            }
            try await client.execute(uri: "/comment", method: .post, headers: headers,
                                     body: ByteBuffer(string: "text=%3Cscript%3Edocument.cookie%3C%2Fscript%3E")) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/comment", method: .post, headers: headers, body: ByteBuffer(string: String(repeating: "a", count: 5000))) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
        #expect(reached.count == 1)
    }
}

final class Reached: Sendable {
    private let value = Mutex(0)
    func hit() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}
