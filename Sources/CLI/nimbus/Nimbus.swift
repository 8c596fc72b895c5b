import ArgumentParser
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
            CommandGroup(name: "Cloud", subcommands: [AWSCommand.self]),
            CommandGroup(name: "Commerce", subcommands: [FXCommand.self, PayCommand.self, TaxCommand.self, BillingCommand.self]),
            CommandGroup(name: "Communication", subcommands: [EmailCommand.self, SMSCommand.self, PushCommand.self, ChatCommand.self, TemplateCommand.self]),
        ]
    )
}
