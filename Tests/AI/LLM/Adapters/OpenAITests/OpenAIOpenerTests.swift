import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMOpenAI
import NimbusTesting
import Testing

@Suite("OpenAI by URL", .timeLimit(.minutes(1)))
struct OpenAIOpenerTests {
    @Test func aURLOpensTheAdapterAndTheKeyComesFromTheEnvironment() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "hello by URL")))
        let host = String(fake.server.baseURL.dropFirst("http://".count))
        let openers = ChatModel.openers.withOpenAI(environment: ["MY_OPENAI_KEY": "sk-test-123"])
        let model = try await ChatModel.open("openai://\(host)/v1?key=env:MY_OPENAI_KEY&organization=org-test&timeout=20s", openers: openers,
                                             configuration: .init(defaultModel: "gpt-4o-mini", retry: .none))
        let reply = try await model.chat(ChatRequest(messages: [.user("hi")]))
        #expect(reply.text == "hello by URL" && model.provider == "openai")
        #expect(fake.server.requests.last?.header("openai-organization") == "org-test" && fake.specMismatches.isEmpty)
        let driver = try #require(model.driver(as: OpenAIChatModelDriver.self))
        #expect(driver.configuration.baseURL == fake.baseURL && driver.configuration.timeout == .seconds(20))
    }

    @Test func eachSchemeReadsItsEndpointAndRefusesWhatItCannotUse() throws {
        let environment = ["OPENAI_API_KEY": "sk-default", "AZURE_OPENAI_API_KEY": "az-key", "VLLM_KEY": "v-key"]
        let official = try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai://"), environment: environment)
        #expect(official.baseURL == "https://api.openai.com/v1" && official.apiKey?.reveal() == "sk-default" && official.provider == "openai")
        let vllm = try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai-compatible://10.0.0.5:8000?tls=false&key=env:VLLM_KEY"), environment: environment)
        #expect(vllm.baseURL == "http://10.0.0.5:8000/v1" && vllm.apiKey?.reveal() == "v-key" && vllm.provider == "openai-compatible")
        let local = try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai-compatible://127.0.0.1:8080/v1"), environment: environment)
        #expect(local.baseURL == "http://127.0.0.1:8080/v1" && local.apiKey == nil, "no key unless asked: a compatible server is not OpenAI")
        let azure = try OpenAIChatModelDriver.Configuration(url: try OpenURL("azure-openai://res.openai.azure.com?deployment=prod-4o&model=gpt-4o"), environment: environment)
        #expect(azure.baseURL == "https://res.openai.azure.com/openai" && azure.apiKey?.reveal() == "az-key" && azure.provider == "azure")
        let literal = #expect(throws: NimbusError.self) { try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai://?key=sk-live-123"), environment: [:]) }
        #expect(literal?.message.contains("key=env:VARIABLE") == true && literal?.message.contains("sk-live-123") == false)
        let unset = #expect(throws: NimbusError.self) { try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai://?key=env:NOPE"), environment: [:]) }
        #expect(unset?.code == .failedPrecondition)
        let typo = #expect(throws: NimbusError.self) { try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai://?organisation=x"), environment: [:]) }
        #expect(typo?.message.contains("organization") == true, "the known options are listed")
        let noHost = #expect(throws: NimbusError.self) { try OpenAIChatModelDriver.Configuration(url: try OpenURL("openai-compatible://"), environment: [:]) }
        #expect(noHost?.code == .invalidArgument)
    }

    @Test func embeddingsOpenByURLToo() async throws {
        let driver = try await Embedder.openers.withOpenAI(environment: ["OPENAI_API_KEY": "k"]).withHashing().open("openai-compatible://127.0.0.1:9/v1")
        #expect(driver.provider == "openai-compatible")
        let hashing = try await Embedder.openers.withHashing().open("hashing://?dimensions=64")
        #expect((hashing as? HashingEmbeddingDriver)?.dimensions == 64)
        let unknown = await #expect(throws: NimbusError.self) { try await Embedder.openers.withHashing().open("gemini://") }
        #expect(unknown?.message.contains("hashing://") == true)
    }
}
