import NimbusCore
import NimbusDistributedLockMemory
import NimbusTesting
import Synchronization
import Testing
@testable import NimbusDistributedLock

@Suite struct DistributedLockTests {
    @Test func namesAndTTLsAreValidated() async throws {
        let locks = DistributedLocks(driver: MemoryDistributedLockDriver(), configuration: .init(maximumNameLength: 32))
        for name in ["", "a\nb", String(repeating: "x", count: 40)] {
            let error = await #expect(throws: NimbusError.self) { try await locks.tryLock(name, ttl: .seconds(1)) }
            #expect(error?.code == .invalidArgument)
        }
        await #expect(throws: NimbusError.self) { try await locks.tryLock("ok", ttl: .milliseconds(1)) }
        try await locks.close()
        let closed = await #expect(throws: NimbusError.self) { try await locks.tryLock("ok", ttl: .seconds(1)) }
        #expect(closed?.code == .failedPrecondition)
    }

    @Test func aLostLeaseCancelsTheWorkOfWithLock() async throws {
        let clock = ManualClock()
        let driver = MemoryDistributedLockDriver(clock: NimbusClock(clock))
        let locks = DistributedLocks(driver: driver, configuration: .init(clock: NimbusClock(clock)))
        let cancelled = Mutex(false)
        let work = Task {
            try await locks.withLock("job", ttl: .seconds(3)) { _ in
                do { try await clock.sleep(for: .seconds(3600)) } catch { cancelled.withLock { $0 = true }; throw error }
            }
        }
        await clock.waitForSleepers(2)                 // the work and the keep-alive
        // The process stalls past its lease: when the keep-alive next runs, the lease has expired.
        clock.advance(by: .seconds(4))
        let error = await #expect(throws: NimbusError.self) { try await work.value }
        #expect(error?.code == .failedPrecondition)
        #expect(cancelled.withLock { $0 })
        let next = try #require(try await locks.tryLock("job", ttl: .seconds(3), owner: "next", keepAlive: false))
        #expect(next.token == 2)
    }

    @Test func keepAliveRenewsOnItsClockAndStopsAfterRelease() async throws {
        let clock = ManualClock()
        let locks = DistributedLocks(driver: MemoryDistributedLockDriver(clock: NimbusClock(clock)), configuration: .init(clock: NimbusClock(clock)))
        let handle = try #require(try await locks.tryLock("job", ttl: .seconds(3), owner: "me"))
        for _ in 0..<10 {                                     // 10 s of 1 s steps: the keep-alive renews after each
            await clock.waitForSleepers(1)                     // parked again only after its renewal
            clock.advance(by: .seconds(1))
        }
        await clock.waitForSleepers(1)
        #expect(handle.isHeld)
        #expect(try await locks.holder(of: "job")?.expiresIn == .seconds(3))
        try await handle.release()
        #expect(clock.sleeperCount == 0)
        #expect(try await locks.holder(of: "job") == nil)
    }
}
