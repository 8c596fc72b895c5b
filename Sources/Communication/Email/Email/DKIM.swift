import _CryptoExtras
import Crypto
import Foundation
import NimbusCore

/// DKIM signing (RFC 6376) with `rsa-sha256` or `ed25519-sha256` (RFC 8463), relaxed/relaxed
/// canonicalization — what receivers (Gmail, Outlook, Yahoo) check before they trust a sender's domain.
///
/// ```swift
/// let signer = try DKIMSigner(domain: "example.com", selector: "mail2026", rsaPrivateKeyPEM: pem)
/// let signed = try signer.sign(document)            // a DKIM-Signature header in front
/// signer.dnsRecord                                   // ("mail2026._domainkey.example.com", "v=DKIM1; k=rsa; p=MIIB…")
/// ```
public struct DKIMSigner: Sendable {
    /// The signing key.
    public enum Key: Sendable {
        /// RSA (1024 bits or more; 2048 recommended), signed with PKCS #1 v1.5 and SHA-256.
        case rsa(_RSA.Signing.PrivateKey)
        /// Ed25519 over the SHA-256 of the signed data (RFC 8463).
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    /// The headers signed by default, when present (From is always signed).
    public static let defaultHeaders = ["from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
                                        "mime-version", "content-type", "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post"]

    /// The signing domain (`d=`), the sender's domain or a parent of it.
    public var domain: String
    /// The selector (`s=`): the DNS record is at `<selector>._domainkey.<domain>`.
    public var selector: String
    /// The key.
    public var key: Key
    /// Header names to sign (lower case), in this order.
    public var headers: [String]
    /// How long signatures stay valid (`x=`); none when `nil`.
    public var lifetime: Duration?

    /// Creates a signer.
    public init(domain: String, selector: String, key: Key, headers: [String] = DKIMSigner.defaultHeaders, lifetime: Duration? = nil) throws {
        guard !selector.isEmpty, selector.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
            throw NimbusError(.invalidArgument, "'\(selector)' is not a DKIM selector (letters, digits, '-', '_', '.')")
        }
        self.domain = try IDNA.toASCII(domain)
        self.selector = selector
        self.key = key
        var names: [String] = ["from"]
        for name in headers.map({ $0.lowercased() }) where !names.contains(name) { names.append(name) }
        self.headers = names
        self.lifetime = lifetime
    }

    /// A signer with an RSA key in PEM (`-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`).
    public init(domain: String, selector: String, rsaPrivateKeyPEM pem: String, lifetime: Duration? = nil) throws {
        let key: _RSA.Signing.PrivateKey
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw NimbusError(.invalidArgument, "the DKIM key is not an RSA private key in PEM: \(error)")
        }
        guard key.keySizeInBits >= 1024 else { throw NimbusError(.invalidArgument, "DKIM RSA keys must have at least 1024 bits (2048 recommended)") }
        try self.init(domain: domain, selector: selector, key: .rsa(key), lifetime: lifetime)
    }

    /// A signer with an Ed25519 key: its 32-byte seed, base64 (the form dkimpy and OpenDKIM keep).
    public init(domain: String, selector: String, ed25519PrivateKeyBase64 base64: String, lifetime: Duration? = nil) throws {
        guard let seed = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), seed.count == 32,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw NimbusError(.invalidArgument, "the DKIM key is not a base64 Ed25519 seed of 32 bytes")
        }
        try self.init(domain: domain, selector: selector, key: .ed25519(key), lifetime: lifetime)
    }

    /// The algorithm's tag value.
    public var algorithm: String {
        switch key {
        case .rsa: "rsa-sha256"
        case .ed25519: "ed25519-sha256"
        }
    }

    /// The TXT record to publish: its name and its value.
    public var dnsRecord: (name: String, value: String) {
        let name = "\(selector)._domainkey.\(domain)"
        switch key {
        case .rsa(let key): return (name, "v=DKIM1; k=rsa; p=\(key.publicKey.derRepresentation.base64EncodedString())")
        case .ed25519(let key): return (name, "v=DKIM1; k=ed25519; p=\(key.publicKey.rawRepresentation.base64EncodedString())")
        }
    }

    /// Returns the document with a `DKIM-Signature` header in front.
    public func sign(_ document: MIMEDocument, at date: Date = Date()) throws -> MIMEDocument {
        let bodyHash = Data(SHA256.hash(data: Self.relaxedBody(document.body))).base64EncodedString()
        // The headers to sign, each instance from the bottom up (RFC 6376 §5.4.2).
        var signedNames: [String] = []
        var data = [UInt8]()
        for name in headers {
            for header in document.headers.reversed() where header.name.equalsIgnoringASCIICase(name) {
                signedNames.append(name)
                data += Self.relaxedHeader(header.name, header.value).utf8
                data += [13, 10]
            }
        }
        let timestamp = Int(date.timeIntervalSince1970)
        var tags = ["v=1", "a=\(algorithm)", "c=relaxed/relaxed", "d=\(domain)", "s=\(selector)", "t=\(timestamp)"]
        if let lifetime { tags.append("x=\(timestamp + Int(lifetime.components.seconds))") }
        tags += ["h=\(signedNames.joined(separator: ":"))", "bh=\(bodyHash)", "b="]
        let unsigned = tags.joined(separator: ";\r\n ")
        data += Self.relaxedHeader("DKIM-Signature", unsigned).utf8          // without the final CRLF
        let signature: Data
        switch key {
        case .rsa(let key):
            signature = try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation
        case .ed25519(let key):
            signature = try key.signature(for: Data(SHA256.hash(data: data)))
        }
        var signed = document
        signed.headers.insert(.init("DKIM-Signature", unsigned + signature.base64EncodedString()), at: 0)
        return signed
    }

    /// Relaxed header canonicalization: lower-case name, unfolded value, whitespace runs as one space, trimmed.
    static func relaxedHeader(_ name: String, _ value: String) -> String {
        var out = "", pendingSpace = false
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\r", "\n": continue
            case " ", "\t": pendingSpace = !out.isEmpty
            default:
                if pendingSpace { out.append(" "); pendingSpace = false }
                out.unicodeScalars.append(scalar)
            }
        }
        return name.lowercased().trimmingCharacters(in: .whitespaces) + ":" + out
    }

    /// Relaxed body canonicalization: whitespace runs as one space, none at line ends, no trailing empty lines.
    static func relaxedBody(_ body: [UInt8]) -> [UInt8] {
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        var index = 0
        func finish() {
            while let last = line.last, last == 32 || last == 9 { line.removeLast() }
            lines.append(line)
            line = []
        }
        while index < body.count {
            let byte = body[index]
            if byte == 13, index + 1 < body.count, body[index + 1] == 10 {
                finish()
                index += 2
                continue
            }
            if byte == 32 || byte == 9 {
                if line.last != 32 { line.append(32) }
            } else {
                line.append(byte)
            }
            index += 1
        }
        if !line.isEmpty { finish() }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        var out = [UInt8]()
        for line in lines {
            out += line
            out += [13, 10]
        }
        return out
    }
}
