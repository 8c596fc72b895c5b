import NimbusKMS
import NimbusKMSLocal
import Testing

@Suite("Envelope encryption")
struct EnvelopeTests {
    @Test("the encryption context is bound unambiguously: moving a character between name and value changes it")
    func contextEncoding() {
        #expect(EncryptionContext.authenticatedData(["ab": "c"], label: "x") != EncryptionContext.authenticatedData(["a": "bc"], label: "x"))
        #expect(EncryptionContext.authenticatedData(["a": "1", "b": "2"], label: "x") == EncryptionContext.authenticatedData(["b": "2", "a": "1"], label: "x"))
    }
}
