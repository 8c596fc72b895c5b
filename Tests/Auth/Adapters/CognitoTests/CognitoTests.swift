import Crypto
import Foundation
import NimbusAWS
import NimbusAuth
import NimbusAuthConformance
@testable import NimbusAuthCognito
import NimbusCore
import NimbusTesting
import Testing

/// A user pool and two app clients (one with a secret) made once in moto — the moto without IAM
/// checks: the checked one lists `InitiateAuth` and `SignUp` as public operations but not
/// `RespondToAuthChallenge` or `GlobalSignOut`, and answers those unsigned calls (unsigned in
/// botocore's model and at AWS) with HTTP 500. Administrator calls are still signed.
enum MotoPool {
    struct Made: Sendable {
        let poolID: String
        let clientID: String
        let secretClientID: String
        let secret: Secret<String>
    }

    static func url() throws -> String {
        guard let url = Peer.setting("NIMBUS_PEER_MOTO_S3_URL") else { throw NimbusError(.unavailable, "no NIMBUS_PEER_MOTO_S3_URL; run scripts/peers up moto") }
        return url
    }

    static func aws() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try url(), maxAttempts: 1, environment: [:]))
    }

    static let shared = Task<Made, any Error> {
        let aws = try MotoPool.aws()
        let pool = try await aws.call("cognito-idp", "CreateUserPool", input: ["PoolName": .string("nimbus-\(UUID().uuidString.prefix(8))")]).output
        let poolID = try #require(pool["UserPool"]?["Id"]?.stringValue)
        let flows: JSONValue = ["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
        let plain = try await aws.call("cognito-idp", "CreateUserPoolClient", input: ["UserPoolId": .string(poolID), "ClientName": "web",
                                                                                     "ExplicitAuthFlows": flows]).output
        let secret = try await aws.call("cognito-idp", "CreateUserPoolClient", input: ["UserPoolId": .string(poolID), "ClientName": "server",
                                                                                      "ExplicitAuthFlows": flows, "GenerateSecret": true]).output
        return Made(poolID: poolID, clientID: try #require(plain["UserPoolClient"]?["ClientId"]?.stringValue),
                    secretClientID: try #require(secret["UserPoolClient"]?["ClientId"]?.stringValue),
                    secret: Secret(try #require(secret["UserPoolClient"]?["ClientSecret"]?.stringValue)))
    }

    static func driver(flow: CognitoUserPoolDriver.Configuration.Flow, withSecret: Bool = false) async throws -> CognitoUserPoolDriver {
        let made = try await shared.value
        let configuration = CognitoUserPoolDriver.Configuration(poolID: made.poolID, clientID: withSecret ? made.secretClientID : made.clientID,
                                                                clientSecret: withSecret ? made.secret : nil, flow: flow)
        return try CognitoUserPoolDriver(aws: try aws(), configuration: configuration)
    }
}

@Suite("Cognito user pools (moto)", .requires(.moto), .timeLimit(.minutes(3)))
struct CognitoUserPoolTests {
    /// moto answers any PASSWORD_VERIFIER signature with tokens (its SALT and SRP_B are random
    /// strings), so the wrong-password check runs on the password flow only; the SRP proof itself is
    /// checked against a verifier-holding server and pycognito in CognitoSRPTests.
    @Test("conformance, SRP sign-in", arguments: UserPoolConformance.checks.filter { $0.name != UserPoolConformance.wrongPassword })
    func conformanceSRP(_ check: UserPoolConformance.Check) async throws {
        try await check.run(UserPoolConformance.Harness { try await MotoPool.driver(flow: .srp) })
    }

    @Test("conformance, USER_PASSWORD_AUTH with a client secret", arguments: UserPoolConformance.checks)
    func conformancePassword(_ check: UserPoolConformance.Check) async throws {
        try await check.run(UserPoolConformance.Harness { try await MotoPool.driver(flow: .password, withSecret: true) })
    }

    @Test("a client with a secret refuses calls without the right SECRET_HASH")
    func secretHash() async throws {
        let made = try await MotoPool.shared.value
        let right = UserPool(driver: try await MotoPool.driver(flow: .password, withSecret: true))
        try await right.createUser("hash-\(UUID().uuidString.prefix(6))", temporaryPassword: "Temporary-Pa55!")
        let username = "hash-user-\(UUID().uuidString.prefix(6))"
        try await right.createUser(username, temporaryPassword: "Temporary-Pa55!")
        try await right.setPassword(username, password: UserPoolConformance.password)
        _ = try await right.signIn(username, password: UserPoolConformance.password).tokens()
        let wrong = try CognitoUserPoolDriver(aws: try MotoPool.aws(), configuration: .init(poolID: made.poolID, clientID: made.secretClientID,
                                                                                             clientSecret: "not-the-secret", flow: .srp))
        let error = await #expect(throws: NimbusError.self) { _ = try await UserPool(driver: wrong).signIn(username, password: UserPoolConformance.password) }
        #expect(error?.code == .unauthenticated)
        #expect(wrong.secretHash("ada") != nil && wrong.secretHash("ada") != wrong.secretHash("bob"))
    }

    @Test("public operations go unsigned, administrator operations signed")
    func signing() throws {
        let model = try AWSServiceModel.named("cognito-idp")
        for name in ["SignUp", "ConfirmSignUp", "InitiateAuth", "RespondToAuthChallenge", "GlobalSignOut"] {
            #expect(try model.operation(name).isUnsigned, "\(name)")
        }
        for name in ["AdminCreateUser", "AdminGetUser", "AdminAddUserToGroup", "CreateGroup"] {
            #expect(try model.operation(name).isUnsigned == false, "\(name)")
        }
    }

    @Test("the pool's JWKS is read from the configured endpoint; the issuer stays Cognito's")
    func keysLocation() async throws {
        let driver = try await MotoPool.driver(flow: .srp)
        #expect(await driver.jwks.url == "\(try MotoPool.url())/\(driver.configuration.poolID)/.well-known/jwks.json")
        #expect(driver.tokenPolicy.issuer == "https://cognito-idp.us-east-1.amazonaws.com/\(driver.configuration.poolID)")
        let aws = AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s"), environment: [:]))
        let real = try CognitoUserPoolDriver(aws: aws, configuration: .init(poolID: "eu-west-1_AbC123", clientID: "c"))
        #expect(await real.jwks.url == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json")
    }

    @Test("cognito:// needs a pool id and a client id, and keeps the pool id's case")
    func opener() async throws {
        let pool = try await UserPool.open("cognito://eu-west-1_AbC123?client_id=abc&flow=password", openers: .userPools.withCognito())
        let driver = try #require(pool.driver(as: CognitoUserPoolDriver.self))
        #expect(driver.configuration.poolID == "eu-west-1_AbC123" && driver.configuration.flow == .password && driver.configuration.region == "eu-west-1")
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("cognito://eu-west-1_AbC123", openers: .userPools.withCognito()) }
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("cognito://eu-west-1_AbC123?client_id=a&flow=magic", openers: .userPools.withCognito()) }
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("cognito://not-a-pool?client_id=a", openers: .userPools.withCognito()) }
    }
}
