import NimbusMessaging
import Testing

@Suite("Unsettled deliveries")
struct UnsettledDeliveriesTests {
    @Test("keeps what is unsettled, forgets what is settled")
    func remembersAndForgets() {
        let memory = UnsettledDeliveries<Int>(limit: 10)
        memory.remember(1, for: "a")
        memory.remember(2, for: "b")
        #expect(memory["a"] == 1)
        memory.forget("a")
        #expect(memory["a"] == nil)
        #expect(memory["b"] == 2)
        memory.forget(["b", "unknown"])
        #expect(memory.count == 0)
    }

    @Test("past the limit the oldest delivery is forgotten, never a newer one")
    func evictsOldest() {
        let memory = UnsettledDeliveries<Int>(limit: 3)
        for (index, receipt) in ["a", "b", "c", "d"].enumerated() { memory.remember(index, for: receipt) }
        #expect(memory.count == 3)
        #expect(memory["a"] == nil)
        #expect(memory["b"] == 1 && memory["c"] == 2 && memory["d"] == 3)
        // A receipt remembered again counts from its new position: "b" is now the newest.
        memory.remember(10, for: "b")
        memory.remember(4, for: "e")
        #expect(memory["c"] == nil)
        #expect(memory["b"] == 10 && memory["d"] == 3 && memory["e"] == 4)
    }

    @Test("a long run of settled deliveries keeps the memory bounded and correct")
    func longRun() {
        let memory = UnsettledDeliveries<Int>(limit: 100)
        var index = 0
        while index < 50_000 {
            memory.remember(index, for: "r\(index)")
            if index % 7 != 0 { memory.forget("r\(index)") }   // most are settled at once
            index += 1
        }
        // Each delivery is remembered before it is settled, so the last one settled took the place of
        // the oldest survivor: what is left is the newest 99 unsettled ones (multiples of 7).
        #expect(memory.count == 99)
        let newest = Array(stride(from: 49_994, through: 0, by: -7).prefix(99))
        for kept in newest { #expect(memory["r\(kept)"] == kept) }
        #expect(memory["r\(newest.last! - 7)"] == nil)
    }
}
