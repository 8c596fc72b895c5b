import Crypto
import SwiftASN1
import X509

/// The `tpm` attestation statement format (WebAuthn §8.3): a TPM 2.0 `TPM2_Certify` over the
/// credential's public area, signed by an attestation identity key whose certificate names the
/// TPM's manufacturer, model and version.
enum TPMAttestation {
    static func fail(_ what: String) -> WebAuthnRejection { WebAuthnRejection(.invalidAttestation, "tpm attestation: \(what)") }

    /// A big-endian cursor over TPM structures.
    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        mutating func take(_ n: Int, _ what: String) throws -> [UInt8] {
            guard n >= 0, offset + n <= bytes.count else { throw TPMAttestation.fail("\(what) runs past the end of the structure") }
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }
        mutating func u16(_ what: String) throws -> Int { try take(2, what).reduce(0) { $0 << 8 | Int($1) } }
        mutating func u32(_ what: String) throws -> UInt32 { try take(4, what).reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func sized(_ what: String) throws -> [UInt8] { try take(try u16(what), what) }
    }

    /// TPMT_PUBLIC: the credential key as the TPM describes it.
    struct PublicArea {
        var type: Int
        var nameAlg: Int
        var curve: Int?
        var exponent: UInt32?
        var unique: [[UInt8]]

        init(_ bytes: [UInt8]) throws {
            var r = Reader(bytes: bytes)
            type = try r.u16("pubArea.type")
            nameAlg = try r.u16("pubArea.nameAlg")
            _ = try r.u32("pubArea.objectAttributes")
            _ = try r.sized("pubArea.authPolicy")
            switch type {
            case 0x0001:
                _ = try r.u16("symmetric"); _ = try r.u16("scheme"); _ = try r.u16("keyBits")
                exponent = try r.u32("exponent")
                unique = [try r.sized("unique.n")]
            case 0x0023:
                _ = try r.u16("symmetric"); _ = try r.u16("scheme")
                curve = try r.u16("curveID")
                _ = try r.u16("kdf")
                unique = [try r.sized("unique.x"), try r.sized("unique.y")]
            default:
                throw TPMAttestation.fail("pubArea type \(type) is neither RSA nor ECC")
            }
            guard r.offset == bytes.count else { throw TPMAttestation.fail("\(bytes.count - r.offset) bytes after pubArea") }
        }
    }

    static func digest(_ data: [UInt8], tpmAlgorithm: Int) throws -> [UInt8] {
        switch tpmAlgorithm {
        case 0x000B: return Array(SHA256.hash(data: data))
        case 0x000C: return Array(SHA384.hash(data: data))
        case 0x000D: return Array(SHA512.hash(data: data))
        default: throw fail("name algorithm \(String(tpmAlgorithm, radix: 16)) is not SHA-256/384/512")
        }
    }

    static func digest(_ data: [UInt8], for algorithm: COSEAlgorithm) -> [UInt8] {
        switch algorithm {
        case .es384, .rs384, .ps384: Array(SHA384.hash(data: data))
        case .es512, .rs512, .ps512: Array(SHA512.hash(data: data))
        default: Array(SHA256.hash(data: data))
        }
    }

    static func verify(_ statement: CBOR, credential: AuthenticatorData.AttestedCredential, signed: [UInt8]) throws -> (AttestationType, [Certificate]) {
        guard statement["ver"]?.text == "2.0" else { throw fail("ver must be \"2.0\"") }
        let algorithm = try AttestationVerifier.algorithm(statement, format: "tpm")
        let sig = try AttestationVerifier.signature(statement, format: "tpm")
        guard let pubAreaBytes = statement["pubArea"]?.bytes, let certInfoBytes = statement["certInfo"]?.bytes else { throw fail("pubArea and certInfo are required") }
        let chain = try AttestationVerifier.certificates(statement, format: "tpm")

        // The public area must describe the credential public key.
        let pubArea = try PublicArea(pubAreaBytes)
        switch credential.publicKey.material {
        case .ec2(let curve, let x, let y):
            let tpmCurve = [1: 0x0003, 2: 0x0004, 3: 0x0005][curve]
            guard pubArea.type == 0x0023, pubArea.curve == tpmCurve, pubArea.unique == [x, y] else { throw fail("pubArea does not describe the credential public key") }
        case .rsa(let n, let e):
            let exponent = pubArea.exponent == 0 ? 65537 : pubArea.exponent ?? 0
            let credentialExponent = e.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard pubArea.type == 0x0001, pubArea.unique == [n], UInt64(exponent) == credentialExponent else { throw fail("pubArea does not describe the credential public key") }
        case .okp:
            throw fail("TPMs do not hold Ed25519 credentials")
        }

        // certInfo: a TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY over this pubArea and this ceremony.
        var r = Reader(bytes: certInfoBytes)
        guard try r.u32("magic") == 0xff54_4347 else { throw fail("certInfo magic is not TPM_GENERATED_VALUE") }
        guard try r.u16("type") == 0x8017 else { throw fail("certInfo type is not TPM_ST_ATTEST_CERTIFY") }
        _ = try r.sized("qualifiedSigner")
        let extraData = try r.sized("extraData")
        _ = try r.take(17, "clockInfo")
        _ = try r.take(8, "firmwareVersion")
        let name = try r.sized("attested.name")
        _ = try r.sized("attested.qualifiedName")
        guard r.offset == certInfoBytes.count else { throw fail("\(certInfoBytes.count - r.offset) bytes after certInfo") }
        guard extraData == digest(signed, for: algorithm) else { throw fail("certInfo.extraData is not the hash of authData || clientDataHash") }
        guard name.count > 2, Array(name[0..<2]) == [UInt8(pubArea.nameAlg >> 8), UInt8(pubArea.nameAlg & 0xff)],
              Array(name[2...]) == (try digest(pubAreaBytes, tpmAlgorithm: pubArea.nameAlg)) else {
            throw fail("certInfo.attested.name is not the name of pubArea")
        }

        // The AIK certificate and its signature over certInfo.
        let aik = chain[0]
        guard AttestationVerifier.verify(sig, over: certInfoBytes, with: aik.publicKey, algorithm: algorithm) else { throw fail("signature over certInfo does not verify with the AIK certificate") }
        guard aik.subject.isEmpty else { throw fail("the AIK certificate subject must be empty") }
        let names: SubjectAlternativeNames?
        do { names = try aik.extensions.subjectAlternativeNames } catch { throw fail("the AIK certificate subjectAltName is malformed") }
        var tcg: Set<String> = []
        for case .directoryName(let directory) in names ?? SubjectAlternativeNames() {
            for rdn in directory { for attribute in rdn { tcg.insert(attribute.type.description) } }
        }
        guard tcg.isSuperset(of: ["2.23.133.2.1", "2.23.133.2.2", "2.23.133.2.3"]) else {
            throw fail("the AIK certificate subjectAltName must name the TPM manufacturer, model and version")
        }
        let usage: ExtendedKeyUsage?
        do { usage = try aik.extensions.extendedKeyUsage } catch { throw fail("the AIK certificate extendedKeyUsage is malformed") }
        guard let usage, usage.contains(ExtendedKeyUsage.Usage(oid: AttestationVerifier.tpmKeyPurpose)) else {
            throw fail("the AIK certificate extendedKeyUsage must contain tcg-kp-AIKCertificate (2.23.133.8.3)")
        }
        try AttestationVerifier.checkLeaf(aik, aaguid: credential.aaguid, format: "tpm")
        return (.attestationCA, chain)
    }
}
