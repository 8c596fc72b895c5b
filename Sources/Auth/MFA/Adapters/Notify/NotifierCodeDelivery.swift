import Foundation
import NimbusCore
import NimbusEmail
import NimbusMFA
import NimbusNotify
import NimbusSMS

extension OneTimeCodes {
    /// Delivers codes through NimbusNotify: an email or an SMS rendered from `template` with the
    /// data `{"code": "492039", "minutes": 10}`, one channel only (a code for an address never
    /// goes to a phone), idempotent per send (a retried send does not text twice). The delivery
    /// log keeps the attempt, never the code.
    ///
    /// ```swift
    /// let codes = try OneTimeCodes(store: RedisOneTimeCodeStore(client: redis), secret: pepper,
    ///                              deliver: OneTimeCodes.notifier(notifier, template: "sign-in-code"))
    /// ```
    /// - Throws (from the delivery): `invalidArgument` for an address or number that does not parse;
    ///   `unavailable` when the notifier delivered on no channel.
    public static func notifier(_ notifier: Notifier, template: String) -> Delivery {
        { destination, code, lifetime, key in
            let recipient: NotificationRecipient
            let channel: NotificationChannel
            switch destination {
            case .email(let address):
                recipient = NotificationRecipient(id: key, email: try EmailAddress(address))
                channel = .email
            case .sms(let number):
                recipient = NotificationRecipient(id: key, phone: try PhoneNumber(number))
                channel = .sms
            }
            let minutes = Int((lifetime.nimbusSeconds / 60).rounded(.up))
            let outcome = try await notifier.send(NotificationRequest(template: template, data: ["code": .string(code.reveal()), "minutes": .number(Double(minutes))],
                                                                      recipient: recipient, channels: [channel], idempotencyKey: key))
            guard outcome.deliveredChannels.contains(channel) else {
                throw NimbusError(.unavailable, "the one-time code to \(destination) was not delivered: "
                                  + outcome.attempts.compactMap(\.error).joined(separator: "; "))
            }
        }
    }
}
