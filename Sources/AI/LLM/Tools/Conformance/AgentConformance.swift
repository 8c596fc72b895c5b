import Foundation
import NimbusCore
import NimbusTesting
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMTools
import Synchronization
import Testing

/// The agent loop's behaviour, run against every adapter through its conformance harness (its local
/// fake of the provider's API, which checks each request against the provider's spec): the loop
/// must behave the same whichever provider answers.
///
/// ```swift
/// @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
/// func conformance(_ check: LLMConformance.Check) async throws {
///     let fake = try await OpenAIFake.start()
///     try await check.run(LLMConformance.Harness(model: fake.model(), capabilities: [...]) { fake.script($0) })
/// }
/// ```
public enum AgentConformance {
    /// One named behaviour, run on an adapter's ``LLMConformance/Harness`` like its own checks.
    public typealias Check = LLMConformance.Check

    struct WeatherInput: Codable, Sendable, Hashable { var city: String }
    struct Weather: Codable, Sendable { var city: String; var celsius: Int }
    struct PaymentInput: Codable, Sendable { var to: String; var cents: Int }

    /// Records what the tools were called with.
    final class Calls: Sendable {
        private let seen = Mutex<[String]>([])
        func add(_ call: String) { seen.withLock { $0.append(call) } }
        var all: [String] { seen.withLock { $0 } }
    }

    static func registry(_ calls: Calls) throws -> ToolRegistry {
        try ToolRegistry([
            Tool("get_weather", description: "Current weather in a city") { (input: WeatherInput) in
                calls.add("weather:\(input.city)")
                try await Task.sleep(for: .milliseconds(input.city == "Oslo" ? 30 : 1))   // finishes last, is reported first
                return Weather(city: input.city, celsius: input.city == "Oslo" ? -3 : 21)
            },
            Tool("send_payment", description: "Send money", requiresApproval: true) { (input: PaymentInput) in
                calls.add("payment:\(input.to)")
                return "sent"
            },
        ])
    }

    static func exchange(_ calls: [ToolCall] = [], text: String = "", id: String, usage: Usage) -> LLMConformance.Exchange {
        LLMConformance.Exchange(id: id, text: text, toolCalls: calls, finishReason: calls.isEmpty ? .stop : .toolCalls, usage: usage)
    }

