import SwiftASN1

/// The parts of Android's KeyDescription certificate extension (1.3.6.1.4.1.11129.2.1.17) that
/// WebAuthn §8.4 checks: the attestation challenge and, in each authorization list, the key's
/// origin, purposes and `allApplications`.
struct AndroidKeyDescription {
    struct AuthorizationList {
        var purposes: [Int] = []
        var origin: Int?
        var allApplications = false
    }

    var attestationChallenge: [UInt8]
    var software: AuthorizationList
    var tee: AuthorizationList

    init(der: [UInt8]) throws {
        func fail(_ what: String) -> WebAuthnRejection { WebAuthnRejection(.invalidAttestation, "android-key KeyDescription: \(what)") }
        guard let root = try? DER.parse(der), root.identifier == .sequence, case .constructed(let fields) = root.content else {
            throw fail("not a DER SEQUENCE")
        }
        let items = Array(fields)
        guard items.count >= 8 else { throw fail("\(items.count) fields, at least 8 expected") }
        guard items[4].identifier == .octetString, case .primitive(let challenge) = items[4].content else { throw fail("attestationChallenge is not an OCTET STRING") }
        attestationChallenge = Array(challenge)
        software = try Self.list(items[6], fail)
        tee = try Self.list(items[7], fail)
    }

    private static func integer(_ node: ASN1Node) -> Int? {
        guard node.identifier == .integer || node.identifier == .enumerated, case .primitive(let bytes) = node.content, !bytes.isEmpty, bytes.count <= 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | Int($1) }
    }

    private static func list(_ node: ASN1Node, _ fail: (String) -> WebAuthnRejection) throws -> AuthorizationList {
        guard node.identifier == .sequence, case .constructed(let entries) = node.content else { throw fail("an authorization list is not a SEQUENCE") }
        var list = AuthorizationList()
        for entry in entries where entry.identifier.tagClass == .contextSpecific {
            guard case .constructed(let inner) = entry.content, let value = inner.first(where: { _ in true }) else { continue }
            switch entry.identifier.tagNumber {
            case 1:
                guard value.identifier == .set, case .constructed(let members) = value.content else { throw fail("purpose is not a SET OF INTEGER") }
                list.purposes = members.compactMap(integer)
            case 702:
                guard let origin = integer(value) else { throw fail("origin is not an INTEGER") }
                list.origin = origin
            case 600:
                list.allApplications = true
            default:
                continue
            }
        }
        return list
    }
}
