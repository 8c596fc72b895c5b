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

    @Test("CRC-32C: the check value of 123456789 is e3069283; combining two parts' checksums equals checksumming the whole, at every split")
    func crc32cCombine() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<3000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for split in [0, 1, 7, 8, 255, 256, 1024, 2999, 3000] {
            let first = Array(bytes[..<split]), second = Array(bytes[split...])
            #expect(CRC32C.combine(CRC32C.checksum(first), CRC32C.checksum(second), length: second.count) == CRC32C.checksum(bytes), "split at \(split)")
        }
        #expect(CRC32C.combine(0x1234_5678, 0, length: 0) == 0x1234_5678)
    }
}
