import NimbusCore

/// Bytes that travel as base64url text in WebAuthn's JSON forms (`PublicKeyCredential.toJSON()`,
/// `PublicKeyCredential.parseCreationOptionsFromJSON`).
public struct Base64URLBytes: Sendable, Hashable, Codable, ExpressibleByArrayLiteral {
    /// The bytes.
    public var bytes: [UInt8]
    /// Wraps bytes.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(arrayLiteral elements: UInt8...) { bytes = elements }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let bytes = Base64URL.decode(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not base64url")
        }
        self.bytes = bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Base64URL.encode(bytes))
    }
}

/// A credential as options name it (`PublicKeyCredentialDescriptorJSON`).
public struct CredentialDescriptor: Sendable, Hashable, Codable {
    public var type = "public-key"
    /// The credential id.
    public var id: Base64URLBytes
    /// How the client may reach the authenticator (`usb`, `nfc`, `ble`, `hybrid`, `internal`).
    public var transports: [String]?
    /// Creates a descriptor.
    public init(id: [UInt8], transports: [String]? = nil) {
        self.id = Base64URLBytes(id)
        self.transports = transports
    }
}

/// The account a credential is created for.
public struct WebAuthnUser: Sendable, Hashable, Codable {
    /// The user handle: opaque, at most 64 bytes, no personal data (use ``random()`` once per account).
    public var id: Base64URLBytes
    /// The account identifier shown to the user (an email address, a username).
    public var name: String
    /// A friendly name.
    public var displayName: String
    /// Creates a user.
    public init(id: [UInt8], name: String, displayName: String) {
        self.id = Base64URLBytes(id)
        self.name = name
        self.displayName = displayName
    }

    /// A fresh random 32-byte user handle.
    public static func randomHandle() -> [UInt8] { SecureRandom.bytes(32) }
}

/// `PublicKeyCredentialCreationOptionsJSON`: what the browser's `navigator.credentials.create`
/// needs (after `PublicKeyCredential.parseCreationOptionsFromJSON`).
public struct RegistrationOptions: Sendable, Hashable, Codable {
    public struct RelyingPartyEntity: Sendable, Hashable, Codable {
        public var id: String
        public var name: String
    }
    public struct Parameter: Sendable, Hashable, Codable {
        public var type = "public-key"
        public var alg: COSEAlgorithm
    }
    public struct AuthenticatorSelection: Sendable, Hashable, Codable {
        public var authenticatorAttachment: String?
        public var residentKey: String
        public var requireResidentKey: Bool
        public var userVerification: String
    }
    public var rp: RelyingPartyEntity
    public var user: WebAuthnUser
    /// The challenge; keep it (in the session) until the response arrives.
    public var challenge: Base64URLBytes
    public var pubKeyCredParams: [Parameter]
    /// Milliseconds.
    public var timeout: Int
    public var excludeCredentials: [CredentialDescriptor]
    public var authenticatorSelection: AuthenticatorSelection
    public var hints: [String]
    public var attestation: String
    public var extensions: [String: Bool]
}

/// `PublicKeyCredentialRequestOptionsJSON`: what `navigator.credentials.get` needs.
public struct AuthenticationOptions: Sendable, Hashable, Codable {
    /// The challenge; keep it until the response arrives.
    public var challenge: Base64URLBytes
    /// Milliseconds.
    public var timeout: Int
    public var rpId: String
    /// Empty for discoverable credentials (passkey autofill).
    public var allowCredentials: [CredentialDescriptor]
    public var userVerification: String
    public var hints: [String]

    /// Creates request options (``WebAuthnRelyingParty/authenticationOptions(allowing:hints:)`` makes them with a fresh challenge).
    public init(challenge: Base64URLBytes, timeout: Int, rpId: String, allowCredentials: [CredentialDescriptor] = [], userVerification: String = "preferred", hints: [String] = []) {
        self.challenge = challenge
        self.timeout = timeout
        self.rpId = rpId
        self.allowCredentials = allowCredentials
        self.userVerification = userVerification
        self.hints = hints
    }
}

/// `RegistrationResponseJSON`: what `PublicKeyCredential.toJSON()` returns after `create`.
public struct RegistrationResponse: Sendable, Hashable, Codable {
    public struct Response: Sendable, Hashable, Codable {
        public var clientDataJSON: Base64URLBytes
        public var attestationObject: Base64URLBytes
        public var transports: [String]?
        public var publicKeyAlgorithm: Int?
        public var publicKey: Base64URLBytes?
        public var authenticatorData: Base64URLBytes?
        public init(clientDataJSON: [UInt8], attestationObject: [UInt8], transports: [String]? = nil) {
            self.clientDataJSON = Base64URLBytes(clientDataJSON)
            self.attestationObject = Base64URLBytes(attestationObject)
            self.transports = transports
        }
    }
    public var id: String
    public var rawId: Base64URLBytes
    public var response: Response
    public var authenticatorAttachment: String?
    public var clientExtensionResults: [String: JSONValue]
    public var type: String

    /// Creates a response from its parts.
    public init(rawId: [UInt8], response: Response, authenticatorAttachment: String? = nil, clientExtensionResults: [String: JSONValue] = [:]) {
        id = Base64URLBytes(rawId).base64URL
        self.rawId = Base64URLBytes(rawId)
        self.response = response
        self.authenticatorAttachment = authenticatorAttachment
        self.clientExtensionResults = clientExtensionResults
        type = "public-key"
    }
}

/// `AuthenticationResponseJSON`: what `PublicKeyCredential.toJSON()` returns after `get`.
public struct AuthenticationResponse: Sendable, Hashable, Codable {
    public struct Response: Sendable, Hashable, Codable {
        public var clientDataJSON: Base64URLBytes
        public var authenticatorData: Base64URLBytes
        public var signature: Base64URLBytes
        public var userHandle: Base64URLBytes?
        public init(clientDataJSON: [UInt8], authenticatorData: [UInt8], signature: [UInt8], userHandle: [UInt8]? = nil) {
            self.clientDataJSON = Base64URLBytes(clientDataJSON)
            self.authenticatorData = Base64URLBytes(authenticatorData)
            self.signature = Base64URLBytes(signature)
            self.userHandle = userHandle.map(Base64URLBytes.init)
        }
    }
    public var id: String
    public var rawId: Base64URLBytes
    public var response: Response
    public var authenticatorAttachment: String?
    public var clientExtensionResults: [String: JSONValue]
    public var type: String

    /// Creates a response from its parts.
    public init(rawId: [UInt8], response: Response, authenticatorAttachment: String? = nil) {
        id = Base64URLBytes(rawId).base64URL
        self.rawId = Base64URLBytes(rawId)
        self.response = response
        self.authenticatorAttachment = authenticatorAttachment
        clientExtensionResults = [:]
        type = "public-key"
    }
}

extension Base64URLBytes {
    /// The base64url text.
    public var base64URL: String { Base64URL.encode(bytes) }
}
