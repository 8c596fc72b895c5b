import Foundation
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// A running `nimbus` process whose standard error is read while it runs.
final class RunningNimbus: Sendable {
    let process: Process
    private final class Text: Sendable { let value = Mutex("") }
    private let errorText = Text()
    private let output = Pipe(), errors = Pipe()

    init(_ arguments: [String]) throws {
        process = Process()
        process.executableURL = try Peer.nimbusBinary()
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        errors.fileHandleForReading.readabilityHandler = { [errorText] handle in
            let data = handle.readAvailableBytes()
            errorText.value.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    /// Waits until standard error matches `pattern` and returns its first capture group.
    func waitForError(_ pattern: String, seconds: Double = 30) async throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = errorText.value.withLock { $0 }
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), let range = Range(match.range(at: 1), in: text) {
                return String(text[range])
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw NimbusError(.deadlineExceeded, "nimbus never printed /\(pattern)/; it printed: \(errorText.value.withLock { $0 })")
    }

    /// Waits for the exit and returns the status and standard output.
    func finish() async throws -> (status: Int32, stdout: String) {
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        errors.fileHandleForReading.readabilityHandler = nil
        return (process.terminationStatus, String(decoding: output.fileHandleForReading.readAllBytes(), as: UTF8.self))
    }
}

@Suite("nimbus auth login against glewlwyd", .requires(.glewlwyd), .serialized, .timeLimit(.minutes(2)))
struct AuthLoginCLITests {
    @Test("the device flow: nimbus shows a code, the user approves it at glewlwyd, nimbus prints the tokens")
    func deviceFlow() async throws {
        let running = try RunningNimbus(["auth", "login", "--issuer", try Peer.glewlwyd.url(), "--client-id", "nimbus-public", "--scope", "openid", "--scope", "orders",
                                         "--timeout", "60"])
        defer { if running.process.isRunning { running.process.terminate() } }
        let verification = try await running.waitForError("open (\\S+) and enter the code")
        let code = try await running.waitForError("enter the code (\\S+)")
        var browser = try GlewlwydBrowser()
        try await browser.signIn("ada", "ada-password-1")
        try await browser.consent("nimbus-public", scopes: ["openid", "orders"])
        let approval = try await browser.send(.GET, verification + "?code=\(code)&g_continue")
        #expect([200, 302].contains(approval.status))
        let (status, stdout) = try await running.finish()
        #expect(status == 0, "\(stdout)")
        let json = try JSONValue.parse(Array(stdout.utf8))
        #expect(json["access_token"]?.stringValue?.split(separator: ".").count == 3)
        #expect(json["scope"]?.stringValue?.contains("orders") == true)
    }

    @Test("--browser: the code flow with PKCE through a loopback redirect")
    func browserFlow() async throws {
        let running = try RunningNimbus(["auth", "login", "--issuer", try Peer.glewlwyd.url(), "--client-id", "nimbus-public", "--browser", "--port", "8998",
                                         "--timeout", "60"])
        defer { if running.process.isRunning { running.process.terminate() } }
        let url = try await running.waitForError("\\n(http\\S+code_challenge\\S+)")
        var browser = try GlewlwydBrowser()
        try await browser.signIn("ada", "ada-password-1")
        try await browser.consent("nimbus-public", scopes: ["openid"])
        let callback = try await browser.authorize(url)
        #expect(callback.hasPrefix("http://127.0.0.1:8998/callback"))
        let landed = try await browser.send(.GET, callback)
        #expect(landed.status == 200 && landed.body.contains("Signed in"))
        let (status, stdout) = try await running.finish()
        #expect(status == 0, "\(stdout)")
        let json = try JSONValue.parse(Array(stdout.utf8))
        #expect(json["id_token_claims"]?["sub"]?.stringValue != nil)
    }
}
