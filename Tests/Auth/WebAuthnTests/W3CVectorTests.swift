import Crypto
import Foundation
import NimbusCore
import NimbusTesting
import NimbusWebAuthn
import Testing
import X509

/// One vector of the WebAuthn Level 3 "Test Vectors" section.
struct W3CVector: Sendable, CustomTestStringConvertible {
    var title: String
    var registration: [String: String]
    var authentication: [String: String]
    var testDescription: String { title }

    func bytes(_ field: String, registration isRegistration: Bool = true) -> [UInt8] {
        hex((isRegistration ? registration : authentication)[field] ?? "")
    }

    static let all: [W3CVector] = {
        guard let url = Bundle.module.url(forResource: "Fixtures/w3c-webauthn-test-vectors", withExtension: "json"),
              let data = try? Data(contentsOf: url),
              let items = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return items.compactMap { item in
            guard let title = item["title"] as? String, let reg = item["registration"] as? [String: Any], let auth = item["authentication"] as? [String: Any] else { return nil }
            return W3CVector(title: title, registration: reg.compactMapValues { $0 as? String }, authentication: auth.compactMapValues { $0 as? String })
        }
    }()

    static let attestationRoot: Certificate = {
        let url = Bundle.module.url(forResource: "Fixtures/w3c-webauthn-test-vectors", withExtension: "json")!
        let items = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        let values = items.first { ($0["anchor"] as? String) == "sctn-test-vectors-attestation-root-cert" }!["values"] as! [String: String]
        return try! Certificate(derEncoded: hex(values["attestation_ca_cert"]!))
    }()

    var expectedFormat: String {
        if title.contains("TPM") { return "tpm" }
        if title.contains("Android") { return "android-key" }
        if title.contains("Apple") { return "apple" }
        if title.contains("U2F") { return "fido-u2f" }
        if title.contains("Packed") || title.contains("Self") { return "packed" }
        return "none"
    }

    var registrationResponse: RegistrationResponse {
        let attestationObject = bytes("attestationObject")
        let id = (try? AttestationObject(bytes: attestationObject))?.authenticatorData.attestedCredential?.credentialID ?? bytes("credential_id")
        return RegistrationResponse(rawId: id, response: .init(clientDataJSON: bytes("clientDataJSON"), attestationObject: attestationObject))
    }

    func authenticationResponse(credentialID: [UInt8]) -> AuthenticationResponse {
        AuthenticationResponse(rawId: credentialID, response: .init(
            clientDataJSON: bytes("clientDataJSON", registration: false),
            authenticatorData: bytes("authenticatorData", registration: false),
            signature: bytes("signature", registration: false)))
    }
}

func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The relying party the vectors were generated for: RP ID example.org, origin https://example.org,
/// every algorithm, the W3C test attestation CA as the only trust anchor.
func vectorRelyingParty(trusted: Bool = true, configure: (inout WebAuthnRelyingParty.Configuration) -> Void = { _ in }) -> WebAuthnRelyingParty {
    var configuration = WebAuthnRelyingParty.Configuration(id: "example.org", name: "Example", origins: ["https://example.org"])
    configuration.algorithms = COSEAlgorithm.supported
    configuration.allowCrossOrigin = true
    if trusted { configuration.attestationPolicy.trustAnchors = [W3CVector.attestationRoot] }
    configure(&configuration)
    return WebAuthnRelyingParty(configuration)
}

@Suite("WebAuthn: the W3C Level 3 test vectors")
struct W3CVectorTests {
    @Test("the fixture holds the 15 credential vectors")
    func fixture() {
        #expect(W3CVector.all.count == 15)
    }

