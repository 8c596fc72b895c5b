import Foundation
import NimbusCatalog
import NimbusCore
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
    func adaptersRunTheirSuite() async throws {
        let manifest = try await Manifest.read()
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
            #expect(dependencies.contains(conformance), "\(entry.module)Tests must depend on \(conformance) and run its checks")
            checked += 1
        }
        #expect(checked >= 14, "only \(checked) adapter rows were checked: the manifest pattern no longer matches")
    }

    @Test("every built row is a target of the manifest with the catalog's name and path, and has its test target")
    func manifestMatchesTheCatalog() async throws {
        let manifest = try await Manifest.read()
        let paths = manifest.sourcePaths, tests = manifest.testPaths
        #expect(paths.count >= 60, "only \(paths.count) targets read: the manifest pattern no longer matches")
        for entry in PackageCatalog.entries where entry.status != .planned {
            // Rows that are services or the CLI are targets of their own kind; every library row is a module.
            guard entry.sourcePath.hasPrefix("Sources/"), !entry.sourcePath.hasPrefix("Sources/CLI") else { continue }
            #expect(paths[entry.module] == entry.sourcePath, "\(entry.seedPath): the manifest has \(entry.module) at \(paths[entry.module] ?? "nothing"), the catalog says \(entry.sourcePath)")
            #expect(tests[entry.module] == entry.testPath, "\(entry.seedPath): the manifest's test target of \(entry.module) is at \(tests[entry.module] ?? "nothing"), the catalog says \(entry.testPath)")
        }
    }

    @Test("the README's module map has one row per library module of the manifest, at its path")
    func readmeModuleMapMatchesTheManifest() async throws {
        let manifest = try await Manifest.read()
        let root = try #require(Peer.packageRoot())
        let readme = try String(contentsOfFile: "\(root)/README.md", encoding: .utf8)
        var rows: [String: String] = [:]
        for match in readme.matches(of: #/(?m)^\| `(\w+)` \| `([^`]+)` \|/#) { rows[String(match.1)] = String(match.2) }
        #expect(manifest.libraries.count >= 60 && rows.count >= 60, "\(manifest.libraries.count) modules, \(rows.count) rows: a pattern no longer matches")
        for module in manifest.libraries.sorted() {
            #expect(rows[module] == manifest.sourcePaths[module], "README module map: \(module) is at \(manifest.sourcePaths[module] ?? "?") but its row says \(rows[module] ?? "nothing")")
        }
        for (module, path) in rows where !manifest.libraries.contains(module) {
            #expect(manifest.sourcePaths[module] == path, "README module map names \(module) at \(path), which the manifest does not declare")
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
        #expect(table.hasSuffix("121 rows: 50 done, 1 partial, 70 planned\n"))
    }
}

/// The targets Package.swift declares, as SwiftPM itself reads them (`swift package dump-package`).
struct Manifest {
    /// Library or executable module → its `Sources/…` path.
    var sourcePaths: [String: String] = [:]
    /// Module → its test target's `Tests/…Tests` path.
    var testPaths: [String: String] = [:]
    /// Module → the names its test target depends on.
    var testDependencies: [String: Set<String>] = [:]
    /// Library modules (not executables).
    var libraries: Set<String> = []

    static func read() async throws -> Manifest {
        let root = try #require(Peer.packageRoot())
        // A scratch path of its own: the running `swift test` holds the lock on .build, which dump-package would wait for.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-dump-package-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dump = try await ProcessRunner.run("/usr/bin/env", ["swift", "package", "--package-path", root, "--scratch-path", scratch, "dump-package"])
        try #require(dump.status == 0, "swift package dump-package failed: \(dump.stderr)")
        let package = try JSONValue.parse(Data(dump.stdout.utf8))
        var manifest = Manifest()
        for target in package["targets"]?.arrayValue ?? [] {
            guard let name = target["name"]?.stringValue, let path = target["path"]?.stringValue else { continue }
            // A dependency is {"byName": [name, …]}, {"target": [name, …]} or {"product": [name, package, …]}.
            let dependencies = Set((target["dependencies"]?.arrayValue ?? []).compactMap { $0.objectValue?.values.first?.arrayValue?.first?.stringValue })
            switch target["type"]?.stringValue {
            case "test":
                let module = name.hasSuffix("Tests") ? String(name.dropLast(5)) : name
                manifest.testPaths[module] = path
                manifest.testDependencies[module] = dependencies
            case "regular":
                manifest.sourcePaths[name] = path
                manifest.libraries.insert(name)
            default:
                manifest.sourcePaths[name] = path
            }
        }
        return manifest
    }
}
