import Foundation
import Logging
import NimbusCore
import Synchronization

/// A phone number in E.164 form: `+` and 7 to 15 digits, the first not zero.
///
/// ```swift
/// let number = try PhoneNumber("+1 (415) 555-0100")    // "+14155550100"
/// let international = try PhoneNumber("0044 20 7946 0018")  // "+442079460018"
/// ```
public struct PhoneNumber: Sendable, Hashable, StringCodable, CustomStringConvertible {
    /// `+14155550100`.
    public let e164: String

    /// Reads a number written with spaces, dashes, dots or parentheses, with `+` or `00` before the country code.
    /// - Throws: `invalidArgument` saying what is wrong (a national number without country code is refused:
    ///   there is no way to know its country).
    public init(_ text: String) throws {
        var compact = text.filter { !" -.()\u{00A0}/".contains($0) }
        if compact.hasPrefix("00") { compact = "+" + compact.dropFirst(2) }
        guard compact.hasPrefix("+") else {
            throw NimbusError(.invalidArgument, "'\(text)' is not an international number; write it in E.164 form with its country code, like +14155550100")
        }
        let digits = compact.dropFirst()
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), (7...15).contains(digits.count), digits.first != "0" else {
            throw NimbusError(.invalidArgument, "'\(text)' is not an E.164 number (+ then 7 to 15 digits, the first not 0)")
        }
        e164 = compact
    }

    public var description: String { e164 }

    public init(parsing text: String) throws { try self.init(text) }
    public var encodedText: String { e164 }
}

/// Who a message comes from.
public enum SMSSender: Sendable, Hashable {
    /// A number you own.
    case number(PhoneNumber)
    /// An alphanumeric sender ID (1–11 letters, digits and spaces, at least one letter); one-way, not in every country.
    case alphanumeric(String)
    /// A provider's pool of senders (Twilio Messaging Service SID, an SNS origination identity).
    case service(String)

    /// Checks an alphanumeric sender ID.
    public static func alphanumericID(_ text: String) throws -> SMSSender {
        guard (1...11).contains(text.count), text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == " ") }), text.contains(where: \.isLetter) else {
            throw NimbusError(.invalidArgument, "'\(text)' is not an alphanumeric sender ID (1 to 11 ASCII letters, digits or spaces, at least one letter)")
        }
        return .alphanumeric(text)
    }
}

/// A text message.
public struct SMSMessage: Sendable, Hashable {
    public var from: SMSSender
    public var to: PhoneNumber
    public var body: String
    /// Where the provider posts delivery reports.
    public var statusCallback: URL?
    /// Give up delivering after this long (Twilio `ValidityPeriod`, 1 s to 36 000 s... providers differ).
    public var validity: Duration?
    /// Transactional (one-time codes, alerts) or promotional; SNS prices and routes by it.
    public var kind: Kind
    /// Key-value labels for the provider's events.
    public var metadata: [String: String]

    /// Transactional or promotional.
    public enum Kind: String, Sendable, Hashable { case transactional, promotional }

    /// Creates a message.
    public init(from: SMSSender, to: PhoneNumber, body: String, statusCallback: URL? = nil, validity: Duration? = nil,
                kind: Kind = .transactional, metadata: [String: String] = [:]) {
        self.from = from
        self.to = to
        self.body = body
        self.statusCallback = statusCallback
        self.validity = validity
        self.kind = kind
        self.metadata = metadata
    }

    /// How the body travels: its encoding and the number of segments (each billed).
    public var encoding: SMSEncoding { SMSEncoding(body) }
}

/// GSM 03.38 (7-bit) or UCS-2, and how many segments a text needs — what a provider bills.
///
/// GSM-7 carries 160 characters in one segment, 153 per segment when split (extension characters
/// such as `€ [ ] { } ^ ~ | \` take two and are never split); any other character makes the whole text
/// UCS-2: 70 UTF-16 units in one segment, 67 per segment when split (surrogate pairs are never split).
public struct SMSEncoding: Sendable, Hashable {
    /// The alphabet.
    public enum Alphabet: String, Sendable, Hashable { case gsm7 = "GSM-7", ucs2 = "UCS-2" }

    public let alphabet: Alphabet
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    public let units: Int
    /// Segments needed.
    public let segments: Int
    /// The characters that forced UCS-2 (empty for GSM-7), to show an author what to replace.
    public let nonGSMCharacters: [Character]

    static let basic: Set<Character> = Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
    static let extended: Set<Character> = Set("\u{0C}^{}\\[~]|€")

    /// Analyzes a text.
    public init(_ text: String) {
        // "\r\n" is one Character in Swift but two GSM characters.
        let characters = text.unicodeScalars.map(Character.init)
        let outside = characters.filter { !Self.basic.contains($0) && !Self.extended.contains($0) }
        if outside.isEmpty {
            var septets = 0, segments = 1, inSegment = 0
            for character in characters {
                let width = Self.extended.contains(character) ? 2 : 1
                septets += width
                if inSegment + width > 153 { segments += 1; inSegment = 0 }
                inSegment += width
            }
            alphabet = .gsm7
            units = septets
            self.segments = septets == 0 ? 1 : (septets <= 160 ? 1 : segments)
            nonGSMCharacters = []
        } else {
            var count = 0, segments = 1, inSegment = 0
            for scalar in text.unicodeScalars {
                let width = scalar.value > 0xFFFF ? 2 : 1
                count += width
                if inSegment + width > 67 { segments += 1; inSegment = 0 }
                inSegment += width
            }
            alphabet = .ucs2
            units = count
            self.segments = count <= 70 ? 1 : segments
            var seen = Set<Character>()
            nonGSMCharacters = outside.filter { seen.insert($0).inserted }
        }
    }
}

