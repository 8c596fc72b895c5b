import ArgumentParser
import Foundation
import NIOHTTP1
import NimbusAWS
import NimbusCore

/// `nimbus aws`: low-level AWS calls, like the AWS CLI's.
struct AWSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Call any AWS operation and presign S3 URLs (credentials, region and endpoints as the AWS CLI finds them).",
        subcommands: [Call.self, Presign.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).") var region: String?
        @Option(name: .customLong("endpoint-url"), help: "Send every call here (moto, LocalStack).") var endpointURL: String?
        @Option(help: "The profile of the shared config files.") var profile: String?

        func client() -> AWSClient {
            AWSClient(configuration: .init(region: region, profile: profile, endpointURL: endpointURL))
        }
    }

    struct Call: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Call an operation: nimbus aws call sts GetCallerIdentity; nimbus aws call dynamodb GetItem --input '{...}'.",
            discussion: "Services: \(AWSService.known.keys.sorted().joined(separator: ", ")). REST services (s3, lambda, sesv2) take --method and --path instead of an operation's input.")
        @OptionGroup var connection: Connection
        @Argument(help: "The service (sts, sqs, dynamodb...).") var service: String
        @Argument(help: "The operation (GetCallerIdentity, PutItem...).") var operation: String
        @Option(help: "The input as JSON.") var input: String = "{}"
        @Option(help: "REST services: the HTTP method.") var method: String = "GET"
        @Option(help: "REST services: the encoded path (/bucket/key, /2015-03-31/functions/).") var path: String = "/"

        func run() async throws {
            guard let target = AWSService.known[service.lowercased()] else {
                throw ValidationError("unknown service '\(service)'; known: \(AWSService.known.keys.sorted().joined(separator: ", "))")
            }
            let aws = connection.client()
            do {
                switch target.wireProtocol {
                case .restJSON, .restXML:
                    let response = try await aws.rest(target, method: HTTPMethod(rawValue: method.uppercased()), path: path, operation: operation)
                    print(String(decoding: response.body, as: UTF8.self))
                default:
                    let parsed: JSONValue
                    do { parsed = try JSONValue.parse(Data(input.utf8)) } catch { throw ValidationError("--input is not JSON: \(error)") }
                    let result = try await aws.send(target, operation: operation, input: parsed)
                    try Output.printJSON(result)
                }
            } catch let error as NimbusError {
                let code = (error.underlying as? AWSServiceError)?.code ?? "\(error.code)"
                FileHandle.standardError.write(Data("An error occurred (\(code)) when calling the \(operation) operation: \(error.message)\n".utf8))
                throw ExitCode(254)
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
