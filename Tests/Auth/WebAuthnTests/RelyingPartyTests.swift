import Crypto
import _CryptoExtras
import Foundation
import NimbusCore
import NimbusTesting
import NimbusWebAuthn
import SwiftASN1
import Testing
import X509

func exampleRelyingParty(configure: (inout WebAuthnRelyingParty.Configuration) -> Void = { _ in }) -> WebAuthnRelyingParty {
    var configuration = WebAuthnRelyingParty.Configuration(id: "example.org", name: "Example", origins: ["https://example.org"])
    configure(&configuration)
    return WebAuthnRelyingParty(configuration)
}

let ada = WebAuthnUser(id: Array("user-handle-ada".utf8), name: "ada@example.org", displayName: "Ada")

@Suite("WebAuthn: relying party ceremonies with a software authenticator")
struct RelyingPartyTests {
    @Test("options carry what the browser needs, as WebAuthn's JSON forms")
    func options() throws {
        let rp = exampleRelyingParty { $0.userVerification = .required; $0.residentKey = .required }
        let options = rp.registrationOptions(for: ada, excluding: [CredentialDescriptor(id: [9, 9], transports: ["usb"])])
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as? [String: Any])
        #expect((json["rp"] as? [String: String]) == ["id": "example.org", "name": "Example"])
        #expect((json["user"] as? [String: String])?["id"] == Base64URL.encode(ada.id.bytes))
        #expect((json["pubKeyCredParams"] as? [[String: Any]])?.compactMap { $0["alg"] as? Int } == [-8, -7, -257])
        #expect((json["authenticatorSelection"] as? [String: Any])?["userVerification"] as? String == "required")
        #expect((json["authenticatorSelection"] as? [String: Any])?["requireResidentKey"] as? Bool == true)
        #expect((json["excludeCredentials"] as? [[String: Any]])?.first?["id"] as? String == "CQk")
        #expect(json["timeout"] as? Int == 300_000)
        #expect(options.challenge.bytes.count == 32)
        #expect(rp.registrationOptions(for: ada).challenge != options.challenge)
        let request = rp.authenticationOptions()
        #expect(request.rpId == "example.org" && request.allowCredentials.isEmpty && request.challenge.bytes.count == 32)
    }

    @Test("register and sign in with ES256, EdDSA and RS256; the counter advances", arguments: [COSEAlgorithm.es256, .edDSA, .rs256])
    func roundTrip(_ algorithm: COSEAlgorithm) async throws {
        let rp = exampleRelyingParty { $0.algorithms = [algorithm] }
        let store = MemoryWebAuthnCredentialStore()
        var authenticator = SoftwareAuthenticator(origin: "https://example.org", attestation: .packedSelf)
        let options = rp.registrationOptions(for: ada)
        let registration = try authenticator.register(options)
        let credential = try await rp.verifyRegistration(registration, challenge: options.challenge.bytes, userHandle: ada.id.bytes)
        #expect(credential.algorithm == algorithm && credential.attestationType == .self && credential.signCount == 1)
        try await store.save(credential)
        await #expect(throws: NimbusError.self) { try await store.save(credential) }

        for expected in [UInt32(2), 3] {
            let request = rp.authenticationOptions(allowing: [credential.descriptor])
            let assertion = try authenticator.authenticate(request)
            let stored = try #require(try await store.credential(id: assertion.rawId.bytes))
            let result = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: stored)
            #expect(result.credential.signCount == expected && result.userVerified)
            try await store.recordUse(result.credential)
        }
        #expect(try await store.credentials(userHandle: ada.id.bytes).map(\.signCount) == [3])
    }

    @Test("a cloned authenticator (counter not above the stored one) is refused, by the relying party and by the store")
    func clonedAuthenticator() async throws {
        let rp = exampleRelyingParty()
        let store = MemoryWebAuthnCredentialStore()
        var authenticator = SoftwareAuthenticator(origin: "https://example.org")
        let options = rp.registrationOptions(for: ada)
        let credential = try await rp.verifyRegistration(try authenticator.register(options), challenge: options.challenge.bytes, userHandle: ada.id.bytes)
        try await store.save(credential)
        var clone = authenticator
        let first = rp.authenticationOptions()
        let original = try rp.verifyAuthentication(try authenticator.authenticate(first), challenge: first.challenge.bytes, credential: credential)
        try await store.recordUse(original.credential)
        // The clone signs with the same key and the same counter the original used.
        let second = rp.authenticationOptions()
        let stored = try #require(try await store.credential(id: credential.id.bytes))
        #expect(rejection(.signCountRegressed) { _ = try rp.verifyAuthentication(try clone.authenticate(second), challenge: second.challenge.bytes, credential: stored) })
        // A race: the original (counter 3) and the clone (counter 3) both pass against the same
        // stored record (counter 2); the store keeps the first and refuses the second.
        let current = try #require(try await store.credential(id: credential.id.bytes))
        let third = rp.authenticationOptions(), fourth = rp.authenticationOptions()
        let fromOriginal = try rp.verifyAuthentication(try authenticator.authenticate(third), challenge: third.challenge.bytes, credential: current)
        let fromClone = try rp.verifyAuthentication(try clone.authenticate(fourth), challenge: fourth.challenge.bytes, credential: current)
        #expect(fromOriginal.credential.signCount == 3 && fromClone.credential.signCount == 3)
        try await store.recordUse(fromOriginal.credential)
        await #expect(asyncRejection(.signCountRegressed) { try await store.recordUse(fromClone.credential) })
        // Counter 0 on both sides (synced passkeys) is allowed.
        var passkey = SoftwareAuthenticator(origin: "https://example.org", backupEligible: true, backedUp: true, countsSignatures: false)
        let passkeyOptions = rp.registrationOptions(for: ada)
        let synced = try await rp.verifyRegistration(try passkey.register(passkeyOptions), challenge: passkeyOptions.challenge.bytes, userHandle: ada.id.bytes)
        #expect(synced.signCount == 0 && synced.backupEligible && synced.backedUp)
        let request = rp.authenticationOptions()
        #expect(try rp.verifyAuthentication(try passkey.authenticate(request), challenge: request.challenge.bytes, credential: synced).credential.signCount == 0)
    }

    @Test("assertions are refused for another credential, another user, a replayed challenge, changed backup eligibility, or missing UV")
    func assertionRefusals() async throws {
        let rp = exampleRelyingParty()
        var authenticator = SoftwareAuthenticator(origin: "https://example.org", verifiesUser: false)
        let options = rp.registrationOptions(for: ada)
        let credential = try await rp.verifyRegistration(try authenticator.register(options), challenge: options.challenge.bytes, userHandle: ada.id.bytes)
        let request = rp.authenticationOptions()
        let assertion = try authenticator.authenticate(request)

        var otherCredential = credential
        otherCredential.id = Base64URLBytes([1, 2, 3])
        #expect(rejection(.unknownCredential) { _ = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: otherCredential) })
        var otherUser = credential
        otherUser.userHandle = Base64URLBytes(Array("mallory".utf8))
        #expect(rejection(.unknownCredential) { _ = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: otherUser) })
        let replayed = rp.authenticationOptions()
        #expect(rejection(.challengeMismatch) { _ = try rp.verifyAuthentication(assertion, challenge: replayed.challenge.bytes, credential: credential) })
        var eligible = credential
        eligible.backupEligible = true
        #expect(rejection(.inconsistentBackupFlags) { _ = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: eligible) })
        let strict = exampleRelyingParty { $0.userVerification = .required }
        #expect(rejection(.userNotVerified) { _ = try strict.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: credential) })
        // A registration response offered as an assertion's client data.
        var swapped = assertion
        swapped.response.clientDataJSON = Base64URLBytes(authenticator.clientDataJSON(type: "webauthn.create", challenge: request.challenge.bytes))
        #expect(rejection(.wrongType) { _ = try rp.verifyAuthentication(swapped, challenge: request.challenge.bytes, credential: credential) })
        // The assertion signed for another RP ID.
        let phishing = WebAuthnRelyingParty(.init(id: "examp1e.org", name: "Phish", origins: ["https://example.org"]))
        let phishingRequest = AuthenticationOptions(challenge: request.challenge, timeout: 1000, rpId: "example.org", allowCredentials: [], userVerification: "preferred", hints: [])
        let phished = try authenticator.authenticate(phishingRequest)
        #expect(rejection(.rpIDMismatch) { _ = try phishing.verifyAuthentication(phished, challenge: request.challenge.bytes, credential: credential) })
        // The original verifies (it was the checks above, not the assertion, that failed).
        _ = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: credential)
    }

    @Test("packed attestation with an x5c chain: trusted with its root as anchor, untrusted otherwise, refused if the leaf's OU is wrong")
    func packedWithCertificates() async throws {
        let (root, rootKey) = try makeCA()
        let attestationKey = P256.Signing.PrivateKey()
        let leaf = try makeLeaf(key: attestationKey, issuer: root, issuerKey: rootKey, unit: "Authenticator Attestation")
        var authenticator = SoftwareAuthenticator(origin: "https://example.org", attestation: .packed(key: attestationKey, chain: [leaf]), aaguid: Array(repeating: 7, count: 16))
        let trusting = exampleRelyingParty { $0.attestationPolicy.trustAnchors = [root]; $0.attestationPolicy.requireTrustedChain = true }
        let options = trusting.registrationOptions(for: ada)
        let credential = try await trusting.verifyRegistration(try authenticator.register(options), challenge: options.challenge.bytes, userHandle: ada.id.bytes)
        #expect(credential.attestationType == .basic && credential.attestationTrusted && credential.aaguid.bytes == Array(repeating: 7, count: 16))

        let (otherRoot, _) = try makeCA()
        let other = exampleRelyingParty { $0.attestationPolicy.trustAnchors = [otherRoot]; $0.attestationPolicy.requireTrustedChain = true }
        let otherOptions = other.registrationOptions(for: ada)
        let untrusted = try authenticator.register(otherOptions)
        await #expect(asyncRejection(.untrustedAttestation) { _ = try await other.verifyRegistration(untrusted, challenge: otherOptions.challenge.bytes, userHandle: ada.id.bytes) })

        let wrongUnit = try makeLeaf(key: attestationKey, issuer: root, issuerKey: rootKey, unit: "Marketing")
        var badAuthenticator = SoftwareAuthenticator(origin: "https://example.org", attestation: .packed(key: attestationKey, chain: [wrongUnit]))
        let badOptions = trusting.registrationOptions(for: ada)
        let bad = try badAuthenticator.register(badOptions)
        await #expect(asyncRejection(.invalidAttestation) { _ = try await trusting.verifyRegistration(bad, challenge: badOptions.challenge.bytes, userHandle: ada.id.bytes) })
    }
}

