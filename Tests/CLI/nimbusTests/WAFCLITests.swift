import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus waf", .timeLimit(.minutes(2)))
struct WAFCLITests {
    @Test("check: a SQL injection exits 1 with the CRS rules that matched; an ordinary request exits 0; JSON output")
    func check() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("waf-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let attack = directory.appendingPathComponent("attack.http")
        try Data("GET /items?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n".utf8).write(to: attack)
        let refused = try await Binary.run(["waf", "check", attack.path])
        #expect(refused.status == 1 && refused.stdout.contains("DENIED") && refused.stdout.contains("942"), "\(refused.output)")
        let ordinary = directory.appendingPathComponent("ordinary.http")
        try Data("POST /comments HTTP/1.1\nHost: shop.example\nUser-Agent: Mozilla/5.0\nAccept: */*\nContent-Type: application/x-www-form-urlencoded\n\ntext=great+shoes".utf8).write(to: ordinary)
        let allowed = try await Binary.run(["waf", "check", ordinary.path])
        #expect(allowed.status == 0 && allowed.stdout.contains("allowed"), "\(allowed.output)")
        let json = try await Binary.run(["waf", "check", "--json", attack.path])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["denied"] as? Bool == true && (object["anomaly_score"] as? Int ?? 0) >= 5)
        let garbage = directory.appendingPathComponent("garbage.http")
        try Data("garbage".utf8).write(to: garbage)
        let unparsable = try await Binary.run(["waf", "check", garbage.path])
        #expect(unparsable.status != 0 && unparsable.output.contains("not an HTTP request"), "\(unparsable.output)")
    }
}
