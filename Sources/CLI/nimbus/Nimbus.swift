import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NimbusCore

/// `nimbus`: the command-line face of the Nimbus platform kit.
@main
struct Nimbus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nimbus",
        abstract: "Nimbus: one Swift API per platform concern, an embedded implementation of each, and real vendor adapters.",
        discussion: "Every command runs on embedded defaults (no account, no server). Settings come from flags, then NIMBUS_* environment variables, then --config FILE (YAML or JSON).",
        version: NimbusVersion.current,
        groupedSubcommands: [
            CommandGroup(name: "Server", subcommands: [Serve.self]),
            CommandGroup(name: "Catalog", subcommands: [Packages.self]),
            CommandGroup(name: "Cache", subcommands: [CacheCommand.self]),
            CommandGroup(name: "AI", subcommands: [LLMCommand.self, RAGCommand.self]),
            CommandGroup(name: "Messaging", subcommands: [MessagingCommand.self]),
            CommandGroup(name: "Resilience", subcommands: [RateLimitCommand.self, LockCommand.self]),
            CommandGroup(name: "Database", subcommands: [ShardCommand.self]),
            CommandGroup(name: "Storage", subcommands: [BlobCommand.self, ArchiveCommand.self]),
            CommandGroup(name: "Cloud", subcommands: [AWSCommand.self]),
            CommandGroup(name: "Security", subcommands: [AuthCommand.self, KMSCommand.self, SecretsCommand.self, WAFCommand.self]),
            CommandGroup(name: "Commerce", subcommands: [FXCommand.self, PayCommand.self, TaxCommand.self, BillingCommand.self]),
            CommandGroup(name: "Communication", subcommands: [EmailCommand.self, SMSCommand.self, PushCommand.self, ChatCommand.self, TemplateCommand.self]),
        ]
    )

    /// Runs the command. With `NIMBUS_CONCURRENCY_EXECUTOR=nio`, Swift concurrency runs on NIO's
    /// event loops instead of its own pool: a handler that awaits an upstream call then resumes on
    /// the loop that delivered the answer, without a hop. Measured with `Benchmarks/gateway-vs-litellm`
    /// (2 cores, one run each): +44% non-streaming requests/s at 256 connections, but a worse
    /// streaming tail (p99 added 541 ms instead of 236 ms at 256), so it is opt-in.
    static func main() async {
        if ProcessInfo.processInfo.environment["NIMBUS_CONCURRENCY_EXECUTOR"] == "nio" {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        await main(nil)
    }
}
