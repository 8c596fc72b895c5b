import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMScripted
import NimbusLLMTools
import NimbusTesting
import Synchronization
import Testing

struct SleepInput: Codable, Sendable { var label: String; var milliseconds: Int }

/// Counts calls running at once.
final class Gauge: Sendable {
    private let state = Mutex((now: 0, peak: 0))
    func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}

@Suite struct ToolRegistryTests {
    func sleeper(_ gauge: Gauge = Gauge(), timeout: Duration? = nil) throws -> Tool {
        try Tool("sleep", description: "Sleeps", timeout: timeout) { (input: SleepInput) in
            gauge.enter()
            defer { gauge.leave() }
            try await Task.sleep(for: .milliseconds(input.milliseconds))
            return input.label
        }
    }

    func call(_ id: String, _ label: String, _ milliseconds: Int) -> ToolCall {
        ToolCall(id: id, name: "sleep", arguments: #"{"label":"\#(label)","milliseconds":\#(milliseconds)}"#)
    }

    @Test func resultsComeBackInCallOrderUnderTheConcurrencyLimit() async throws {
        let gauge = Gauge()
        let registry = try ToolRegistry([sleeper(gauge)], configuration: .init(maxConcurrency: 3))
        let calls = (0..<9).map { call("c\($0)", "r\($0)", 40 - $0 * 4) }       // later calls finish first
        let executions = await registry.execute(calls)
        #expect(executions.map(\.output.text) == (0..<9).map { "r\($0)" })
        #expect(executions.map(\.call.id) == calls.map(\.id))
        #expect(executions.allSatisfy { $0.outcome == .succeeded })
        #expect(gauge.peak == 3)
    }

    @Test func aToolThatIgnoresCancellationStillTimesOutOnTime() async throws {
        final class Finished: Sendable { let value = Mutex(false) }
        let finished = Finished()
        let stubborn = try Tool("stubborn", description: "Ignores cancellation", timeout: .milliseconds(100)) { (_: [String: String]) in
            // A wait that cancellation cannot interrupt (a blocking client, a stuck lock).
            await withCheckedContinuation { continuation in DispatchQueue.global().asyncAfter(deadline: .now() + 300) { continuation.resume() } }
            finished.value.withLock { $0 = true }
            return "late"
        }
        let registry = try ToolRegistry([stubborn, sleeper()])
        let executions = await registry.execute([ToolCall(id: "s", name: "stubborn", arguments: "{}"), call("q", "quick", 1)])
        // Observed, not timed: the registry answered while the stubborn tool was still waiting.
        #expect(finished.value.withLock { $0 } == false, "the registry waited for the stubborn tool")
        #expect(executions.map(\.outcome) == [.timedOut, .succeeded])
        #expect(executions[0].output.text.contains("did not finish within"))
    }

    @Test func everyFailureBecomesAnErrorResultTheModelCanRead() async throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "disk full" } }
        let failing = try Tool("fail", description: "Fails") { (_: [String: String]) -> String in throw Boom() }
        let registry = try ToolRegistry([sleeper(), failing])
        let executions = await registry.execute([
            ToolCall(id: "1", name: "nope", arguments: "{}"),
            ToolCall(id: "2", name: "sleep", arguments: "{not json"),
            ToolCall(id: "3", name: "sleep", arguments: #"{"label":5}"#),
            ToolCall(id: "4", name: "fail", arguments: ""),
        ])
        #expect(executions.map(\.outcome) == [.unknownTool, .invalidArguments, .invalidArguments, .failed])
        #expect(executions.allSatisfy { $0.output.isError })
        #expect(executions[0].output.text.contains("Available tools: sleep, fail"))
        #expect(executions[1].output.text.contains("not valid JSON"))
        #expect(executions[2].output.text.contains("/label: expected string, got number 5"))
        #expect(executions[2].output.text.contains("/milliseconds: required property is missing"))
        #expect(executions[3].output.text == "'fail' failed: disk full")
        let message = executions[3].message
        #expect(message.role == .tool && message.toolCallID == "4" && message.isError)
    }

    @Test func hugeOutputsAreCutWithANote() async throws {
        let big = try Tool("big", description: "Big") { (_: [String: String]) in String(repeating: "x", count: 5_000) }
        let registry = try ToolRegistry([big], configuration: .init(maxOutputCharacters: 1_000))
        let output = await registry.execute([ToolCall(id: "b", name: "big", arguments: "{}")])[0].output.text
        #expect(output.hasPrefix(String(repeating: "x", count: 1_000)))
        #expect(output.hasSuffix("[output truncated: 4000 more characters]"))
    }

    @Test func namesMustBeUniqueAndAcceptedByProviders() throws {
        #expect(throws: NimbusError.self) { try Tool("has space", description: "") { (_: [String: String]) in "" } }
        #expect(throws: NimbusError.self) { try ToolRegistry([sleeper(), sleeper()]) }
        var registry = try ToolRegistry([sleeper()])
        #expect(registry.definitions.map(\.name) == ["sleep"])
        #expect(registry.definitions[0].parameters["required"] == ["label", "milliseconds"])
        let removed = registry.remove("sleep")
        #expect(removed)
        #expect(registry.definitions.isEmpty)
    }

    @Test func cancellingTheCallerEndsRunningCalls() async throws {
        let registry = try ToolRegistry([sleeper()])
        let task = Task { await registry.execute([call("a", "a", 5_000), call("b", "b", 5_000)]) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let executions = await task.value
        #expect(executions.map(\.outcome) == [.cancelled, .cancelled])
    }
}

