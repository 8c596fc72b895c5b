import Foundation
import NimbusCore
import NimbusTesting
import Testing
@testable import NimbusEmail
import NimbusEmailConformance

@Suite("Addresses and IDNA")
struct EmailAddressTests {
    @Test func punycodeMatchesRFC3492Samples() throws {
        // RFC 3492 §7.1 samples and common labels (checked against Python's punycode codec).
        let samples = ["bücher": "bcher-kva", "münchen": "mnchen-3ya", "3年B組金八先生": "3B-ww4c5e180e575a65lsy2b",
                       "ليهمابتكلموشعربي؟": "egbpdaj6bu4bxfgehfvwxn", "-> $1.00 <-": "-> $1.00 <--",
                       "Pročprostěnemluvíčesky": "Proprostnemluvesky-uyb24dma41a"]
        for (unicode, encoded) in samples {
            #expect(try Punycode.encode(unicode) == encoded, "\(unicode)")
            #expect(try Punycode.decode(encoded) == unicode, "\(encoded)")
        }
        #expect(throws: NimbusError.self) { try Punycode.decode("bcher-kv!") }
        #expect(try IDNA.toASCII("Bücher.Example.") == "xn--bcher-kva.example")
        #expect(IDNA.toUnicode("xn--bcher-kva.example") == "bücher.example")
    }

    @Test func addressesParseWithNamesQuotesAndInternationalDomains() throws {
        let named = try EmailAddress("Zoë Example <Zoe@Example.COM>")
        #expect(named.name == "Zoë Example" && named.localPart == "Zoe" && named.domain == "example.com")
        let quoted = try EmailAddress("\"Doe, Jane\" <jane@example.org>")
        #expect(quoted.name == "Doe, Jane")
        let idn = try EmailAddress("info@bücher.example")
        #expect(idn.smtpAddress == "info@xn--bcher-kva.example" && !idn.requiresSMTPUTF8)
        #expect(try EmailAddress("jörg@example.com").requiresSMTPUTF8)
        #expect(try EmailAddress("\"john smith\"@example.com").localPart == "john smith")
        #expect(try EmailAddress("\"john smith\"@example.com").smtpAddress == "\"john smith\"@example.com")
        let list = try EmailAddress.list("a@example.com, \"Doe, Jane\" <jane@example.org>; Bob <bob@example.net>")
        #expect(list.map(\.address) == ["a@example.com", "jane@example.org", "bob@example.net"])
        #expect(try EmailAddress("A@example.com") != EmailAddress("a@example.com"), "local parts are case-sensitive")
        #expect(try EmailAddress("a@EXAMPLE.com") == EmailAddress("a@example.com"), "domains are not")
    }

    @Test func badAddressesSayWhatIsWrong() {
        for bad in ["no-at-sign", "a@", "@example.com", ".a@example.com", "a..b@example.com", "a b@example.com", "a@exa mple.com",
                    "a@-example.com", "a@example..com", String(repeating: "x", count: 65) + "@example.com",
                    "a@" + String(repeating: "x", count: 64) + ".com", "Name\r\nBcc: x@y <a@example.com>"] {
            #expect(throws: NimbusError.self, "\(bad)") { try EmailAddress(bad) }
        }
    }

    @Test func addressesRoundTripThroughJSON() throws {
        let address = try EmailAddress("\"Doe, Jane\" <jane@example.org>")
        let decoded = try JSONDecoder().decode(EmailAddress.self, from: try JSONEncoder().encode(address))
        #expect(decoded == address && decoded.name == "Doe, Jane")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(EmailAddress.self, from: Data("\"not an address\"".utf8)) }
    }
}

@Suite("MIME writer")
struct MIMEWriterTests {
    let from = try! EmailAddress("Shop <shop@example.com>")
    let to = try! EmailAddress("zoe@example.org")

    func lines(_ document: MIMEDocument) -> [String] {
        String(decoding: document.bytes, as: UTF8.self).components(separatedBy: "\r\n")
    }