    @Test("registration and authentication verify, with the attestation format and trust the vector has",
          arguments: W3CVector.all.filter { !$0.title.contains("Ed448") && !$0.title.contains("Android") })
    func vector(_ vector: W3CVector) async throws {
        let rp = vectorRelyingParty()
        let credential = try await rp.verifyRegistration(vector.registrationResponse, challenge: vector.bytes("challenge"), userHandle: [1, 2, 3])
        #expect(credential.attestationFormat == vector.expectedFormat)
        if let aaguid = vector.registration["aaguid"] { #expect(credential.aaguid.bytes == hex(aaguid)) }
        switch vector.expectedFormat {
        case "none": #expect(credential.attestationType == .none)
        case "packed" where vector.title.contains("Self"): #expect(credential.attestationType == .self)
        case "tpm": #expect(credential.attestationType == .attestationCA && credential.attestationTrusted)
        case "apple": #expect(credential.attestationType == .anonymizationCA && credential.attestationTrusted)
        default: #expect(credential.attestationType == .basic && credential.attestationTrusted)
        }
        let result = try rp.verifyAuthentication(vector.authenticationResponse(credentialID: credential.id.bytes),
                                                 challenge: vector.bytes("challenge", registration: false), credential: credential)
        let flags = AuthenticatorData.Flags(rawValue: vector.bytes("authenticatorData", registration: false)[32])
        #expect(result.userVerified == flags.contains(.userVerified))
        #expect(result.credential.lastUsedAt != nil)

        // The same assertion, one bit of its signature flipped, is refused.
        var forged = vector.authenticationResponse(credentialID: credential.id.bytes)
        forged.response.signature.bytes[forged.response.signature.bytes.count / 2] ^= 0x01
        #expect(rejection(.badSignature) { try rp.verifyAuthentication(forged, challenge: vector.bytes("challenge", registration: false), credential: credential) })
    }

    /// The vector's KeyDescription has empty softwareEnforced and teeEnforced lists. §8.4 requires
    /// origin = KM_ORIGIN_GENERATED and purpose ∋ KM_PURPOSE_SIGN in them (py_webauthn requires the
    /// same), so the vector is refused at that step — after its signature, key and challenge checks passed.
    @Test("the Android Key vector passes every check up to §8.4's origin/purpose, which its empty authorization lists fail")
    func androidKey() async throws {
        let vector = try #require(W3CVector.all.first { $0.title.contains("Android") })
        do {
            _ = try await vectorRelyingParty().verifyRegistration(vector.registrationResponse, challenge: vector.bytes("challenge"), userHandle: [1])
            Issue.record("the vector's empty authorization lists were accepted")
        } catch let rejection as WebAuthnRejection {
            #expect(rejection.reason == .invalidAttestation && rejection.message.contains("KM_ORIGIN_GENERATED"), "\(rejection)")
        }
    }

    @Test("the Ed448 vector is refused by name: swift-crypto has no Ed448")
    func ed448() async throws {
        let vector = try #require(W3CVector.all.first { $0.title.contains("Ed448") })
        await #expect(asyncRejection(.unsupportedAlgorithm) {
            _ = try await vectorRelyingParty().verifyRegistration(vector.registrationResponse, challenge: vector.bytes("challenge"), userHandle: [1])
        })
    }

    @Test("a tampered attestation statement is refused for every certificate-based format",
          arguments: W3CVector.all.filter { ["packed", "tpm", "android-key", "apple", "fido-u2f"].contains($0.expectedFormat) && !$0.title.contains("Ed448") })
    func tamperedStatement(_ vector: W3CVector) async throws {
        // Re-encode the attestation object with one bit of the statement's signature (or, for
        // apple, of the certificate's nonce extension) flipped.
        let original = try CBOR.decode(vector.bytes("attestationObject"))
        var entries = try #require(original.entries)
        let statementIndex = try #require(entries.firstIndex { $0.key == .text("attStmt") })
        var statement = try #require(entries[statementIndex].value.entries)
        if let sig = statement.firstIndex(where: { $0.key == .text("sig") }) {
            var bytes = try #require(statement[sig].value.bytes)
            bytes[bytes.count - 3] ^= 0x01
            statement[sig].value = .bytes(bytes)
        } else {
            let x5c = try #require(statement.firstIndex { $0.key == .text("x5c") })
            var certificates = try #require(statement[x5c].value.array)
            var leaf = try #require(certificates[0].bytes)
            let nonceOID: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x08, 0x02]
            let at = try #require((0..<leaf.count - nonceOID.count).first { Array(leaf[$0..<$0 + nonceOID.count]) == nonceOID })
            leaf[at + nonceOID.count + 10] ^= 0x01
            certificates[0] = .bytes(leaf)
            statement[x5c].value = .array(certificates)
        }
        entries[statementIndex].value = .map(statement)
        var response = vector.registrationResponse
        response.response.attestationObject = Base64URLBytes(CBOR.map(entries).encoded())
        await #expect(asyncRejection(.invalidAttestation) {
            _ = try await vectorRelyingParty().verifyRegistration(response, challenge: vector.bytes("challenge"), userHandle: [1])
        })
    }

    @Test("a valid attestation that does not chain to a trust anchor is refused when the policy requires a trusted chain")
    func untrusted() async throws {
        let vector = try #require(W3CVector.all.first { $0.expectedFormat == "packed" && !$0.title.contains("Self") })
        let lenient = try await vectorRelyingParty(trusted: false).verifyRegistration(vector.registrationResponse, challenge: vector.bytes("challenge"), userHandle: [1])
        #expect(lenient.attestationType == .basic && !lenient.attestationTrusted)
        let strict = vectorRelyingParty(trusted: false) { $0.attestationPolicy.requireTrustedChain = true }
        await #expect(asyncRejection(.untrustedAttestation) {
            _ = try await strict.verifyRegistration(vector.registrationResponse, challenge: vector.bytes("challenge"), userHandle: [1])
        })
        let noSelf = vectorRelyingParty { $0.attestationPolicy.allowSelf = false }
        let selfVector = try #require(W3CVector.all.first { $0.title.contains("Self Attestation") })
        await #expect(asyncRejection(.untrustedAttestation) {
            _ = try await noSelf.verifyRegistration(selfVector.registrationResponse, challenge: selfVector.bytes("challenge"), userHandle: [1])
        })
    }

    @Test("the ceremony checks: challenge, origin, RP ID, type, cross-origin, user verification, offered algorithms")
    func ceremonyChecks() async throws {
        let vector = try #require(W3CVector.all.first { $0.title == "ES256 Credential with No Attestation" })
        let response = vector.registrationResponse
        let challenge = vector.bytes("challenge")
        func refused(_ reason: WebAuthnRejection.Reason, _ rp: WebAuthnRelyingParty, challenge: [UInt8]? = nil, response: RegistrationResponse? = nil) async -> Bool {
            await asyncRejection(reason) { _ = try await rp.verifyRegistration(response ?? vector.registrationResponse, challenge: challenge ?? vector.bytes("challenge"), userHandle: [1]) }
        }
        #expect(await refused(.challengeMismatch, vectorRelyingParty(), challenge: Array(challenge.reversed())))
        #expect(await refused(.challengeMismatch, vectorRelyingParty(), challenge: []))
        #expect(await refused(.originNotAllowed, vectorRelyingParty { $0.origins = ["https://example.com"] }))
        #expect(await refused(.rpIDMismatch, vectorRelyingParty { $0.id = "example.com"; $0.origins = ["https://example.org"] }))
        #expect(await refused(.unsupportedAlgorithm, vectorRelyingParty { $0.algorithms = [.edDSA, .rs256] }))
        // An assertion's client data offered as a registration's.
        var swapped = response
        swapped.response.clientDataJSON = Base64URLBytes(vector.bytes("clientDataJSON", registration: false))
        #expect(await refused(.wrongType, vectorRelyingParty(), challenge: vector.bytes("challenge", registration: false), response: swapped))
        // id and rawId disagree.
        var mismatched = response
        mismatched.id = "AAAA"
        #expect(await refused(.malformed, vectorRelyingParty(), response: mismatched))

        let crossOrigin = try #require(W3CVector.all.first { $0.title.contains("\"crossOrigin\": true") })
        let topOrigin = try #require(W3CVector.all.first { $0.title.contains("topOrigin") })
        let noCross = vectorRelyingParty { $0.allowCrossOrigin = false }
        await #expect(asyncRejection(.originNotAllowed) { _ = try await noCross.verifyRegistration(crossOrigin.registrationResponse, challenge: crossOrigin.bytes("challenge"), userHandle: [1]) })
        let onlyShop = vectorRelyingParty { $0.allowedTopOrigins = ["https://shop.example.net"] }
        await #expect(asyncRejection(.originNotAllowed) { _ = try await onlyShop.verifyRegistration(topOrigin.registrationResponse, challenge: topOrigin.bytes("challenge"), userHandle: [1]) })
        await #expect(asyncRejection(.originNotAllowed) { _ = try await onlyShop.verifyRegistration(crossOrigin.registrationResponse, challenge: crossOrigin.bytes("challenge"), userHandle: [1]) })
        let exampleCom = vectorRelyingParty { $0.allowedTopOrigins = ["https://example.com"] }
        _ = try await exampleCom.verifyRegistration(topOrigin.registrationResponse, challenge: topOrigin.bytes("challenge"), userHandle: [1])

        // A vector whose UV flag is clear, under a policy that requires user verification.
        let withoutUV = try #require(W3CVector.all.first { vector in
            let object = try? AttestationObject(bytes: vector.bytes("attestationObject"))
            return object.map { !$0.authenticatorData.flags.contains(.userVerified) && $0.authenticatorData.attestedCredential?.publicKey.algorithm != .ed448 } ?? false
        })
        await #expect(asyncRejection(.userNotVerified) {
            _ = try await vectorRelyingParty { $0.userVerification = .required }.verifyRegistration(withoutUV.registrationResponse, challenge: withoutUV.bytes("challenge"), userHandle: [1])
        })
    }
}

/// Whether `body` throws a ``WebAuthnRejection`` with `reason` (anything else, or no error, is `false`).
func rejection(_ reason: WebAuthnRejection.Reason, _ body: () throws -> Void) -> Bool {
    do { try body(); return false } catch let error as WebAuthnRejection {
        if error.reason != reason { Issue.record("expected \(reason), got \(error)") }
        return error.reason == reason
    } catch { Issue.record("expected \(reason), got \(error)"); return false }
}

func asyncRejection(_ reason: WebAuthnRejection.Reason, _ body: () async throws -> Void) async -> Bool {
    do { try await body(); return false } catch let error as WebAuthnRejection {
        if error.reason != reason { Issue.record("expected \(reason), got \(error)") }
        return error.reason == reason
    } catch { Issue.record("expected \(reason), got \(error)"); return false }
}
