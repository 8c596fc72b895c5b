import Foundation
import Logging
import NimbusCore
import NimbusLLM

/// The tools a model may call, and how their calls run: arguments checked against each tool's
/// schema, approvals asked for tools that need them, calls run in parallel under a concurrency
/// limit and a per-call time limit, results returned **in the order of the calls** whatever order
/// they finish in.
///
/// ```swift
/// var tools = ToolRegistry()
/// try tools.register(weather)
/// let request = ChatRequest(messages: messages, tools: tools.definitions)
/// let reply = try await model.chat(request)
/// let results = await tools.execute(reply.message.toolCalls)
/// messages += [reply.message] + results.map(\.message)
/// ```
public struct ToolRegistry: Sendable {
    /// How calls run.
    public struct Configuration: Sendable {
        /// The most calls running at once.
        public var maxConcurrency: Int
        /// The time limit of tools that set none.
        public var defaultTimeout: Duration
        /// Longer outputs are cut (with a note saying so), so one tool cannot fill the context window.
        public var maxOutputCharacters: Int
        /// The text the model sees for a thrown error (default: the error's description). Override to hide internals.
        public var describeFailure: @Sendable (any Error) -> String

        /// Creates settings.
        public init(maxConcurrency: Int = 8, defaultTimeout: Duration = .seconds(60), maxOutputCharacters: Int = 100_000,
                    describeFailure: @escaping @Sendable (any Error) -> String = { error in
                        (error as? NimbusError)?.message ?? String(describing: error)
                    }) {
            self.maxConcurrency = max(1, maxConcurrency)
            self.defaultTimeout = defaultTimeout
            self.maxOutputCharacters = max(100, maxOutputCharacters)
            self.describeFailure = describeFailure
        }
    }

    /// The settings.
    public var configuration: Configuration
    private var tools: [String: Tool] = [:]
    private var order: [String] = []
    private let logger: Logger

