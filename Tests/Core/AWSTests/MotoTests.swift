import AsyncHTTPClient
import Foundation
import NIOHTTP1
import NimbusAWS
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

enum Moto {
    static func credentials() throws -> AWSCredentials {
        guard let id = Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), let secret = Peer.setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") else {
            throw NimbusError(.unavailable, "the moto peer exported no IAM keys; run scripts/peers up moto")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret))
    }

    /// A client of the moto that checks signatures, signing with the IAM user's keys.
    static func client(credentials: AWSCredentials? = nil) throws -> AWSClient {
        AWSClient(configuration: .init(region: "us-east-1", credentials: try credentials ?? Self.credentials(), endpointURL: try Peer.moto.url(), environment: [:]))
    }

    /// A client of the moto without checks (S3).
    static func s3() throws -> AWSClient {
        guard let url = Peer.setting("NIMBUS_PEER_MOTO_S3_URL") else { throw NimbusError(.unavailable, "no NIMBUS_PEER_MOTO_S3_URL; run scripts/peers up moto") }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "test", secretAccessKey: Secret("test")),
                                              endpointURL: url, environment: [:]))
    }

    static func unique(_ prefix: String) -> String { "\(prefix)-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))" }
}

@Suite("AWS against moto (signatures checked)", .requires(.moto), .timeLimit(.minutes(3)))
struct MotoTests {
    @Test func stsIdentityAssumeRoleAndAWrongSecret() async throws {
        let aws = try Moto.client()
        let identity = try await aws.send(.sts, operation: "GetCallerIdentity")
        #expect(identity["Arn"]?.stringValue?.hasSuffix(":user/nimbus") == true, "\(identity)")
        var wrong = try Moto.credentials()
        wrong.secretAccessKey = Secret("not-the-secret")
        do {
            _ = try await Moto.client(credentials: wrong).send(.sts, operation: "GetCallerIdentity")
            Issue.record("a wrong secret must be refused")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated, "\(error)")
            #expect(!error.description.contains("not-the-secret"))
        }
        let roleName = Moto.unique("role")
        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#
        let role = try await aws.send(.iam, operation: "CreateRole", input: ["RoleName": .string(roleName), "AssumeRolePolicyDocument": .string(trust)])
        let arn = try #require(role["Role"]?["Arn"]?.stringValue)
        try await aws.send(.iam, operation: "PutRolePolicy", input: ["RoleName": .string(roleName), "PolicyName": "all",
                                                                    "PolicyDocument": #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#])
        let assumed = try await aws.send(.sts, operation: "AssumeRole", input: ["RoleArn": .string(arn), "RoleSessionName": "nimbus-test"])
        let temporary = AWSCredentials(accessKeyID: assumed["Credentials"]?["AccessKeyId"]?.stringValue ?? "",
                                       secretAccessKey: Secret(assumed["Credentials"]?["SecretAccessKey"]?.stringValue ?? ""),
                                       sessionToken: assumed["Credentials"]?["SessionToken"]?.stringValue.map { Secret($0) })
        let asRole = try await Moto.client(credentials: temporary).send(.sts, operation: "GetCallerIdentity")
        #expect(asRole["Arn"]?.stringValue?.contains("assumed-role/\(roleName)/nimbus-test") == true, "\(asRole)")
    }

    @Test func sqsAndSNSRoundTrips() async throws {
        let aws = try Moto.client()
        let queue = try await aws.send(.sqs, operation: "CreateQueue", input: ["QueueName": .string(Moto.unique("q"))])
        let url = try #require(queue["QueueUrl"]?.stringValue)
        let sent = try await aws.send(.sqs, operation: "SendMessage", input: ["QueueUrl": .string(url), "MessageBody": "héllo ✓"])
        #expect(sent["MessageId"]?.stringValue != nil)
        let received = try await aws.send(.sqs, operation: "ReceiveMessage", input: ["QueueUrl": .string(url), "MaxNumberOfMessages": 1])
        #expect(received["Messages"]?.arrayValue?.first?["Body"] == "héllo ✓")
        do {
            _ = try await aws.send(.sqs, operation: "GetQueueUrl", input: ["QueueName": "does-not-exist"])
            Issue.record("a missing queue is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound, "\(error)") }
        let topic = try await aws.send(.sns, operation: "CreateTopic", input: ["Name": .string(Moto.unique("t"))])
        let arn = try #require(topic["TopicArn"]?.stringValue)
        let published = try await aws.send(.sns, operation: "Publish", input: ["TopicArn": .string(arn), "Message": "hi",
                                                                              "MessageAttributes": ["entry": [["Name": "kind", "Value": ["DataType": "String", "StringValue": "test"]]]]])
        #expect(published["MessageId"]?.stringValue != nil, "\(published)")
    }

    @Test func dynamoDBPagesThroughAQuery() async throws {
        let aws = try Moto.client()
        let table = Moto.unique("t")
        try await aws.send(.dynamoDB, operation: "CreateTable", input: [
            "TableName": .string(table), "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [["AttributeName": "pk", "AttributeType": "S"], ["AttributeName": "sk", "AttributeType": "N"]],
            "KeySchema": [["AttributeName": "pk", "KeyType": "HASH"], ["AttributeName": "sk", "KeyType": "RANGE"]],
        ])
        for index in 0..<25 {
            try await aws.send(.dynamoDB, operation: "PutItem", input: ["TableName": .string(table),
                                                                       "Item": ["pk": ["S": "user"], "sk": ["N": .string("\(index)")], "v": ["S": .string("v\(index)")]]])
        }
        let item = try await aws.send(.dynamoDB, operation: "GetItem", input: ["TableName": .string(table), "Key": ["pk": ["S": "user"], "sk": ["N": "7"]]])
        #expect(item["Item"]?["v"]?["S"] == "v7")
        var pages = 0, items = 0
        for try await page in aws.pages(.dynamoDB, operation: "Query", input: [
            "TableName": .string(table), "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": [":p": ["S": "user"]], "Limit": 10,
        ], inputTokenField: "ExclusiveStartKey", outputTokenField: "LastEvaluatedKey") {
            pages += 1
            items += page["Items"]?.arrayValue?.count ?? 0
        }
        #expect(items == 25 && pages == 3, "pages \(pages), items \(items)")
        do {
            _ = try await aws.send(.dynamoDB, operation: "DescribeTable", input: ["TableName": "missing-table"])
            Issue.record("a missing table is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound, "\(error)") }
    }

    @Test func kmsLambdaEC2AndSecretsManager() async throws {
        let aws = try Moto.client()
        let key = try await aws.send(.kms, operation: "CreateKey", input: ["Description": "nimbus"])
        let keyID = try #require(key["KeyMetadata"]?["KeyId"]?.stringValue)
        let plaintext = Data("secret payload".utf8).base64EncodedString()
        let encrypted = try await aws.send(.kms, operation: "Encrypt", input: ["KeyId": .string(keyID), "Plaintext": .string(plaintext)])
        let decrypted = try await aws.send(.kms, operation: "Decrypt", input: ["CiphertextBlob": encrypted["CiphertextBlob"] ?? .null])
        #expect(decrypted["Plaintext"]?.stringValue == plaintext)
        // Lambda: moto's signature checker refuses Lambda calls even from boto3, so it is called on the unchecked server below.
        let vpcs = try await aws.send(.ec2, operation: "DescribeVpcs")
        #expect((vpcs["vpcSet"]?.arrayValue?.count ?? 0) >= 1, "moto has a default VPC: \(vpcs)")
        do {
            _ = try await aws.send(.ec2, operation: "DescribeVpcs", input: ["VpcId": ["vpc-00000000"]])
            Issue.record("a missing VPC is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound, "\(error)") }
        let name = Moto.unique("secret")
        try await aws.send(.secretsManager, operation: "CreateSecret", input: ["Name": .string(name), "SecretString": "s3cr3t"])
        #expect(try await aws.send(.secretsManager, operation: "GetSecretValue", input: ["SecretId": .string(name)])["SecretString"] == "s3cr3t")
        do {
            _ = try await aws.send(.secretsManager, operation: "GetSecretValue", input: ["SecretId": "missing-secret"])
            Issue.record("a missing secret is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound, "\(error)") }
    }

    @Test func s3WithHeaderSigningOnTheCheckingServer() async throws {
        let aws = try Moto.client()
        let bucket = Moto.unique("checked")
        _ = try await aws.rest(.s3, method: .PUT, path: AWSClient.s3Path(bucket: bucket))
        _ = try await aws.rest(.s3, method: .PUT, path: AWSClient.s3Path(bucket: bucket, key: "dir/plain.txt"), body: Array("signed body".utf8))
        let object = try await aws.rest(.s3, method: .GET, path: AWSClient.s3Path(bucket: bucket, key: "dir/plain.txt"))
        #expect(String(decoding: object.body, as: UTF8.self) == "signed body")
    }
}

@Suite("S3 and Lambda against moto (no signature checks)", .requires(.moto), .timeLimit(.minutes(2)))
struct MotoS3Tests {
    @Test func lambdaListFunctionsOverRestJSON() async throws {
        let functions = try await Moto.s3().rest(.lambda, method: .GET, path: "/2015-03-31/functions/", operation: "ListFunctions").json()
        #expect(functions["Functions"]?.arrayValue != nil, "\(functions)")
    }

    @Test func objectsListingPagesPresignedURLsAndMissingKeys() async throws {
        let s3 = try Moto.s3()
        let bucket = Moto.unique("bucket")
        _ = try await s3.rest(.s3, method: .PUT, path: AWSClient.s3Path(bucket: bucket), operation: "CreateBucket")
        let keys = ["a.txt", "dir/b c.txt", "dir/ünïcödé ✓.txt", "z/deep/e+f.txt", "plus+and&amp.txt"]
        for key in keys {
            _ = try await s3.rest(.s3, method: .PUT, path: AWSClient.s3Path(bucket: bucket, key: key), headers: [("Content-Type", "text/plain")],
                                  body: Array("content of \(key)".utf8), operation: "PutObject")
        }
        let got = try await s3.rest(.s3, method: .GET, path: AWSClient.s3Path(bucket: bucket, key: "dir/ünïcödé ✓.txt"), operation: "GetObject")
        #expect(String(decoding: got.body, as: UTF8.self) == "content of dir/ünïcödé ✓.txt")
        var listed: [String] = []
        var token: String?
        var pages = 0
        repeat {
            var query = [("list-type", "2"), ("max-keys", "2")]
            if let token { query.append(("continuation-token", token)) }
            let page = try await s3.rest(.s3, method: .GET, path: AWSClient.s3Path(bucket: bucket), query: query, operation: "ListObjectsV2").xml()
            listed += page.all("Contents").compactMap { $0["Key"]?.text }
            token = page["IsTruncated"]?.text == "true" ? page["NextContinuationToken"]?.text : nil
            pages += 1
        } while token != nil
        #expect(Set(listed) == Set(keys) && pages == 3, "\(pages) pages: \(listed)")
        // A presigned GET works from a plain HTTP client, with no AWS code involved.
        let url = try await s3.presign(.s3, method: .GET, path: AWSClient.s3Path(bucket: bucket, key: "dir/b c.txt"), expires: .seconds(600))
        #expect(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=600"))
        let plain = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        #expect(plain.status == .ok)
        #expect(String(buffer: try await plain.body.collect(upTo: 1024)) == "content of dir/b c.txt")
        for (method, operation) in [(HTTPMethod.GET, "GetObject"), (.HEAD, "HeadObject")] {
            do {
                _ = try await s3.rest(.s3, method: method, path: AWSClient.s3Path(bucket: bucket, key: "missing.txt"), operation: operation)
                Issue.record("\(operation) of a missing key is notFound")
            } catch let error as NimbusError { #expect(error.code == .notFound, "\(operation): \(error)") }
        }
        do {
            _ = try await s3.rest(.s3, method: .GET, path: AWSClient.s3Path(bucket: "no-such-bucket-nimbus", key: "x"))
            Issue.record("a missing bucket is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound && error.message.contains("NoSuchBucket"), "\(error)") }
    }
}
