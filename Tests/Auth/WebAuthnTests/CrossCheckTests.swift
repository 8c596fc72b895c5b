import Foundation
import NimbusCore
import NimbusTesting
import NimbusWebAuthn
import Testing

/// Both directions against PyPI's py_webauthn and fido2 (scripts/auth/webauthn-oracle): what
/// Nimbus's software authenticator creates, both libraries verify; what fido2's data classes and
/// `cryptography` keys create, Nimbus verifies; and the same forged inputs are refused by all three.
@Suite("WebAuthn agrees with py_webauthn and fido2", .requires(.authSDKs))
struct WebAuthnCrossCheckTests {
    static let origin = "https://example.org"

    func oracle(_ command: String, _ input: JSONValue) async throws -> JSONValue {
        let python = try Peer.authSDKs.url()
        let script = (Peer.packageRoot() ?? ".") + "/scripts/auth/webauthn-oracle"
        let run = try await ProcessRunner.run(python, [script, command], input: Array(input.description.utf8))
        #expect(run.status == 0, "\(run.stderr)")
        return try JSONValue.parse(Array(run.stdout.utf8))
    }

    func json(_ value: some Encodable) throws -> JSONValue { try JSONValue.parse(Array(JSONEncoder().encode(value))) }

    @Test("credentials and assertions from Nimbus's software authenticator verify in py_webauthn and fido2",
          arguments: [(COSEAlgorithm.es256, false), (.edDSA, true), (.rs256, true)])
    func nimbusCreates(_ algorithm: COSEAlgorithm, selfAttested: Bool) async throws {
        let rp = exampleRelyingParty { $0.algorithms = [algorithm] }
        var authenticator = SoftwareAuthenticator(origin: Self.origin, attestation: selfAttested ? .packedSelf : .none)
        let options = rp.registrationOptions(for: ada)
        let registration = try authenticator.register(options)
        let credential = try await rp.verifyRegistration(registration, challenge: options.challenge.bytes, userHandle: ada.id.bytes)

        let verified = try await oracle("verify-registration", ["response": try json(registration), "challenge": .string(options.challenge.base64URL),
                                                                "rpId": "example.org", "origin": .string(Self.origin)])
        for library in ["py_webauthn", "fido2"] {
            let result = try #require(verified[library])
            #expect(result["error"] == nil, "\(library): \(result)")
            #expect(result["credentialId"]?.stringValue == credential.id.base64URL, "\(library)")
            #expect(result["publicKey"]?.stringValue == credential.publicKey.base64URL, "\(library) decodes the same COSE key")
            #expect(result["fmt"]?.stringValue == (selfAttested ? "packed" : "none"), "\(library)")
            #expect(result["signCount"]?.numberValue == 1, "\(library)")
        }

        let request = rp.authenticationOptions(allowing: [credential.descriptor])
        let assertion = try authenticator.authenticate(request)
        func input(_ assertion: AuthenticationResponse) throws -> JSONValue {
            ["response": try json(assertion), "challenge": .string(request.challenge.base64URL), "rpId": "example.org",
                                "origin": .string(Self.origin), "publicKey": .string(credential.publicKey.base64URL),
                                "signCount": .number(Double(credential.signCount)), "credentialId": .string(credential.id.base64URL)]
        }
        let checked = try await oracle("verify-authentication", try input(assertion))
        #expect(checked["py_webauthn"]?["newSignCount"]?.numberValue == 2, "\(checked)")
        #expect(checked["fido2"]?["ok"] == .bool(true), "\(checked)")

        // The same assertion with a flipped signature bit: all three refuse it.
        var forged = assertion
        forged.response.signature.bytes[10] ^= 0x01
        let refused = try await oracle("verify-authentication", try input(forged))
        #expect(refused["py_webauthn"]?["error"] != nil && refused["fido2"]?["error"] != nil, "\(refused)")
        #expect(rejection(.badSignature) { _ = try rp.verifyAuthentication(forged, challenge: request.challenge.bytes, credential: credential) })
    }

    @Test("credentials and assertions created with fido2 and cryptography verify in Nimbus",
          arguments: [(-7, "none"), (-8, "packed-self"), (-257, "packed-self"), (-7, "packed-self")])
    func pythonCreates(_ alg: Int, attestation: String) async throws {
        let rp = exampleRelyingParty { $0.algorithms = [COSEAlgorithm(rawValue: alg)] }
        let options = rp.registrationOptions(for: ada)
        let created = try await oracle("create", ["rpId": "example.org", "origin": .string(Self.origin), "challenge": .string(options.challenge.base64URL),
                                                  "alg": .number(Double(alg)), "attestation": .string(attestation)])
        let registration = try JSONDecoder().decode(RegistrationResponse.self, from: Data(try #require(created["response"]).description.utf8))
        let credential = try await rp.verifyRegistration(registration, challenge: options.challenge.bytes, userHandle: ada.id.bytes)
        #expect(credential.algorithm.rawValue == alg)
        #expect(credential.attestationType == (attestation == "none" ? .none : .self))
        #expect(credential.aaguid.bytes == Array(repeating: 0x11, count: 16))
        #expect(credential.transports == ["usb"])

        var stored = credential
        for count in [5, 9] {
            let request = rp.authenticationOptions(allowing: [stored.descriptor])
            let signed = try await oracle("get", ["rpId": "example.org", "origin": .string(Self.origin), "challenge": .string(request.challenge.base64URL),
                                                  "privateKey": try #require(created["privateKey"]), "credentialId": .string(stored.id.base64URL),
                                                  "signCount": .number(Double(count)), "userHandle": .string(ada.id.base64URL)])
            let assertion = try JSONDecoder().decode(AuthenticationResponse.self, from: Data(try #require(signed["response"]).description.utf8))
            stored = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: stored).credential
            #expect(stored.signCount == UInt32(count))
        }
        // fido2 signing a counter at or below the stored one: the clone is refused.
        let request = rp.authenticationOptions(allowing: [stored.descriptor])
        let cloned = try await oracle("get", ["rpId": "example.org", "origin": .string(Self.origin), "challenge": .string(request.challenge.base64URL),
                                              "privateKey": try #require(created["privateKey"]), "credentialId": .string(stored.id.base64URL),
                                              "signCount": 9, "userHandle": .string(ada.id.base64URL)])
        let assertion = try JSONDecoder().decode(AuthenticationResponse.self, from: Data(try #require(cloned["response"]).description.utf8))
        #expect(rejection(.signCountRegressed) { _ = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: stored) })
    }

    @Test("a registration for another origin is refused by Nimbus, py_webauthn and fido2 alike")
    func wrongOriginEverywhere() async throws {
        let rp = exampleRelyingParty()
        var phishing = SoftwareAuthenticator(origin: "https://examp1e.org")
        let options = rp.registrationOptions(for: ada)
        let registration = try phishing.register(options)
        await #expect(asyncRejection(.originNotAllowed) { _ = try await rp.verifyRegistration(registration, challenge: options.challenge.bytes, userHandle: ada.id.bytes) })
        let verified = try await oracle("verify-registration", ["response": try json(registration), "challenge": .string(options.challenge.base64URL),
                                                                "rpId": "example.org", "origin": .string(Self.origin)])
        #expect(verified["py_webauthn"]?["error"] != nil && verified["fido2"]?["error"] != nil, "\(verified)")
    }
}
