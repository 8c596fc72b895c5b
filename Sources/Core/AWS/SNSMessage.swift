import _CryptoExtras
import Crypto
import Foundation
import NimbusCore
import NimbusHTTP
import Synchronization
import X509

/// A message Amazon SNS posts to an HTTP(S) subscription: a notification, or a subscription (un)confirmation.
public struct SNSMessage: Sendable, Hashable {
    /// `Notification`, `SubscriptionConfirmation`, `UnsubscribeConfirmation`.
    public var type: String
    public var messageID: String
    public var topicARN: String
    public var subject: String?
    public var message: String
    public var timestamp: String
    /// `1` (SHA1withRSA) or `2` (SHA256withRSA).
    public var signatureVersion: String
    public var signature: String
    public var signingCertURL: String
    /// For confirmations: the token and the URL to visit to confirm.
    public var token: String?
    public var subscribeURL: String?
    public var unsubscribeURL: String?

    /// Reads the JSON body SNS posts.
    /// - Throws: `invalidArgument` when a required field is missing.
    public init(json body: [UInt8]) throws {
        guard let object = (try? JSONValue.parse(body))?.objectValue else { throw NimbusError(.invalidArgument, "the SNS message is not a JSON object") }
        func field(_ name: String) throws -> String {
            guard let value = object[name]?.stringValue else { throw NimbusError(.invalidArgument, "the SNS message has no \(name)") }
            return value
        }
        type = try field("Type")
        messageID = try field("MessageId")
        topicARN = try field("TopicArn")
        message = try field("Message")
        timestamp = try field("Timestamp")
        signatureVersion = try field("SignatureVersion")
        signature = try field("Signature")
        signingCertURL = try field("SigningCertURL")
        subject = object["Subject"]?.stringValue
        token = object["Token"]?.stringValue
        subscribeURL = object["SubscribeURL"]?.stringValue
        unsubscribeURL = object["UnsubscribeURL"]?.stringValue
    }

    /// The text SNS signed (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
    /// name and value lines of the fields of this type, in byte order of the names.
    public var stringToSign: String {
        var fields: [(String, String?)]
        if type == "Notification" {
            fields = [("Message", message), ("MessageId", messageID), ("Subject", subject), ("Timestamp", timestamp), ("TopicArn", topicARN), ("Type", type)]
        } else {
            fields = [("Message", message), ("MessageId", messageID), ("SubscribeURL", subscribeURL), ("Timestamp", timestamp), ("Token", token),
                      ("TopicArn", topicARN), ("Type", type)]
        }
        return fields.compactMap { name, value in value.map { "\(name)\n\($0)\n" } }.joined()
    }
}

/// Verifies SNS messages: the signing certificate must come over HTTPS from an SNS host (`sns.<region>.amazonaws.com`,
/// `.amazonaws.com.cn`) and a `.pem` path; the RSA signature (SHA-1 for version 1, SHA-256 for version 2) must
/// verify with its key; and the message must be recent. Certificates are kept per URL.
///
/// ```swift
/// let verifier = SNSMessageVerifier()
/// let message = try await verifier.verify(body: requestBody)       // throws unauthenticated on a forged message
/// if message.type == "SubscriptionConfirmation", let url = message.subscribeURL { … visit it … }
/// ```
public final class SNSMessageVerifier: Sendable {
    /// Fetches a certificate's PEM (over verified TLS by default).
    public typealias CertificateFetcher = @Sendable (URL) async throws -> String

    private let fetch: CertificateFetcher
    private let certificates = Mutex<[String: Certificate]>([:])
    /// How old a message may be.
    public let tolerance: Duration
    /// Topics accepted; empty accepts any (set it: anyone can subscribe your endpoint to their topic).
    public let topics: Set<String>

