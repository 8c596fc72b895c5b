import Foundation
import NimbusCore
import NimbusEmail
import Testing

/// Issue 15 §4: nothing a caller writes reaches `RCPT TO` or a header with line breaks or extra text.
@Suite struct EmailInjectionTests {
    @Test func addressLiteralsAreIPv4OrIPv6Only() throws {
        #expect(try EmailAddress("ops@[192.0.2.1]").address == "ops@[192.0.2.1]")
        #expect(try EmailAddress("ops@[IPv6:2001:DB8::1]").asciiDomain == "[IPv6:2001:db8::1]")
        for hostile in ["ops@[192.0.2.1]\r\nRCPT TO:<victim@example.com>", "ops@[192.0.2.1\r\nDATA]", "ops@[evil]", "ops@[300.1.1.1]",
                        "ops@[IPv6:2001:db8::1>\r\n]", "ops@[]"] {
            #expect(throws: NimbusError.self, "\(hostile.debugDescription)") { try EmailAddress(hostile) }
        }
    }

    @Test func messageIDAndUnsubscribeTargetsCannotCarryHeaders() throws {
        let base = EmailMessage(from: try EmailAddress("shop@example.com"), to: [try EmailAddress("zoe@example.org")], subject: "Hi", text: "Hello")
        var injected = base
        injected.messageID = "x@example.com>\r\nBcc: victim@example.com"
        #expect(throws: NimbusError.self) { try injected.validate() }
        var unsubscribe = base
        unsubscribe.listUnsubscribe = .init(mailto: "u@example.com>\r\nBcc: victim@example.com")
        #expect(throws: NimbusError.self) { try unsubscribe.validate() }
        var fine = base
        fine.messageID = "order-42@example.com"
        fine.listUnsubscribe = .init(mailto: "unsubscribe@example.com?subject=42")
        try fine.validate()
    }
}
