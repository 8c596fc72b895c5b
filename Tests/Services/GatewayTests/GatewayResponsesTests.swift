import Foundation
import NimbusCore
import NimbusGateway
import NimbusTesting
import Testing

/// Issue 15 §5: the Responses API, `count_tokens` and `n`, beyond what the SDK script drives.
@Suite(.timeLimit(.minutes(2))) struct GatewayResponsesTests {
    static let master = "sk-master-test"

    @Test func storedResponsesBelongToTheirKey() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let alice = try #require(try await rig.call(.POST, "/key/generate", ["name": "alice"], key: Self.master).body["key"]?.stringValue)
        let bob = try #require(try await rig.call(.POST, "/key/generate", ["name": "bob"], key: Self.master).body["key"]?.stringValue)
        let first = try await rig.call(.POST, "/v1/responses", ["model": "memory", "input": "alice's secret plan"], key: alice)
        let id = try #require(first.body["id"]?.stringValue, "\(first.body)")
        #expect(first.body["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"] == "alice's secret plan")

        let stolen = try await rig.call(.POST, "/v1/responses", ["model": "memory", "input": "go on", "previous_response_id": .string(id)], key: bob)
        #expect(stolen.status == 404 && stolen.body["error"]?["code"] == "previous_response_not_found", "\(stolen.body)")
        #expect(try await rig.call(.GET, "/v1/responses/\(id)", key: bob).status == 404)
        #expect(try await rig.call(.DELETE, "/v1/responses/\(id)", key: bob).status == 404)
        #expect(try await rig.call(.GET, "/v1/responses/\(id)", key: alice).body["id"]?.stringValue == id)

        let followUp = try await rig.call(.POST, "/v1/responses", ["model": "memory", "input": "and then?", "previous_response_id": .string(id)], key: alice)
        #expect(followUp.status == 200 && followUp.body["previous_response_id"]?.stringValue == id, "\(followUp.body)")
        #expect(try #require(followUp.body["usage"]?["input_tokens"]?.numberValue) > (try #require(first.body["usage"]?["input_tokens"]?.numberValue)),
                "the follow-up carries the earlier turn")

        let unstored = try await rig.call(.POST, "/v1/responses", ["model": "memory", "input": "forget me", "store": false], key: alice)
        let unstoredID = try #require(unstored.body["id"]?.stringValue)
        #expect(try await rig.call(.GET, "/v1/responses/\(unstoredID)", key: alice).status == 404, "store: false keeps nothing")

        try await rig.gateway.store.flush()
        let routes = try await rig.call(.GET, "/v1/gateway/spend", key: Self.master).body
        #expect(routes["keys"]?.arrayValue?.count == 1 && routes["keys"]?.arrayValue?.first?["requests"] == 3, "responses are accounted like chat calls: \(routes)")
    }

    @Test func badResponsesRequestsAreClearErrors() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let cases: [(JSONValue, String)] = [
            (["model": "memory", "input": "x", "frobnicate": true], "frobnicate"),
            (["model": "memory", "input": "x", "tools": [["type": "web_search"]]], "function tools"),
            (["model": "memory", "input": [["type": "item_reference", "id": "msg_1"]]], "item_reference"),
            (["model": "memory", "input": "x", "max_output_tokens": 0], "max_output_tokens"),
            (["model": "memory", "input": "x", "max_output_tokens": 9_223_372_036_854_775_807], "max_output_tokens"),
            (["model": "memory", "input": [["role": "robot", "content": "x"]]], "role"),
            (["input": "x"], "model"),
        ]
        for (body, words) in cases {
            let answer = try await rig.call(.POST, "/v1/responses", body, key: Self.master)
            #expect(answer.status == 400 && answer.body["error"]?["message"]?.stringValue?.contains(words) == true, "\(body): \(answer.body)")
        }
        let malformed = try await rig.call(.POST, "/v1/responses", raw: #"{"model":"memory","input":"#, key: Self.master)
        #expect(malformed.status == 400)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("still up"), key: Self.master).status == 200)
    }

    @Test func streamedEventsAreNumberedAndAssembleTheResponse() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let answer = try await rig.call(.POST, "/v1/responses", ["model": "memory", "input": "one two three", "stream": true], key: Self.master)
        let text = try #require(answer.body.stringValue)
        let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.compactMap { block -> (String, JSONValue)? in
            let lines = block.split(separator: "\n")
            guard let name = lines.first?.dropFirst("event: ".count), let data = lines.last?.dropFirst("data: ".count),
                  let json = try? JSONValue.parse(Data(data.utf8)) else { return nil }
            return (String(name), json)
        }
        #expect(events.map(\.0) == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                                    "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
                                    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"])
        #expect(events.map { $0.1["sequence_number"]?.numberValue ?? -1 } == (0..<events.count).map(Double.init))
        #expect(events.allSatisfy { $0.1["type"]?.stringValue == $0.0 })
        let completed = try #require(events.last?.1["response"])
        #expect(completed["status"] == "completed" && completed["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"] == "one two three")
    }

    @Test func countTokensAndChoices() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let short = try await rig.call(.POST, "/v1/messages/count_tokens", ["model": "memory", "messages": [["role": "user", "content": "hi"]]],
                                       key: Self.master, header: "x-api-key")
        let long = try await rig.call(.POST, "/v1/messages/count_tokens",
                                      ["model": "memory", "messages": [["role": "user", "content": .string(String(repeating: "many words ", count: 50))]]],
                                      key: Self.master, header: "x-api-key")
        #expect(try #require(long.body["input_tokens"]?.numberValue) > (try #require(short.body["input_tokens"]?.numberValue)), "\(short.body) \(long.body)")
        for n in [0, 9, -1] {
            let answer = try await rig.call(.POST, "/v1/chat/completions", ["model": "memory", "n": .number(Double(n)), "messages": [["role": "user", "content": "x"]]],
                                            key: Self.master)
            #expect(answer.status == 400 && answer.body["error"]?["param"] == "n", "n=\(n): \(answer.body)")
        }
        let three = try await rig.call(.POST, "/v1/chat/completions", ["model": "memory", "n": 3, "messages": [["role": "user", "content": "x y"]]], key: Self.master)
        #expect(three.body["choices"]?.arrayValue?.map { $0["index"]?.numberValue ?? -1 } == [0, 1, 2], "\(three.body)")
    }
}
