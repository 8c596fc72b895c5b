import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NimbusAWS
import NimbusCore

/// `nimbus aws`: any operation of any committed AWS model, like the AWS CLI's low-level commands.
struct AWSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Call any operation of the committed AWS models, follow paginators and waiters, presign S3 URLs (credentials, region and endpoints as the AWS CLI finds them).",
        subcommands: [Call.self, Wait.self, Operations.self, Presign.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).") var region: String?
        @Option(name: .customLong("endpoint-url"), help: "Send every call here (moto, LocalStack).") var endpointURL: String?
        @Option(help: "The profile of the shared config files.") var profile: String?

        func client() -> AWSClient {
            AWSClient(configuration: .init(region: region, profile: profile, endpointURL: endpointURL))
        }
    }

    /// Runs `body`, printing errors the way the AWS CLI does: 252 for input Nimbus refused before
    /// sending (unknown service/operation/member, a missing required member), 254 for the service's.
    static func reporting(_ operation: String, _ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as NimbusError {
            if let aws = error.underlying as? AWSServiceError {
                FileHandle.standardError.write(Data("An error occurred (\(aws.code)) when calling the \(operation) operation: \(aws.message)\n".utf8))
                throw ExitCode(254)
            }
            FileHandle.standardError.write(Data("\(error.message)\n".utf8))
            throw ExitCode([.invalidArgument, .notFound, .failedPrecondition].contains(error.code) ? 252 : 254)
        }
    }

    static func parseInput(_ input: String?, file: String?) throws -> JSONValue {
        let text: String
        if let file { text = try String(contentsOfFile: file, encoding: .utf8) } else { text = input ?? "{}" }
        do { return try JSONValue.parse(Data(text.utf8)) } catch { throw ValidationError("the input is not JSON: \(error)") }
    }

    struct Call: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Call an operation: nimbus aws call s3 ListObjectsV2 --input '{\"Bucket\":\"b\"}'.",
            discussion: """
            The input is JSON named by the model's members; it is validated and bound to the URI, query, headers and body as the \
            model says. Timestamps are ISO 8601 or epoch seconds, blobs base64. A streaming body (S3 PutObject) comes from \
            --payload-file; a streaming answer (S3 GetObject) goes to --outfile (- for standard output), its metadata to standard output \
            (standard error with --outfile -). Models: \(AWSServiceModel.available.joined(separator: ", ")).
            """)
        @OptionGroup var connection: Connection
        @Argument(help: "The service's model name (s3, sqs, dynamodb, sesv2...).") var service: String
        @Argument(help: "The operation (ListObjectsV2, PutItem...).") var operation: String
        @Option(help: "The input as JSON.") var input: String?
        @Option(name: .customLong("input-file"), help: "Read the input JSON from a file.") var inputFile: String?
        @Option(name: .customLong("payload-file"), help: "The streaming payload's bytes (S3 PutObject's Body).") var payloadFile: String?
        @Option(help: "Where a streaming answer's bytes go (- for standard output).") var outfile: String?
        @Flag(name: .customLong("all-pages"), help: "Follow the operation's paginator and print every page.") var allPages = false

        func run() async throws {
            let parsed = try AWSCommand.parseInput(input, file: inputFile)
            let aws = connection.client()
            try await AWSCommand.reporting(operation) {
                let model = try AWSServiceModel.named(service)
                let operationModel = try model.operation(operation)
                if allPages {
                    var pages: [JSONValue] = []
                    for try await page in aws.pages(service, operationModel.name, input: parsed) { pages.append(page) }
                    try Output.printJSON(JSONValue.array(pages))
                    return
                }
                let payload = try payloadFile.map { ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: $0))) }
                let result = try await aws.call(model, operationModel, input: parsed, payload: payload)
                if let bytes = result.payload {
                    guard let outfile else {
                        throw NimbusError(.invalidArgument, "\(operationModel.name) answers a stream of \(bytes.readableBytes) bytes: pass --outfile PATH (or --outfile - for standard output)")
                    }
                    if outfile == "-" {
                        FileHandle.standardOutput.write(Data(bytes.readableBytesView))
                        FileHandle.standardError.write(Data((result.output.description + "\n").utf8))
                        return
                    }
                    try Data(bytes.readableBytesView).write(to: URL(fileURLWithPath: outfile))
                }
                try Output.printJSON(result.output)
            }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Wait with a model's waiter: nimbus aws wait s3 BucketExists --input '{\"Bucket\":\"b\"}'.")
        @OptionGroup var connection: Connection
        @Argument(help: "The service's model name.") var service: String
        @Argument(help: "The waiter (BucketExists, TableExists...).") var waiter: String
        @Option(help: "The input as JSON.") var input: String?

        func run() async throws {
            let parsed = try AWSCommand.parseInput(input, file: nil)
            let aws = connection.client()
            try await AWSCommand.reporting(waiter) {
                try Output.printJSON(try await aws.wait(service, until: waiter, input: parsed))
            }
        }
    }

    struct Operations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a model's operations, or show one's HTTP binding and input members: nimbus aws operations s3 [GetObject].")
        @Argument(help: "The service's model name.") var service: String
        @Argument(help: "An operation to describe.") var operation: String?

        func run() async throws {
            try await AWSCommand.reporting(operation ?? service) {
                let model = try AWSServiceModel.named(service)
                guard let operation else {
                    for name in model.operations.keys.sorted() {
                        let op = model.operations[name]!
                        print("\(name)\t\(op.method) \(op.requestURI)\(model.paginators[name] != nil ? "\tpaginated" : "")")
                    }
                    return
                }
                let op = try model.operation(operation)
                print("\(op.name): \(op.method) \(op.requestURI) (\(model.metadata.protocolName))")
                guard let input = op.input, let shape = model.shapes[input.shape] else { print("no input"); return }
                for (name, ref) in shape.members {
                    let target = model.shapes[ref.shape]
                    let location = ref.serialization.location.map { "\($0) \(ref.serialization.name ?? name)" } ?? "body"
                    let values = target?.enumValues.map { " one of " + $0.prefix(8).joined(separator: "|") + ($0.count > 8 ? "|…" : "") } ?? ""
                    print("  \(name)\(shape.required.contains(name) ? " (required)" : "")\t\(target?.kind.rawValue ?? "?")\t\(location)\(values)")
                }
            }
        }
    }

    struct Presign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Presign an S3 URL: nimbus aws presign GET s3://bucket/key --expires 3600.")
        @OptionGroup var connection: Connection
        @Argument(help: "GET or PUT.") var method: String
        @Argument(help: "s3://bucket/key") var url: String
        @Option(help: "Seconds the URL stays valid (at most 604800).") var expires: Int = 3600

        func run() async throws {
            guard url.hasPrefix("s3://") else { throw ValidationError("'\(url)' is not an s3://bucket/key URL") }
            let rest = url.dropFirst(5)
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { throw ValidationError("'\(url)' has no key") }
            let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
            let signed = try await connection.client().presign(.s3, method: HTTPMethod(rawValue: method.uppercased()),
                                                               path: AWSClient.s3Path(bucket: bucket, key: key), expires: .seconds(expires))
            print(signed)
        }
    }
}
