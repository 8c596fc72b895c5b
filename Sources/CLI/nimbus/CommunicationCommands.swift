import ArgumentParser
import Foundation
import NimbusChat
import NimbusChatDiscord
import NimbusChatSlack
import NimbusCore
import NimbusEmail
import NimbusChatMemory
import NimbusPushMemory
import NimbusSMSMemory
import NimbusEmailFile
import NimbusEmailMemory
import NimbusEmailSES
import NimbusEmailSMTP
import NimbusEmailSendGrid
import NimbusPush
import NimbusPushFCM
import NimbusSMS
import NimbusSMSSNS
import NimbusSMSTwilio
import NimbusTemplate

/// `nimbus email send`: one message through any email URL.
struct EmailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "email", abstract: "Send email (mem://, file:///dir, smtp://, smtps://, ses://, sendgrid://).",
                                                    subcommands: [Send.self])

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send one message; prints the receipt as JSON.")
        @Option(help: "Where to send: file://./outbox (default), mem://, smtp://user:pass@host:587, ses://?region=eu-west-1, sendgrid://KEY@api.sendgrid.com (settings key email.url, env NIMBUS_EMAIL_URL).")
        var url: String?
        @Option(help: "From (\"Name <a@b>\").") var from: String
        @Option(help: "To (repeatable).") var to: [String]
        @Option(help: "Cc (repeatable).") var cc: [String] = []
        @Option(help: "Bcc (repeatable).") var bcc: [String] = []
        @Option(help: "Subject.") var subject: String
        @Option(help: "Plain-text body.") var text: String?
        @Option(help: "HTML body, or @file.html.") var html: String?
        @Option(help: "A file to attach (repeatable).") var attach: [String] = []
        @Option(help: "DKIM: domain:selector:path-to-rsa-pem-key.") var dkim: String?

        func run() async throws {
            var message = EmailMessage(from: try EmailAddress(from), to: try to.map { try EmailAddress($0) }, cc: try cc.map { try EmailAddress($0) },
                                       bcc: try bcc.map { try EmailAddress($0) }, subject: subject, text: text, html: try html.map(Self.contents))
            for path in attach {
                let url = URL(fileURLWithPath: path)
                message.attachments.append(.file(named: url.lastPathComponent, contentType: Self.mediaType(url.pathExtension), data: Array(try Data(contentsOf: url))))
            }
            var configuration = EmailClient.Configuration()
            if let dkim {
                let parts = dkim.split(separator: ":", maxSplits: 2).map(String.init)
                guard parts.count == 3 else { throw ValidationError("--dkim is domain:selector:key.pem") }
                configuration.dkim = try DKIMSigner(domain: parts[0], selector: parts[1], rsaPrivateKeyPEM: try String(contentsOfFile: parts[2], encoding: .utf8))
            }
            let client = try await EmailClient.open(try await DomainURL.resolve(url, key: "email.url", default: "file://./outbox"), openers: EmailClient.openers.withMemory().withFile().withSMTP().withSES().withSendGrid(), configuration: configuration)
            try Output.printJSON(try await client.closing { try await $0.send(message) })
        }

        static func contents(_ value: String) throws -> String {
            value.hasPrefix("@") ? try String(contentsOfFile: String(value.dropFirst()), encoding: .utf8) : value
        }

        static func mediaType(_ ext: String) -> String {
            ["pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "txt": "text/plain", "csv": "text/csv",
             "html": "text/html", "json": "application/json", "zip": "application/zip"][ext.lowercased()] ?? "application/octet-stream"
        }
    }
}

/// `nimbus sms send`.
struct SMSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sms", abstract: "Send text messages (mem://, twilio://, sns://).", subcommands: [Send.self])

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send one SMS; prints the receipt and its encoding as JSON.")
        @Option(help: "twilio://ACxxxx:TOKEN@api.twilio.com, sns://?region=eu-west-1, mem:// (default; settings key sms.url, env NIMBUS_SMS_URL).") var url: String?
        @Option(help: "Sender: +E164 number, an alphanumeric id, or a Messaging Service SID (MG…).") var from: String
        @Option(help: "Recipient (E.164).") var to: String
        @Argument(help: "The text.") var body: String

        func run() async throws {
            let sender: SMSSender = from.hasPrefix("+") ? .number(try PhoneNumber(from)) : (from.hasPrefix("MG") ? .service(from) : try .alphanumericID(from))
            let driver = try await SMSClient.openers.withMemory().withTwilio().withSNS().open(try await DomainURL.resolve(url, key: "sms.url", default: "mem://"))
            let message = SMSMessage(from: sender, to: try PhoneNumber(to), body: body)
            let receipt = try await SMSClient(driver: driver).closing { try await $0.send(message) }
            struct Sent: Encodable { var receipt: SMSReceipt; var encoding: String; var segments: Int }
            try Output.printJSON(Sent(receipt: receipt, encoding: message.encoding.alphabet.rawValue, segments: message.encoding.segments))
        }
    }
}

