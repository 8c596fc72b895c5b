import Foundation
import Logging
import NimbusCore
import NimbusLLM
import Tracing

/// The tool-calling loop: ask the model, run the tools it calls (in parallel, results in call
/// order), send the results back, and repeat until the model answers without calling a tool, a stop
/// condition holds, or `maxSteps` is reached. Identical on every provider, because it only speaks
/// the portable ``ChatModel`` API.
///
/// ```swift
/// let agent = Agent(model: model, tools: tools, configuration: .init(instructions: "You are a travel assistant.", maxSteps: 8))
/// let run = try await agent.run([.user("Weather in Oslo and Rome?")])
/// print(run.response.text, run.stopReason, run.usage)
///
/// for try await event in agent.stream([.user("...")]) {        // the same loop, streamed
///     if case .model(.textDelta(let text)) = event { print(text, terminator: "") }
/// }
/// ```
public struct Agent: Sendable {
    /// How the loop runs.
    public struct Configuration: Sendable {
        /// A system message put first (none if `nil`).
        public var instructions: String?
        /// The most model calls in one run.
        public var maxSteps: Int
        /// Ends the run after the step where any holds (the model answering with no tool call always ends it).
        public var stopWhen: [StopCondition]
        /// Asked before each call to a tool that requires approval (without one, such calls are denied).
        public var approver: ToolApprover?
        /// Settings of each model request (model id, temperature, tool choice...): its messages and tools are filled in.
        public var request: ChatRequest

        /// Creates settings.
        public init(instructions: String? = nil, maxSteps: Int = 10, stopWhen: [StopCondition] = [], approver: ToolApprover? = nil,
                    request: ChatRequest = ChatRequest(messages: [])) {
            self.instructions = instructions
            self.maxSteps = max(1, maxSteps)
            self.stopWhen = stopWhen
            self.approver = approver
            self.request = request
        }
    }

    /// The model.
    public let model: ChatModel
    /// The tools.
    public let tools: ToolRegistry
    /// The settings.
    public let configuration: Configuration

    /// Creates an agent.
    public init(model: ChatModel, tools: ToolRegistry, configuration: Configuration = Configuration()) {
        self.model = model
        self.tools = tools
        self.configuration = configuration
    }

    /// Runs the loop to the end. - Throws: the model's errors (tool failures go back to the model instead).
    public func run(_ messages: [ChatMessage]) async throws -> AgentRun {
        try await loop(messages, streaming: false) { _ in }
    }

    /// Runs the loop, streaming the model's events and each tool result as they come. Breaking out of
    /// the loop cancels the run (the model call and the tools still running).
    public func stream(_ messages: [ChatMessage]) -> AsyncThrowingStream<AgentEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let run = try await loop(messages, streaming: true) { continuation.yield($0) }
                    continuation.yield(.finished(run))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func loop(_ input: [ChatMessage], streaming: Bool, emit: @Sendable (AgentEvent) -> Void) async throws -> AgentRun {
        var history = input
        if let instructions = configuration.instructions { history.insert(.system(instructions), at: 0) }
        let start = history.count
        var steps: [AgentStep] = []
        return try await withSpan("agent.run") { span in
            span.attributes["gen_ai.operation.name"] = "invoke_agent"
            for index in 0..<configuration.maxSteps {
                try Task.checkCancellation()
                emit(.stepStarted(index))
                var request = configuration.request
                request.messages = history
                request.tools = tools.definitions
                let response: ChatResponse
                if streaming {
                    var accumulator = ChatResponseAccumulator()
                    for try await event in try await model.stream(request) {
                        accumulator.add(event)
                        emit(.model(event))
                    }
                    response = try accumulator.response()
                } else {
                    response = try await model.chat(request)
                }
                history.append(response.message)
                let calls = response.message.toolCalls
                var executions: [ToolExecution] = []
                if !calls.isEmpty {
                    emit(.toolCalls(calls))
                    executions = await tools.execute(calls, approver: configuration.approver)
                    try Task.checkCancellation()
                    for execution in executions { emit(.toolResult(execution)) }
                    history += executions.map(\.message)
                }
                let step = AgentStep(index: index, response: response, executions: executions)
                steps.append(step)
                emit(.stepFinished(step))
                if calls.isEmpty {
                    return finish(.answered, history: history, start: start, steps: steps, span: span)
                }
                if let condition = configuration.stopWhen.first(where: { $0.holds(steps) }) {
                    return finish(.stopCondition(condition.name), history: history, start: start, steps: steps, span: span)
                }
            }
            return finish(.maxSteps, history: history, start: start, steps: steps, span: span)
        }
    }

