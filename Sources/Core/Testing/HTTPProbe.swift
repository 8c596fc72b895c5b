import AsyncHTTPClient
import NIOCore
import NimbusHTTP

/// One raw request with no credentials, no retries and no Nimbus client in between: what a browser
/// or `curl` does with a signed URL.
///
/// ```swift
/// let (status, body) = try await HTTPProbe.fetch("GET", signedURL)
/// ```
public enum HTTPProbe {
    /// Sends `method url` with `body` and `headers`; the status and up to 16 MiB of the answer.
    public static func fetch(_ method: String, _ url: String, _ body: ByteBuffer? = nil, _ headers: [(String, String)] = []) async throws -> (status: Int, body: ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await NimbusHTTPClient.defaultTransport.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), try await response.body.collect(upTo: 16 * 1024 * 1024))
    }
}