    static let parallelCalls = [ToolCall(id: "call_oslo", name: "get_weather", arguments: #"{"city":"Oslo"}"#),
                                ToolCall(id: "call_rome", name: "get_weather", arguments: #"{"city":"Rome"}"#)]

    /// Every check.
    public static let checks: [Check] = [
        Check("parallel tool calls run, their results go back in call order, and the model's answer ends the run") { harness in
            let calls = Calls()
            try await harness.script(.reply(exchange(parallelCalls, id: "resp_1", usage: Usage(inputTokens: 50, outputTokens: 20))))
            try await harness.script(.reply(exchange(text: "Oslo -3 °C, Rome 21 °C.", id: "resp_2", usage: Usage(inputTokens: 90, outputTokens: 12))))
            let agent = Agent(model: harness.model, tools: try registry(calls), configuration: .init(instructions: "Be brief.", maxSteps: 4))
            let run = try await agent.run([.user("Weather in Oslo and Rome?")])
            #expect(run.stopReason == .answered)
            #expect(run.steps.count == 2)
            #expect(run.response.text == "Oslo -3 °C, Rome 21 °C.")
            #expect(Set(calls.all) == ["weather:Oslo", "weather:Rome"])
            let results = run.messages.filter { $0.role == .tool }
            #expect(results.map(\.text) == [#"{"celsius":-3,"city":"Oslo"}"#, #"{"celsius":21,"city":"Rome"}"#])
            #expect(results.map(\.toolCallID) == run.steps[0].response.toolCalls.map(\.id), "each result answers its own call, in call order")
            #expect(run.messages.map(\.role) == [.assistant, .tool, .tool, .assistant])
            #expect(run.usage == harness.expectedUsage(Usage(inputTokens: 50, outputTokens: 20)) + harness.expectedUsage(Usage(inputTokens: 90, outputTokens: 12)))
        },
        Check("a streamed run reports model events, tool calls and results in order, and ends like the unstreamed run") { harness in
            let calls = Calls()
            try await harness.script(.reply(exchange(parallelCalls, id: "resp_1", usage: Usage(inputTokens: 50, outputTokens: 20))))
            try await harness.script(.reply(exchange(text: "Cold in Oslo, warm in Rome.", id: "resp_2", usage: Usage(inputTokens: 90, outputTokens: 12))))
            let agent = Agent(model: harness.model, tools: try registry(calls))
            var kinds: [String] = [], text = "", finished: AgentRun?
            for try await event in agent.stream([.user("Weather in Oslo and Rome?")]) {
                switch event {
                case .stepStarted(let index): kinds.append("step\(index)")
                case .model(.textDelta(let delta)): text += delta
                case .model: break
                case .toolCalls(let requested): kinds.append("calls:\(requested.map(\.name).joined(separator: ","))")
                case .toolResult(let execution): kinds.append("result:\(execution.outcome.rawValue)")
                case .stepFinished(let step): kinds.append("done\(step.index)")
                case .finished(let run): finished = run
                }
            }
            #expect(kinds == ["step0", "calls:get_weather,get_weather", "result:succeeded", "result:succeeded", "done0", "step1", "done1"])
            #expect(text == "Cold in Oslo, warm in Rome.")
            let run = try #require(finished)
            #expect(run.stopReason == .answered)
            #expect(run.messages.filter { $0.role == .tool }.map(\.text) == [#"{"celsius":-3,"city":"Oslo"}"#, #"{"celsius":21,"city":"Rome"}"#])
        },
        Check("arguments that do not fit the schema go back to the model as an error it can correct") { harness in
            let calls = Calls()
            try await harness.script(.reply(exchange([ToolCall(id: "call_bad", name: "get_weather", arguments: #"{"town":"Oslo"}"#)], id: "r1",
                                                     usage: Usage(inputTokens: 40, outputTokens: 10))))
            try await harness.script(.reply(exchange([ToolCall(id: "call_good", name: "get_weather", arguments: #"{"city":"Oslo"}"#)], id: "r2",
                                                     usage: Usage(inputTokens: 60, outputTokens: 10))))
            try await harness.script(.reply(exchange(text: "-3 °C.", id: "r3", usage: Usage(inputTokens: 80, outputTokens: 4))))
            let run = try await Agent(model: harness.model, tools: try registry(calls)).run([.user("Weather in Oslo?")])
            #expect(run.executions.map(\.outcome) == [.invalidArguments, .succeeded])
            let error = run.executions[0].output
            #expect(error.isError)
            #expect(error.text.contains("/city: required property is missing") && error.text.contains("/town: unknown property"))
            #expect(calls.all == ["weather:Oslo"], "the tool body never saw the bad arguments")
            #expect(run.response.text == "-3 °C.")
        },
        Check("a tool that needs approval runs only when approved; a denial goes back to the model") { harness in
            let calls = Calls()
            let payment = ToolCall(id: "call_pay", name: "send_payment", arguments: #"{"to":"acct_9","cents":5000}"#)
            try await harness.script(.reply(exchange([payment], id: "r1", usage: Usage(inputTokens: 40, outputTokens: 10))))
            try await harness.script(.reply(exchange(text: "I did not send it.", id: "r2", usage: Usage(inputTokens: 60, outputTokens: 6))))
            let asked = Calls()
            let agent = Agent(model: harness.model, tools: try registry(calls), configuration: .init(approver: { request in
                asked.add("\(request.definition.name):\(request.arguments["cents"]?.description ?? "")")
                return .deny(reason: "over the limit")
            }))
            let run = try await agent.run([.user("Pay acct_9 50 dollars")])
            #expect(asked.all == ["send_payment:5000"])
            #expect(calls.all.isEmpty)
            #expect(run.executions.map(\.outcome) == [.denied])
            #expect(run.executions[0].output.text.contains("over the limit"))
            #expect(run.response.text == "I did not send it.")
        },
        Check("the run stops at maxSteps, and a stop condition ends it after the step where it holds") { harness in
            for _ in 0..<2 {
                try await harness.script(.reply(exchange([ToolCall(id: "c1", name: "get_weather", arguments: #"{"city":"Rome"}"#)], id: "r",
                                                         usage: Usage(inputTokens: 10, outputTokens: 5))))
            }
            let limited = try await Agent(model: harness.model, tools: try registry(Calls()), configuration: .init(maxSteps: 2)).run([.user("Loop")])
            #expect(limited.stopReason == .maxSteps)
            #expect(limited.steps.count == 2)
            #expect(limited.messages.last?.role == .tool, "the last step's calls still get their results")
            try await harness.script(.reply(exchange([ToolCall(id: "c2", name: "get_weather", arguments: #"{"city":"Rome"}"#)], id: "r",
                                                     usage: Usage(inputTokens: 10, outputTokens: 5))))
            let stopped = try await Agent(model: harness.model, tools: try registry(Calls()),
                                          configuration: .init(stopWhen: [.toolCalled("get_weather")])).run([.user("Once")])
            #expect(stopped.stopReason == .stopCondition("called get_weather"))
            #expect(stopped.steps.count == 1)
        },
    ]
}
