import Crypto
import Foundation
import NimbusCore

/// The age file encryption format, v1 (age-encryption.org/v1), with X25519 recipients: files
/// written here decrypt with the `age` command, and files `age -r` writes decrypt here.
///
/// ```swift
/// let identity = Age.Identity.generate()                 // AGE-SECRET-KEY-1…, keep it secret
/// let file = try Age.encrypt(Array("db-password".utf8), to: [identity.recipient])
/// let plain = try Age.decrypt(file, with: [identity])
/// ```
///
/// Decryption is strict: a header that is not canonical (base64 with padding or stray bits,
/// wrong line lengths, unknown version), a wrong MAC, a truncated or extended payload, or a
/// reordered chunk is refused with `dataLoss`; no identity matching is `permissionDenied`.
/// Passphrase (scrypt) recipients are not supported: swift-crypto has no scrypt.
public enum Age {
    static let version = "age-encryption.org/v1"
    static let chunkSize = 64 * 1024
    static let armorBegin = "-----BEGIN AGE ENCRYPTED FILE-----"
    static let armorEnd = "-----END AGE ENCRYPTED FILE-----"

    /// An X25519 recipient: the public half, `age1…`.
    public struct Recipient: Sendable, Hashable, CustomStringConvertible {
        let key: Curve25519.KeyAgreement.PublicKey
        /// Parses `age1…`.
        public init(_ text: String) throws {
            guard let (hrp, data) = Bech32.decode(text), hrp == "age", text == text.lowercased(), data.count == 32,
                  let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: data) else {
                throw NimbusError(.invalidArgument, "not an age X25519 recipient (age1… with 32 bytes): \(text.prefix(12))…")
            }
            self.key = key
        }
        init(key: Curve25519.KeyAgreement.PublicKey) { self.key = key }
        /// The `age1…` text.
        public var description: String { Bech32.encode(hrp: "age", data: Array(key.rawRepresentation)) }
        public static func == (a: Self, b: Self) -> Bool { a.key.rawRepresentation == b.key.rawRepresentation }
        public func hash(into hasher: inout Hasher) { hasher.combine(key.rawRepresentation) }
    }

    /// An X25519 identity: the private key, `AGE-SECRET-KEY-1…`. Its description is redacted.
    public struct Identity: Sendable, CustomStringConvertible {
        let key: Curve25519.KeyAgreement.PrivateKey
        /// Parses `AGE-SECRET-KEY-1…`.
        public init(_ text: String) throws {
            guard let (hrp, data) = Bech32.decode(text), hrp == "age-secret-key-", text == text.uppercased(), data.count == 32,
                  let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: data) else {
                throw NimbusError(.invalidArgument, "not an age X25519 identity (AGE-SECRET-KEY-1…)")
            }
            self.key = key
        }
        init(key: Curve25519.KeyAgreement.PrivateKey) { self.key = key }
        /// A new random identity.
        public static func generate() -> Identity { Identity(key: Curve25519.KeyAgreement.PrivateKey()) }
        /// The identities of an identity file as `age-keygen` writes it (`#` comments, one key per line).
        public static func parseFile(_ text: String) throws -> [Identity] {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !lines.isEmpty else { throw NimbusError(.invalidArgument, "the identity file holds no AGE-SECRET-KEY-1… line") }
            return try lines.map(Identity.init)
        }
        /// The matching recipient.
        public var recipient: Recipient { Recipient(key: key.publicKey) }
        /// The `AGE-SECRET-KEY-1…` text, wrapped so it is not logged by accident.
        public var encoded: Secret<String> { Secret(Bech32.encode(hrp: "age-secret-key-", data: Array(key.rawRepresentation)).uppercased()) }
        /// An identity file, as `age-keygen` writes it.
        public var fileContents: Secret<String> {
            Secret("# created: \(ISO8601DateFormatter().string(from: Date()))\n# public key: \(recipient)\n\(encoded.reveal())\n")
        }
        public var description: String { "Age.Identity(<redacted>, recipient: \(recipient))" }
    }

    // MARK: Encryption

    /// Encrypts `plaintext` to every recipient (any one of their identities decrypts it).
    /// - Parameter armored: write the ASCII armor (`-----BEGIN AGE ENCRYPTED FILE-----`) instead of binary.
    public static func encrypt(_ plaintext: [UInt8], to recipients: [Recipient], armored: Bool = false) throws -> [UInt8] {
        guard !recipients.isEmpty else { throw NimbusError(.invalidArgument, "age needs at least one recipient") }
        let fileKey = SecureRandom.bytes(16)
        var header = version + "\n"
        for recipient in recipients {
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            let shared = try ephemeral.sharedSecretFromKeyAgreement(with: recipient.key).withUnsafeBytes { Array($0) }
            guard shared.contains(where: { $0 != 0 }) else { throw NimbusError(.invalidArgument, "the recipient is a low-order point") }
            let wrapKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: shared), salt: share + Array(recipient.key.rawRepresentation),
                                                 info: Array("age-encryption.org/v1/X25519".utf8), outputByteCount: 32)
            let sealed = try ChaChaPoly.seal(fileKey, using: wrapKey, nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
            header += "-> X25519 \(base64(share))\n" + wrapBody(Array(sealed.ciphertext) + Array(sealed.tag))
        }
        header += "---"
        let mac = HMAC<SHA256>.authenticationCode(for: Array(header.utf8), using: headerKey(fileKey))
        header += " \(base64(Array(mac)))\n"
        let nonce = SecureRandom.bytes(16)
        let payloadKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
        var out = Array(header.utf8) + nonce
        var counter: UInt64 = 0
        var offset = 0
        repeat {
            let end = min(offset + chunkSize, plaintext.count)
            let last = end == plaintext.count
            let sealed = try ChaChaPoly.seal(plaintext[offset..<end], using: payloadKey, nonce: chunkNonce(counter, last: last))
            out += Array(sealed.ciphertext) + Array(sealed.tag)
            offset = end
            counter += 1
            if last { break }
        } while true
        return armored ? Array(armor(out).utf8) : out
    }

    // MARK: Decryption

    /// Decrypts an age file (binary or armored) with the first identity that unwraps its file key.
    public static func decrypt(_ file: [UInt8], with identities: [Identity]) throws -> [UInt8] {
        var bytes = file
        if file.starts(with: Array(armorBegin.utf8)) { bytes = try dearmor(file) }
        // The header is text up to the MAC line.
        var lines: [String] = []
        var offset = 0
        while true {
            guard let newline = bytes[offset...].firstIndex(of: 0x0a) else { throw corrupt("the header has no MAC line") }
            guard newline - offset <= 4096 else { throw corrupt("a header line is too long") }
            guard let line = String(validating: bytes[offset..<newline], as: UTF8.self) else { throw corrupt("the header is not text") }
            lines.append(line)
            offset = newline + 1
            if line.hasPrefix("---") { break }
            guard lines.count < 4096 else { throw corrupt("the header has too many lines") }
        }
        guard lines.first == version else { throw corrupt("not an age v1 file (first line \(lines.first?.prefix(40) ?? ""))") }
        let macLine = lines.removeLast()
        guard macLine.hasPrefix("--- "), let mac = unbase64(String(macLine.dropFirst(4))), mac.count == 32 else { throw corrupt("the MAC line is malformed") }

        // Stanzas.
        var stanzas: [(type: String, args: [String], body: [UInt8])] = []
        var index = 1
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("-> ") else { throw corrupt("expected a stanza at header line \(index + 1)") }
            let fields = line.dropFirst(3).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard let type = fields.first, !type.isEmpty, fields.allSatisfy({ !$0.isEmpty }) else { throw corrupt("a stanza line is malformed") }
            index += 1
            var body = ""
            while true {
                guard index < lines.count else { throw corrupt("a stanza body is not terminated by a short line") }
                let bodyLine = lines[index]
                index += 1
                guard bodyLine.count <= 64 else { throw corrupt("a stanza body line is longer than 64 columns") }
                body += bodyLine
                if bodyLine.count < 64 { break }
            }
            guard let decoded = unbase64(body) else { throw corrupt("a stanza body is not canonical unpadded base64") }
            stanzas.append((type, Array(fields.dropFirst()), decoded))
        }
        guard !stanzas.isEmpty else { throw corrupt("the header has no recipient stanza") }

        // Unwrap the file key with an X25519 identity.
        var fileKey: [UInt8]?
        for stanza in stanzas where stanza.type == "X25519" {
            guard stanza.args.count == 1, let share = unbase64(stanza.args[0]), share.count == 32, stanza.body.count == 32 else {
                throw corrupt("an X25519 stanza is malformed")
            }
            guard let sharePoint = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: share) else { throw corrupt("an X25519 share is not a point") }
            for identity in identities {
                let shared = try identity.key.sharedSecretFromKeyAgreement(with: sharePoint).withUnsafeBytes { Array($0) }
                guard shared.contains(where: { $0 != 0 }) else { throw corrupt("an X25519 share is a low-order point") }
                let wrapKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: shared), salt: share + Array(identity.key.publicKey.rawRepresentation),
                                                     info: Array("age-encryption.org/v1/X25519".utf8), outputByteCount: 32)
                if let box = try? ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)), ciphertext: stanza.body[0..<16], tag: stanza.body[16...]),
                   let key = try? ChaChaPoly.open(box, using: wrapKey) {
                    fileKey = Array(key)
                    break
                }
            }
            if fileKey != nil { break }
        }
        guard let fileKey else {
            throw NimbusError(.permissionDenied, "no identity unwraps this age file (it has \(stanzas.count) recipient stanza(s): \(Set(stanzas.map(\.type)).sorted().joined(separator: ", ")))")
        }
        let headerText = Array((lines.joined(separator: "\n") + "\n---").utf8)
        guard ConstantTime.equals(Array(HMAC<SHA256>.authenticationCode(for: headerText, using: headerKey(fileKey))), mac) else {
            throw corrupt("the header MAC does not verify: the header was altered")
        }

        // The payload: a nonce, then 64 KiB chunks sealed with ChaCha20-Poly1305.
        guard bytes.count - offset >= 16 else { throw corrupt("the payload nonce is truncated") }
        let nonce = Array(bytes[offset..<offset + 16])
        offset += 16
        let payloadKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
        var plaintext: [UInt8] = []
        var counter: UInt64 = 0
        while true {
            let remaining = bytes.count - offset
            guard remaining >= 16 else { throw corrupt("the payload is truncated") }
            let length = min(remaining, chunkSize + 16)
            let last = length == remaining
            let chunk = bytes[offset..<offset + length]
            guard let box = try? ChaChaPoly.SealedBox(nonce: chunkNonce(counter, last: last), ciphertext: chunk.dropLast(16), tag: chunk.suffix(16)),
                  let opened = try? ChaChaPoly.open(box, using: payloadKey) else {
                throw corrupt(last ? "the final payload chunk does not open: the file was truncated, extended or altered" : "payload chunk \(counter) does not open: the file was altered")
            }
            if last, opened.isEmpty, counter > 0 { throw corrupt("the payload ends with an empty chunk") }
            plaintext += opened
            offset += length
            counter += 1
            if last { return plaintext }
        }
    }

    // MARK: Helpers

    static func corrupt(_ message: String) -> NimbusError { NimbusError(.dataLoss, "age: \(message)") }

    static func headerKey(_ fileKey: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
    }

    static func chunkNonce(_ counter: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 3)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(counter >> UInt64(shift) & 0xff)) }
        bytes.append(last ? 1 : 0)
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.last == "=" { text.removeLast() }
        return text
    }

    /// Unpadded standard base64, canonical only (re-encoding gives the same text).
    static func unbase64(_ text: String) -> [UInt8]? {
        guard !text.contains("="), !text.contains("\n"), !text.contains("\r") else { return nil }
        var padded = text
        while padded.count % 4 != 0 { padded += "=" }
        guard let data = Data(base64Encoded: padded), base64(Array(data)) == text else { return nil }
        return Array(data)
    }

    static func wrapBody(_ bytes: [UInt8]) -> String {
        let text = base64(bytes)
        var lines: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            let end = text.index(index, offsetBy: 64, limitedBy: text.endIndex) ?? text.endIndex
            lines.append(String(text[index..<end]))
            index = end
        }
        if lines.last?.count == 64 || lines.isEmpty { lines.append("") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func armor(_ bytes: [UInt8]) -> String {
        let text = Data(bytes).base64EncodedString()
        var lines = [armorBegin]
        var index = text.startIndex
        while index < text.endIndex {
            let end = text.index(index, offsetBy: 64, limitedBy: text.endIndex) ?? text.endIndex
            lines.append(String(text[index..<end]))
            index = end
        }
        lines.append(armorEnd)
        return lines.joined(separator: "\n") + "\n"
    }

    static func dearmor(_ bytes: [UInt8]) throws -> [UInt8] {
        guard bytes.count <= 64 * 1024 * 1024, let text = String(validating: bytes, as: UTF8.self) else { throw corrupt("the armor is not text") }
        let lines = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
        guard lines.count >= 2, lines.first == armorBegin, lines.last == armorEnd else { throw corrupt("the armor has no BEGIN/END lines") }
        let body = lines.dropFirst().dropLast()
        guard body.dropLast().allSatisfy({ $0.count == 64 }), (body.last?.count ?? 0) <= 64 else { throw corrupt("the armor's lines are not 64 columns") }
        guard let data = Data(base64Encoded: body.joined()) else { throw corrupt("the armor is not base64") }
        return Array(data)
    }
}
