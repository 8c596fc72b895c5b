import Foundation
import NimbusAWS
import NimbusCore
import NimbusSMS
import NimbusTesting
import Testing
@testable import NimbusSMSSNS

/// Retries live in one layer: the SNS driver makes one request per message, whatever the AWS
/// client's own setting, and `SMSClient` retries.
@Suite(.timeLimit(.minutes(1))) struct SNSRetryLayerTests {
    @Test func oneFailingSendIsAsManyRequestsAsTheSMSClientsAttempts() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/", reply: .response(status: 503, headers: [("Content-Type", "text/xml")], body: .init(string:
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>try later</Message></Error><RequestId>r1</RequestId></ErrorResponse>")))
        let aws = AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("secret")),
                                                 endpointURL: server.baseURL, maxAttempts: 3, environment: [:]))
        let client = SMSClient(driver: SNSSMSDriver(aws: aws),
                               configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2))))
        let error = await #expect(throws: NimbusError.self) {
            _ = try await client.send(SMSMessage(from: .alphanumericID("Nimbus"), to: try PhoneNumber("+14155550100"), body: "hello"))
        }
        #expect(error?.code == .unavailable)
        #expect(server.requests.count == 3, "3 attempts of SMSClient, none added by the AWS client under it (before: 3 × 3 = 9)")
    }
}
