import ArgumentParser
import Foundation
import NimbusAuth
import NimbusCore
import NimbusMFA

/// `nimbus auth`: one-time codes and JWTs from the command line.
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "TOTP codes and JWT inspection.",
        subcommands: [TOTPCommand.self, JWTCommand.self, Login.self]
    )

    /// `nimbus auth login --issuer URL`: device authorization (RFC 8628) or code + PKCE in a browser.
    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign in at an OpenID Connect issuer and print the tokens as JSON.",
            discussion: "The device flow (default) shows a code to type at the issuer; --browser runs the code flow with PKCE and a loopback redirect (http://127.0.0.1:PORT/callback, registered with the issuer).")
        @Option(help: "The issuer URL (its discovery document is read).") var issuer: String
        @Option(name: .customLong("client-id"), help: "The client id (a public client).") var clientID: String
        @Option(help: "Scopes to ask for (repeatable).") var scope: [String] = ["openid"]
        @Flag(help: "Use the code flow with PKCE in a browser instead of the device flow.") var browser = false
        @Option(help: "The loopback port for --browser (0: any free port).") var port = 0
        @Option(help: "How long to wait for the user, in seconds.") var timeout = 600

        func run() async throws {
            let client = try await OAuth2Client.discover(issuer: issuer, configuration: .init(clientID: clientID))
            let tokens: OAuth2Tokens
            if browser {
                tokens = try await LoopbackLogin(client: client, scopes: scope, port: port, timeout: .seconds(timeout)).run()
            } else {
                let device = try await client.startDeviceAuthorization(scopes: scope)
                var message = "To sign in, open \(device.verificationURI) and enter the code \(device.userCode)\n"
                if let complete = device.verificationURIComplete { message += "(or open \(complete))\n" }
                FileHandle.standardError.write(Data(message.utf8))
                let limit = Duration.seconds(timeout)
                tokens = try await withThrowingTaskGroup(of: OAuth2Tokens?.self) { group in
                    group.addTask { try await client.pollDeviceAuthorization(device) }
                    group.addTask { try await Task.sleep(for: limit); return nil }
                    defer { group.cancelAll() }
                    guard let first = try await group.next(), let tokens = first else {
                        throw NimbusError(.deadlineExceeded, "nobody approved the code within \(limit)")
                    }
                    return tokens
                }
            }
            var output: [String: JSONValue] = ["access_token": .string(tokens.accessToken.reveal()), "token_type": .string(tokens.tokenType),
                                               "scope": .string(tokens.scopes.sorted().joined(separator: " "))]
            if let expires = tokens.expiresAt { output["expires_at"] = .number(expires.timeIntervalSince1970.rounded()) }
            if let refresh = tokens.refreshToken { output["refresh_token"] = .string(refresh.reveal()) }
            if let id = tokens.idToken { output["id_token"] = .string(id) }
            if let claims = tokens.idTokenClaims { output["id_token_claims"] = .object(claims.values) }
            try Output.printJSON(output)
        }
    }
}

