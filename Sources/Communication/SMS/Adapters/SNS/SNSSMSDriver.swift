import Foundation
import NimbusAWS
import NimbusCore
import NimbusSMS

/// SMS through Amazon SNS `Publish` to a phone number, on the shared AWS core, with the SMS attributes
/// SNS reads: `AWS.SNS.SMS.SMSType` (transactional or promotional), `AWS.SNS.SMS.SenderID` for an
/// alphanumeric sender, `AWS.MM.SMS.OriginationNumber` for a number, `AWS.SNS.SMS.MaxPrice`.
///
/// ```swift
/// let sms = SMSClient(driver: SNSSMSDriver(aws: AWSClient(configuration: .init(region: "eu-west-1")), maxPriceUSD: 0.50))
/// try await sms.send(SMSMessage(from: try .alphanumericID("Nimbus"), to: try PhoneNumber("+447700900123"), body: "Your code is 123456"))
/// ```
public struct SNSSMSDriver: SMSDriver {
    public let provider = "sns"
    public let aws: AWSClient
    /// The most one message may cost, in US dollars (`AWS.SNS.SMS.MaxPrice`); SNS drops messages above it.
    public var maxPriceUSD: Decimal?

    /// SNS refuses SMS bodies over 1600 bytes.
    public static let maxBodyBytes = 1600

    public init(aws: AWSClient, maxPriceUSD: Decimal? = nil) {
        self.aws = aws
        self.maxPriceUSD = maxPriceUSD
    }

    public func send(_ message: SMSMessage) async throws -> SMSReceipt {
        guard message.body.utf8.count < Self.maxBodyBytes else {
            throw NimbusError(.invalidArgument, "SNS takes SMS bodies under \(Self.maxBodyBytes) bytes; this one has \(message.body.utf8.count)")
        }
        var attributes: [(String, String)] = [("AWS.SNS.SMS.SMSType", message.kind == .transactional ? "Transactional" : "Promotional")]
        switch message.from {
        case .alphanumeric(let id): attributes.append(("AWS.SNS.SMS.SenderID", id))
        case .number(let number): attributes.append(("AWS.MM.SMS.OriginationNumber", number.e164))
        case .service(let identity): attributes.append(("AWS.MM.SMS.OriginationNumber", identity))   // an origination identity ARN or number
        }
        if let maxPriceUSD { attributes.append(("AWS.SNS.SMS.MaxPrice", "\(maxPriceUSD)")) }
        let request = AWS.SNS.PublishInput(message: message.body,
                                           messageAttributes: Dictionary(attributes.map { ($0.0, .init(dataType: "String", stringValue: $0.1)) },
                                                                         uniquingKeysWith: { _, last in last }),
                                           phoneNumber: message.to.e164)
        let answer = try await AWS.SNS(client: aws).publish(request, maxAttempts: 1)   // SMSClient retries: one layer
        guard let id = answer.messageId else {
            throw NimbusError(.dataLoss, "SNS answered Publish without a MessageId; the message may have been sent (not retried)", retryable: false)
        }
        // SNS reports delivery only through CloudWatch Logs; "sent" is what Publish tells.
        return SMSReceipt(id: id, provider: provider, status: .sent, segments: message.encoding.segments)
    }
}

extension URLOpenerRegistry where Resource == any SMSDriver {
    /// Adds `sns://?region=eu-west-1&maxPrice=0.50&endpoint=http://127.0.0.1:5000&profile=P`.
    public func withSNS() -> Self {
        var copy = self
        copy.register("sns") { url in
            let configuration = AWSClient.Configuration(url: url)
            return SNSSMSDriver(aws: AWSClient(configuration: configuration), maxPriceUSD: url.options.string("maxPrice").flatMap { Decimal(string: $0) })
        }
        return copy
    }
}
