import Foundation
import NimbusCore
import NimbusLLM
import Tracing

/// What a running chain reports while it works (through ``ChainContext``), for streaming.
public enum ChainProgress: Sendable, Hashable {
    /// A step began.
    case stepStarted(String)
    /// A step ended.
    case stepFinished(String)
    /// Text a model step is generating.
    case token(String)
}

/// Carried through every step of one run: where progress goes and which tracer records the spans.
public struct ChainContext: Sendable {
    /// Receives progress; `nil` when nobody streams (model steps then call `chat`, not `stream`).
    public var emit: (@Sendable (ChainProgress) -> Void)?
    /// Records one span per step.
    public var tracer: any Tracer

    /// Creates a context.
    public init(emit: (@Sendable (ChainProgress) -> Void)? = nil, tracer: any Tracer = InstrumentationSystem.tracer) {
        self.emit = emit
        self.tracer = tracer
    }

    /// Whether progress is being streamed.
    public var isStreaming: Bool { emit != nil }
}

/// One typed step of a chain. Steps compose — `a.then(b)`, ``Parallel``, ``Branch``, `.retrying(...)`,
/// `.withFallbacks(...)` — into steps, so a chain is itself a step.
///
/// ```swift
/// let summarize = ChatPromptTemplate([.system("Summarize in {style} style."), .user("{text}")])
///     .then(ModelStep(model))
///     .then(TextParser())
/// let summary = try await summarize.invoke(["style": "terse", "text": article])
/// for try await event in summarize.stream(["style": "terse", "text": article]) { ... }
/// ```
public protocol Runnable<Input, Output>: Sendable {
    /// What it takes.
    associatedtype Input: Sendable
    /// What it gives.
    associatedtype Output: Sendable
    /// The step's name in traces and progress.
    var name: String { get }
    /// Runs the step (use ``invoke(_:)`` from outside a chain).
    func run(_ input: Input, context: ChainContext) async throws -> Output
}

/// What ``Runnable/stream(_:tracer:)`` yields.
public enum ChainEvent<Output: Sendable>: Sendable {
    /// Progress of some step.
    case progress(ChainProgress)
    /// The chain's result (last).
    case output(Output)
}

extension Runnable {
    /// Runs the step, in a span named after it, checking cancellation first.
    public func invoke(_ input: Input, context: ChainContext = ChainContext()) async throws -> Output {
        try await ChainRunner.step(self, input, context)
    }

    /// Runs the step, streaming the progress of every step inside it (model tokens included) and then
    /// the output. Breaking out of the loop cancels the run.
    public func stream(_ input: Input, tracer: any Tracer = InstrumentationSystem.tracer) -> AsyncThrowingStream<ChainEvent<Output>, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let context = ChainContext(emit: { continuation.yield(.progress($0)) }, tracer: tracer)
                    continuation.yield(.output(try await invoke(input, context: context)))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// This step, then `next` on its output.
    public func then<Next: Runnable>(_ next: Next) -> Sequence2<Self, Next> where Next.Input == Output { Sequence2(first: self, second: next) }

    /// This step, then a function of its output.
    public func then<T: Sendable>(_ name: String = "map", _ transform: @escaping @Sendable (Output) async throws -> T) -> Sequence2<Self, Lambda<Output, T>> {
        Sequence2(first: self, second: Lambda(name, transform))
    }

    /// Retries the step under `policy` (transient failures by default: 429, 5xx, timeouts).
    public func retrying(_ policy: RetryPolicy) -> Retry<Self> { Retry(inner: self, policy: policy) }

    /// Runs `fallbacks` in order when the step fails (cancellation is never caught).
    public func withFallbacks(_ fallbacks: [any Runnable<Input, Output>]) -> Fallback<Input, Output> {
        Fallback(primary: self, fallbacks: fallbacks)
    }
}

/// Runs steps in spans and reports their start and end.
enum ChainRunner {
    static func step<R: Runnable>(_ step: R, _ input: R.Input, _ context: ChainContext) async throws -> R.Output {
        try Task.checkCancellation()
        context.emit?(.stepStarted(step.name))
        let output = try await context.tracer.withSpan("chain.\(step.name)", context: ServiceContext.current ?? .topLevel, ofKind: .internal) { span in
            span.attributes["nimbus.chain.step"] = step.name
            return try await step.run(input, context: context)
        }
        context.emit?(.stepFinished(step.name))
        return output
    }
}

/// A step from a closure.
public struct Lambda<Input: Sendable, Output: Sendable>: Runnable {
    public let name: String
    private let body: @Sendable (Input) async throws -> Output

