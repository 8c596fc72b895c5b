import ArgumentParser
import Foundation
import NimbusCore
import NimbusKMS
import NimbusKMSAWS
import NimbusKMSAzure
import NimbusKMSGCP
import NimbusKMSVault
import NimbusKMSLocal

/// `nimbus kms`: envelope encryption from the command line.
struct KMSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kms",
        abstract: "Create master keys, encrypt and decrypt with envelope encryption (local keyring or AWS KMS).",
        discussion: "URLs: local://PATH (a keyring file, created on first use), mem://, awskms://?region=R[&endpoint=URL], vaulttransit://HOST:8200/MOUNT (VAULT_TOKEN), gcpkms://PROJECT/LOCATION/RING, azkeyvaultkeys://VAULT.",
        subcommands: [CreateKey.self, Encrypt.self, Decrypt.self, Rotate.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The KMS URL.") var url: String = "local://./.nimbus/keyring.json"
        @Option(help: "Encryption context NAME=VALUE (repeatable; decrypt needs the same).") var context: [String] = []

        func open() async throws -> KeyManagement {
            try await KeyManagement.open(url, openers: .kms.withLocal().withAWS().withVault().withGCP().withAzure())
        }

        func parsedContext() throws -> [String: String] {
            var values: [String: String] = [:]
            for pair in context {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--context '\(pair)' is not NAME=VALUE") }
                values[parts[0]] = parts[1]
            }
            return values
        }
    }

    struct CreateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-key", abstract: "Create a master key and print its id.")
        @OptionGroup var connection: Connection
        @Option(help: "What the key is for.") var description = ""
        func run() async throws {
            let kms = try await connection.open()
            try await kms.closing { print(try await $0.createKey(description: description)) }
        }
    }

    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Encrypt standard input (or --text) and print the envelope in base64.")
        @OptionGroup var connection: Connection
        @Option(help: "The master key id.") var key: String
        @Option(help: "The text to encrypt (default: standard input).") var text: String?
        func run() async throws {
            let plaintext = text.map { Array($0.utf8) } ?? Array(FileHandle.standardInput.readAllBytes())
            let context = try connection.parsedContext()
            let kms = try await connection.open()
            try await kms.closing { kms in
                print(Data(try await kms.encrypt(plaintext, keyID: key, context: context).serialized).base64EncodedString())
            }
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decrypt a base64 envelope (argument or standard input) to standard output.")
        @OptionGroup var connection: Connection
        @Argument(help: "The envelope in base64 (default: standard input).") var envelope: String?
        func run() async throws {
            let text = envelope ?? String(decoding: FileHandle.standardInput.readAllBytes(), as: UTF8.self)
            guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw ValidationError("the envelope is not base64")
            }
            let context = try connection.parsedContext()
            let kms = try await connection.open()
            try await Output.refusing {
                try await kms.closing { kms in
                    FileHandle.standardOutput.write(Data(try await kms.decrypt(try Envelope(serialized: Array(bytes)), context: context)))
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new version of a master key current (old envelopes still decrypt).")
        @OptionGroup var connection: Connection
        @Option(help: "The master key id.") var key: String
        func run() async throws {
            let kms = try await connection.open()
            try await kms.closing { try await $0.rotateKey(key) }
            print("rotated \(key)")
        }
    }
}