func makeCA() throws -> (Certificate, P256.Signing.PrivateKey) {
    let key = P256.Signing.PrivateKey()
    let name = try DistinguishedName { CommonName("Nimbus test attestation root \(UUID().uuidString)") }
    let certificate = try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
        notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86400),
        issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true))
        },
        issuerPrivateKey: .init(key))
    return (certificate, key)
}

func makeLeaf(key: P256.Signing.PrivateKey, issuer: Certificate, issuerKey: P256.Signing.PrivateKey, unit: String) throws -> Certificate {
    let subject = try DistinguishedName {
        CountryName("AA")
        OrganizationName("Nimbus")
        OrganizationalUnitName(unit)
        CommonName("Nimbus software authenticator")
    }
    return try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
        notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86400),
        issuer: issuer.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions { Critical(BasicConstraints.notCertificateAuthority) },
        issuerPrivateKey: .init(issuerKey))
}

@Suite("WebAuthn: CBOR, COSE and authenticator data refuse malformed bytes")
struct WebAuthnParsingTests {
    @Test("CBOR round-trips and encodes canonically (map keys sorted length-first)")
    func cborCanonical() throws {
        let item = CBOR.map([.init(.text("fmt"), .text("none")), .init(.int(-1), .int(1)), .init(.int(3), .int(-7)), .init(.text("a"), .bytes([1, 2])),
                             .init(.int(1000), .array([.bool(true), .null, .float(1.5), .tagged(1, .int(0))]))])
        let bytes = item.encoded()
        // Keys by encoded length, then bytes: 3, -1, "a", 1000, "fmt".
        #expect(Array(bytes.prefix(13)) == [0xa5, 0x03, 0x26, 0x20, 0x01, 0x61, 0x61, 0x42, 0x01, 0x02, 0x19, 0x03, 0xe8])
        let decoded = try CBOR.decode(bytes)
        #expect(decoded[3]?.int == -7 && decoded["fmt"]?.text == "none" && decoded[1000]?.array?.count == 4)
        #expect(try CBOR.decode([0xf9, 0x3c, 0x00]) == .float(1.0))            // half precision
        #expect(try CBOR.decode([0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) == .unsigned(.max))
    }

