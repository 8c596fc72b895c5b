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
