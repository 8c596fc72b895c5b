import Foundation
import NimbusAWS
import NimbusCore
import NimbusEmail
import NimbusTesting
import Testing
@testable import NimbusEmailSES

/// Retries live in one layer: the SES driver makes one request per send, whatever the AWS
/// client's own setting, and `EmailClient` retries.
@Suite(.timeLimit(.minutes(1))) struct SESRetryLayerTests {
    @Test func oneFailingSendIsAsManyRequestsAsTheEmailClientsAttempts() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/v2/email/outbound-emails", reply: .json(503, #"{"message":"Service Unavailable"}"#,
                                                                   headers: [("x-amzn-ErrorType", "ServiceUnavailable")]))
        let aws = AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("secret")),
                                                 endpointURL: server.baseURL, maxAttempts: 3, environment: [:]))
        let client = EmailClient(driver: SESEmailDriver(aws: aws),
                                 configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2))))
        let message = EmailMessage(from: try EmailAddress("shop@example.com"), to: [try EmailAddress("a@example.org")], subject: "s", text: "t")
        let error = await #expect(throws: NimbusError.self) { _ = try await client.send(message) }
        #expect(error?.code == .unavailable)
        #expect(server.requests.count == 3, "3 attempts of EmailClient, none added by the AWS client under it (before: 3 × 3 = 9)")
    }
}
