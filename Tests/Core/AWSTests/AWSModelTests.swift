import Foundation
import NIOCore
import NimbusAWS
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// The model-driven client against a local fake: bindings on the wire, answers read by the output
/// shape, input refused before anything is sent, paginators and waiters from the models.
@Suite("AWS operations from the service models", .timeLimit(.minutes(2)))
struct AWSModelTests {
    let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: Secret("secret"))

    func client(_ server: FakeHTTPServer) -> AWSClient {
        AWSClient(configuration: .init(region: "us-east-1", credentials: credentials, endpointURL: server.baseURL, s3ForcePathStyle: true, environment: [:]))
    }

    @Test func everyCommittedModelLoadsWithItsPaginatorsAndWaiters() throws {
        #expect(AWSServiceModel.available == ["cognito-idp", "dynamodb", "ec2", "efs", "glacier", "guardduty", "iam", "inspector2", "kms", "lambda", "s3", "secretsmanager", "sesv2", "sns", "sqs",
                                             "stepfunctions", "sts", "wafv2"])
        var operations = 0, paginators = 0, waiters = 0
        for name in AWSServiceModel.available {
            let model = try AWSServiceModel.named(name)
            operations += model.operations.count
            paginators += model.paginators.count
            waiters += model.waiters.count
            for (operation, paginator) in model.paginators {
                #expect(model.operations[operation] != nil && !paginator.inputTokens.isEmpty, "\(name) paginator \(operation)")
            }
            for waiter in model.waiters.values { #expect(model.operations[waiter.operation] != nil, "\(name) waiter \(waiter.name)") }
        }
        #expect(operations > 1500 && paginators > 200 && waiters > 40, "\(operations) operations, \(paginators) paginators, \(waiters) waiters")
        #expect(try AWSServiceModel.named("sfn").name == "stepfunctions")
        let unknown = #expect(throws: NimbusError.self) { try AWSServiceModel.named("s4") }
        #expect(unknown?.code == .notFound && unknown?.message.contains("did you mean s3") == true, "\(unknown?.message ?? "")")
        let typo = #expect(throws: NimbusError.self) { try AWSServiceModel.named("s3").operation("ListObjectV2") }
        #expect(typo?.message.contains("ListObjectsV2") == true, "\(typo?.message ?? "")")
        #expect(try AWSServiceModel.named("s3").operation("list-objects-v2").name == "ListObjectsV2")
    }

    @Test func restXMLBindsPathQueryHeadersAndReadsTheAnswer() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/docs", reply: .text(200, """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>docs</Name><Prefix>a b/</Prefix><KeyCount>2</KeyCount>\
            <IsTruncated>false</IsTruncated><Contents><Key>a b/1.txt</Key><Size>5</Size><LastModified>2026-11-30T10:00:00.000Z</LastModified></Contents>\
            <Contents><Key>a b/2.txt</Key><Size>7</Size><LastModified>2026-11-30T11:00:00.000Z</LastModified></Contents></ListBucketResult>
            """))
        server.route(.GET, "/docs/{key}/{file}", reply: .response(status: 200, headers: [("Content-Length", "5"), ("Last-Modified", "Mon, 30 Nov 2026 10:00:00 GMT"),
                                                                                       ("x-amz-meta-owner", "zoe"), ("ETag", "\"abc\""), ("Content-Type", "text/plain")],
                                                                  body: ByteBuffer(string: "hello")))
        let aws = client(server)
        let page = try await AWS.S3(client: aws).listObjectsV2(.init(bucket: "docs", maxKeys: 2, prefix: "a b/"))
        let list = try #require(server.requests.first)
        #expect(list.path == "/docs" && list.query.contains { $0 == ("list-type", "2") } && list.query.contains { $0 == ("prefix", "a b/") }
                && list.query.contains { $0 == ("max-keys", "2") }, "\(list)")
        #expect(page.keyCount == 2 && page.isTruncated == false && page.contents?.map(\.key) == ["a b/1.txt", "a b/2.txt"] && page.contents?.last?.size == 7)
        #expect(page.contents?.first?.lastModified == Date(iso8601: "2026-11-30T10:00:00Z"))

        let object = try await AWS.S3(client: aws).getObject(.init(bucket: "docs", key: "a b/c.txt", range: "bytes=0-4"))
        let get = server.requests[1]
        #expect(get.path == "/docs/a%20b/c.txt" && get.header("range") == "bytes=0-4" && get.query.isEmpty, "\(get)")
        #expect(object.body == ByteBuffer(string: "hello") && object.contentLength == 5 && object.metadata == ["owner": "zoe"] && object.eTag == "\"abc\"")
        #expect(object.lastModified == Date(iso8601: "2026-11-30T10:00:00Z"))
    }

    @Test func queryAndEC2ProtocolsBindListsAndReadWrappedResults() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/") { request in
            let form = Dictionary(SigV4.parseQuery(request.bodyText), uniquingKeysWith: { $1 })
            if form["Action"] == "DescribeVpcs" {
                return .text(200, "<DescribeVpcsResponse><vpcSet><item><vpcId>vpc-1</vpcId><isDefault>true</isDefault></item><item><vpcId>vpc-2</vpcId><isDefault>false</isDefault></item></vpcSet></DescribeVpcsResponse>")
            }
            return .text(200, "<CreateTopicResponse><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:1:t</TopicArn></CreateTopicResult></CreateTopicResponse>")
        }
        let aws = client(server)
        let vpcs = try await aws.call("ec2", "DescribeVpcs", input: ["Filters": [["Name": "tag:env", "Values": ["prod", "dev"]]], "MaxResults": 5]).output
        let ec2 = Dictionary(SigV4.parseQuery(server.requests[0].bodyText), uniquingKeysWith: { $1 })
        #expect(ec2["Filter.1.Name"] == "tag:env" && ec2["Filter.1.Value.2"] == "dev" && ec2["MaxResults"] == "5" && ec2["Version"] == "2016-11-15", "\(ec2)")
        #expect(vpcs["Vpcs"]?.arrayValue?.map { $0["VpcId"] } == ["vpc-1", "vpc-2"] && vpcs["Vpcs"]?.arrayValue?.first?["IsDefault"] == true)
        let topic = try await AWS.SNS(client: aws).createTopic(.init(name: "t", attributes: ["FifoTopic": "false"], tags: [.init(key: "a", value: "b")]))
        let sns = Dictionary(SigV4.parseQuery(server.requests[1].bodyText), uniquingKeysWith: { $1 })
        #expect(sns["Tags.member.1.Key"] == "a" && sns["Attributes.entry.1.key"] == "FifoTopic" && sns["Attributes.entry.1.value"] == "false", "\(sns)")
        #expect(topic.topicArn == "arn:aws:sns:us-east-1:1:t")
    }

    @Test func inputTheModelRefusesIsNeverSent() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/", reply: .json(200, "{}"))
        let aws = client(server)
        let unknown = await #expect(throws: NimbusError.self) {
            try await aws.call("dynamodb", "GetItem", input: ["TableName": "t", "Key": ["id": ["S": "1"]], "ConsistentRaed": true])
        }
        #expect(unknown?.code == .invalidArgument && unknown?.message.contains("did you mean ConsistentRead?") == true, "\(unknown?.message ?? "")")
        let several = await #expect(throws: NimbusError.self) {
            try await aws.call("sqs", "ReceiveMessage", input: ["MaxNumberOfMessages": "ten", "MessageSystemAttributeNames": ["SentTimestampp"]])
        }
        let message = several?.message ?? ""
        #expect(message.contains("QueueUrl is required") && message.contains("MaxNumberOfMessages must be an integer")
                && message.contains("'SentTimestampp' is not one of"), "\(message)")
        let range = await #expect(throws: NimbusError.self) { try await aws.call("kms", "GenerateDataKey", input: ["KeyId": "k", "NumberOfBytes": 2048]) }
        #expect(range?.message.contains("above the maximum 1024") == true, "\(range?.message ?? "")")
        let blob = await #expect(throws: NimbusError.self) { try await aws.call("kms", "Decrypt", input: ["CiphertextBlob": "not base64!"]) }
        #expect(blob?.message.contains("base64") == true)
        #expect(server.requests.isEmpty, "nothing refused was sent")
    }

    @Test func jsonProtocolTimestampsBlobsAndMalformedAnswers() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/", replies: [
            .json(200, #"{"KeyMetadata":{"KeyId":"k1","CreationDate":1764583200.5,"Enabled":true,"KeyState":"Enabled","KeySpec":"SYMMETRIC_DEFAULT","FutureField":1}}"#),
            .json(200, #"{"CiphertextBlob":"AAEC","KeyId":"k1"}"#),
            .json(200, #"{"KeyMetadata":"#),
            .json(200, #"{"KeyMetadata":{"KeyId":"k1","KeyState":"SomethingNew"}}"#),
        ])
        let kms = AWS.KMS(client: client(server))
        let created = try await kms.createKey(.init(description: "d", keyUsage: .encryptDecrypt))
        #expect(created.keyMetadata?.keyId == "k1" && created.keyMetadata?.creationDate == Date(timeIntervalSince1970: 1_764_583_200.5))
        #expect(server.requests[0].header("x-amz-target") == "TrentService.CreateKey" && server.requests[0].header("content-type") == "application/x-amz-json-1.1")
        let sent = try JSONValue.parse(Data(server.requests[0].bodyText.utf8))
        #expect(sent == ["Description": "d", "KeyUsage": "ENCRYPT_DECRYPT"])
        let encrypted = try await kms.encrypt(.init(keyId: "k1", plaintext: Data([1, 2, 3])))
        #expect(encrypted.ciphertextBlob == Data([0, 1, 2]))
        #expect(try JSONValue.parse(Data(server.requests[1].bodyText.utf8))["Plaintext"] == "AQID")
        let malformed = await #expect(throws: NimbusError.self) { try await kms.describeKey(.init(keyId: "k1")) }
        #expect(malformed?.code == .dataLoss && malformed?.message.contains("not JSON") == true)
        // An enum value the model does not know is kept, not a decoding failure.
        let future = try await kms.describeKey(.init(keyId: "k1"))
        #expect(future.keyMetadata?.keyState?.rawValue == "SomethingNew")
    }

    @Test func paginatorsFollowTheirTokensAndExpressions() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        // ListObjects (v1): the next marker is `NextMarker || Contents[-1].Key` while IsTruncated.
        server.route(.GET, "/b") { request in
            let marker = request.query.first { $0.0 == "marker" }?.1
            switch marker {
            case nil: return .text(200, "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents></ListBucketResult>")
            case "b": return .text(200, "<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>d</NextMarker><Contents><Key>c</Key></Contents></ListBucketResult>")
            default: return .text(200, "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>e</Key></Contents></ListBucketResult>")
            }
        }
        var keys: [String] = []
        for try await page in client(server).pages("s3", "ListObjects", input: ["Bucket": "b"]) {
            keys += page["Contents"]?.arrayValue?.compactMap { $0["Key"]?.stringValue } ?? []
        }
        #expect(keys == ["a", "b", "c", "e"] && server.requests.map { $0.query.first { $0.0 == "marker" }?.1 ?? "-" } == ["-", "b", "d"])
        let notPaged = await #expect(throws: NimbusError.self) { for try await _ in client(server).pages("s3", "GetObject", input: ["Bucket": "b", "Key": "k"]) {} }
        #expect(notPaged?.code == .failedPrecondition)
    }

    @Test func waitersPollUntilAnAcceptorDecides() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/", replies: [
            .json(400, #"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}"#),
            .json(200, #"{"Table":{"TableName":"t","TableStatus":"CREATING"}}"#),
            .json(200, #"{"Table":{"TableName":"t","TableStatus":"ACTIVE"}}"#),
        ])
        let table = try await client(server).wait("dynamodb", until: "TableExists", input: ["TableName": "t"], delay: .milliseconds(10))
        #expect(table["Table"]?["TableStatus"] == "ACTIVE" && server.requests.count == 3)
        let gone = try await FakeHTTPServer.start()
        defer { Task { await gone.shutdown() } }
        gone.route(.HEAD, "/b", reply: .response(status: 404, headers: [], body: ByteBuffer()))
        let timeout = await #expect(throws: NimbusError.self) {
            try await client(gone).wait("s3", until: "BucketExists", input: ["Bucket": "b"], delay: .milliseconds(5), maxAttempts: 3)
        }
        #expect(timeout?.code == .deadlineExceeded && gone.requests.count == 3)
        let unknown = await #expect(throws: NimbusError.self) { try await client(gone).wait("s3", until: "BucketExist", input: ["Bucket": "b"]) }
        #expect(unknown?.message.contains("BucketExists") == true)
    }
}
