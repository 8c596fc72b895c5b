/// The authenticator data an authenticator signs (WebAuthn §6.1): RP ID hash, flags, signature
/// counter, and, at registration, the attested credential.
///
/// ```swift
/// let data = try AuthenticatorData(bytes: assertion.authenticatorData)
/// data.flags.contains(.userVerified)
/// ```
public struct AuthenticatorData: Sendable, Hashable {
    /// SHA-256 of the RP ID the credential is scoped to.
    public var rpIDHash: [UInt8]
    /// The flags byte.
    public var flags: Flags
    /// The signature counter (0 when the authenticator does not keep one).
    public var signCount: UInt32
    /// The credential created at registration (flag AT).
    public var attestedCredential: AttestedCredential?
    /// The authenticator extension outputs (flag ED), a CBOR map.
    public var extensions: CBOR?
    /// The bytes as received (what signatures cover).
    public var raw: [UInt8]

    /// The flags of §6.1.
    public struct Flags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// UP: the user was present.
        public static let userPresent = Flags(rawValue: 0x01)
        /// UV: the user was verified (PIN, biometrics).
        public static let userVerified = Flags(rawValue: 0x04)
        /// BE: the credential may be backed up (a synced passkey).
        public static let backupEligible = Flags(rawValue: 0x08)
        /// BS: the credential is backed up now.
        public static let backedUp = Flags(rawValue: 0x10)
        /// AT: attested credential data follows.
        public static let attestedCredentialData = Flags(rawValue: 0x40)
        /// ED: extension data follows.
        public static let extensionData = Flags(rawValue: 0x80)
    }

    /// The credential an authenticator reports at registration.
    public struct AttestedCredential: Sendable, Hashable {
        /// The authenticator model's AAGUID (all zeroes when not disclosed).
        public var aaguid: [UInt8]
        /// The credential id.
        public var credentialID: [UInt8]
        /// The credential public key.
        public var publicKey: COSEKey
    }

    /// The longest credential id WebAuthn allows.
    public static let maxCredentialIDLength = 1023

    /// Parses authenticator data.
    /// - Throws: ``WebAuthnRejection`` with reason `.malformed` or `.inconsistentBackupFlags`.
    public init(bytes: some Collection<UInt8>) throws {
        let raw = Array(bytes)
        self.raw = raw
        guard raw.count >= 37 else { throw WebAuthnRejection(.malformed, "authenticator data is \(raw.count) bytes, at least 37 are needed") }
        rpIDHash = Array(raw[0..<32])
        flags = Flags(rawValue: raw[32])
        signCount = raw[33..<37].reduce(0) { $0 << 8 | UInt32($1) }
        if flags.contains(.backedUp), !flags.contains(.backupEligible) {
            throw WebAuthnRejection(.inconsistentBackupFlags, "authenticator data says backed up (BS) but not backup eligible (BE)")
        }
        var offset = 37
        if flags.contains(.attestedCredentialData) {
            guard raw.count >= offset + 18 else { throw WebAuthnRejection(.malformed, "attested credential data is truncated") }
            let aaguid = Array(raw[offset..<offset + 16])
            let length = Int(raw[offset + 16]) << 8 | Int(raw[offset + 17])
            offset += 18
            guard length <= Self.maxCredentialIDLength else {
                throw WebAuthnRejection(.malformed, "credential id is \(length) bytes, at most \(Self.maxCredentialIDLength) are allowed")
            }
            guard raw.count >= offset + length else { throw WebAuthnRejection(.malformed, "credential id runs past the authenticator data") }
            let credentialID = Array(raw[offset..<offset + length])
            offset += length
            let key: (item: CBOR, length: Int)
            do { key = try CBOR.decodePrefix(raw[offset...]) } catch { throw WebAuthnRejection(.malformed, "credential public key: \(error)") }
            let publicKey = try COSEKey(cbor: key.item, encoded: Array(raw[offset..<offset + key.length]))
            offset += key.length
            attestedCredential = AttestedCredential(aaguid: aaguid, credentialID: credentialID, publicKey: publicKey)
        }
        if flags.contains(.extensionData) {
            do {
                let ext = try CBOR.decodePrefix(raw[offset...])
                guard ext.item.entries != nil else { throw CBORError("extensions are not a map") }
                extensions = ext.item
                offset += ext.length
            } catch let error as WebAuthnRejection { throw error } catch {
                throw WebAuthnRejection(.malformed, "authenticator extensions: \(error)")
            }
        }
        guard offset == raw.count else {
            throw WebAuthnRejection(.malformed, "\(raw.count - offset) unexpected bytes after the authenticator data (flags AT/ED do not describe them)")
        }
    }

    /// Serializes authenticator data (what a software authenticator signs).
    public static func encode(rpIDHash: [UInt8], flags: Flags, signCount: UInt32, credential: (aaguid: [UInt8], id: [UInt8], publicKey: COSEKey)? = nil, extensions: CBOR? = nil) -> [UInt8] {
        var flags = flags
        if credential != nil { flags.insert(.attestedCredentialData) }
        if extensions != nil { flags.insert(.extensionData) }
        var out = rpIDHash
        out.append(flags.rawValue)
        out += [UInt8(signCount >> 24), UInt8(signCount >> 16 & 0xff), UInt8(signCount >> 8 & 0xff), UInt8(signCount & 0xff)]
        if let credential {
            out += credential.aaguid
            out += [UInt8(credential.id.count >> 8), UInt8(credential.id.count & 0xff)]
            out += credential.id
            out += credential.publicKey.encoded
        }
        if let extensions { out += extensions.encoded() }
        return out
    }
}