    /// Creates a registry.
    public init(_ tools: [Tool] = [], configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "nimbus.llm.tools")) throws {
        self.configuration = configuration
        self.logger = logger
        for tool in tools { try register(tool) }
    }

    /// Adds a tool. - Throws: `alreadyExists` when the name is taken.
    public mutating func register(_ tool: Tool) throws {
        guard tools[tool.name] == nil else {
            throw NimbusError(.alreadyExists, "a tool named '\(tool.name)' is already registered; tool names must be unique")
        }
        tools[tool.name] = tool
        order.append(tool.name)
    }

    /// Adds several tools (an MCP server's, say). - Throws: `alreadyExists` at the first name taken; none of them is added then.
    public mutating func register(contentsOf tools: [Tool]) throws {
        var copy = self
        for tool in tools { try copy.register(tool) }
        self = copy
    }

    /// Removes a tool. - Returns: whether it was there.
    @discardableResult public mutating func remove(_ name: String) -> Bool {
        guard tools.removeValue(forKey: name) != nil else { return false }
        order.removeAll { $0 == name }
        return true
    }

    /// The tool called `name`.
    public subscript(name: String) -> Tool? { tools[name] }

    /// The tools, in registration order.
    public var all: [Tool] { order.compactMap { tools[$0] } }

    /// The definitions to put in a ``ChatRequest``.
    public var definitions: [ToolDefinition] { all.map(\.definition) }

    /// Runs the calls and returns one execution per call, in call order. Never throws: every
    /// failure becomes an error result the model can read; cancellation of the caller ends the
    /// calls still running with `cancelled`.
    /// - Parameter approver: asked, in call order, about each call to a tool that ``Tool/requiresApproval``;
    ///   with no approver such calls are denied.
    public func execute(_ calls: [ToolCall], approver: ToolApprover? = nil) async -> [ToolExecution] {
        var executions = [ToolExecution?](repeating: nil, count: calls.count)
        var runnable: [(index: Int, tool: Tool, invocation: ToolInvocation)] = []
        for (index, call) in calls.enumerated() {
            switch await prepare(call, approver: approver) {
            case .ready(let tool, let invocation): runnable.append((index, tool, invocation))
            case .refused(let execution): executions[index] = execution
            }
        }
        await withTaskGroup(of: (Int, ToolExecution).self) { group in
            var pending = runnable[...]
            func startNext() {
                guard let next = pending.popFirst() else { return }
                group.addTask { (next.index, await self.run(next.tool, next.invocation)) }
            }
            for _ in 0..<configuration.maxConcurrency { startNext() }
            for await (index, execution) in group {
                executions[index] = execution
                startNext()
            }
        }
        return executions.enumerated().map { index, execution in
            execution ?? ToolExecution(call: calls[index], output: .error("The call was not run."), outcome: .cancelled, duration: .zero)
        }
    }

    private enum Preparation { case ready(Tool, ToolInvocation), refused(ToolExecution) }

    private func prepare(_ call: ToolCall, approver: ToolApprover?) async -> Preparation {
        func refuse(_ outcome: ToolExecution.Outcome, _ text: String) -> Preparation {
            logger.debug("tool call refused", metadata: ["tool": "\(call.name)", "outcome": "\(outcome.rawValue)"])
            return .refused(ToolExecution(call: call, output: .error(text), outcome: outcome, duration: .zero))
        }
        guard let tool = tools[call.name] else {
            return refuse(.unknownTool, "There is no tool named '\(call.name)'. Available tools: \(order.joined(separator: ", ")).")
        }
        let arguments: JSONValue
        do {
            let text = call.arguments.trimmingCharacters(in: .whitespacesAndNewlines)
            arguments = text.isEmpty ? .object([:]) : try JSONValue.parse(Data(text.utf8))
        } catch {
            return refuse(.invalidArguments, "The arguments of '\(call.name)' are not valid JSON (\(error)). Call it again with a JSON object that matches its schema.")
        }
        let problems = JSONSchema.validate(arguments, against: tool.definition.parameters)
        guard problems.isEmpty else { return refuse(.invalidArguments, Self.argumentMessage(call.name, problems)) }
        if tool.requiresApproval {
            guard let approver else {
                return refuse(.denied, "Calling '\(call.name)' needs a person's approval and none can be asked here. Do not retry; tell the user.")
            }
            switch await approver(ToolApprovalRequest(call: call, definition: tool.definition, arguments: arguments)) {
            case .approve: break
            case .deny(let reason):
                return refuse(.denied, "The user declined this call to '\(call.name)'\(reason.isEmpty ? "" : ": \(reason)"). Do not retry it unchanged.")
            }
        }
        return .ready(tool, ToolInvocation(call: call, arguments: arguments))
    }

    static func argumentMessage(_ name: String, _ problems: [String]) -> String {
        "The arguments of '\(name)' do not match its schema:\n" + problems.map { "- \($0)" }.joined(separator: "\n")
            + "\nCall '\(name)' again with corrected arguments."
    }

    private func run(_ tool: Tool, _ invocation: ToolInvocation) async -> ToolExecution {
        let clock = ContinuousClock()
        let start = clock.now
        let limit = tool.timeout ?? configuration.defaultTimeout
        var outcome = ToolExecution.Outcome.succeeded
        var output: ToolOutput
        do {
            output = try await withTimeLimit(limit, "tool \(tool.name)") { try await tool(invocation) }
            if output.isError { outcome = .failed }
        } catch let error as ToolArgumentError {
            outcome = .invalidArguments
            output = .error(Self.argumentMessage(tool.name, error.problems))
        } catch let error as NimbusError where error.code == .deadlineExceeded && !Task.isCancelled {
            outcome = .timedOut
            output = .error("'\(tool.name)' did not finish within \(limit) and was stopped. Try a narrower request or another approach.")
        } catch {
            if Task.isCancelled {
                outcome = .cancelled
                output = .error("The call was cancelled.")
            } else {
                outcome = .failed
                output = .error("'\(tool.name)' failed: \(configuration.describeFailure(error))")
            }
        }
        let text = output.text
        if text.count > configuration.maxOutputCharacters {
            let kept = String(text.prefix(configuration.maxOutputCharacters))
            output.content = [.text(kept + "\n[output truncated: \(text.count - kept.count) more characters]")]
                + output.content.filter { if case .text = $0 { false } else { true } }
        }
        let duration = clock.now - start
        logger.debug("tool call finished", metadata: ["tool": "\(tool.name)", "outcome": "\(outcome.rawValue)", "duration": "\(duration)"])
        return ToolExecution(call: invocation.call, output: output, outcome: outcome, duration: duration)
    }
}

/// One finished call.
public struct ToolExecution: Sendable, Hashable {
    /// How it ended.
    public enum Outcome: String, Sendable, Hashable, Codable {
        case succeeded, failed, invalidArguments, unknownTool, timedOut, denied, cancelled
    }
    /// The model's call.
    public var call: ToolCall
    /// What goes back to the model.
    public var output: ToolOutput
    /// How it ended.
    public var outcome: Outcome
    /// How long the tool ran.
    public var duration: Duration

    /// Creates an execution.
    public init(call: ToolCall, output: ToolOutput, outcome: Outcome, duration: Duration) {
        self.call = call
        self.output = output
        self.outcome = outcome
        self.duration = duration
    }

    /// The tool-result message answering the call.
    public var message: ChatMessage {
        ChatMessage(role: .tool, content: output.content, toolCallID: call.id, name: call.name, isError: output.isError)
    }
}

/// Asked before a call to a tool that needs approval.
public typealias ToolApprover = @Sendable (ToolApprovalRequest) async -> ToolApproval

/// A call waiting for approval.
public struct ToolApprovalRequest: Sendable, Hashable {
    /// The call.
    public var call: ToolCall
    /// The tool's definition.
    public var definition: ToolDefinition
    /// The checked arguments.
    public var arguments: JSONValue
}

/// A person's answer.
public enum ToolApproval: Sendable, Hashable {
    /// Run the call.
    case approve
    /// Do not run it; the reason is shown to the model.
    case deny(reason: String)
}
