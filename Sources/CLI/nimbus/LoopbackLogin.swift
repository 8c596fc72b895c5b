import Foundation
import Hummingbird
import NimbusAuth
import NimbusCore

/// The code flow with PKCE for a command-line program (RFC 8252): a one-shot HTTP listener on the
/// loopback interface receives the redirect, the browser is opened at the authorization URL.
struct LoopbackLogin {
    let client: OAuth2Client
    let scopes: [String]
    let port: Int
    let timeout: Duration

    func run() async throws -> OAuth2Tokens {
        let (callbacks, continuation) = AsyncStream.makeStream(of: String.self)
        let router = Router()
        router.get("/callback") { request, _ -> Response in
            continuation.yield("http://127.0.0.1\(request.uri.description)")
            let page = "<html><body><p>Signed in; you can close this window and return to the terminal.</p></body></html>"
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: .init(string: page)))
        }
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                              onServerRunning: { channel in ports.continuation.yield(channel.localAddress?.port ?? 0) })
        return try await withThrowingTaskGroup(of: OAuth2Tokens?.self) { group in
            group.addTask { try await app.runService(); return nil }
            var iterator = ports.stream.makeAsyncIterator()
            guard let bound = await iterator.next() else { throw NimbusError(.unavailable, "the loopback listener did not start") }
            let redirect = "http://127.0.0.1:\(bound)/callback"
            let configured = try OAuth2Client(provider: client.provider, configuration: .init(clientID: client.configuration.clientID, redirectURI: redirect))
            let request = try configured.authorizationRequest(scopes: scopes)
            FileHandle.standardError.write(Data("Opening \(request.url.split(separator: "?").first ?? "") in a browser (or open this URL):\n\(request.url)\n".utf8))
            let opener = Process()
            opener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            opener.arguments = ["xdg-open", request.url]
            opener.standardOutput = FileHandle.nullDevice
            opener.standardError = FileHandle.nullDevice
            try? opener.run()                 // no browser here: the URL is printed above
            group.addTask {
                for await callback in callbacks { return try await configured.exchangeCode(callbackURL: callback, for: request) }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw NimbusError(.deadlineExceeded, "no sign-in came back within \(timeout)")
            }
            while let result = try await group.next() {
                if let tokens = result {
                    group.cancelAll()
                    return tokens
                }
            }
            throw NimbusError(.internal, "the loopback listener stopped")
        }
    }
}