@Suite struct TimeLimitTests {
    @Test func theFasterSideWins() async throws {
        #expect(try await withTimeLimit(.seconds(5), "quick") { 42 } == 42)
        let error = await #expect(throws: NimbusError.self) {
            try await withTimeLimit(.milliseconds(20), "slow") { try await Task.sleep(for: .seconds(5)); return 0 }
        }
        #expect(error?.code == .deadlineExceeded)
        await #expect(throws: CancellationError.self) {
            try await withTimeLimit(.seconds(5), "throws") { () async throws -> Int in throw CancellationError() }
        }
    }
}

@Suite struct AgentOnTheMemoryModelTests {
    @Test func theMemoryModelDrivesAForcedToolThenAnswersFromItsResult() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        let lookup = try Tool("lookup", description: "Looks up a city") { (input: [String: String]) in "found \(input.count) keys" }
        var request = ChatRequest(messages: [])
        request.toolChoice = .tool("lookup")
        let run = try await Agent(model: model, tools: try ToolRegistry([lookup]),
                                  configuration: .init(stopWhen: [.toolCalled("lookup")], request: request)).run([.user("Find Oslo")])
        #expect(run.stopReason == .stopCondition("called lookup"))
        #expect(run.executions.map(\.outcome) == [.succeeded])
        // Without forcing, the memory model answers tool results by quoting them.
        let answer = try await Agent(model: model, tools: try ToolRegistry([lookup])).run([.user("Find Oslo")] + run.messages)
        #expect(answer.stopReason == .answered)
        #expect(answer.response.text.contains("found 0 keys"))
    }

    @Test func tokenBudgetStopsTheLoop() async throws {
        let memory = ScriptedChatModelDriver()
        for index in 0..<5 {
            memory.enqueue(.init(text: "", toolCalls: [ToolCall(id: "c\(index)", name: "noop", arguments: "{}")], usage: Usage(inputTokens: 100, outputTokens: 10)))
        }
        let noop = try Tool("noop", description: "Does nothing") { (_: [String: String]) in "ok" }
        let run = try await Agent(model: ChatModel(driver: memory, configuration: .init(defaultModel: "memory")), tools: try ToolRegistry([noop]),
                                  configuration: .init(stopWhen: [.tokensUsed(atLeast: 300)])).run([.user("go")])
        #expect(run.stopReason == .stopCondition("used 300 tokens"))
        #expect(run.steps.count == 3)
    }
}
