import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// Issue 15 §3: URLs that callers supply are fetched without reaching inward.
@Suite("Untrusted URL fetcher (SSRF)", .timeLimit(.minutes(1)))
struct UntrustedURLFetcherTests {
    static func v4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }

    static func v6(_ text: String) -> [UInt8] {
        var address = in6_addr()
        precondition(inet_pton(AF_INET6, text, &address) == 1, text)
        return withUnsafeBytes(of: address) { Array($0) }
    }

    @Test("addresses that reach inward are not public", arguments: [
        "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "240.0.0.1",
    ])
    func privateIPv4(_ address: String) {
        #expect(!UntrustedURLFetcher.isPublic(Self.v4(address)))
    }

    @Test("IPv6 loopback, unique-local, link-local, multicast and IPv4 inside IPv6", arguments: [
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1", "2001:db8::1",
    ])
    func privateIPv6(_ address: String) {
        #expect(!UntrustedURLFetcher.isPublic(Self.v6(address)))
    }

    @Test("public addresses pass")
    func publicAddresses() {
        for address in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "151.101.1.69"] {
            #expect(UntrustedURLFetcher.isPublic(Self.v4(address)), "\(address)")
        }
        for address in ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8"] {
            #expect(UntrustedURLFetcher.isPublic(Self.v6(address)), "\(address)")
        }
    }

    @Test("loopback, metadata and private hosts are refused after resolution, before any connection")
    func inwardHostsAreRefused() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/cat.png", reply: .response(status: 200, headers: [("Content-Type", "image/png")], body: ByteBuffer(bytes: [1, 2, 3])))
        let fetcher = UntrustedURLFetcher()
        let port = URL(string: server.baseURL)!.port!
        for url in [server.baseURL + "/cat.png", "http://localhost:\(port)/cat.png", "http://[::1]:\(port)/cat.png", "http://0x7f000001:\(port)/cat.png",
                    "http://2130706433:\(port)/cat.png", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/x.png"] {
            await #expect(throws: NimbusError.self, "\(url)") { try await fetcher.fetch(url) }
        }
        #expect(server.requests.isEmpty, "nothing may have reached the loopback server")
        do { _ = try await fetcher.fetch("http://localhost:\(port)/cat.png") } catch let error as NimbusError {
            #expect(error.code == .invalidArgument && error.message.contains("not a public address"), "\(error)")
        }
    }

    @Test("schemes, user-info, redirects, sizes and counts")
    func policyLimits() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/small.png", reply: .response(status: 200, headers: [("Content-Type", "image/png; q=1")], body: ByteBuffer(bytes: [9, 8, 7])))
        server.route(.GET, "/big.png", reply: .response(status: 200, headers: [], body: ByteBuffer(repeating: 1, count: 4096)))
        server.route(.GET, "/hop", reply: .response(status: 302, headers: [("Location", "http://169.254.169.254/latest/meta-data/")], body: ByteBuffer()))
        server.route(.GET, "/gone", reply: .json(404, #"{"error":"no"}"#))
        // Tests reach the local fake only because they allow private networks; everything else still applies.
        let fetcher = UntrustedURLFetcher(policy: .init(maxBytes: 1024, maxFetches: 2, allowPrivateNetworks: true))
        let small = try await fetcher.fetch(server.baseURL + "/small.png")
        #expect(Array(small.bytes.readableBytesView) == [9, 8, 7] && small.mediaType == "image/png")
        #expect(server.requests.first?.header("authorization") == nil, "no credentials travel with an untrusted fetch")
        for (url, words) in [(server.baseURL + "/big.png", "limit"), (server.baseURL + "/hop", "redirect"), (server.baseURL + "/gone", "HTTP 404"),
                             ("file:///etc/passwd", "http(s)"), ("ftp://example.com/x", "http(s)"),
                             (server.baseURL.replacingOccurrences(of: "http://", with: "http://user:pw@") + "/small.png", "user-info")] {
            do {
                _ = try await fetcher.fetch(url)
                Issue.record("\(url) was fetched")
            } catch let error as NimbusError {
                #expect(error.code == .invalidArgument && error.message.contains(words), "\(url): \(error)")
            }
        }
        #expect(server.requests.filter { $0.path == "/latest/meta-data/" }.isEmpty)
        let budget = fetcher.budget()
        _ = try await fetcher.fetch(server.baseURL + "/small.png", budget: budget)
        _ = try await fetcher.fetch(server.baseURL + "/small.png", budget: budget)
        await #expect(throws: NimbusError.self, "a third fetch in one call is over the budget of 2") {
            try await fetcher.fetch(server.baseURL + "/small.png", budget: budget)
        }
    }

    @Test("provider options add to a body but never replace what is set")
    func addingMissing() {
        let body: JSONValue = ["model": "m", "options": ["num_ctx": 4096, "num_predict": 100], "stream": false]
        let merged = body.addingMissing(["model": "other", "stream": true, "options": ["num_ctx": 1_000_000, "top_k": 5], "keep_alive": "1m"])
        #expect(merged == ["model": "m", "options": ["num_ctx": 4096, "num_predict": 100, "top_k": 5], "stream": false, "keep_alive": "1m"])
    }
}
