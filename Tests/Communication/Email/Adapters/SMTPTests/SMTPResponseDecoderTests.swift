import NIOCore
import NIOEmbedded
import NimbusCore
import Testing
@testable import NimbusEmailSMTP

@Suite("SMTP reply decoder")
struct SMTPResponseDecoderTests {
    func decode(_ text: String) throws -> [SMTPResponse] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SMTPResponseDecoder()))
        try channel.writeInbound(ByteBuffer(string: text))
        var replies: [SMTPResponse] = []
        while let reply = try channel.readInbound(as: SMTPResponse.self) { replies.append(reply) }
        _ = try? channel.finish()
        return replies
    }

    @Test func multiLineRepliesAndEnhancedCodes() throws {
        let replies = try decode("250-mail.example.com greets you\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250 SMTPUTF8\r\n550 5.1.1 <x@y>: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        #expect(replies.count == 3)
        #expect(replies[0].code == 250 && replies[0].lines == ["mail.example.com greets you", "PIPELINING", "SIZE 35882577", "SMTPUTF8"])
        #expect(SMTPExtensions(ehloLines: replies[0].lines).size == 35_882_577 && SMTPExtensions(ehloLines: replies[0].lines).pipelining)
        #expect(replies[1].enhancedCode == "5.1.1" && replies[1].message == "<x@y>: User unknown" && replies[1].isPermanent)
        #expect(replies[2].code == 354 && replies[2].enhancedCode == nil)
    }

    @Test func aReplySplitAcrossReadsWaitsForItsEnd() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SMTPResponseDecoder()))
        try channel.writeInbound(ByteBuffer(string: "250-first\r\n25"))
        #expect(try channel.readInbound(as: SMTPResponse.self) == nil)
        try channel.writeInbound(ByteBuffer(string: "0 last\n"))                      // a bare LF is tolerated
        #expect(try channel.readInbound(as: SMTPResponse.self)?.lines == ["first", "last"])
    }

    @Test func malformedOrEndlessRepliesAreErrors() throws {
        #expect(throws: NimbusError.self) { try decode("hello there\r\n") }
        #expect(throws: NimbusError.self) { try decode("250-a\r\n354 b\r\n") }
        #expect(throws: NimbusError.self) { try decode("250 " + String(repeating: "x", count: 5000)) }
        #expect(throws: NimbusError.self) { try decode(String(repeating: "250-x\r\n", count: 300) + "250 end\r\n") }
    }

    @Test func authInTheOldEqualsFormAndQueueIDs() {
        let extensions = SMTPExtensions(ehloLines: ["name", "AUTH=LOGIN PLAIN", "AUTH XOAUTH2", "8BITMIME"])
        #expect(extensions.authMechanisms == ["LOGIN", "PLAIN", "XOAUTH2"] && extensions.eightBitMIME && !extensions.startTLS)
        #expect(SMTPConnection.queueID("2.0.0 Ok: queued as 4Bx1yT") == "4Bx1yT")
        #expect(SMTPConnection.queueID("OK id=1qA2b3-000123-AB") == "1qA2b3-000123-AB")
        #expect(SMTPConnection.queueID("Ok") == nil)
    }

    @Test func dotStuffingDoublesLeadingDotsAndEndsTheData() {
        var buffer = ByteBuffer()
        SMTPConnection.dotStuff(Array(".first\r\nmiddle\r\n..two\nlast".utf8), into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "..first\r\nmiddle\r\n...two\r\nlast\r\n.\r\n")
    }
}