    /// Creates a step.
    public init(_ name: String, _ body: @escaping @Sendable (Input) async throws -> Output) {
        self.name = name
        self.body = body
    }

    public func run(_ input: Input, context: ChainContext) async throws -> Output { try await body(input) }
}

/// Two steps in order.
public struct Sequence2<First: Runnable, Second: Runnable>: Runnable where First.Output == Second.Input {
    public let first: First
    public let second: Second
    public var name: String { "\(first.name) | \(second.name)" }

    public func run(_ input: First.Input, context: ChainContext) async throws -> Second.Output {
        let middle = try await ChainRunner.step(first, input, context)
        return try await ChainRunner.step(second, middle, context)
    }
}

/// Named steps run concurrently on the same input; the outputs by name.
public struct Parallel<Input: Sendable, Output: Sendable>: Runnable {
    public let name: String
    private let branches: [(String, any Runnable<Input, Output>)]

    /// Creates the step.
    public init(_ name: String = "parallel", _ branches: [(String, any Runnable<Input, Output>)]) {
        self.name = name
        self.branches = branches
    }

    public func run(_ input: Input, context: ChainContext) async throws -> [String: Output] {
        try await withThrowingTaskGroup(of: (String, Output).self) { group in
            for (key, branch) in branches {
                group.addTask { (key, try await Self.invoke(branch, input, context)) }
            }
            var outputs: [String: Output] = [:]
            for try await (key, output) in group { outputs[key] = output }
            return outputs
        }
    }

    static func invoke(_ branch: any Runnable<Input, Output>, _ input: Input, _ context: ChainContext) async throws -> Output {
        try await branch.invoke(input, context: context)
    }
}

/// One step over every element of an array, at most `concurrency` at a time, outputs in input order.
public struct MapEach<Step: Runnable>: Runnable {
    public let step: Step
    public let concurrency: Int
    public var name: String { "map(\(step.name))" }

    /// Creates the step.
    public init(_ step: Step, concurrency: Int = 4) {
        self.step = step
        self.concurrency = max(1, concurrency)
    }

    public func run(_ input: [Step.Input], context: ChainContext) async throws -> [Step.Output] {
        try await withThrowingTaskGroup(of: (Int, Step.Output).self) { group in
            var results = [Step.Output?](repeating: nil, count: input.count)
            var next = 0
            for _ in 0..<min(concurrency, input.count) {
                let index = next, element = input[index]
                group.addTask { (index, try await step.invoke(element, context: context)) }
                next += 1
            }
            for try await (index, output) in group {
                results[index] = output
                if next < input.count {
                    let index = next, element = input[index]
                    group.addTask { (index, try await step.invoke(element, context: context)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}

/// Routes the input to one of several steps: the first whose condition holds, else the default.
public struct Branch<Input: Sendable, Output: Sendable>: Runnable {
    public let name: String
    private let routes: [(String, @Sendable (Input) async throws -> Bool, any Runnable<Input, Output>)]
    private let otherwise: any Runnable<Input, Output>

    /// Creates the step.
    public init(_ name: String = "branch", routes: [(String, @Sendable (Input) async throws -> Bool, any Runnable<Input, Output>)],
                otherwise: any Runnable<Input, Output>) {
        self.name = name
        self.routes = routes
        self.otherwise = otherwise
    }

    public func run(_ input: Input, context: ChainContext) async throws -> Output {
        for (_, condition, step) in routes where try await condition(input) {
            return try await Parallel<Input, Output>.invoke(step, input, context)
        }
        return try await Parallel<Input, Output>.invoke(otherwise, input, context)
    }
}

/// A step retried under a policy.
public struct Retry<Inner: Runnable>: Runnable {
    public let inner: Inner
    public let policy: RetryPolicy
    public var name: String { "retry(\(inner.name))" }

    public func run(_ input: Inner.Input, context: ChainContext) async throws -> Inner.Output {
        try await policy.run(clock: ContinuousClock()) { _ in try await inner.invoke(input, context: context) }
    }
}

/// A step with alternatives tried in order when it fails.
public struct Fallback<Input: Sendable, Output: Sendable>: Runnable {
    let primary: any Runnable<Input, Output>
    let fallbacks: [any Runnable<Input, Output>]
    public var name: String { "fallback(\(primary.name))" }

    public func run(_ input: Input, context: ChainContext) async throws -> Output {
        var lastError: (any Error)?
        for step in [primary] + fallbacks {
            do { return try await Parallel<Input, Output>.invoke(step, input, context) } catch {
                if error is CancellationError || Task.isCancelled { throw error }
                lastError = error
            }
        }
        throw lastError ?? NimbusError(.internal, "no step to run")
    }
}
