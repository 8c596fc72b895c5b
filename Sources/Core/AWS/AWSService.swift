import Foundation
import NimbusCore

/// The wire protocol of an AWS service.
public enum AWSProtocol: Sendable, Hashable {
    /// Form-encoded `Action`/`Version` POSTs, XML answers (STS, SNS, IAM, SQS before 2023).
    case query(version: String)
    /// EC2's variant of query (lists as `Name.N`, its own error shape).
    case ec2(version: String)
    /// JSON POSTs to `/` with `X-Amz-Target: <prefix>.<Operation>` (DynamoDB, KMS, SQS, Secrets Manager).
    case json(version: String, targetPrefix: String)
    /// REST with JSON bodies (Lambda, API Gateway).
    case restJSON
    /// REST with XML bodies (S3, Route 53, CloudFront).
    case restXML
}

/// What the client needs to know about a service: its names, its protocol, whether it is global.
public struct AWSService: Sendable, Hashable {
    /// The name in SigV4 scopes (`s3`, `dynamodb`, `states`).
    public var signingName: String
    /// The first label of its endpoints (`s3`, `dynamodb`, `states`).
    public var endpointPrefix: String
    /// The service id, as in `AWS_ENDPOINT_URL_<ID>` (`DynamoDB`, `SFN`, `Secrets Manager`).
    public var serviceID: String
    /// The wire protocol.
    public var wireProtocol: AWSProtocol
    /// One endpoint for all regions of a partition (IAM, Route 53, CloudFront).
    public var isGlobal: Bool

    /// Describes a service.
    public init(signingName: String, endpointPrefix: String? = nil, serviceID: String, wireProtocol: AWSProtocol, isGlobal: Bool = false) {
        self.signingName = signingName
        self.endpointPrefix = endpointPrefix ?? signingName
        self.serviceID = serviceID
        self.wireProtocol = wireProtocol
        self.isGlobal = isGlobal
    }

    /// The `AWS_ENDPOINT_URL_<SERVICE>` variable name (`Secrets Manager` → `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    public var endpointVariable: String {
        "AWS_ENDPOINT_URL_" + serviceID.uppercased().replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "-", with: "_")
    }

    public static let sts = AWSService(signingName: "sts", serviceID: "STS", wireProtocol: .query(version: "2011-06-15"))
    public static let iam = AWSService(signingName: "iam", serviceID: "IAM", wireProtocol: .query(version: "2010-05-08"), isGlobal: true)
    public static let sns = AWSService(signingName: "sns", serviceID: "SNS", wireProtocol: .query(version: "2010-03-31"))
    public static let ses = AWSService(signingName: "ses", endpointPrefix: "email", serviceID: "SESv2", wireProtocol: .restJSON)
    public static let sqs = AWSService(signingName: "sqs", serviceID: "SQS", wireProtocol: .json(version: "1.0", targetPrefix: "AmazonSQS"))
    public static let dynamoDB = AWSService(signingName: "dynamodb", serviceID: "DynamoDB", wireProtocol: .json(version: "1.0", targetPrefix: "DynamoDB_20120810"))
    public static let kms = AWSService(signingName: "kms", serviceID: "KMS", wireProtocol: .json(version: "1.1", targetPrefix: "TrentService"))
    public static let secretsManager = AWSService(signingName: "secretsmanager", serviceID: "Secrets Manager",
                                                  wireProtocol: .json(version: "1.1", targetPrefix: "secretsmanager"))
    public static let stepFunctions = AWSService(signingName: "states", serviceID: "SFN", wireProtocol: .json(version: "1.0", targetPrefix: "AWSStepFunctions"))
    public static let lambda = AWSService(signingName: "lambda", serviceID: "Lambda", wireProtocol: .restJSON)
    public static let ec2 = AWSService(signingName: "ec2", serviceID: "EC2", wireProtocol: .ec2(version: "2016-11-15"))
    public static let s3 = AWSService(signingName: "s3", serviceID: "S3", wireProtocol: .restXML)
}

/// AWS partitions: where a region's endpoints live.
public enum AWSPartition: String, Sendable {
    case aws, awsCN = "aws-cn", awsUSGov = "aws-us-gov"

    /// The partition of a region.
    public init(region: String) {
        if region.hasPrefix("cn-") { self = .awsCN } else if region.hasPrefix("us-gov-") { self = .awsUSGov } else { self = .aws }
    }

    /// The DNS suffix of its endpoints.
    public var dnsSuffix: String { self == .awsCN ? "amazonaws.com.cn" : "amazonaws.com" }

    /// The region global services are signed in.
    public var globalRegion: String {
        switch self {
        case .aws: "us-east-1"
        case .awsCN: "cn-north-1"
        case .awsUSGov: "us-gov-west-1"
        }
    }
}

/// Resolves where a service is reached and which region signs for it.
public struct AWSEndpointResolver: Sendable {
    /// An explicit endpoint for every service (`--endpoint-url`).
    public var endpointURL: String?
    /// The environment (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`).
    public var environment: [String: String]
    /// The profile's `endpoint_url`, if any.
    public var profileEndpointURL: String?

    /// Creates a resolver.
    public init(endpointURL: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment, profileEndpointURL: String? = nil) {
        self.endpointURL = endpointURL
        self.environment = environment
        self.profileEndpointURL = profileEndpointURL
    }

    /// The base URL and signing region for `service` in `region`.
    public func resolve(_ service: AWSService, region: String) -> (url: String, signingRegion: String, isCustom: Bool) {
        let ignoreConfigured = environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() == "true"
        if let explicit = endpointURL { return (explicit.trimmingSuffix("/"), region, true) }
        if !ignoreConfigured {
            if let specific = environment[service.endpointVariable], !specific.isEmpty { return (specific.trimmingSuffix("/"), region, true) }
            if let general = environment["AWS_ENDPOINT_URL"], !general.isEmpty { return (general.trimmingSuffix("/"), region, true) }
            if let profile = profileEndpointURL, !profile.isEmpty { return (profile.trimmingSuffix("/"), region, true) }
        }
        let partition = AWSPartition(region: region)
        if service.isGlobal {
            let host = partition == .awsCN ? "\(service.endpointPrefix).\(partition.globalRegion).\(partition.dnsSuffix)"
                : partition == .awsUSGov ? "\(service.endpointPrefix).us-gov.\(partition.dnsSuffix)" : "\(service.endpointPrefix).\(partition.dnsSuffix)"
            return ("https://\(host)", partition.globalRegion, false)
        }
        return ("https://\(service.endpointPrefix).\(region).\(partition.dnsSuffix)", region, false)
    }
}
