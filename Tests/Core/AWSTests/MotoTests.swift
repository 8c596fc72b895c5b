import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NimbusAWS
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

enum Moto {
    static func credentials() throws -> AWSCredentials {
        let (id, secret) = try Peer.motoKeys()
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret)
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
        let identity = try await AWS.STS(client: aws).getCallerIdentity()
        #expect(identity.arn?.hasSuffix(":user/nimbus") == true, "\(identity)")
        var wrong = try Moto.credentials()
        wrong.secretAccessKey = Secret("not-the-secret")
        let refused = await #expect(throws: NimbusError.self, "a wrong secret must be refused") {
            try await AWS.STS(client: Moto.client(credentials: wrong)).getCallerIdentity()
        }
        #expect(refused?.code == .unauthenticated && refused?.description.contains("not-the-secret") == false, "\(String(describing: refused))")
        let roleName = Moto.unique("role")
        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#
        // IAM has no typed operations: the untyped call binds through the same model.
        let role = try await aws.call("iam", "CreateRole", input: ["RoleName": .string(roleName), "AssumeRolePolicyDocument": .string(trust)]).output
        let arn = try #require(role["Role"]?["Arn"]?.stringValue)
        try await aws.call("iam", "PutRolePolicy", input: ["RoleName": .string(roleName), "PolicyName": "all",
                                                           "PolicyDocument": #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#])
        let assumed = try #require(try await AWS.STS(client: aws).assumeRole(.init(roleArn: arn, roleSessionName: "nimbus-test")).credentials)
        #expect(assumed.expiration > Date())
        let temporary = AWSCredentials(accessKeyID: assumed.accessKeyId, secretAccessKey: Secret(assumed.secretAccessKey), sessionToken: Secret(assumed.sessionToken))
        let asRole = try await AWS.STS(client: Moto.client(credentials: temporary)).getCallerIdentity()
        #expect(asRole.arn?.contains("assumed-role/\(roleName)/nimbus-test") == true, "\(asRole)")
    }

    @Test func sqsAndSNSRoundTrips() async throws {
        let sqs = AWS.SQS(client: try Moto.client())
        let url = try #require(try await sqs.createQueue(.init(queueName: Moto.unique("q"), attributes: ["VisibilityTimeout": "30"])).queueUrl)
        let sent = try await sqs.sendMessage(.init(messageBody: "héllo ✓", queueUrl: url,
                                                   messageAttributes: ["kind": .init(dataType: "String", stringValue: "test")]))
        #expect(sent.messageId != nil && sent.md5OfMessageBody == Insecure.MD5.hash(data: Data("héllo ✓".utf8)).map { String(format: "%02x", $0) }.joined())
        let received = try await sqs.receiveMessage(.init(queueUrl: url, maxNumberOfMessages: 1, messageAttributeNames: ["All"]))
        let message = try #require(received.messages?.first)
        #expect(message.body == "héllo ✓" && message.messageAttributes?["kind"]?.stringValue == "test")
        try await sqs.deleteMessage(.init(queueUrl: url, receiptHandle: try #require(message.receiptHandle)))
        let missing = await #expect(throws: NimbusError.self, "a missing queue is notFound") { try await sqs.getQueueUrl(.init(queueName: "does-not-exist")) }
        #expect(missing?.code == .notFound, "\(String(describing: missing))")
        let sns = AWS.SNS(client: try Moto.client())
        let arn = try #require(try await sns.createTopic(.init(name: Moto.unique("t"))).topicArn)
        let published = try await sns.publish(.init(message: "hi", messageAttributes: ["kind": .init(dataType: "String", stringValue: "test")], topicArn: arn))
        #expect(published.messageId != nil, "\(published)")
    }

    @Test func dynamoDBPagesThroughAQueryAndWaitsForItsTable() async throws {
        let aws = try Moto.client()
        let dynamo = AWS.DynamoDB(client: aws)
        let table = Moto.unique("t")
        try await dynamo.createTable(.init(tableName: table,
                                           attributeDefinitions: [.init(attributeName: "pk", attributeType: .s), .init(attributeName: "sk", attributeType: .n)],
                                           billingMode: .payPerRequest,
                                           keySchema: [.init(attributeName: "pk", keyType: .hash), .init(attributeName: "sk", keyType: .range)]))
        let described = try await aws.wait("dynamodb", until: "TableExists", input: ["TableName": .string(table)], delay: .milliseconds(200))
        #expect(described["Table"]?["TableStatus"] == "ACTIVE")
        for index in 0..<25 {
            try await dynamo.putItem(.init(item: ["pk": .init(s: "user"), "sk": .init(n: "\(index)"), "v": .init(s: "v\(index)")], tableName: table))
        }
        let item = try await dynamo.getItem(.init(key: ["pk": .init(s: "user"), "sk": .init(n: "7")], tableName: table))
        #expect(item.item?["v"]?.s == "v7")
        var pages = 0, items = 0
        for try await page in aws.pages("dynamodb", "Query", input: [
            "TableName": .string(table), "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": [":p": ["S": "user"]], "Limit": 10,
        ]) {
            pages += 1
            items += page["Items"]?.arrayValue?.count ?? 0
        }
        #expect(items == 25 && pages == 3, "pages \(pages), items \(items)")
        let missing = await #expect(throws: NimbusError.self) { try await dynamo.describeTable(.init(tableName: "missing-table")) }
        #expect(missing?.code == .notFound, "\(String(describing: missing))")
    }

    @Test func kmsEC2AndSecretsManager() async throws {
        let aws = try Moto.client()
        let kms = AWS.KMS(client: aws)
        let keyID = try #require(try await kms.createKey(.init(description: "nimbus")).keyMetadata?.keyId)
        let encrypted = try await kms.encrypt(.init(keyId: keyID, plaintext: Data("secret payload".utf8)))
        let decrypted = try await kms.decrypt(.init(ciphertextBlob: try #require(encrypted.ciphertextBlob)))
        #expect(decrypted.plaintext == Data("secret payload".utf8) && decrypted.keyId?.hasSuffix(keyID) == true)
        // Lambda: moto's signature checker refuses Lambda calls even from boto3, so it is called on the unchecked server below.
        let vpcs = try await aws.call("ec2", "DescribeVpcs").output
        #expect((vpcs["Vpcs"]?.arrayValue?.count ?? 0) >= 1 && vpcs["Vpcs"]?.arrayValue?.first?["VpcId"]?.stringValue?.hasPrefix("vpc-") == true,
                "moto has a default VPC: \(vpcs)")
        let missingVPC = await #expect(throws: NimbusError.self) { try await aws.call("ec2", "DescribeVpcs", input: ["VpcIds": ["vpc-00000000"]]) }
        #expect(missingVPC?.code == .notFound, "\(String(describing: missingVPC))")
        let secrets = AWS.SecretsManager(client: aws)
        let name = Moto.unique("secret")
        try await secrets.createSecret(.init(name: name, secretString: "s3cr3t"))
        #expect(try await secrets.getSecretValue(.init(secretId: name)).secretString == "s3cr3t")
        let missing = await #expect(throws: NimbusError.self) { try await secrets.getSecretValue(.init(secretId: "missing-secret")) }
        #expect(missing?.code == .notFound, "\(String(describing: missing))")
    }

    @Test func s3WithHeaderSigningOnTheCheckingServer() async throws {
        let s3 = AWS.S3(client: try Moto.client())
        let bucket = Moto.unique("checked")
        try await s3.createBucket(.init(bucket: bucket))
        try await s3.putObject(.init(bucket: bucket, key: "dir/plain.txt", body: ByteBuffer(string: "signed body")))
        let object = try await s3.getObject(.init(bucket: bucket, key: "dir/plain.txt"))
        #expect(object.body == ByteBuffer(string: "signed body") && object.contentLength == 11)
    }
}

@Suite("S3 and Lambda against moto (no signature checks)", .requires(.moto), .timeLimit(.minutes(2)))
struct MotoS3Tests {
    @Test func lambdaListFunctionsOverRestJSON() async throws {
        let functions = try await Moto.s3().call("lambda", "ListFunctions").output
        #expect(functions["Functions"]?.arrayValue != nil, "\(functions)")
    }

    @Test func objectsListingPagesPresignedURLsMultipartAndMissingKeys() async throws {
        let aws = try Moto.s3()
        let s3 = AWS.S3(client: aws)
        let bucket = Moto.unique("bucket")
        try await s3.createBucket(.init(bucket: bucket))
        try await aws.wait("s3", until: "BucketExists", input: ["Bucket": .string(bucket)], delay: .milliseconds(100))
        let keys = ["a.txt", "dir/b c.txt", "dir/ünïcödé ✓.txt", "z/deep/e+f.txt", "plus+and&amp.txt"]
        for key in keys {
            try await s3.putObject(.init(bucket: bucket, key: key, body: ByteBuffer(string: "content of \(key)"), contentType: "text/plain", metadata: ["owner": "zoe"]))
        }
        let got = try await s3.getObject(.init(bucket: bucket, key: "dir/ünïcödé ✓.txt"))
        #expect(got.body == ByteBuffer(string: "content of dir/ünïcödé ✓.txt") && got.contentType == "text/plain" && got.metadata?["owner"] == "zoe")
        var listed: [String] = []
        var pages = 0
        for try await page in aws.pages("s3", "ListObjectsV2", input: ["Bucket": .string(bucket), "MaxKeys": 2]) {
            listed += page["Contents"]?.arrayValue?.compactMap { $0["Key"]?.stringValue } ?? []
            pages += 1
        }
        #expect(Set(listed) == Set(keys) && listed.count == keys.count && pages == 3, "\(pages) pages: \(listed)")
        // Multipart: three calls bound from the model, the object reads back whole.
        let upload = try #require(try await s3.createMultipartUpload(.init(bucket: bucket, key: "big.bin")).uploadId)
        let partOne = [UInt8](repeating: 1, count: 5 * 1024 * 1024), partTwo: [UInt8] = [2, 2, 2]
        let first = try await s3.uploadPart(.init(bucket: bucket, key: "big.bin", partNumber: 1, uploadId: upload, body: ByteBuffer(bytes: partOne)))
        let second = try await s3.uploadPart(.init(bucket: bucket, key: "big.bin", partNumber: 2, uploadId: upload, body: ByteBuffer(bytes: partTwo)))
        try await s3.completeMultipartUpload(.init(bucket: bucket, key: "big.bin", uploadId: upload, multipartUpload: .init(parts: [
            .init(eTag: first.eTag, partNumber: 1), .init(eTag: second.eTag, partNumber: 2),
        ])))
        let head = try await s3.headObject(.init(bucket: bucket, key: "big.bin"))
        #expect(head.contentLength == Int64(partOne.count + partTwo.count) && head.eTag?.hasSuffix("-2\"") == true, "\(head)")
        // A presigned GET works from a plain HTTP client, with no AWS code involved.
        let url = try await aws.presign(.s3, method: .GET, path: AWSClient.s3Path(bucket: bucket, key: "dir/b c.txt"), expires: .seconds(600))
        #expect(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=600"))
        let plain = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        #expect(plain.status == .ok)
        #expect(String(buffer: try await plain.body.collect(upTo: 1024)) == "content of dir/b c.txt")
        let missingGet = await #expect(throws: NimbusError.self) { try await s3.getObject(.init(bucket: bucket, key: "missing.txt")) }
        #expect(missingGet?.code == .notFound, "\(String(describing: missingGet))")
        let missingHead = await #expect(throws: NimbusError.self) { try await s3.headObject(.init(bucket: bucket, key: "missing.txt")) }
        #expect(missingHead?.code == .notFound, "\(String(describing: missingHead))")
        let noBucket = await #expect(throws: NimbusError.self) { try await s3.getObject(.init(bucket: "no-such-bucket-nimbus", key: "x")) }
        #expect(noBucket?.code == .notFound && noBucket?.message.contains("NoSuchBucket") == true, "\(String(describing: noBucket))")
        #expect((noBucket?.underlying as? AWSServiceError)?.code == AWS.S3.ErrorCode.noSuchBucket)
    }
}
