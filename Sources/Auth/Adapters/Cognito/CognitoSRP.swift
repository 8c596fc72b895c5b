import Crypto
import Foundation
import NimbusCore

/// The client side of Cognito's `USER_SRP_AUTH` (SRP-6a over the RFC 5054 3072-bit group with
/// SHA-256, as AWS's Amplify and the AWS SDKs implement it): the password never leaves the client,
/// only `SRP_A` and an HMAC that proves knowledge of it.
///
/// ```swift
/// let srp = CognitoSRP(poolID: "eu-west-1_AbCdEf123")
/// // InitiateAuth(USER_SRP_AUTH, SRP_A: srp.publicValueHex) → PASSWORD_VERIFIER challenge
/// let claim = try srp.passwordClaim(userIDForSRP: params["USER_ID_FOR_SRP"]!, password: password, saltHex: params["SALT"]!,
///                                   serverPublicHex: params["SRP_B"]!, secretBlock: params["SECRET_BLOCK"]!, timestamp: CognitoSRP.timestamp(Date()))
/// // RespondToAuthChallenge(PASSWORD_VERIFIER, PASSWORD_CLAIM_SIGNATURE: claim, …)
/// ```
public struct CognitoSRP: Sendable {
    static let groupPrimeHex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
    static let prime = SRPInteger(hex: groupPrimeHex)!
    static let generator = SRPInteger(2)
    static let field = SRPModulus(prime)
    /// k = H(pad(N) ‖ pad(g)).
    static let multiplier = SRPInteger(bytes: Array(SHA256.hash(data: padded(prime) + padded(generator))))

    /// The pool's name: the part of its id after the region and `_`.
    public let poolName: String
    private let ephemeral: SRPInteger
    private let publicValue: SRPInteger

    /// Starts a sign-in for `poolID` (`us-east-1_AbCdEf123`) with a fresh 1024-bit ephemeral secret.
    public init(poolID: String) {
        self.init(poolID: poolID, ephemeralSecret: SecureRandom.bytes(128))
    }

    /// Starts a sign-in with a given ephemeral secret (for test vectors; never reuse one).
    public init(poolID: String, ephemeralSecret: [UInt8]) {
        poolName = poolID.split(separator: "_", maxSplits: 1).last.map(String.init) ?? poolID
        var secret = SRPInteger(bytes: ephemeralSecret).remainder(Self.prime)
        if secret.isZero { secret = SRPInteger(1) }
        ephemeral = secret
        publicValue = Self.field.power(Self.generator, secret)
    }

    /// `SRP_A`, in hexadecimal.
    public var publicValueHex: String { publicValue.hex }

    /// Big-endian bytes with a leading zero byte when the top bit is set (Cognito's `padHex`).
    static func padded(_ value: SRPInteger) -> [UInt8] {
        let bytes = value.bytes
        guard let first = bytes.first else { return [0] }
        return first & 0x80 != 0 ? [0] + bytes : bytes
    }

    /// The 16-byte key both sides derive (HKDF-SHA256 of S with u as salt and "Caldera Derived Key").
    /// - Throws: `unauthenticated` when the server's value is not in the group (B mod N = 0, B ≥ N)
    ///   or the hashes give u = 0, as RFC 5054 requires the client to abort.
    func authenticationKey(userIDForSRP: String, password: Secret<String>, saltHex: String, serverPublicHex: String) throws -> [UInt8] {
        guard let serverPublic = SRPInteger(hex: serverPublicHex), !serverPublic.isZero, serverPublic < Self.prime else {
            throw NimbusError(.unauthenticated, "Cognito's SRP_B is not a value of the SRP group; sign-in aborted")
        }
        guard let salt = SRPInteger(hex: saltHex) else { throw NimbusError(.unauthenticated, "Cognito's SALT is not hexadecimal; sign-in aborted") }
        let scramble = SRPInteger(bytes: Array(SHA256.hash(data: Self.padded(publicValue) + Self.padded(serverPublic))))
        guard !scramble.isZero else { throw NimbusError(.unauthenticated, "the SRP scrambling parameter is zero; sign-in aborted") }
        let inner = SHA256.hash(data: Array("\(poolName)\(userIDForSRP):\(password.reveal())".utf8))
        let x = SRPInteger(bytes: Array(SHA256.hash(data: Self.padded(salt) + Array(inner))))
        let kgx = Self.field.product(Self.multiplier.remainder(Self.prime), Self.field.power(Self.generator, x))
        let base = serverPublic < kgx ? serverPublic + Self.prime - kgx : serverPublic - kgx
        let premaster = Self.field.power(base, ephemeral + scramble * x)
        let prk = HMAC<SHA256>.authenticationCode(for: Self.padded(premaster), using: SymmetricKey(data: Self.padded(scramble)))
        let okm = HMAC<SHA256>.authenticationCode(for: Array("Caldera Derived Key".utf8) + [1], using: SymmetricKey(data: Data(prk)))
        return Array(okm.prefix(16))
    }

    /// `PASSWORD_CLAIM_SIGNATURE`: base64 HMAC-SHA256 over pool name, user id, secret block and timestamp.
    /// - Throws: `unauthenticated` for server values outside the group or a secret block that is not base64.
    public func passwordClaim(userIDForSRP: String, password: Secret<String>, saltHex: String, serverPublicHex: String,
                              secretBlock: String, timestamp: String) throws -> String {
        // Lenient like Amplify's Buffer.from(_, "base64") and Python's b64decode: characters outside the alphabet are skipped.
        guard let block = Data(base64Encoded: secretBlock, options: .ignoreUnknownCharacters), !block.isEmpty else {
            throw NimbusError(.unauthenticated, "Cognito's SECRET_BLOCK is not base64; sign-in aborted")
        }
        let key = try authenticationKey(userIDForSRP: userIDForSRP, password: password, saltHex: saltHex, serverPublicHex: serverPublicHex)
        let message = Array(poolName.utf8) + Array(userIDForSRP.utf8) + Array(block) + Array(timestamp.utf8)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))).base64EncodedString()
    }

    /// Cognito's `TIMESTAMP`: `EEE MMM d HH:mm:ss UTC yyyy` in English, the day not padded (`Mon Dec 7 09:05:03 UTC 2026`).
    public static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.weekday, .month, .day, .hour, .minute, .second, .year], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(days[(parts.weekday ?? 1) - 1]) \(months[(parts.month ?? 1) - 1]) \(parts.day ?? 1) \(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) UTC \(parts.year ?? 1970)"
    }
}
