import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NimbusCore

/// Runs every request through a ``WAF`` before the routes see it: the headers, the query and a
/// body of up to `maximumBodySize` bytes (which is collected, inspected and handed on unchanged).
/// A denied request gets `403` (or the rule's status) and never reaches the handler; in
/// ``WAF/Mode/detect`` it goes on and the matches are logged.
///
/// ```swift
/// let waf = WAF(rules: try .coreRuleSet(), configuration: .init(paranoiaLevel: 1))
/// router.add(middleware: WAFMiddleware(waf: waf))
/// ```
///
/// A body larger than the limit is refused with 413 rather than passed on uninspected.
public struct WAFMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The firewall.
    public let waf: WAF
    /// The largest body inspected (and accepted).
    public let maximumBodySize: Int
    private let logger: Logger

    /// Creates the middleware.
    public init(waf: WAF, maximumBodySize: Int = 1024 * 1024, logger: Logger = Logger(label: "nimbus.waf")) {
        self.waf = waf
        self.maximumBodySize = maximumBodySize
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maximumBodySize) } catch {
            return Response(status: .contentTooLarge, body: .init(byteBuffer: ByteBuffer(string: "request body over \(maximumBodySize) bytes\n")))
        }
        // HTTP/1's Host travels as the :authority pseudo-header in HTTPTypes.
        let host: [(name: String, value: String)] = request.head.authority.map { [("Host", $0)] } ?? []
        let inspected = WAFRequest(method: request.method.rawValue, uri: request.uri.description, version: "HTTP/1.1",
                                   headers: host + request.headers.map { ($0.name.rawName, $0.value) }, body: Array(body.readableBytesView),
                                   remoteAddress: "")
        let result = await waf.evaluateOffPool(inspected)
        if !result.matches.isEmpty {
            logger.warning("WAF matched", metadata: ["rules": "\(result.matches.map(\.id))", "score": "\(result.anomalyScore)",
                                                     "denied": "\(result.denied)", "path": "\(request.uri.path)"])
        }
        if result.denied, waf.configuration.mode == .block {
            return Response(status: HTTPResponse.Status(code: result.status), body: .init(byteBuffer: ByteBuffer(string: "request refused by the web application firewall\n")))
        }
        return try await next(request, context)
    }
}
