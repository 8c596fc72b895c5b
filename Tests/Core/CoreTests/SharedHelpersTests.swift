import Foundation
import NimbusCore
import Testing

@Suite("Helpers every module shares")
struct SharedHelpersTests {
    @Test("base64url: RFC 4648 §10 vectors without padding, both ways; plain base64 is refused")
    func base64URL() {
        let vectors: [(String, String)] = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("+/+/") == nil)
        #expect(Base64URL.decode("Zm9v!") == nil)
    }

    @Test("header names compare without ASCII case, in pairs and dictionaries")
    func headerLookup() {
        let pairs = [("Content-Type", "application/json"), ("X-Twilio-Signature", "abc"), ("x-twilio-signature", "later")]
        #expect(pairs.header("x-twilio-signature") == "abc")
        #expect(pairs.header("CONTENT-TYPE") == "application/json")
        #expect(pairs.header("Content-Length") == nil)
        #expect(["Stripe-Signature": "t=1"].header("stripe-signature") == "t=1")
        #expect("Content-Type".equalsIgnoringASCIICase("content-type"))
        #expect(!"Content-Typf".equalsIgnoringASCIICase("content-type"))
        #expect(!"a[".equalsIgnoringASCIICase("a{"), "only letters fold: [ and { differ by 0x20 too")
        #expect(!"Straße".equalsIgnoringASCIICase("STRASSE"))
    }

    @Test("a pipe is read to its end and written whole, across many reads, with a writer on another thread")
    func fileHandleReading() async throws {
        let pipe = Pipe()
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let writer = Task.detached {
            pipe.fileHandleForWriting.writeAllBytes(bytes)
            try? pipe.fileHandleForWriting.close()
        }
        let read = await Task.detached { pipe.fileHandleForReading.readAllBytes() }.value
        await writer.value
        #expect(Array(read) == bytes)
        #expect(pipe.fileHandleForReading.readAvailableBytes().isEmpty, "at end of file a read is empty")
    }
}