/// `nimbus push send`.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push", abstract: "Send push notifications (mem://, fcm://PROJECT).", subcommands: [Send.self])

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send one notification to device tokens; prints each token's outcome.")
        @Option(help: "fcm://my-project (Application Default Credentials) or mem:// (default; settings key push.url, env NIMBUS_PUSH_URL).") var url: String?
        @Option(help: "Device token (repeatable).") var token: [String]
        @Option(help: "Title.") var title: String?
        @Option(help: "Body.") var body: String?
        @Option(help: "Data key=value (repeatable).") var data: [String] = []

        func run() async throws {
            var values: [String: String] = [:]
            for pair in data {
                guard let equals = pair.firstIndex(of: "=") else { throw ValidationError("--data takes key=value, not '\(pair)'") }
                values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            let driver = try await PushClient.openers.withMemory().withFCM().open(try await DomainURL.resolve(url, key: "push.url", default: "mem://"))
            let results = try await PushClient(driver: driver).closing { try await $0.send(PushNotification(title: title, body: body, data: values), to: token) }
            for result in results {
                switch result.outcome {
                case .delivered(let id): print("\(result.token)\tdelivered\t\(id ?? "")")
                case .invalidToken(let reason, _): print("\(result.token)\tinvalid-token\t\(reason)")
                case .failed(let error): print("\(result.token)\tfailed\t\(error.code): \(error.message)")
                }
            }
            if results.deliveredCount < results.count { throw ExitCode(1) }
        }
    }
}

/// `nimbus chat post`.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chat", abstract: "Post to Slack or Discord (slack://, slack+webhook://, discord://, discord+webhook://).",
                                                    subcommands: [Post.self])

    struct Post: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Post one message; prints the receipt as JSON.")
        @Option(help: "slack://xoxb-TOKEN@slack.com, slack+webhook://hooks.slack.com/services/…, discord+webhook://discord.com/api/webhooks/…, mem:// (default; settings key chat.url, env NIMBUS_CHAT_URL).")
        var url: String?
        @Option(help: "Channel id (Web API and bots).") var channel: String?
        @Option(help: "Thread to reply in.") var thread: String?
        @Argument(help: "The text.") var text: String

        func run() async throws {
            let driver = try await ChatClient.openers.withMemory().withSlack().withDiscord().open(try await DomainURL.resolve(url, key: "chat.url", default: "mem://"))
            try Output.printJSON(try await ChatClient(driver: driver).closing { try await $0.post(ChatPost(channel: channel, text: text, threadID: thread)) })
        }
    }
}

/// `nimbus template render`.
struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "template", abstract: "Render notification templates.", subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Render NAME from a directory of *.mustache files with JSON data; prints subject, text and HTML.")
        @Option(help: "Template directory.") var dir: String = "templates"
        @Option(help: "JSON data, or @file.json.") var data: String = "{}"
        @Option(help: "Locale (pt-BR falls back to pt, then the default).") var locale: String?
        @Option(help: "One part (html, text, subject, sms…) instead of the bundle.") var part: String?
        @Flag(help: "Leave missing values empty instead of failing.") var lenient = false
        @Argument(help: "The template or bundle name.") var name: String

        func run() async throws {
            let engine = try TemplateEngine(directory: URL(fileURLWithPath: dir), configuration: .init(strict: !lenient))
            let json = try JSONValue.parse(Data((data.hasPrefix("@") ? try String(contentsOfFile: String(data.dropFirst()), encoding: .utf8) : data).utf8))
            if let part {
                print(try engine.render(name, part: part, locale: locale, data: json), terminator: "")
                return
            }
            let message = try engine.renderMessage(name, locale: locale, data: json)
            if let subject = message.subject { print("Subject: \(subject)\n") }
            if let text = message.text { print("--- text\n\(text)") }
            if let html = message.html { print("--- html\n\(html)") }
        }
    }
}