/// `nimbus auth totp new|code|verify`.
struct TOTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "totp",
        abstract: "Make a TOTP secret and its otpauth:// URI, print a code, or check one.",
        subcommands: [New.self, Code.self, Verify.self]
    )

    struct Parameters: ParsableArguments {
        @Option(help: "The secret, base32 (as authenticator apps show it).") var secret: String
        @Option(help: "Digits per code (6 to 10).") var digits = 6
        @Option(help: "SHA1, SHA256 or SHA512.") var algorithm = "SHA1"
        @Option(help: "The time step in seconds.") var period = 30
        @Option(help: "The Unix time to use instead of now.") var time: Int?

        func totp() throws -> TOTP {
            guard let bytes = Base32.decode(secret) else { throw ValidationError("--secret is not base32") }
            guard let hash = OTPAlgorithm(rawValue: algorithm.uppercased().replacingOccurrences(of: "-", with: "")) else {
                throw ValidationError("--algorithm '\(algorithm)' is not SHA1, SHA256 or SHA512")
            }
            do { return try TOTP(secret: Secret(bytes), digits: digits, algorithm: hash, period: .seconds(period)) }
            catch let error as NimbusError { throw ValidationError(error.message) }
        }

        var date: Date { time.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date() }
    }

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A new random secret and its otpauth:// URI (show it as a QR code).")
        @Option(help: "The account name shown in the app.") var account: String
        @Option(help: "The service's name.") var issuer: String?
        @Option(help: "SHA1, SHA256 or SHA512.") var algorithm = "SHA1"
        @Option(help: "Digits per code.") var digits = 6
        @Option(help: "The time step in seconds.") var period = 30
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard let hash = OTPAlgorithm(rawValue: algorithm.uppercased()) else { throw ValidationError("--algorithm '\(algorithm)' is not SHA1, SHA256 or SHA512") }
            let uri = OTPAuthURI(secret: OTPAuthURI.newSecret(for: hash), account: account, issuer: issuer, algorithm: hash, digits: digits, period: period)
            _ = try uri.totp()
            let secret = Base32.encode(uri.secret.reveal())
            if json { try Output.printJSON(["secret": secret, "uri": uri.uri]) } else {
                print("secret: \(secret)")
                print("uri:    \(uri.uri)")
            }
        }
    }

    struct Code: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The code for a secret now (or at --time).")
        @OptionGroup var parameters: Parameters
        func run() async throws { print(try parameters.totp().code(at: parameters.date)) }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a code against a secret (±1 step); exit 1 when it does not match.")
        @OptionGroup var parameters: Parameters
        @Argument(help: "The code.") var code: String
        @Option(help: "Steps accepted either side of the current one.") var window = 1

        func run() async throws {
            let totp = try parameters.totp(), date = parameters.date
            let verifier = TOTPVerifier(configuration: .init(window: window), now: { date })
            do {
                let step = try await verifier.verify(code, with: totp, account: "cli")
                let offset = Int64(step) - Int64(totp.step(at: date))
                print("valid (step \(step)\(offset == 0 ? "" : ", \(offset > 0 ? "+" : "")\(offset)"))")
            } catch let error as NimbusError {
                FileHandle.standardError.write(Data("invalid: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

/// `nimbus auth jwt decode|verify`.
struct JWTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwt",
        abstract: "Show a JWT's header and claims, or verify it against a JWKS.",
        subcommands: [Decode.self, Verify.self]
    )

    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the header and claims WITHOUT checking the signature.")
        @Argument(help: "The token (or - to read it from standard input).") var token: String

        func run() async throws {
            let text = try readToken(token)
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let header = Base64URL.decode(parts[0]).flatMap({ try? JSONValue.parse($0) }),
                  let claims = Base64URL.decode(parts[1]).flatMap({ try? JSONValue.parse($0) }) else {
                throw ValidationError("not a compact JWS: three base64url parts of JSON")
            }
            try Output.printJSON(["header": header, "claims": claims])
            FileHandle.standardError.write(Data("(signature not checked; use `nimbus auth jwt verify --jwks URL`)\n".utf8))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify a token's signature and claims; exit 1 when it is refused.")
        @Argument(help: "The token (or - to read it from standard input).") var token: String
        @Option(help: "The issuer's JWKS URL.") var jwks: String?
        @Option(name: .customLong("jwks-file"), help: "A JWKS document on disk.") var jwksFile: String?
        @Option(help: "An accepted issuer (repeatable).") var issuer: [String] = []
        @Option(help: "An accepted audience (repeatable).") var audience: [String] = []
        @Option(help: "Seconds of clock skew tolerated.") var leeway = 60

        func run() async throws {
            let keys: any JWTKeyProvider
            switch (jwks, jwksFile) {
            case (let url?, nil): keys = RemoteJWKS(url: url)
            case (nil, let path?): keys = try await JWTKeySet(jwks: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            default: throw ValidationError("give --jwks URL or --jwks-file PATH")
            }
            let verifier = JWTVerifier(keys: keys, configuration: .init(issuers: Set(issuer), audiences: Set(audience), leeway: .seconds(leeway)))
            try await Output.refusing {
                let verified = try await verifier.verify(try readToken(token))
                try Output.printJSON(["algorithm": JSONValue.string(verified.algorithm.rawValue), "kid": verified.keyID.map(JSONValue.string) ?? .null,
                                      "claims": .object(verified.claims.values)])
            }
        }
    }
}

private func readToken(_ argument: String) throws -> String {
    let text = argument == "-" ? String(decoding: FileHandle.standardInput.readAllBytes(), as: UTF8.self) : argument
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}
