import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusLLMMemoryMemory
import NimbusLLMScripted
import NimbusTesting
import Testing

/// A history with two tool rounds (one with parallel calls) between user turns.
func toolHistory() -> [ChatMessage] {
    let a = ToolCall(id: "a", name: "weather", arguments: #"{"city":"Oslo"}"#)
    let b = ToolCall(id: "b", name: "weather", arguments: #"{"city":"Rome"}"#)
    let c = ToolCall(id: "c", name: "time", arguments: "{}")
    return [
        .system("Be brief."),
        .user("Weather in Oslo and Rome?"),
        .assistant("", toolCalls: [a, b]), .tool(callID: "a", "-3"), .tool(callID: "b", "21"),
        .assistant("Oslo -3, Rome 21."),
        .user("And the time?"),
        .assistant("", toolCalls: [c]), .tool(callID: "c", "12:00"),
        .assistant("Noon."),
        .user("Thanks"),
    ]
}

@Suite struct MemoryPolicyTests {
    @Test func noWindowSizeEverSeparatesACallFromItsResults() async throws {
        let history = toolHistory()
        for size in 1...12 {
            let window = try await SlidingWindow(maxMessages: size).select(from: history)
            try ChatRequest(messages: window).validate()     // the provider's rule: no orphan results, results right after their call
            #expect(window.first?.role == .system)
            #expect(window.count - 1 <= size)
            #expect(window.last == history.last)
        }
        for budget in stride(from: 20, through: 200, by: 5) {
            let window = try await TokenLimited(maxTokens: budget, model: "gpt-4o").select(from: history)
            try ChatRequest(messages: window).validate()
            #expect(TokenEstimator.forModel("gpt-4o").count(messages: window) <= budget)
        }
    }

    @Test func theWindowCutsBeforeAToolRoundRatherThanInsideIt() async throws {
        let window = try await SlidingWindow(maxMessages: 3).select(from: toolHistory())
        // The last three messages would start with the lone tool result "12:00": the whole round is dropped instead.
        #expect(window.map(\.text) == ["Be brief.", "Noon.", "Thanks"])
        let wider = try await SlidingWindow(maxMessages: 4).select(from: toolHistory())
        #expect(wider.count == 5)
        #expect(wider[1].toolCalls.map(\.id) == ["c"])
        #expect(wider[2].toolCallID == "c")
    }

    @Test func orphanResultsAreDroppedAndTheSystemPromptMustFit() async throws {
        let broken: [ChatMessage] = [.user("q"), .tool(callID: "ghost", "x"), .assistant("a")]
        #expect(try await FullBuffer().select(from: broken).map(\.role) == [.user, .assistant])
        await #expect(throws: NimbusError.self) {
            try await TokenLimited(maxTokens: 5, model: "gpt-4o").select(from: [.system(String(repeating: "long ", count: 50)), .user("hi")])
        }
    }
}

@Suite struct ConversationStoreTests {
    @Test func memoryBuildsTheNextRequestThroughItsPolicy() async throws {
        let memory = ConversationMemory(store: MemoryConversationStore(), policy: SlidingWindow(maxMessages: 3))
        try await memory.append(toolHistory(), to: "s")
        let context = try await memory.context(for: "s")
        #expect(context.first?.role == .system)
        try ChatRequest(messages: context).validate()
    }
}

@Suite struct SummaryBufferTests {
    /// A summarizer that answers from a script and keeps every request it saw.
    func summarizer() -> (ChatModel, ScriptedChatModelDriver) {
        let driver = ScriptedChatModelDriver()
        return (ChatModel(driver: driver, configuration: .init(defaultModel: "memory")), driver)
    }

    func longHistory(rounds: Int) -> [ChatMessage] {
        var history: [ChatMessage] = [.system("Be brief.")]
        for round in 0..<rounds {
            let call = ToolCall(id: "call\(round)", name: "lookup", arguments: #"{"n":\#(round)}"#)
            history += [.user("Question number \(round) about the quarterly report"), .assistant("", toolCalls: [call]),
                        .tool(callID: "call\(round)", "result \(round)"), .assistant("Answer \(round) with some detail.")]
        }
        return history
    }

    @Test func olderTurnsAreSummarizedAndTheCutNeverSplitsAToolRound() async throws {
        let estimator = TokenEstimator()
        let (model, driver) = summarizer()
        let history = longHistory(rounds: 6)
        for budget in stride(from: 5, through: 120, by: 5) {
            driver.enqueue(.text("S\(budget)"))
            let policy = SummaryBuffer(model: model, recentTokens: budget, estimator: estimator)
            let selected = try await policy.select(from: history)
            try ChatRequest(messages: selected).validate()
            #expect(selected[0] == .system("Be brief."))
            #expect(selected[1].role == .system && selected[1].text.hasPrefix(SummaryBuffer.summaryHeading))
            #expect(selected.last == history.last, "the newest turn is always verbatim")
            let recent = selected.dropFirst(2)
            #expect(recent.count == 1 || recent.reduce(0) { $0 + estimator.count($1) } <= budget)
            #expect(Array(history.suffix(recent.count)) == Array(recent), "the verbatim part is the history's tail")
        }
    }

    @Test func summariesAreIncrementalAndCachedByTheHistoryTheyCover() async throws {
        let (model, driver) = summarizer()
        let policy = SummaryBuffer(model: model, recentTokens: 30)
        var history = longHistory(rounds: 3)
        driver.enqueue(.text("first summary"))
        let first = try await policy.select(from: history)
        #expect(first[1].text.hasSuffix("first summary"))
        #expect(try await policy.select(from: history) == first, "same history: no new call (the script is empty, so a call would echo)")
        history += [.user("Question number 3 about the quarterly report"), .assistant("Answer 3 with some detail.")]
        driver.enqueue(.text("second summary"))
        let second = try await policy.select(from: history)
        #expect(second[1].text.hasSuffix("second summary"))
        let requests = driver.requests
        #expect(requests.count == 2)
        let prompt = requests[1].messages.last?.text ?? ""
        #expect(prompt.contains("first summary"), "the update starts from the previous summary")
        #expect(!prompt.contains("Question number 0"), "turns already summarized are not sent again")
        #expect(prompt.contains("assistant: Answer 2 with some detail."), "the turn that newly aged out is in the update")
    }

    @Test func anEmptySummaryIsAnErrorNotASilentLoss() async throws {
        let (model, driver) = summarizer()
        driver.enqueue(.text("  "))
        await #expect(throws: NimbusError.self) {
            try await SummaryBuffer(model: model, recentTokens: 10).select(from: longHistory(rounds: 3))
        }
    }

    @Test func shortHistoriesAreSentWholeWithoutCallingTheModel() async throws {
        let (model, driver) = summarizer()
        let history = Array(longHistory(rounds: 1))
        #expect(try await SummaryBuffer(model: model, recentTokens: 10_000).select(from: history) == history)
        #expect(driver.requests.isEmpty)
    }
}
