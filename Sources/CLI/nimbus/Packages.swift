import ArgumentParser
import NimbusCatalog

/// `nimbus packages`: the package list and how far each row is.
struct Packages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every row of the package list with its module, status, embedded default and adapters.",
        discussion: "docs/packages.md is `nimbus packages --format markdown`."
    )

    @Option(help: "table, json or markdown.")
    var format: PackageCatalog.Format = .table

    @Option(help: "Only rows with this status: planned, partial or done.")
    var status: PackageEntry.Status?

    func run() async throws {
        let entries = PackageCatalog.entries.filter { status == nil || $0.status == status }
        print(try PackageCatalog.render(format, entries: entries), terminator: "")
    }
}

extension PackageCatalog.Format: ExpressibleByArgument {}
extension PackageEntry.Status: ExpressibleByArgument {}
