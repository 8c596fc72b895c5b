import Foundation
import NimbusCore
import NimbusGateway
import NimbusLLM
import NimbusLLMScripted
import NimbusTesting
import Testing

/// Issue 15 §1: inputs that used to stop the gateway for everyone, or grow its memory and metrics without bound.
@Suite(.timeLimit(.minutes(2))) struct GatewayHostileInputTests {
    static let master = "sk-master-test"

    @Test func hugeOrNegativeTokenCountsAreRefusedAndTheServerStaysUp() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        for (field, value) in [("max_tokens", "9223372036854775807"), ("max_completion_tokens", "9223372036854775807"), ("max_tokens", "-1000000"), ("max_tokens", "0")] {
            let raw = #"{"model":"memory","messages":[{"role":"user","content":"hi"}],"\#(field)":\#(value)}"#
            let answer = try await rig.call(.POST, "/v1/chat/completions", raw: raw, key: Self.master)
            #expect(answer.status == 400 && answer.body["error"]?["message"]?.stringValue?.contains(field) == true, "\(field)=\(value): \(answer.body)")
        }
        let thinking = #"{"model":"memory","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":9223372036854775807},"messages":[{"role":"user","content":"hi"}]}"#
        let anthropic = try await rig.call(.POST, "/v1/messages", raw: thinking, key: Self.master, header: "x-api-key")
        #expect(anthropic.status == 400 && anthropic.body["error"]?["message"]?.stringValue?.contains("thinking.budget_tokens") == true, "\(anthropic.body)")
        let fine = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("still here"), key: Self.master)
        #expect(fine.status == 200, "the process is still serving: \(fine.body)")
    }

    @Test func aNegativeEstimateNeverLowersAKeysTokenWindow() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let created = try await rig.call(.POST, "/key/generate", ["name": "limited", "tpm": 40], key: Self.master)
        let key = try #require(created.body["key"]?.stringValue, "\(created.body)")
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("a first call that fills most of the window"), key: key).status == 200)
        // The old arithmetic added the caller's negative max_tokens to the window; now it is refused before admission…
        let negative = #"{"model":"memory","messages":[{"role":"user","content":"x"}],"max_tokens":-100000}"#
        #expect(try await rig.call(.POST, "/v1/chat/completions", raw: negative, key: key).status == 400)
        // …and a window that is full stays full.
        var statuses: [Int] = []
        for _ in 0..<4 { statuses.append(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat(String(repeating: "word ", count: 20)), key: key).status) }
        #expect(statuses.contains(429), "the 40-token window must refuse: \(statuses)")
    }

    @Test func embeddingInputsAndDimensionsAreBounded() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let many = JSONValue.array(Array(repeating: "x", count: 2049))
        let tooMany = try await rig.call(.POST, "/v1/embeddings", ["model": "nimbus-hashing-384", "input": many], key: Self.master)
        #expect(tooMany.status == 400 && tooMany.body["error"]?["message"]?.stringValue?.contains("2048") == true, "\(tooMany.body)")
        let zero = try await rig.call(.POST, "/v1/embeddings", ["model": "nimbus-hashing-384", "input": "x", "dimensions": 0], key: Self.master)
        #expect(zero.status == 400, "\(zero.body)")
        let shortened = try await rig.call(.POST, "/v1/embeddings", ["model": "nimbus-hashing-384", "input": "x", "dimensions": 64], key: Self.master)
        #expect(shortened.body["data"]?.arrayValue?.first?["embedding"]?.arrayValue?.count == 64, "the hashing embedder honours dimensions: \(shortened.body)")
        let atLimit = JSONValue.array(Array(repeating: "x", count: 2048))
        #expect(try await rig.call(.POST, "/v1/embeddings", ["model": "nimbus-hashing-384", "input": atLimit], key: Self.master).status == 200)
    }

    @Test func madeUpModelNamesDoNotBecomeMetricSeries() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let invented = "made-up-\(IDGenerator.shared.ulid().description.lowercased())"
        for route in ["/v1/chat/completions"] {
            let answer = try await rig.call(.POST, route, GatewayRig.chat("hi", model: invented), key: Self.master)
            #expect(answer.status >= 400, "\(answer.body)")
        }
        _ = try await rig.call(.POST, "/v1/embeddings", ["model": .string(invented), "input": "x"], key: Self.master)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("hi"), key: Self.master).status == 200)
        let metrics = try #require(try await rig.call(.GET, "/metrics").body.stringValue)
        #expect(!metrics.contains(invented), "a caller's model string became a label")
        #expect(metrics.contains(#"model="unknown""#) && metrics.contains(#"model="memory""#))
    }

    /// Issue 15 §2: request fields the gateway does not know reach a provider only where the operator allowed them.
    @Test func unknownFieldsAreForwardedOnlyWhenAllowed() async throws {
        let open = GatewayConfiguration.Model(name: "open", deployments: [.init(provider: "memory", model: "memory", passThrough: ["logit_bias"])])
        let rig = try await GatewayRig.start(testConfiguration(extraModels: [open]))
        defer { Task { await rig.shutdown() } }
        func forwarded(_ alias: String) throws -> [String: JSONValue] {
            let deployment = try #require(rig.gateway.router.deployments.first { $0.alias == alias })
            let memory = try #require(deployment.model.driver(as: ScriptedChatModelDriver.self))
            return try #require(memory.requests.last).providerOptions
        }
        let raw = { (model: String) in
            #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}],"logit_bias":{"50256":-100},"frobnicate":{"url":"http://169.254.169.254"}}"#
        }
        #expect(try await rig.call(.POST, "/v1/chat/completions", raw: raw("memory"), key: Self.master).status == 200)
        #expect(try forwarded("memory").isEmpty, "nothing unknown passes by default")
        #expect(try await rig.call(.POST, "/v1/chat/completions", raw: raw("open"), key: Self.master).status == 200)
        #expect(try forwarded("open") == ["logit_bias": ["50256": -100]], "only the allowed field passes")
    }
}