    public init(topics: Set<String> = [], tolerance: Duration = .seconds(3600), fetch: CertificateFetcher? = nil) {
        self.topics = topics
        self.tolerance = tolerance
        self.fetch = fetch ?? { url in
            let http = NimbusHTTPClient(configuration: .init(service: "sns-certificate", timeout: .seconds(10)))
            let response = try await http.send(NimbusHTTPRequest(.GET, url.absoluteString, operation: "GET signing certificate"))
            guard response.isSuccess else { throw NimbusError(.unavailable, "the SNS signing certificate answered \(response.status.code)") }
            return String(buffer: try await response.collect(upTo: 64 * 1024))
        }
    }

    /// Whether `url` is where SNS keeps its signing certificates.
    public static func isSNSCertificateURL(_ text: String) -> Bool {
        guard let url = URL(string: text), url.scheme == "https", let host = url.host?.lowercased(), url.path.hasSuffix(".pem") else { return false }
        // Exactly sns.<region>.amazonaws.com[.cn]: any other *.amazonaws.com (an S3 bucket named "sns" is
        // sns.s3.amazonaws.com) could serve an attacker's certificate.
        let labels = host.split(separator: ".").map(String.init)
        let china = labels.count == 5 && labels[2...] == ["amazonaws", "com", "cn"]
        guard labels.first == "sns", china || (labels.count == 4 && labels[2...] == ["amazonaws", "com"]) else { return false }
        return isRegion(labels[1])
    }

    /// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`: a region's shape.
    static func isRegion(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (3...4).contains(parts.count), parts.dropLast().allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isLowercase } }),
              let last = parts.last, !last.isEmpty, last.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        return parts[0].count == 2
    }

    /// Reads and verifies a posted message.
    /// - Throws: `invalidArgument` for a body that is not an SNS message; `unauthenticated` for a bad signature, certificate URL,
    ///   topic or age.
    public func verify(body: [UInt8], now: Date = Date()) async throws -> SNSMessage {
        let message = try SNSMessage(json: body)
        guard Self.isSNSCertificateURL(message.signingCertURL), let url = URL(string: message.signingCertURL) else {
            throw NimbusError(.unauthenticated, "the SNS message's SigningCertURL '\(message.signingCertURL)' is not an https://sns.<region>.amazonaws.com/….pem URL")
        }
        guard topics.isEmpty || topics.contains(message.topicARN) else {
            throw NimbusError(.unauthenticated, "the SNS message comes from topic \(message.topicARN), which this endpoint does not accept")
        }
        guard let sent = Date(iso8601: message.timestamp) else {
            throw NimbusError(.unauthenticated, "the SNS message's Timestamp '\(message.timestamp)' is not an ISO 8601 time")
        }
        guard abs(now.timeIntervalSince(sent)) <= tolerance.nimbusSeconds else {
            throw NimbusError(.unauthenticated, "the SNS message is \(Int(abs(now.timeIntervalSince(sent)))) s old, over the \(tolerance) tolerance (replayed?)")
        }
        let certificate = try await certificate(url)
        guard let key = _RSA.Signing.PublicKey(certificate.publicKey) else {
            throw NimbusError(.unauthenticated, "the SNS signing certificate does not hold an RSA key")
        }
        guard let signature = Data(base64Encoded: message.signature) else { throw NimbusError(.unauthenticated, "the SNS signature is not base64") }
        let data = Array(message.stringToSign.utf8)
        let valid: Bool
        switch message.signatureVersion {
        case "1": valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
        case "2": valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        default: throw NimbusError(.unauthenticated, "SNS SignatureVersion \(message.signatureVersion) is not known")
        }
        guard valid else { throw NimbusError(.unauthenticated, "the SNS message's signature does not verify with its signing certificate") }
        return message
    }

    func certificate(_ url: URL) async throws -> Certificate {
        if let cached = certificates.withLock({ $0[url.absoluteString] }) { return cached }
        let pem = try await fetch(url)
        let certificate: Certificate
        do { certificate = try Certificate(pemEncoded: pem) } catch {
            throw NimbusError(.unauthenticated, "the SNS signing certificate at \(url.absoluteString) does not parse: \(error)")
        }
        certificates.withLock { cache in
            if cache.count > 32 { cache.removeAll() }
            cache[url.absoluteString] = certificate
        }
        return certificate
    }
}