    @Test("CBOR refuses truncation, indefinite lengths, duplicate keys, trailing bytes, lying lengths and deep nesting", arguments: [
        ([0x58, 0x05, 0x01], "truncated byte string"),
        ([0x5f, 0x41, 0x01, 0xff], "indefinite byte string"),
        ([0xbf, 0x01, 0x02, 0xff], "indefinite map"),
        ([0xa2, 0x01, 0x02, 0x01, 0x03], "duplicate key"),
        ([0x01, 0x02], "trailing byte"),
        ([0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "length of 2^63"),
        ([0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], "4 billion items"),
        ([UInt8](repeating: 0x81, count: 40) + [0x01], "40 nested arrays"),
        ([0x62, 0xc3, 0x28], "invalid UTF-8"),
        ([0x1c], "reserved additional info"),
        ([0xff], "stray break"),
    ] as [([UInt8], String)])
    func cborRefusals(bytes: [UInt8], what: String) {
        #expect(throws: CBORError.self, "\(what)") { _ = try CBOR.decode(bytes) }
    }

    @Test("authenticator data: too short, BS without BE, trailing bytes, an overlong credential id, a key that is not a COSE key")
    func authenticatorDataRefusals() throws {
        let hash = [UInt8](repeating: 0, count: 32)
        #expect(rejection(.malformed) { _ = try AuthenticatorData(bytes: [UInt8](repeating: 0, count: 36)) })
        #expect(rejection(.inconsistentBackupFlags) { _ = try AuthenticatorData(bytes: AuthenticatorData.encode(rpIDHash: hash, flags: [.userPresent, .backedUp], signCount: 0)) })
        #expect(rejection(.malformed) { _ = try AuthenticatorData(bytes: AuthenticatorData.encode(rpIDHash: hash, flags: [.userPresent], signCount: 0) + [0]) })
        var overlong = AuthenticatorData.encode(rpIDHash: hash, flags: [.userPresent, .attestedCredentialData], signCount: 0) + [UInt8](repeating: 0, count: 16)
        overlong += [0x04, 0x00] + [UInt8](repeating: 1, count: 1024)
        #expect(rejection(.malformed) { _ = try AuthenticatorData(bytes: overlong) })
        let key = COSEKey(P256.Signing.PrivateKey().publicKey)
        let good = AuthenticatorData.encode(rpIDHash: hash, flags: [.userPresent], signCount: 5, credential: ([UInt8](repeating: 0, count: 16), [1, 2, 3], key))
        let parsed = try AuthenticatorData(bytes: good)
        #expect(parsed.signCount == 5 && parsed.attestedCredential?.credentialID == [1, 2, 3] && parsed.attestedCredential?.publicKey == key)
        var notAKey = good
        notAKey.replaceSubrange((good.count - key.encoded.count)..., with: CBOR.array([.int(1)]).encoded())
        #expect(rejection(.malformed) { _ = try AuthenticatorData(bytes: notAKey) })
    }

    @Test("COSE keys: alg and curve must agree, points must be on the curve, RSA keys must be 2048 bits, unknown algorithms are named")
    func coseRefusals() throws {
        let p256 = Array(P256.Signing.PrivateKey().publicKey.rawRepresentation)
        func ec2(alg: Int, crv: Int, x: [UInt8], y: [UInt8]) -> [UInt8] {
            CBOR.map([.init(.int(1), .int(2)), .init(.int(3), .int(alg)), .init(.int(-1), .int(crv)), .init(.int(-2), .bytes(x)), .init(.int(-3), .bytes(y))]).encoded()
        }
        _ = try COSEKey(bytes: ec2(alg: -7, crv: 1, x: Array(p256[0..<32]), y: Array(p256[32...])))
        #expect(rejection(.malformed) { _ = try COSEKey(bytes: ec2(alg: -7, crv: 2, x: Array(p256[0..<32]), y: Array(p256[32...]))) })
        #expect(rejection(.malformed) { _ = try COSEKey(bytes: ec2(alg: -35, crv: 1, x: Array(p256[0..<32]), y: Array(p256[32...]))) })
        var offCurve = Array(p256[32...])
        offCurve[31] ^= 1
        #expect(rejection(.malformed) { _ = try COSEKey(bytes: ec2(alg: -7, crv: 1, x: Array(p256[0..<32]), y: offCurve)) })
        #expect(rejection(.unsupportedAlgorithm) { _ = try COSEKey(bytes: ec2(alg: -65535, crv: 1, x: Array(p256[0..<32]), y: Array(p256[32...]))) })
        // An EC2 key that claims RS256.
        #expect(rejection(.malformed) { _ = try COSEKey(bytes: ec2(alg: -257, crv: 1, x: Array(p256[0..<32]), y: Array(p256[32...]))) })
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)).publicKey.getKeyPrimitives()
        let rsa1024 = CBOR.map([.init(.int(1), .int(3)), .init(.int(3), .int(-257)), .init(.int(-1), .bytes(Array(small.modulus))), .init(.int(-2), .bytes(Array(small.publicExponent)))]).encoded()
        #expect(rejection(.malformed) { _ = try COSEKey(bytes: rsa1024) })
    }

    @Test("client data must be a JSON object with string members and a boolean crossOrigin")
    func clientDataRefusals() {
        for json in [#"[]"#, #"{"type":"webauthn.get","origin":"https://example.org"}"#,
                     #"{"type":"webauthn.get","challenge":"AAAA","origin":"https://example.org","crossOrigin":1}"#,
                     #"{"type":"webauthn.get","challenge":"AA+/","origin":"https://example.org"}"#] {
            #expect(rejection(.malformed) { _ = try CollectedClientData(json: Array(json.utf8)) }, "\(json)")
        }
        #expect(rejection(.malformed) { _ = try CollectedClientData(json: Array(repeating: 0x20, count: 70_000)) })
    }
}