    private func finish(_ reason: AgentRun.StopReason, history: [ChatMessage], start: Int, steps: [AgentStep], span: any Span) -> AgentRun {
        let run = AgentRun(messages: Array(history[start...]), steps: steps, stopReason: reason)
        span.attributes["nimbus.agent.steps"] = steps.count
        span.attributes["nimbus.agent.stop_reason"] = "\(reason)"
        return run
    }
}

/// One model call and the tool calls it made.
public struct AgentStep: Sendable, Hashable {
    /// 0-based.
    public var index: Int
    /// The model's reply.
    public var response: ChatResponse
    /// Its tool calls, run, in call order.
    public var executions: [ToolExecution]
}

/// What a run produced.
public struct AgentRun: Sendable, Hashable {
    /// Why the loop ended.
    public enum StopReason: Sendable, Hashable, CustomStringConvertible {
        /// The model answered without calling a tool.
        case answered
        /// A stop condition held.
        case stopCondition(String)
        /// `maxSteps` model calls were made.
        case maxSteps

        public var description: String {
            switch self {
            case .answered: "answered"
            case .stopCondition(let name): "stop condition \(name)"
            case .maxSteps: "max steps"
            }
        }
    }

    /// The messages the run added (assistant turns and tool results), to append to the conversation.
    public var messages: [ChatMessage]
    /// Every step.
    public var steps: [AgentStep]
    /// Why it ended.
    public var stopReason: StopReason

    /// The last model reply.
    public var response: ChatResponse { steps[steps.count - 1].response }
    /// Usage over all steps.
    public var usage: Usage { steps.dropFirst().reduce(steps[0].response.usage) { $0 + $1.response.usage } }
    /// Every tool execution, in order.
    public var executions: [ToolExecution] { steps.flatMap(\.executions) }
}

/// What a streamed run reports.
public enum AgentEvent: Sendable, Hashable {
    /// A model call begins.
    case stepStarted(Int)
    /// An event of the model's stream.
    case model(ChatStreamEvent)
    /// The model asked for these calls; they run now.
    case toolCalls([ToolCall])
    /// A call finished (reported in call order once the step's calls are done).
    case toolResult(ToolExecution)
    /// A step ended.
    case stepFinished(AgentStep)
    /// The run ended.
    case finished(AgentRun)
}

/// A condition that ends a run after a step.
public struct StopCondition: Sendable {
    /// Its name, reported in ``AgentRun/StopReason``.
    public var name: String
    /// Whether it holds, given the steps so far (the last is the one just finished).
    public var holds: @Sendable ([AgentStep]) -> Bool

    /// Creates a condition.
    public init(_ name: String, holds: @escaping @Sendable ([AgentStep]) -> Bool) {
        self.name = name
        self.holds = holds
    }

    /// The model called `tool` (a "final answer" or "handoff" tool), and the call succeeded.
    public static func toolCalled(_ tool: String) -> StopCondition {
        StopCondition("called \(tool)") { steps in steps.last?.executions.contains { $0.call.name == tool && $0.outcome == .succeeded } == true }
    }

    /// The run's input and output tokens together reached `limit`.
    public static func tokensUsed(atLeast limit: Int) -> StopCondition {
        StopCondition("used \(limit) tokens") { steps in
            steps.reduce(0) { $0 + $1.response.usage.inputTokens + $1.response.usage.outputTokens } >= limit
        }
    }
}
