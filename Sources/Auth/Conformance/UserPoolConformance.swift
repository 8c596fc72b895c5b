import Foundation
import NimbusAuth
import NimbusCore
import NimbusTesting
import Testing

/// The behaviour every ``UserPoolDriver`` must have behind ``UserPool``, run against each one
/// (the embedded pool, Cognito on moto, …). Usernames are unique per check, so checks may share a
/// pool; checks of a capability the driver does not claim are skipped by design.
///
/// ```swift
/// @Test(arguments: UserPoolConformance.checks)
/// func conformance(_ check: UserPoolConformance.Check) async throws {
///     try await check.run(UserPoolConformance.Harness { try await LocalUserPoolDriver() })
/// }
/// ```
public enum UserPoolConformance {
    /// How a check reaches the pool under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any UserPoolDriver
        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any UserPoolDriver) { self.makeDriver = makeDriver }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// A password every pool's default policy accepts.
    public static let password: Secret<String> = "Conformance-Pa55!"
    static let temporary: Secret<String> = "Temporary-Pa55!"

    static func check(_ name: String, needs: UserPoolCapabilities = [], _ body: @escaping @Sendable (UserPool, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let pool = UserPool(driver: try await harness.makeDriver(), configuration: .init(retry: .none))
            guard pool.capabilities.isSuperset(of: needs) else { return }
            let username = "conf-\(UUID().uuidString.prefix(8).lowercased())@example.com"   // an email: pools keyed by email take it as it is
            try await pool.closing { pool in try await body(pool, username) }
        }
    }

    static func code(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do {
            try await body()
            return nil
        } catch let error as NimbusError {
            return error.code
        } catch {
            return .internal
        }
    }

    static func rejection(_ body: () async throws -> Void) async -> JWTRejection.Reason? {
        do {
            try await body()
            return nil
        } catch let error as NimbusError {
            return (error.underlying as? JWTRejection)?.reason
        } catch {
            return nil
        }
    }

    /// A confirmed user with ``password``, made through the administrator calls.
    static func confirmedUser(_ pool: UserPool, _ username: String, attributes: [String: String] = [:]) async throws -> PoolTokens {
        try await pool.createUser(username, attributes: attributes, temporaryPassword: temporary)
        try await pool.setPassword(username, password: password, permanent: true)
        return try await pool.signIn(username, password: password).tokens()
    }

    /// The name of the check that a wrong password is refused (a pool that does not verify
    /// password proofs — moto's SRP — leaves it out, saying so).
    public static let wrongPassword = "a wrong password and an unknown user are refused alike"

    /// Every check.
    public static let checks: [Check] = [
        check("a temporary password must be replaced at the first sign-in; the tokens then verify", needs: .adminCreate) { pool, username in
            let created = try await pool.createUser(username, attributes: ["email": username], temporaryPassword: temporary)
            #expect(created.status == .forceChangePassword && created.username == username)
            guard case .newPasswordRequired(let challenge) = try await pool.signIn(username, password: temporary) else {
                Issue.record("sign-in with a temporary password must ask for a new one")
                return
            }
            #expect(challenge.username == username)
            let tokens = try await pool.completeNewPassword(challenge, newPassword: password).tokens()
            #expect(try await pool.user(username).status == .confirmed)
            let id = try await pool.verify(tokens.idToken.reveal(), use: .id)
            let access = try await pool.verify(tokens.accessToken.reveal(), use: .access)
            #expect(id.username == username && access.username == username)
            #expect(id.subject == created.subject && access.subject == created.subject)
            #expect(try await pool.user(username).attributes["email"] == username)
            #expect(tokens.refreshToken != nil)
            #expect(try await pool.signIn(username, password: password).tokens().idToken.reveal().isEmpty == false)
        },
        check(wrongPassword) { pool, username in
            _ = try await confirmedUser(pool, username)
            await #expect(code { _ = try await pool.signIn(username, password: "Wrong-Pa55word!") } == .unauthenticated)
            await #expect(code { _ = try await pool.signIn("nobody-" + username, password: password) } == .unauthenticated)
        },
        check("a self sign-up cannot sign in until it is confirmed", needs: .selfSignUp) { pool, username in
            let user = try await pool.signUp(username, password: password, attributes: ["email": username])
            #expect(user.status == .unconfirmed)
            #expect(try await pool.user(username).status == .unconfirmed)
            await #expect(code { _ = try await pool.signIn(username, password: password) } == .failedPrecondition)
            await #expect(code { try await pool.signUp(username, password: password) } == .alreadyExists)
            try await pool.confirm(username)
            #expect(try await pool.user(username).status == .confirmed)
            _ = try await pool.signIn(username, password: password).tokens()
        },
        check("a refresh token gives new tokens; global sign-out revokes it", needs: .globalSignOut) { pool, username in
            let tokens = try await confirmedUser(pool, username)
            let refreshToken = try #require(tokens.refreshToken)
            let refreshed = try await pool.refresh(refreshToken, username: username)
            #expect(try await pool.verify(refreshed.accessToken.reveal(), use: .access).username == username)
            try await pool.signOut(everywhere: tokens.accessToken)
            if let rotated = refreshed.refreshToken {   // a pool that rotates refresh tokens revokes the new one too
                await #expect(code { _ = try await pool.refresh(rotated, username: username) } == .unauthenticated)
            }
            await #expect(code { _ = try await pool.refresh(refreshToken, username: username) } == .unauthenticated)
            await #expect(code { _ = try await pool.refresh("not-a-refresh-token", username: username) } == .unauthenticated)
        },
        check("a disabled user cannot sign in; enabling lets them back") { pool, username in
            _ = try await confirmedUser(pool, username)
            try await pool.setEnabled(username, false)
            #expect(try await pool.user(username).isEnabled == false)
            await #expect(code { _ = try await pool.signIn(username, password: password) } == .unauthenticated)
            try await pool.setEnabled(username, true)
            _ = try await pool.signIn(username, password: password).tokens()
        },
        check("group membership shows in new tokens and goes away when removed", needs: .groups) { pool, username in
            _ = try await confirmedUser(pool, username)
            let group = "\(username.prefix { $0 != "@" })-admins"
            try await pool.createGroup(group)
            await #expect(code { try await pool.createGroup(group) } == .alreadyExists)
            try await pool.addUser(username, toGroup: group)
            #expect(try await pool.groups(of: username) == [group])
            let tokens = try await pool.signIn(username, password: password).tokens()
            #expect(try await pool.verify(tokens.accessToken.reveal(), use: .access).groups == [group])
            #expect(try await pool.verify(tokens.idToken.reveal(), use: .id).groups == [group])
            try await pool.removeUser(username, fromGroup: group)
            #expect(try await pool.groups(of: username).isEmpty)
            let after = try await pool.signIn(username, password: password).tokens()
            #expect(try await pool.verify(after.accessToken.reveal(), use: .access).groups.isEmpty)
            await #expect(code { try await pool.addUser(username, toGroup: "\(username.prefix { $0 != "@" })-no-such-group") } == .notFound)
            try await pool.deleteGroup(group)
        },
        check("swapped, tampered and truncated tokens are refused") { pool, username in
            let tokens = try await confirmedUser(pool, username)
            let id = tokens.idToken.reveal(), access = tokens.accessToken.reveal()
            if id != access {   // pools that issue one token for both uses (Identity Platform) have nothing to swap
                #expect(await rejection { _ = try await pool.verify(id, use: .access) } != nil)
                #expect(await rejection { _ = try await pool.verify(access, use: .id) } != nil)
            }
            var parts = access.split(separator: ".").map(String.init)
            var signature = Array(parts[2])
            signature[signature.count / 2] = signature[signature.count / 2] == "A" ? "B" : "A"   // a middle character: every bit counts
            parts[2] = String(signature)
            #expect(await rejection { _ = try await pool.verify(parts.joined(separator: "."), use: .access) } == .badSignature)
            let payload = try #require(Base64URL.decode(access.split(separator: ".")[1]).flatMap { try? JSONValue.parse($0) })
            if case .object(var claims) = payload {
                claims["username"] = "someone-else"
                claims["cognito:groups"] = ["admins"]
                claims["groups"] = ["admins"]
                let forged = [access.split(separator: ".")[0], Substring(Base64URL.encode(Array(JSONValue.object(claims).description.utf8))),
                              access.split(separator: ".")[2]].joined(separator: ".")
                #expect(await rejection { _ = try await pool.verify(forged, use: .access) } == .badSignature)
            }
            #expect(await rejection { _ = try await pool.verify(String(access.prefix(40)), use: .access) } == .malformed)
        },
        check("administrator calls on unknown users are notFound; a second user with the same name is alreadyExists", needs: .adminCreate) { pool, username in
            await #expect(code { _ = try await pool.user(username) } == .notFound)
            await #expect(code { try await pool.setEnabled(username, false) } == .notFound)
            await #expect(code { try await pool.deleteUser(username) } == .notFound)
            try await pool.createUser(username, temporaryPassword: temporary)
            await #expect(code { try await pool.createUser(username, temporaryPassword: temporary) } == .alreadyExists)
            try await pool.deleteUser(username)
            await #expect(code { _ = try await pool.user(username) } == .notFound)
        },
        check("a deleted user cannot sign in") { pool, username in
            _ = try await confirmedUser(pool, username)
            try await pool.deleteUser(username)
            await #expect(code { _ = try await pool.signIn(username, password: password) } == .unauthenticated)
        },
    ]
}
