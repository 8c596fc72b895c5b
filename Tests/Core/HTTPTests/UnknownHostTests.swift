import NimbusCore
import NimbusHTTP
import Synchronization
import Testing

@Suite("Unknown hosts", .timeLimit(.minutes(1)))
struct UnknownHostTests {
    /// `.invalid` never resolves (RFC 2606): one attempt, a clear error, no retries.
    @Test func aNameThatDoesNotResolveIsOneAttemptAndSaysSo() async throws {
        let consulted = Atomic<Int>(0)
        let retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)) { error in
            consulted.add(1, ordering: .relaxed)
            return RetryPolicy.defaultIsRetryable(error)
        }
        let client = NimbusHTTPClient(configuration: .init(service: "probe", baseURL: "http://nimbus-unknown-host.invalid", retry: retry, timeout: .seconds(30)))
        let error = await #expect(throws: NimbusError.self) { _ = try await client.send(NimbusHTTPRequest(.GET, "/", operation: "probe.get")) }
        #expect(error?.isRetryable == false)
        #expect(error?.message.contains("cannot resolve the host nimbus-unknown-host.invalid") == true, "\(String(describing: error))")
        #expect(consulted.load(ordering: .relaxed) == 1, "asked once whether to retry, and the answer was no")
    }
}
