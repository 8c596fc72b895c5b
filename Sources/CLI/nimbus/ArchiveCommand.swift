import ArgumentParser
import Foundation
import NimbusArchive
import NimbusArchiveAzure
import NimbusArchiveFile
import NimbusArchiveGCS
import NimbusArchiveGlacier
import NimbusArchiveS3
import NimbusCore

/// `nimbus archive`: cold storage — store, request a restore, wait, read.
struct ArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Store objects in a cold tier, restore them and read them back (S3 Glacier/Deep Archive, Glacier vaults, GCS, Azure, a directory).",
        discussion: """
        STORE is s3://BUCKET[?region=R&endpoint=URL] (tiers GLACIER_IR, GLACIER, DEEP_ARCHIVE), glacier://VAULT[?region=R&endpoint=URL] \
        (ids are archive ids), gs://BUCKET[?endpoint=URL&anonymous=true] (NEARLINE, COLDLINE, ARCHIVE: read at once), \
        azblob://CONTAINER[?account=NAME&endpoint=URL] (Cool, Cold, Archive; a restore is a rehydration to Hot) or file:///DIR[?expedited=1s&standard=5s&bulk=15s] (the embedded store). \
        A restore takes minutes to days: `restore` asks, `wait` polls, `get` reads.
        """,
        subcommands: [Tiers.self, Put.self, Describe.self, Restore.self, Wait.self, Get.self, Remove.self]
    )

    static let openers = URLOpenerRegistry<any ArchiveDriver>.archive.withFile().withS3().withGlacier().withGCS().withAzure()

    static func open(_ store: String, tier: String? = nil) async throws -> Archive {
        try await Archive.open(store, openers: openers, configuration: .init(tier: tier))
    }

    static func json(_ object: ArchivedObject) -> JSONValue {
        var json: [String: JSONValue] = ["id": .string(object.id), "name": .string(object.name), "size": .number(Double(object.size)),
                                         "tier": .string(object.tier), "state": .string(object.state.description), "readable": .bool(object.state.isReadable)]
        if let stored = object.storedAt { json["storedAt"] = .string(stored.iso8601) }
        if let crc = object.checksums.crc32c { json["crc32c"] = .string(String(format: "%08x", crc)) }
        return .object(json)
    }

    struct Tiers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The store's tiers: restore times at each speed, minimum storage, retrieval cost.")
        @Argument(help: "STORE.") var store: String
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store).closing { archive in
                    for tier in archive.tiers { print(tier.description) }
                }
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "put", abstract: "Store a local file (streamed) and print the object, its id included.")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The name to store it under.") var name: String
        @Argument(help: "The local file.") var file: String
        @Option(help: "The tier (default: the store's coldest).") var tier: String?
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store, tier: tier).closing { archive in
                    print(ArchiveCommand.json(try await archive.store(name, file: file)).description)
                }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an object's tier and state as JSON.")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The object's id.") var id: String
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store).closing { print(ArchiveCommand.json(try await $0.describe(id)).description) }
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask for a readable copy (asking twice is harmless).")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The object's id.") var id: String
        @Option(help: "expedited, standard or bulk.") var speed: String = "standard"
        @Option(help: "How many days the restored copy stays readable.") var days: Int = 1
        func run() async throws {
            try await Output.refusing {
                guard let speed = RestoreSpeed(rawValue: speed) else { throw NimbusError(.invalidArgument, "--speed is expedited, standard or bulk") }
                try await ArchiveCommand.open(store).closing { archive in
                    print(ArchiveCommand.json(try await archive.requestRestore(id, speed: speed, days: days)).description)
                }
            }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Poll until the object is readable (exits 1 at the timeout; the restore goes on).")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The object's id.") var id: String
        @Option(help: "Seconds between polls.") var poll: Int = 60
        @Option(help: "Seconds to wait at most.") var timeout: Int = 48 * 3600
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store).closing { archive in
                    let ready = try await archive.waitUntilReadable(id, pollEvery: .seconds(poll), timeout: .seconds(timeout))
                    print(ArchiveCommand.json(ready).description)
                }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a readable object to a local file (renamed into place once checked).")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The object's id.") var id: String
        @Argument(help: "The local file.") var file: String
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store).closing { try await $0.download(id, to: file) }
                print("\(id) → \(file)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete an object (early deletion may be charged: see tiers).")
        @Argument(help: "STORE.") var store: String
        @Argument(help: "The object's id.") var id: String
        func run() async throws {
            try await Output.refusing {
                try await ArchiveCommand.open(store).closing { try await $0.delete(id) }
                print("deleted \(id)")
            }
        }
    }
}
