import ArgumentParser
import Foundation
import NIOCore
import NimbusCache
import NimbusCacheMemory
import NimbusCacheRedis
import NimbusCore

/// `nimbus cache`: read and write a cache by URL.
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Get, set and delete cache values (mem://, redis://, rediss://).",
        subcommands: [Get.self, Set.self, Delete.self]
    )

    /// Options every cache subcommand takes.
    struct Connection: ParsableArguments {
        @Option(help: "Cache URL (settings key cache.url, env NIMBUS_CACHE_URL; default mem://).")
        var url: String?

        @Option(help: "Prefix added to every key.")
        var prefix: String = ""

        @Option(help: "Settings file (.yaml, .yml or .json).")
        var config: String?

        func open() async throws -> Cache {
            let url = try await DomainURL.resolve(url, key: "cache.url", default: "mem://", config: config)
            return try await Cache.open(url, openers: URLOpenerRegistry.cache.withMemory().withRedis(),
                                        configuration: .init(keyPrefix: prefix))
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the value of KEY; exit 1 if it is missing.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key.") var key: String

        func run() async throws {
            let cache = try await connection.open()
            let value: ByteBuffer?
            do { value = try await cache.get(key) } catch { try? await cache.close(); throw error }
            try await cache.close()
            guard let value else {
                FileHandle.standardError.write(Data("(nil)\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(Data(value.readableBytesView) + Data("\n".utf8))
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set KEY to VALUE.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key.") var key: String
        @Argument(help: "The value.") var value: String
        @Option(help: "Time to live: 500ms, 30s, 5m, 1h.") var ttl: String?
        @Flag(name: .customLong("if-absent"), help: "Only set if the key is missing (exit 1 if it exists).") var ifAbsent = false

        func run() async throws {
            let duration = try ttl.map { try Duration.commandLine($0, flag: "ttl") }
            let cache = try await connection.open()
            if ifAbsent {
                let written = try await cache.setIfAbsent(key, bytes: ByteBuffer(string: value), ttl: duration)
                try await cache.close()
                print(written ? "OK" : "exists")
                if !written { throw ExitCode(1) }
            } else {
                try await cache.set(key, bytes: ByteBuffer(string: value), ttl: duration)
                try await cache.close()
                print("OK")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Delete KEYs; print how many existed.")
        @OptionGroup var connection: Connection
        @Argument(help: "The keys.") var keys: [String]

        func run() async throws {
            let cache = try await connection.open()
            let count = try await cache.delete(keys)
            try await cache.close()
            print(count)
        }
    }
}