/// Where a message stands, as providers report it (unknown values are kept as they come).
public struct SMSStatus: OpenEnumeration {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue.lowercased() }
    public static let accepted = SMSStatus(rawValue: "accepted")
    public static let scheduled = SMSStatus(rawValue: "scheduled")
    public static let queued = SMSStatus(rawValue: "queued")
    public static let sending = SMSStatus(rawValue: "sending")
    public static let sent = SMSStatus(rawValue: "sent")
    public static let delivered = SMSStatus(rawValue: "delivered")
    public static let undelivered = SMSStatus(rawValue: "undelivered")
    public static let failed = SMSStatus(rawValue: "failed")
    public static let canceled = SMSStatus(rawValue: "canceled")
    public static let read = SMSStatus(rawValue: "read")

    /// Whether nothing more will happen to the message.
    public var isFinal: Bool { [.delivered, .undelivered, .failed, .canceled, .read].contains(self) }
    /// Whether it failed.
    public var isFailure: Bool { self == .undelivered || self == .failed }
}

/// What a send returned.
public struct SMSReceipt: Sendable, Hashable, Codable {
    /// The provider's id (`SM…` for Twilio, the SNS MessageId).
    public var id: String
    public var provider: String
    public var status: SMSStatus
    /// Segments, as the provider counted them (or as ``SMSEncoding`` computed).
    public var segments: Int

    public init(id: String, provider: String, status: SMSStatus, segments: Int) {
        self.id = id
        self.provider = provider
        self.status = status
        self.segments = segments
    }
}

/// A delivery report a provider posted to the status callback.
public struct SMSDeliveryReport: Sendable, Hashable {
    public var messageID: String
    public var status: SMSStatus
    public var to: String?
    public var from: String?
    /// The provider's error code (Twilio `30003` unreachable, `30007` filtered...).
    public var errorCode: String?
    public var errorMessage: String?

    public init(messageID: String, status: SMSStatus, to: String? = nil, from: String? = nil, errorCode: String? = nil, errorMessage: String? = nil) {
        self.messageID = messageID
        self.status = status
        self.to = to
        self.from = from
        self.errorCode = errorCode
        self.errorMessage = errorMessage
    }
}

/// What an SMS provider does.
public protocol SMSDriver: NimbusDriver {
    /// Sends one message.
    func send(_ message: SMSMessage) async throws -> SMSReceipt
}

/// Sends text messages through any driver: checks the body, retries what is retryable, logs without
/// the body or the full number.
///
/// ```swift
/// let sms = SMSClient(driver: TwilioSMSDriver(configuration: .init(accountSID: sid, authToken: Secret(token))))
/// let receipt = try await sms.send(SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"), body: "Your code is 123456"))
/// ```
public struct SMSClient: PortableClient {
    /// Settings.
    public struct Configuration: Sendable {
        /// Refuse bodies needing more segments than this (long texts cost one segment each).
        public var maxSegments: Int
        public var retry: RetryPolicy

        public init(maxSegments: Int = 10, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(10))) {
            self.maxSegments = maxSegments
            self.retry = retry
        }
    }

    private let driver: any SMSDriver
    /// The settings.
    public let configuration: Configuration
    private let logger: Logger

    public init(driver: any SMSDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.sms")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
    }

    /// `twilio`, `sns`, `memory`.
    public var provider: String { driver.provider }

    /// The driver as `T`, for provider calls the portable API does not name (Twilio's fetch…).
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver.
    public func close() async throws { try await driver.close() }

    /// Sends a message.
    /// - Throws: `invalidArgument` for an empty or too long body; the driver's error otherwise.
    @discardableResult
    public func send(_ message: SMSMessage) async throws -> SMSReceipt {
        guard !message.body.isEmpty else { throw NimbusError(.invalidArgument, "the SMS body is empty") }
        let encoding = message.encoding
        guard encoding.segments <= configuration.maxSegments else {
            let hint = encoding.alphabet == .ucs2 ? " (it is UCS-2 because of \(encoding.nonGSMCharacters.prefix(5).map { "'\($0)'" }.joined(separator: ", ")))" : ""
            throw NimbusError(.invalidArgument, "the SMS needs \(encoding.segments) segments, more than the \(configuration.maxSegments) allowed\(hint)")
        }
        let receipt = try await configuration.retry.run { _ in try await driver.send(message) }
        logger.info("sms: sent", metadata: ["provider": "\(driver.provider)", "id": "\(receipt.id)", "to": "\(Self.masked(message.to))",
                                            "segments": "\(receipt.segments)", "status": "\(receipt.status.rawValue)"])
        return receipt
    }

    /// `+4415…18`: enough to recognize a number in logs, not to dial it.
    public static func masked(_ number: PhoneNumber) -> String {
        let text = number.e164
        return text.count > 7 ? String(text.prefix(5)) + "…" + String(text.suffix(2)) : "+…"
    }

    /// The SMS domain's openers, empty: adapter modules add their schemes (`.withMemory()`, `.withTwilio()`, `.withSNS()`).
    public static var openers: URLOpenerRegistry<any SMSDriver> { URLOpenerRegistry(domain: "sms") }
}