    @Test func aPlainASCIIMessageIsOneSevenBitPart() throws {
        let document = try MIMEWriter().write(EmailMessage(from: from, to: [to], bcc: [try EmailAddress("hidden@example.com")], subject: "Hello", text: "Hi.\nBye."),
                                              date: Date(timeIntervalSince1970: 1_764_122_400))
        #expect(document.header("Date") == "Wed, 26 Nov 2025 02:00:00 +0000")
        #expect(document.header("From") == "Shop <shop@example.com>" && document.header("Subject") == "Hello")
        #expect(document.header("Content-Type") == "text/plain; charset=utf-8" && document.header("Content-Transfer-Encoding") == "7bit")
        #expect(document.header("Bcc") == nil && !String(decoding: document.bytes, as: UTF8.self).contains("hidden@"))
        #expect(String(decoding: document.body, as: UTF8.self) == "Hi.\r\nBye.")
        #expect(document.messageID.hasPrefix("<") && document.messageID.hasSuffix("@example.com>"))
    }

    @Test func unicodeHeadersBecomeEncodedWordsOfAtMost75Characters() throws {
        let subject = String(repeating: "Grüße 🧾 ", count: 12)
        let document = try MIMEWriter().write(EmailMessage(from: try EmailAddress("Zoë <z@example.com>"), to: [to], subject: subject, text: "x"))
        let value = try #require(document.header("Subject"))
        let words = value.components(separatedBy: "\r\n ")
        #expect(words.count > 1 && words.allSatisfy { $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") && $0.count <= 75 })
        let decoded = words.map { word -> String in
            let base64 = word.dropFirst(10).dropLast(2)
            return String(decoding: Data(base64Encoded: String(base64)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == subject)
        #expect(document.header("From") == "=?UTF-8?B?Wm/Dqw==?= <z@example.com>")
        // A long ASCII subject is folded at spaces, never over 78 characters a line.
        let long = try MIMEWriter().write(EmailMessage(from: from, to: [to], subject: String(repeating: "word ", count: 40), text: "x"))
        #expect(lines(long).allSatisfy { $0.count <= 78 })
    }

    @Test func quotedPrintableKeepsLinesShortAndEscapesWhatItMust() {
        let text = Array((String(repeating: "é", count: 60) + " trailing \r\n=sign\tand tab\t\r\n" + String(repeating: "a", count: 200)).utf8)
        let encoded = String(decoding: MIMEWriter.quotedPrintable(text), as: UTF8.self)
        let encodedLines = encoded.components(separatedBy: "\r\n")
        #expect(encodedLines.allSatisfy { $0.count <= 76 }, "\(encodedLines.map(\.count))")
        #expect(encoded.contains("trailing=20\r\n") && encoded.contains("=3Dsign") && encoded.contains("tab=09\r\n"))
        #expect(encoded.hasPrefix("=C3=A9"))
        #expect(!encodedLines.contains { line in line.hasSuffix("=") && line.dropLast().hasSuffix("=") }, "an escape is never split by a soft break")
    }

    @Test func headerInjectionAndMisuseAreRefused() throws {
        #expect(throws: NimbusError.self) { try MIMEWriter().write(EmailMessage(from: from, to: [to], subject: "a\r\nBcc: x@y", text: "x")) }
        #expect(throws: NimbusError.self) { try MIMEWriter().write(EmailMessage(from: from, to: [to], subject: "a", text: "x", headers: [(name: "X-A", value: "b\nc")])) }
        #expect(throws: NimbusError.self) { try MIMEWriter().write(EmailMessage(from: from, to: [to], subject: "a", text: "x", headers: [(name: "Subject", value: "b")])) }
        #expect(throws: NimbusError.self) { try MIMEWriter().write(EmailMessage(from: from, subject: "no recipient", text: "x")) }
        #expect(throws: NimbusError.self) { try MIMEWriter().write(EmailMessage(from: from, to: [to], subject: "no body")) }
        var oneClick = EmailMessage(from: from, to: [to], subject: "a", text: "x")
        oneClick.listUnsubscribe = .init(url: URL(string: "http://example.com/u"), oneClick: true)
        #expect(throws: NimbusError.self) { try MIMEWriter().write(oneClick) }
    }

    @Test func theStructureFollowsTheContent() throws {
        let writer = MIMEWriter(boundary: { "B\(UUID().uuidString.prefix(4))" })
        let both = try writer.write(EmailMessage(from: from, to: [to], subject: "a", text: "t", html: "<p>h</p>"))
        #expect(both.header("Content-Type")?.hasPrefix("multipart/alternative;") == true)
        let attached = try writer.write(EmailMessage(from: from, to: [to], subject: "a", text: "t", attachments: [.file(named: "a.txt", contentType: "text/plain", data: [65])]))
        #expect(attached.header("Content-Type")?.hasPrefix("multipart/mixed;") == true)
        let body = String(decoding: attached.body, as: UTF8.self)
        #expect(body.contains("Content-Disposition: attachment; filename=\"a.txt\"") && body.contains("QQ==\r\n"))
        let inlineOnly = try writer.write(EmailMessage(from: from, to: [to], subject: "a", html: "<img src=\"cid:x\">",
                                                       attachments: [.inline(id: "x", named: "x.png", contentType: "image/png", data: [1])]))
        #expect(inlineOnly.header("Content-Type")?.hasPrefix("multipart/related;") == true)
        let utf8Name = try writer.write(EmailMessage(from: from, to: [to], subject: "a", text: "t", attachments: [.file(named: "März.pdf", contentType: "application/pdf", data: [1])]))
        #expect(String(decoding: utf8Name.body, as: UTF8.self).contains("filename*=utf-8''M%C3%A4rz.pdf"))
        let eightBit = try MIMEWriter(options: .init(allow8Bit: true)).write(EmailMessage(from: from, to: [to], subject: "a", text: "Grüße"))
        #expect(eightBit.has8BitBody && eightBit.header("Content-Transfer-Encoding") == "8bit")
    }
}

@Suite("DKIM canonicalization")
struct DKIMTests {
    @Test func relaxedCanonicalizationFollowsRFC6376Example() {
        // RFC 6376 §3.4.6.
        #expect(DKIMSigner.relaxedHeader("A", " X") == "a:X")
        #expect(DKIMSigner.relaxedHeader("B ", " Y\t\r\n\tZ  ") == "b:Y Z")
        #expect(DKIMSigner.relaxedBody(Array(" C \r\nD \t E\r\n\r\n\r\n".utf8)) == Array(" C\r\nD E\r\n".utf8))
        #expect(DKIMSigner.relaxedBody([]) == [] && DKIMSigner.relaxedBody(Array("\r\n\r\n".utf8)) == [])
        #expect(DKIMSigner.relaxedBody(Array("no final newline".utf8)) == Array("no final newline\r\n".utf8))
    }

    @Test func theSignatureHeaderListsSignedHeadersBottomUpAndBadKeysAreRefused() throws {
        let signer = try DKIMSigner(domain: "Example.com", selector: "s1", ed25519PrivateKeyBase64: Data(repeating: 7, count: 32).base64EncodedString(),
                                    lifetime: .seconds(3600))
        let document = try MIMEWriter().write(EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("b@example.org")], subject: "s", text: "t"))
        let signed = try signer.sign(document, at: Date(timeIntervalSince1970: 1_000_000))
        let header = try #require(signed.headers.first)
        #expect(header.name == "DKIM-Signature")
        #expect(header.value.contains("a=ed25519-sha256") && header.value.contains("d=example.com") && header.value.contains("t=1000000") && header.value.contains("x=1003600"))
        #expect(header.value.contains("h=from:subject:date:to:message-id:mime-version:content-type:content-transfer-encoding"))
        #expect(signer.dnsRecord.name == "s1._domainkey.example.com")
        #expect(throws: NimbusError.self) { try DKIMSigner(domain: "example.com", selector: "s", ed25519PrivateKeyBase64: "c2hvcnQ=") }
        #expect(throws: NimbusError.self) { try DKIMSigner(domain: "example.com", selector: "s", rsaPrivateKeyPEM: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----") }
        #expect(throws: NimbusError.self) { try DKIMSigner(domain: "example.com", selector: "bad selector", ed25519PrivateKeyBase64: Data(repeating: 7, count: 32).base64EncodedString()) }
    }
}
