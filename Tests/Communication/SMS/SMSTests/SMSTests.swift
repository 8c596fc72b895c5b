import Foundation
import NimbusCore
import NimbusSMS
import Testing
import NimbusSMSMemory

@Suite("SMS model")
struct SMSModelTests {
    @Test func phoneNumbersAreReadIntoE164() throws {
        #expect(try PhoneNumber("+1 (415) 555-0100").e164 == "+14155550100")
        #expect(try PhoneNumber("0044 20 7946 0018").e164 == "+442079460018")
        #expect(try PhoneNumber("+49.30.901820").e164 == "+4930901820")
        for bad in ["4155550100", "+0123456789", "+1234", "+1234567890123456", "+1 415 CALL NOW", ""] {
            #expect(throws: NimbusError.self, "\(bad)") { try PhoneNumber(bad) }
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PhoneNumber.self, from: Data("\"12\"".utf8)) }
        #expect(try SMSSender.alphanumericID("Nimbus 24") == .alphanumeric("Nimbus 24"))
        #expect(throws: NimbusError.self) { try SMSSender.alphanumericID("123456") }
        #expect(throws: NimbusError.self) { try SMSSender.alphanumericID("TwelveLetter") }
    }

    @Test func segmentsFollowGSM0338AndUCS2Rules() {
        #expect(SMSEncoding(String(repeating: "a", count: 160)).segments == 1)
        #expect(SMSEncoding(String(repeating: "a", count: 161)).segments == 2)
        #expect(SMSEncoding(String(repeating: "a", count: 306)).segments == 2)
        #expect(SMSEncoding(String(repeating: "a", count: 307)).segments == 3)
        // Extension characters take two septets and are never split across segments.
        let euros = SMSEncoding(String(repeating: "€", count: 80))
        #expect(euros.alphabet == .gsm7 && euros.units == 160 && euros.segments == 1)
        #expect(SMSEncoding(String(repeating: "€", count: 81)).segments == 2)
        let straddling = SMSEncoding(String(repeating: "a", count: 152) + "€" + String(repeating: "a", count: 10))
        #expect(straddling.units == 164 && straddling.segments == 2, "the escape moves whole into the second segment")
        #expect(SMSEncoding(String(repeating: "a", count: 152) + "€" + String(repeating: "a", count: 152)).segments == 3)
        // Accented Latin letters of the GSM table stay GSM-7; one Cyrillic letter makes it all UCS-2.
        #expect(SMSEncoding("Grüße aus Köln, Ñoño, è à ù").alphabet == .gsm7)
        #expect(SMSEncoding("Ñandú").nonGSMCharacters == ["ú"], "ú is not in the GSM table (ù is)")
        let cyrillic = SMSEncoding(String(repeating: "ж", count: 70))
        #expect(cyrillic.alphabet == .ucs2 && cyrillic.segments == 1 && cyrillic.nonGSMCharacters == ["ж"])
        #expect(SMSEncoding(String(repeating: "ж", count: 71)).segments == 2)
        #expect(SMSEncoding(String(repeating: "ж", count: 134)).segments == 2)
        #expect(SMSEncoding(String(repeating: "ж", count: 135)).segments == 3)
        // An emoji is a surrogate pair: two units, never split.
        let emoji = SMSEncoding(String(repeating: "a", count: 66) + "🎉")
        #expect(emoji.units == 68 && emoji.segments == 1)
        #expect(SMSEncoding(String(repeating: "a", count: 66) + "🎉" + String(repeating: "b", count: 3)).segments == 2)
        #expect(SMSEncoding("line\r\nbreak").units == 11, "CR and LF are two GSM characters")
    }

    @Test func statusesAreOpenAndKnowWhenTheyAreFinal() throws {
        let unknown = try JSONDecoder().decode(SMSStatus.self, from: Data("\"partially_delivered\"".utf8))
        #expect(unknown.rawValue == "partially_delivered" && !unknown.isFinal)
        #expect(SMSStatus.delivered.isFinal && SMSStatus.undelivered.isFailure && !SMSStatus.sent.isFinal)
        #expect(SMSStatus(rawValue: "DELIVERED") == .delivered)
    }

    @Test func theClientRefusesEmptyOrOverlongBodiesAndMasksNumbersInLogs() async throws {
        let outbox = MemorySMSDriver()
        let client = SMSClient(driver: outbox, configuration: .init(maxSegments: 2))
        let to = try PhoneNumber("+14155550100")
        await #expect(throws: NimbusError.self) { try await client.send(SMSMessage(from: .service("MG1"), to: to, body: "")) }
        let long = await #expect(throws: NimbusError.self) { try await client.send(SMSMessage(from: .service("MG1"), to: to, body: String(repeating: "ж", count: 200))) }
        #expect(long?.message.contains("'ж'") == true)
        let receipt = try await client.send(SMSMessage(from: .service("MG1"), to: to, body: "Your code is 123456"))
        #expect(receipt.segments == 1 && outbox.sent.count == 1)
        #expect(SMSClient.masked(to) == "+1415…00")
    }
}
