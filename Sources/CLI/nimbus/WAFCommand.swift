import ArgumentParser
import Foundation
import NimbusCore
import NimbusWAF

/// `nimbus waf`: inspect requests with the web application firewall.
struct WAFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "waf",
        abstract: "Check HTTP requests against the OWASP Core Rule Set (the engine NimbusWAF's middleware runs).",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a raw HTTP request (a file, or - for standard input); exit 1 when it would be denied.")
        @Argument(help: "A file holding the raw request: request line, headers, blank line, body.") var requestFile: String
        @Option(help: "Paranoia level 1–4.") var paranoia = 1
        @Option(help: "The inbound anomaly score that denies.") var threshold = 5
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let bytes = requestFile == "-" ? Array(FileHandle.standardInput.readAllBytes()) : Array(try Data(contentsOf: URL(fileURLWithPath: requestFile)))
            guard (1...4).contains(paranoia) else { throw ValidationError("--paranoia must be 1 to 4") }
            let request: WAFRequest
            do { request = try WAFRequest(raw: bytes) } catch let error as NimbusError { throw ValidationError(error.message) }
            let waf = WAF(rules: try .coreRuleSet(), configuration: .init(mode: .detect, paranoiaLevel: paranoia, inboundAnomalyThreshold: threshold))
            let result = waf.evaluate(request)
            if json {
                let object: [String: Any] = ["denied": result.denied, "anomaly_score": result.anomalyScore,
                                             "matches": result.matches.map { ["id": $0.id, "message": $0.message] }]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                for match in result.matches { print("\(match.id)\t\(match.message)") }
                print("anomaly score \(result.anomalyScore) (threshold \(threshold)): \(result.denied ? "DENIED" : "allowed")")
            }
            if result.denied { throw ExitCode(1) }
        }
    }
}
