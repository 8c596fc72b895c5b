import Foundation
import NimbusCore
import NimbusHTTP
import Testing

/// Hostile timestamps are refused before the signature is looked at — never a trap.
@Suite struct WebhookTimestampTests {
    static let hostile = ["nan", "NaN", "inf", "1e300", "-9223372036854775808", "9223372036854775807", "-1", "+1700000000", " ", "",
                          "1700000000.", ".5", "17000000000000", "0x10", "１７００"]

    @Test(arguments: hostile)
    func refused(_ text: String) {
        let error = #expect(throws: NimbusError.self) { try WebhookSignature.timestamp(text, header: "X-Test-Timestamp") }
        #expect(error?.code == .unauthenticated && error?.message.contains("X-Test-Timestamp") == true)
    }

    @Test func plainSecondsAndFractionsAreRead() throws {
        #expect(try WebhookSignature.timestamp("1700000000", header: "t") == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(try WebhookSignature.timestamp("1700000000.25", header: "t") == Date(timeIntervalSince1970: 1_700_000_000.25))
    }

    @Test func anAgeNoClockExplainsIsReportedWithoutTrapping() {
        let error = #expect(throws: NimbusError.self) {
            try WebhookSignature.verify(payload: Array("x".utf8), candidates: ["00"], secrets: [Secret("s")],
                                        timestamp: Date(timeIntervalSince1970: -1e300), now: Date())
        }
        #expect(error?.message.contains("very far") == true)
    }
}
