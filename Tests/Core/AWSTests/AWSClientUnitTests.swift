import Foundation
import NIOHTTP1
import NimbusAWS
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

@Suite struct AWSEndpointAndXMLTests {
    @Test func endpointsFollowPartitionsGlobalServicesAndTheEnvironment() {
        let plain = AWSEndpointResolver(environment: [:])
        #expect(plain.resolve(.dynamoDB, region: "eu-west-1").url == "https://dynamodb.eu-west-1.amazonaws.com")
        #expect(plain.resolve(.sqs, region: "cn-north-1").url == "https://sqs.cn-north-1.amazonaws.com.cn")
        let iam = plain.resolve(.iam, region: "eu-west-1")
        #expect(iam.url == "https://iam.amazonaws.com" && iam.signingRegion == "us-east-1")
        #expect(plain.resolve(.iam, region: "cn-northwest-1").signingRegion == "cn-north-1")
        #expect(plain.resolve(.iam, region: "us-gov-east-1").url == "https://iam.us-gov.amazonaws.com")
        let environment = AWSEndpointResolver(environment: ["AWS_ENDPOINT_URL": "http://localhost:4566/", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm:1"])
        #expect(environment.resolve(.secretsManager, region: "us-east-1").url == "http://sm:1")
        #expect(environment.resolve(.s3, region: "us-east-1").url == "http://localhost:4566")
        let ignored = AWSEndpointResolver(environment: ["AWS_ENDPOINT_URL": "http://x", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"])
        #expect(ignored.resolve(.s3, region: "us-east-1").isCustom == false)
        #expect(AWSEndpointResolver(endpointURL: "http://explicit", environment: ["AWS_ENDPOINT_URL_S3": "http://env"]).resolve(.s3, region: "x").url == "http://explicit")
    }

    @Test func queryXMLBecomesJSONWithListsAndMaps() throws {
        let xml = try XMLElement.parse(Data("""
            <R xmlns="https://x"><Result><Name>a</Name><Tags><member><K>1</K></member><member><K>2</K></member></Tags>
            <Attrs><entry><key>x</key><value>1</value></entry></Attrs><One><member><K>only</K></member></One></Result></R>
            """.utf8))
        let json = xml["Result"]!.json
        #expect(json["Name"] == "a")
        #expect(json["Tags"]?.arrayValue?.count == 2 && json["One"]?.arrayValue?.count == 1, "a one-member list is still a list")
        #expect(json["Attrs"] == ["x": "1"])
        #expect(throws: NimbusError.self) { try XMLElement.parse(Data("not xml".utf8)) }
    }
}

@Suite("AWS credential sources", .timeLimit(.minutes(2)))
struct AWSCredentialTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func environmentAndProfilesWithCredentialProcess() async throws {
        let environment = try await EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"]).credentials()
        #expect(environment.accessKeyID == "AKIDENV" && environment.sessionToken?.reveal() == "t")
        await #expect(throws: NimbusError.self) { try await EnvironmentCredentialProvider(environment: [:]).credentials() }

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("creds.sh")
        try #"#!/bin/sh\necho '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "proc-secret", "SessionToken": "tok", "Expiration": "2030-01-01T00:00:00Z"}'\n"#
            .replacingOccurrences(of: "\\n", with: "\n").write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        try """
            [default]
            region = eu-central-1
            [profile process]
            credential_process = \(script.path)
            [profile broken]
            credential_process = /bin/false
            # a comment
            [profile chained]
            role_arn = arn:aws:iam::123456789012:role/x
            source_profile = chained2
            [profile chained2]
            role_arn = arn:aws:iam::123456789012:role/y
            source_profile = chained
            """.write(to: directory.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        try """
            [default]
            aws_access_key_id = AKIDFILE
            aws_secret_access_key = file-secret
            """.write(to: directory.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        let env = ["AWS_CONFIG_FILE": directory.appendingPathComponent("config").path, "AWS_SHARED_CREDENTIALS_FILE": directory.appendingPathComponent("credentials").path]
        let shared = AWSSharedConfig.load(environment: env)
        #expect(shared.profile("default")["region"] == "eu-central-1" && shared.profile("default")["aws_access_key_id"] == "AKIDFILE")
        #expect(try await ProfileCredentialProvider(profile: "default", environment: env).credentials().accessKeyID == "AKIDFILE")
        let process = try await ProfileCredentialProvider(profile: "process", environment: env).credentials()
        #expect(process.accessKeyID == "AKIDPROC" && process.sessionToken?.reveal() == "tok" && process.expiration != nil)
        await #expect(throws: NimbusError.self) { try await ProfileCredentialProvider(profile: "broken", environment: env).credentials() }
        do {
            _ = try await ProfileCredentialProvider(profile: "chained", environment: env).credentials()
            Issue.record("a source_profile cycle must be refused")
        } catch let error as NimbusError { #expect(error.message.contains("cycle"), "\(error)") }
        let client = AWSClient(configuration: .init(profile: "default", environment: env))
        #expect(client.region == "eu-central-1", "the profile's region")
        #expect(AWSClient(configuration: .init(environment: env.merging(["AWS_REGION": "ap-south-1"]) { $1 })).region == "ap-south-1")
    }

    @Test func containerAndInstanceMetadataEndpoints() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let body = #"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"c-secret","Token":"c-token","Expiration":"2030-01-01T00:00:00Z"}"#
        server.route(.GET, "/creds") { request in
            request.header("authorization") == "Bearer pod-token" ? .json(200, body) : .json(401, #"{"message":"no"}"#)
        }
        let container = try await ContainerCredentialProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/creds",
                                                                            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer pod-token"]).credentials()
        #expect(container.accessKeyID == "ASIACONTAINER" && container.sessionToken?.reveal() == "c-token")
        await #expect(throws: NimbusError.self) {
            try await ContainerCredentialProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/creds"]).credentials()
        }
        server.route(.PUT, "/latest/api/token") { request in
            request.header("x-aws-ec2-metadata-token-ttl-seconds") == "21600" ? .text(200, "imds-session") : .text(400, "no ttl")
        }
        server.route(.GET, "/latest/meta-data/iam/security-credentials/") { request in
            request.header("x-aws-ec2-metadata-token") == "imds-session" ? .text(200, "web-role\n") : .text(401, "")
        }
        server.route(.GET, "/latest/meta-data/iam/security-credentials/web-role") { request in
            request.header("x-aws-ec2-metadata-token") == "imds-session"
                ? .json(200, #"{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"i","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#) : .text(401, "")
        }
        let imds = try await InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": server.baseURL]).credentials()
        #expect(imds.accessKeyID == "ASIAIMDS")
        await #expect(throws: NimbusError.self) { try await InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_DISABLED": "true"]).credentials() }
    }

    @Test func webIdentityGoesToSTSUnsignedAndTheChainCachesUntilNearExpiry() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let calls = Mutex(0)
        server.route(.POST, "/") { request in
            calls.withLock { $0 += 1 }
            let form = SigV4.parseQuery(request.bodyText)
            let fields = Dictionary(form, uniquingKeysWith: { $1 })
            #expect(request.header("authorization") == nil, "AssumeRoleWithWebIdentity is not signed")
            guard fields["Action"] == "AssumeRoleWithWebIdentity", fields["WebIdentityToken"] == "jwt-from-file", fields["RoleArn"] == "arn:aws:iam::1:role/pod" else {
                return .text(400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad</Message></Error></ErrorResponse>")
            }
            let expiration = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            return .text(200, """
                <AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAWEB</AccessKeyId>
                <SecretAccessKey>w</SecretAccessKey><SessionToken>wt</SessionToken><Expiration>\(expiration)</Expiration></Credentials>
                </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>
                """)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)")
        try "jwt-from-file\n".write(to: directory, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = ["AWS_WEB_IDENTITY_TOKEN_FILE": directory.path, "AWS_ROLE_ARN": "arn:aws:iam::1:role/pod", "AWS_ENDPOINT_URL_STS": server.baseURL,
                           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]
        let chain = AWSDefaultCredentialChain(environment: environment)
        let first = try await chain.credentials()
        let again = try await chain.credentials()
        #expect(first.accessKeyID == "ASIAWEB" && again == first && calls.withLock { $0 } == 1, "cached until five minutes before expiry")
        do {
            _ = try await AWSDefaultCredentialChain(environment: ["AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                                                                  "AWS_EC2_METADATA_DISABLED": "true"]).credentials()
            Issue.record("no source: unauthenticated")
        } catch let error as NimbusError { #expect(error.code == .unauthenticated && error.message.contains("AWS_ACCESS_KEY_ID")) }
    }
}

@Suite("AWS client behaviour", .timeLimit(.minutes(2)))
struct AWSClientBehaviourTests {
    let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: Secret("secret"))

    @Test func throttlingIsRetriedAndASkewedClockIsCorrected() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/", replies: [
            .json(400, #"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#),
            .json(200, #"{"TableNames":["a"]}"#),
        ])
        let aws = AWSClient(configuration: .init(region: "us-east-1", credentials: credentials, endpointURL: server.baseURL, environment: [:]))
        let tables = try await aws.call("dynamodb", "ListTables").output
        #expect(tables["TableNames"] == ["a"] && server.requests.count == 2)
        #expect(server.requests[0].header("x-amz-target") == "DynamoDB_20120810.ListTables")
        #expect(server.requests[0].header("content-type") == "application/x-amz-json-1.0")

        let skewed = try await FakeHTTPServer.start()
        defer { Task { await skewed.shutdown() } }
        let serverDate = Date().addingTimeInterval(3 * 3600)
        skewed.route(.POST, "/") { request in
            let stamp = request.header("x-amz-date") ?? ""
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            formatter.timeZone = TimeZone(identifier: "UTC")
            guard let sent = formatter.date(from: stamp), abs(sent.timeIntervalSince(serverDate)) < 300 else {
                return .text(403, "<ErrorResponse><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><ServerTime>\(ISO8601DateFormatter().string(from: serverDate))</ServerTime></Error></ErrorResponse>",
                             headers: [("Date", HTTPDate.format(serverDate))])
            }
            return .text(200, "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>")
        }
        let skewClient = AWSClient(configuration: .init(region: "us-east-1", credentials: credentials, endpointURL: skewed.baseURL, environment: [:]))
        #expect(try await AWS.STS(client: skewClient).getCallerIdentity().account == "1")
        #expect(abs(skewClient.clockSkew - 3 * 3600) < 60, "learned offset \(skewClient.clockSkew)")
        let form = Dictionary(SigV4.parseQuery(skewed.requests[0].bodyText), uniquingKeysWith: { $1 })
        #expect(form["Action"] == "GetCallerIdentity" && form["Version"] == "2011-06-15")
    }
}
