import Foundation
import NimbusCore
@testable import NimbusMFA
import NimbusMFAConformance
import NimbusTesting
import Testing

@Suite("Email and SMS one-time codes (memory)")
struct OneTimeCodesTests {
    @Test("conformance", arguments: MFAConformance.checks)
    func conformance(_ check: MFAConformance.Check) async throws {
        try await check.run(MFAConformance.Harness(makeGuard: { MemoryOTPReplayGuard() }, makeStore: { MemoryOneTimeCodeStore() }))
    }

    @Test("codes are uniform over all 10^6 values: no digit is favoured (χ² over 60 000 codes)")
    func uniformity() throws {
        let codes = try OneTimeCodes { _, _, _, _ in }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 6)
        let samples = 60_000
        for _ in 0..<samples {
            let code = codes.freshCode()
            #expect(code.count == 6)
            for (position, digit) in code.enumerated() { counts[position][Int(String(digit))!] += 1 }
        }
        let expected = Double(samples) / 10
        for position in counts {
            let chiSquared = position.reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
            #expect(chiSquared < 27.88, "χ²(9) = \(chiSquared) is beyond p = 0.001")   // 9 degrees of freedom
        }
    }

    @Test("the store holds keyed digests only; another secret cannot redeem; short secrets and odd digit counts are refused")
    func digests() async throws {
        let store = MemoryOneTimeCodeStore()
        let delivered = LockedBox<String?>(nil)
        let codes = try OneTimeCodes(store: store, secret: Secret([UInt8](repeating: 1, count: 32))) { _, code, _, _ in delivered.set(code.reveal()) }
        try await codes.send(to: .email("a@example.com"), account: "a", purpose: "p")
        let code = try #require(delivered.get())
        #expect(codes.digest(code, key: OneTimeCodes.key("a", "p")).count == 32)
        let other = try OneTimeCodes(store: store, secret: Secret([UInt8](repeating: 2, count: 32))) { _, _, _, _ in }
        await #expect(throws: NimbusError.self) { try await other.verify(code, account: "a", purpose: "p") }
        #expect(throws: NimbusError.self) { _ = try OneTimeCodes(secret: Secret([UInt8](repeating: 1, count: 16))) { _, _, _, _ in } }
        #expect(throws: NimbusError.self) { _ = try OneTimeCodes(configuration: .init(digits: 4)) { _, _, _, _ in } }
        #expect(OneTimeCodes.key("a:b", "c") != OneTimeCodes.key("b", "c:a"))
    }

    @Test("destinations are masked in messages")
    func masking() {
        #expect(OneTimeCodeDestination.email("ada@example.com").description == "a***@example.com")
        #expect(OneTimeCodeDestination.sms("+4915112345678").description == "+49********678")
    }
}

final class LockedBox<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func set(_ new: Value) { value.withLock { $0 = new } }
    func get() -> Value { value.withLock { $0 } }
}

import Synchronization
