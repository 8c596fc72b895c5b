import ArgumentParser
import Foundation
import NimbusCore
import NimbusSecrets
import NimbusSecretsAWS
import NimbusSecretsAzure
import NimbusSecretsGCP
import NimbusSecretsVault
import NimbusSecretsLocal

/// `nimbus secrets`: read and write secrets in any store.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Get, put, list and rotate secrets (age-encrypted file, environment, directory, AWS Secrets Manager).",
        discussion: """
        URLs: age://PATH?identity=KEYFILE[&recipient=age1…] (an age file; make the key with `nimbus secrets keygen`), \
        mem://, env://[?prefix=APP_], file://DIR, awssecrets://?region=R[&endpoint=URL],
        vault://HOST:8200/MOUNT (VAULT_TOKEN), gcpsecrets://PROJECT, azkeyvault://VAULT.
        """,
        subcommands: [Get.self, Put.self, Versions.self, List.self, Delete.self, Keygen.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The secrets store URL.") var url: String = "age://./.nimbus/secrets.age?identity=./.nimbus/age-key.txt"

        func open() async throws -> SecretStore {
            try await SecretStore.open(url, openers: .secrets.withLocal().withAWS().withVault().withGCP().withAzure(), configuration: .init(cacheTTL: .zero))
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a secret's value to standard output (no newline is added).")
        @OptionGroup var connection: Connection
        @Argument(help: "The secret's name (db/password).") var name: String
        @Option(help: "A version (default: the current one).") var version: String?
        func run() async throws {
            try await Output.refusing {
                let store = try await connection.open()
                try await store.closing { FileHandle.standardOutput.write(Data(try await $0.value(name, version: version).value.reveal())) }
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store standard input (or --text) as the new current version; prints the version.")
        @OptionGroup var connection: Connection
        @Argument(help: "The secret's name.") var name: String
        @Option(help: "The value (default: standard input, byte for byte; prefer it: arguments show in `ps`).") var text: String?
        func run() async throws {
            let value = text.map { Array($0.utf8) } ?? Array(FileHandle.standardInput.readAllBytes())
            try await Output.refusing {
                let store = try await connection.open()
                try await store.closing { print(try await $0.put(name, value: Secret(value)).version) }
            }
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a secret's versions, newest first (the current one is marked *).")
        @OptionGroup var connection: Connection
        @Argument(help: "The secret's name.") var name: String
        func run() async throws {
            try await Output.refusing {
                let store = try await connection.open()
                try await store.closing { store in
                    for version in try await store.versions(name) {
                        let created = version.createdAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                        print("\(version.isCurrent ? "*" : " ") \(version.version)\t\(created)")
                    }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List secret names (never values).")
        @OptionGroup var connection: Connection
        @Option(help: "Only names starting with this.") var prefix = ""
        func run() async throws {
            try await Output.refusing {
                let store = try await connection.open()
                try await store.closing { for name in try await $0.names(prefix: prefix) { print(name) } }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a secret with all its versions.")
        @OptionGroup var connection: Connection
        @Argument(help: "The secret's name.") var name: String
        func run() async throws {
            try await Output.refusing {
                let store = try await connection.open()
                try await store.closing { try await $0.delete(name) }
            }
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new age identity file (mode 0600) and print its recipient (age1…).")
        @Option(name: .shortAndLong, help: "Where to write it (refuses to overwrite).") var output = "./.nimbus/age-key.txt"
        func run() async throws {
            guard !FileManager.default.fileExists(atPath: output) else { throw ValidationError("\(output) exists; refusing to overwrite an identity") }
            let directory = (output as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            let identity = Age.Identity.generate()
            try PrivateFile.write(Data(identity.fileContents.reveal().utf8), to: output, what: "the age identity file")
            print(identity.recipient)
        }
    }
}
