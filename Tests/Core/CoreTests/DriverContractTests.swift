import NimbusCore
import Synchronization
import Testing

/// A driver that counts its closes, under a portable type written the way every domain writes one.
private final class CountingDriver: NimbusDriver {
    let closes = Atomic<Int>(0)
    var provider: String { "counting" }
    func close() async throws { closes.add(1, ordering: .relaxed) }
}

private struct SilentDriver: NimbusDriver {
    var provider: String { "silent" }
}

private struct Widgets: PortableClient {
    private let driver: any NimbusDriver
    init(driver: any NimbusDriver) { self.driver = driver }
    var provider: String { driver.provider }
    func driver<T>(as type: T.Type) -> T? { driver as? T }
    func close() async throws { try await driver.close() }
}

@Suite("The driver contract")
struct DriverContractTests {
    @Test("closing closes after the body, and when the body throws")
    func closingClosesOnEveryExit() async throws {
        let driver = CountingDriver()
        let widgets = Widgets(driver: driver)
        #expect(try await widgets.closing { $0.provider } == "counting")
        #expect(driver.closes.load(ordering: .relaxed) == 1)
        await #expect(throws: NimbusError.self) {
            try await widgets.closing { _ in throw NimbusError(.unavailable, "down") }
        }
        #expect(driver.closes.load(ordering: .relaxed) == 2)
    }

    @Test("driver(as:) hands out the adapter only as what it is; close has a do-nothing default")
    func escapeHatchAndDefaultClose() async throws {
        let widgets = Widgets(driver: SilentDriver())
        #expect(widgets.driver(as: SilentDriver.self)?.provider == "silent")
        #expect(widgets.driver(as: CountingDriver.self) == nil)
        try await widgets.close()
    }
}
