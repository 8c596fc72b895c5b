import Foundation
import NimbusCatalog
import NimbusTesting
import Testing

@Suite("Package catalog")
struct CatalogTests {
    @Test("every seed row is there: 96 missing, 15 marked exists, 10 existing domains")
    func counts() {
        let summary = PackageCatalog.summary
        #expect(summary.total == 121)
        #expect(summary.missing == 96)
        #expect(summary.exists == 15)
        #expect(summary.domains == 10)
        #expect(Set(PackageCatalog.entries.map(\.seedPath)).count == 121)
    }

    @Test("module names follow Nimbus + domain + adapter, and paths mirror the taxonomy")
    func naming() {
        for entry in PackageCatalog.entries {
            #expect(entry.module.hasPrefix("Nimbus"), "\(entry.seedPath)")
            #expect(entry.sourcePath.hasPrefix("Sources/"), "\(entry.seedPath)")
            #expect(!entry.module.contains(" "), "\(entry.module)")
        }
        let openAI = PackageCatalog.entries.first { $0.seedPath == "pkg/ai/llm/adapters/openai" }
        #expect(openAI?.module == "NimbusLLMOpenAI")
        #expect(openAI?.sourcePath == "Sources/AI/LLM/Adapters/OpenAI")
        #expect(openAI?.testPath == "Tests/AI/LLM/Adapters/OpenAITests")
    }

    @Test("status is honest: done rows have their module and tests; planned rows have no code yet")
    func honesty() throws {
        let root = try #require(Peer.packageRoot())
        let files = FileManager.default
        for entry in PackageCatalog.entries {
            let source = files.fileExists(atPath: "\(root)/\(entry.sourcePath)")
            let tests = files.fileExists(atPath: "\(root)/\(entry.testPath)")
            switch entry.status {
            case .done, .partial:
                #expect(source && tests, "\(entry.seedPath) is \(entry.status) but \(entry.sourcePath) or \(entry.testPath) is missing")
            case .planned:
                #expect(!source, "\(entry.seedPath) is planned but \(entry.sourcePath) exists: update its status")
            }
        }
        #expect(PackageCatalog.entries.first { $0.seedPath == "pkg/cache/*" }?.status == .done)
    }

    /// Adapters that are not drivers of their folder's suite, and why.
    static let notSuiteDrivers = [
        "NimbusLLMToolsMCP": "the Tools suite checks the agent loop on model providers; MCP is a tool transport, tested against the official MCP SDK",
    ]

    @Test("a done or partial adapter row's test target depends on its domain's conformance module")
    func adaptersRunTheirSuite() throws {
        let manifest = try Manifest.read()
        let modulesByPath = Dictionary(manifest.sourcePaths.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        let testDependencies = manifest.testDependencies
        var checked = 0
        for entry in PackageCatalog.entries where entry.status != .planned && entry.sourcePath.contains("/Adapters/") {
            guard Self.notSuiteDrivers[entry.module] == nil else { continue }
            // The nearest Conformance folder above the adapter names the domain's suite.
            var folder = (entry.sourcePath as NSString).deletingLastPathComponent
            var suite: String?
            while folder.hasPrefix("Sources/"), suite == nil {
                suite = modulesByPath[folder + "/Conformance"]
                folder = (folder as NSString).deletingLastPathComponent
            }
            let conformance = try #require(suite, "\(entry.seedPath): no Conformance module above \(entry.sourcePath)")
            let dependencies = try #require(testDependencies[entry.module], "\(entry.module) has no test target in Package.swift")
            #expect(dependencies.contains("\"\(conformance)\""), "\(entry.module)Tests must depend on \(conformance) and run its checks")
            checked += 1
        }
        #expect(checked >= 14, "only \(checked) adapter rows were checked: the manifest pattern no longer matches")
    }

    @Test("every built row is a target of the manifest with the catalog's name and path, and has its test target")
    func manifestMatchesTheCatalog() throws {
        let manifest = try Manifest.read()
        let paths = manifest.sourcePaths, tests = manifest.testPaths
        #expect(paths.count >= 60, "only \(paths.count) targets read: the manifest pattern no longer matches")
        for entry in PackageCatalog.entries where entry.status != .planned {
            // Rows that are services or the CLI are targets of their own kind; every library row is a module.
            guard entry.sourcePath.hasPrefix("Sources/"), !entry.sourcePath.hasPrefix("Sources/CLI") else { continue }
            #expect(paths[entry.module] == entry.sourcePath, "\(entry.seedPath): the manifest has \(entry.module) at \(paths[entry.module] ?? "nothing"), the catalog says \(entry.sourcePath)")
            #expect(tests[entry.module] == entry.testPath, "\(entry.seedPath): the manifest's test target of \(entry.module) is at \(tests[entry.module] ?? "nothing"), the catalog says \(entry.testPath)")
        }
    }

    @Test("docs/packages.md is generated from the catalog and up to date")
    func docsInSync() throws {
        let root = try #require(Peer.packageRoot())
        let committed = try String(contentsOfFile: "\(root)/docs/packages.md", encoding: .utf8)
        let generated = try PackageCatalog.render(.markdown)
        #expect(committed == generated, "regenerate with: swift run nimbus packages --format markdown > docs/packages.md")
    }

    @Test("JSON round-trips; the table ends with the totals")
    func formats() throws {
        let json = try PackageCatalog.render(.json)
        let decoded = try JSONDecoder().decode([PackageEntry].self, from: Data(json.utf8))
        #expect(decoded == PackageCatalog.entries)
        let table = try PackageCatalog.render(.table)
        #expect(table.hasSuffix("121 rows: 28 done, 2 partial, 91 planned\n"))
    }
}

/// The targets Package.swift declares, read from its one-call-per-target helpers
/// (`module`/`adapter(name, path, …)`, `tests(name, path, [deps])`).
struct Manifest {
    /// Module → `Sources/…` path.
    var sourcePaths: [String: String] = [:]
    /// Module → its test target's `Tests/…Tests` path.
    var testPaths: [String: String] = [:]
    /// Module → its test target's dependency list, as written.
    var testDependencies: [String: String] = [:]

    static func read() throws -> Manifest {
        let root = try #require(Peer.packageRoot())
        let text = try String(contentsOfFile: "\(root)/Package.swift", encoding: .utf8)
        var manifest = Manifest()
        for match in text.matches(of: #/(?:module|adapter)\("(\w+)",\s*"([^"]+)"/#) { manifest.sourcePaths[String(match.1)] = "Sources/" + match.2 }
        for match in text.matches(of: #/tests\("(\w+)",\s*"([^"]+)"(?:,\s*\[([^\]]*)\])?/#) {
            manifest.testPaths[String(match.1)] = "Tests/" + match.2 + "Tests"
            manifest.testDependencies[String(match.1)] = String(match.3 ?? "")
        }
        return manifest
    }
}
