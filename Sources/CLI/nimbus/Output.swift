import Foundation
import NimbusCore
import ArgumentParser

/// How every `nimbus` command prints: one JSON style (pretty, sorted keys, slashes as they are,
/// ISO 8601 dates), so scripts read every command's `--json` the same way.
enum Output {
    /// Runs `body`; a `NimbusError` (a refusal: wrong context, bad signature, unknown secret) becomes
    /// one `refused: …` line on standard error and exit status 1.
    static func refusing(_ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as NimbusError {
            FileHandle.standardError.write(Data("refused: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Prints `value` as pretty JSON on standard output.
    static func printJSON(_ value: some Encodable) throws {
        print(try json(value))
    }

    /// `value` as the CLI's JSON text.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension Duration {
    /// A duration given on the command line (`500ms`, `30s`, `5m`, `1h`).
    /// - Throws: a `ValidationError` naming the flag.
    static func commandLine(_ text: String, flag: String) throws -> Duration {
        guard let duration = Duration.nimbusParse(text) else { throw ValidationError("--\(flag) '\(text)' is not a duration such as 30s") }
        return duration
    }
}
