import _CryptoExtras
import Crypto
import Foundation
import NimbusAWS
import NimbusCore
import NimbusTesting
import Synchronization
import Testing
import X509

@Suite("SNS message signatures")
struct SNSMessageTests {
    static let certURL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
    static let topic = "arn:aws:sns:eu-west-1:123456789012:ses-events"

    static func certificate() throws -> (key: _RSA.Signing.PrivateKey, pem: String) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let certificateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName { CommonName("sns.amazonaws.com") }
        let certificate = try Certificate(version: .v3, serialNumber: .init(), publicKey: certificateKey.publicKey, notValidBefore: Date().addingTimeInterval(-60),
                                          notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
                                          signatureAlgorithm: .sha256WithRSAEncryption, extensions: Certificate.Extensions {}, issuerPrivateKey: certificateKey)
        return (key, try certificate.serializeAsPEM().pemString)
    }

    static func body(_ fields: [String: String]) -> [UInt8] { Array(JSONValue.object(fields.mapValues(JSONValue.string)).description.utf8) }

    static func signed(_ fields: [String: String], key: _RSA.Signing.PrivateKey, version: String) throws -> [UInt8] {
        var fields = fields
        fields["SignatureVersion"] = version
        fields["SigningCertURL"] = certURL
        fields["Signature"] = ""
        let message = try SNSMessage(json: body(fields))
        let data = Array(message.stringToSign.utf8)
        let signature = version == "1"
            ? try key.signature(for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
            : try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        fields["Signature"] = signature.rawRepresentation.base64EncodedString()
        return body(fields)
    }

    static func notification(subject: String? = "Amazon SES Email Event Notification", at date: Date = Date()) -> [String: String] {
        var fields = ["Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn": topic,
                      "Message": #"{"eventType":"Delivery","mail":{"messageId":"m-1","destination":["zoe@example.org"]},"delivery":{"recipients":["zoe@example.org"]}}"#,
                      "Timestamp": ISO8601DateFormatter().string(from: date)]
        if let subject { fields["Subject"] = subject }
        return fields
    }

    @Test func versionsOneAndTwoVerifyAndForgeriesDoNot() async throws {
        let (key, pem) = try Self.certificate()
        let fetches = Counter()
        let verifier = SNSMessageVerifier(topics: [Self.topic]) { url in
            fetches.add()
            #expect(url.absoluteString == Self.certURL)
            return pem
        }
        for version in ["1", "2"] {
            let message = try await verifier.verify(body: try Self.signed(Self.notification(), key: key, version: version))
            #expect(message.type == "Notification" && message.message.contains("Delivery"))
            let noSubject = try await verifier.verify(body: try Self.signed(Self.notification(subject: nil), key: key, version: version))
            #expect(noSubject.subject == nil)
        }
        #expect(fetches.value == 1, "the certificate is fetched once and kept")
        // A changed message, another key, an old message, another topic, a certificate from elsewhere: refused.
        var tampered = try JSONValue.parse(try Self.signed(Self.notification(), key: key, version: "2")).objectValue ?? [:]
        tampered["Message"] = .string(#"{"eventType":"Complaint"}"#)
        await #expect(throws: NimbusError.self) { try await verifier.verify(body: Array(JSONValue.object(tampered).description.utf8)) }
        let (otherKey, _) = try Self.certificate()
        await #expect(throws: NimbusError.self) { try await verifier.verify(body: try Self.signed(Self.notification(), key: otherKey, version: "2")) }
        let old = try Self.signed(Self.notification(at: Date().addingTimeInterval(-7200)), key: key, version: "2")
        let stale = await #expect(throws: NimbusError.self) { try await verifier.verify(body: old) }
        #expect(stale?.code == .unauthenticated && stale?.message.contains("tolerance") == true)
        var foreign = Self.notification()
        foreign["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:attacker"
        await #expect(throws: NimbusError.self) { try await verifier.verify(body: try Self.signed(foreign, key: key, version: "2")) }
        for url in ["http://sns.eu-west-1.amazonaws.com/x.pem", "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", "https://evil.example/sns.pem",
                    "https://sns.eu-west-1.amazonaws.com/x.txt",
                    // Other *.amazonaws.com hosts anyone can put files on (issue 15 §4): an S3 bucket named "sns", and lookalikes.
                    "https://sns.s3.amazonaws.com/cert.pem", "https://sns.my-bucket.s3.amazonaws.com/cert.pem",
                    "https://sns.s3-website.eu-west-1.amazonaws.com/cert.pem", "https://sns.execute-api.amazonaws.com/cert.pem"] {
            #expect(!SNSMessageVerifier.isSNSCertificateURL(url), "\(url)")
        }
        for url in ["https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem", "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
                    "https://sns.eu-central-2.amazonaws.com/SimpleNotificationService-abc.pem"] {
            #expect(SNSMessageVerifier.isSNSCertificateURL(url), "\(url)")
        }
        await #expect(throws: NimbusError.self) { try await verifier.verify(body: Array("not json".utf8)) }
    }

    @Test func subscriptionConfirmationsSignTheirOwnFields() throws {
        let fields = ["Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": Self.topic, "Message": "You have chosen to subscribe",
                      "Timestamp": "2026-11-26T10:00:00.000Z", "Token": "tok", "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
                      "SignatureVersion": "2", "Signature": "x", "SigningCertURL": Self.certURL]
        let message = try SNSMessage(json: Self.body(fields))
        #expect(message.stringToSign == "Message\nYou have chosen to subscribe\nMessageId\nm\nSubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n2026-11-26T10:00:00.000Z\nToken\ntok\nTopicArn\n\(Self.topic)\nType\nSubscriptionConfirmation\n")
    }

    /// Python's `cryptography` builds the certificate and signs the text it builds itself from AWS's description; this verifies.
    @Test(.requires(.commsSDKs)) func aSignatureMadeByPythonVerifies() async throws {
        let python = try Peer.commsSDKs.url()
        let timestamp = ISO8601DateFormatter().string(from: Date())
        let script = """
        import base64, datetime, json, sys
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa, padding
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
                .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
        m = {"Type": "Notification", "MessageId": "abc", "TopicArn": sys.argv[1], "Subject": "Grüße", "Message": "{\\"eventType\\":\\"Open\\"}",
             "Timestamp": sys.argv[2], "SignatureVersion": "1", "SigningCertURL": sys.argv[3]}
        text = "".join(f"{k}\\n{m[k]}\\n" for k in ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"])
        m["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())).decode()
        print(json.dumps({"message": m, "pem": cert.public_bytes(serialization.Encoding.PEM).decode()}))
        """
        let result = try await ProcessRunner.run(python, ["-c", script, Self.topic, timestamp, Self.certURL])
        #expect(result.status == 0, "\(result.stderr)")
        let output = try JSONValue.parse(Data(result.stdout.utf8))
        let pem = try #require(output["pem"]?.stringValue)
        let verifier = SNSMessageVerifier { _ in pem }
        let message = try await verifier.verify(body: Array(try #require(output["message"]).description.utf8))
        #expect(message.subject == "Grüße")
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
