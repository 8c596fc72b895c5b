import Foundation
import NIOCore
import NimbusAWS
import NimbusCore
import NimbusTesting
import Testing

/// Every operation of every committed model: the request Nimbus serializes for an example input
/// equals the one botocore (pinned to the models' release, reading the same model files)
/// serializes for it — method, path, query, headers, body and host prefix.
@Suite("AWS request serialization equals botocore's", .requires(.botocore))
struct AWSSerializerOracleTests {
    static let root = Peer.packageRoot() ?? FileManager.default.currentDirectoryPath

    @Test(arguments: AWSServiceModel.available)
    func everyOperationSerializesLikeBotocore(service: String) async throws {
        let model = try AWSServiceModel.named(service)
        let run = try await ProcessRunner.run(try Peer.botocore.url(), ["\(Self.root)/scripts/aws/botocore-oracle",
                                                                       "\(Self.root)/Sources/Core/AWS/Resources/Models", service])
        try #require(run.status == 0, "the oracle failed: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map { try? JSONValue.parse(Data($0.utf8)) }
        var compared = 0, refused = 0
        var mismatches: [String] = []
        for case let line? in lines {
            let name = line["operation"]?.stringValue ?? "?"
            let operation = try model.operation(name)
            let input = line["input"] ?? [:]
            if let refusal = line["refused"]?.stringValue {
                refused += 1
                let error = #expect(throws: NimbusError.self, "botocore refused \(name) (\(refusal)); Nimbus must too") {
                    try AWSInputValidator.validate(input, for: operation, in: model)
                    _ = try AWSRequestSerializer.serialize(input, for: operation, in: model)
                }
                #expect(error?.code == .invalidArgument)
                continue
            }
            guard let expected = line["request"] else { Issue.record("no request for \(name): \(line)"); continue }
            do {
                try AWSInputValidator.validate(input, for: operation, in: model)
                let request = try AWSRequestSerializer.serialize(input, for: operation, in: model)
                let differences = Self.differences(request, expected: expected, form: line["form"], protocolName: model.metadata.protocolName)
                if !differences.isEmpty { mismatches.append("\(name): " + differences.joined(separator: "; ")) }
            } catch {
                mismatches.append("\(name): Nimbus refused what botocore serialized: \(error)")
            }
            compared += 1
        }
        #expect(compared + refused == model.operations.count, "the oracle answered for \(compared + refused) of \(model.operations.count) operations")
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(compared) operations differ:\n\(mismatches.prefix(15).joined(separator: "\n"))")
    }

    /// The comparison itself can fail: each part of a request that differs from botocore's is reported.
    @Test func theComparisonSeesEveryDifference() throws {
        let model = try AWSServiceModel.named("s3")
        let operation = try model.operation("PutObject")
        let request = try AWSRequestSerializer.serialize(["Bucket": "b", "Key": "a b/c", "ContentType": "text/plain", "Tagging": "x=1"], for: operation, in: model,
                                                         payload: ByteBuffer(string: "hi"))
        let expected: JSONValue = ["method": "PUT", "path": "/b/a%20b/c", "query": [], "headers": ["Content-Type": "text/plain", "x-amz-tagging": "x=1"],
                                   "body": .string(Data("hi".utf8).base64EncodedString()), "hostPrefix": .null]
        #expect(Self.differences(request, expected: expected, form: nil, protocolName: "rest-xml").isEmpty)
        func mutated(_ change: (inout [String: JSONValue]) -> Void) -> [String] {
            var copy = expected.objectValue!
            change(&copy)
            return Self.differences(request, expected: .object(copy), form: nil, protocolName: "rest-xml")
        }
        #expect(mutated { $0["method"] = "POST" }.first?.hasPrefix("method") == true)
        #expect(mutated { $0["path"] = "/b/a%20b%2Fc" }.first?.hasPrefix("path") == true)
        #expect(mutated { $0["query"] = [["x-id", "PutObject"]] }.first?.hasPrefix("query") == true)
        #expect(mutated { $0["headers"] = ["Content-Type": "text/plain"] }.first?.hasPrefix("headers x-amz-tagging") == true)
        #expect(mutated { $0["body"] = .string(Data("ho".utf8).base64EncodedString()) }.first?.hasPrefix("body") == true)
        #expect(mutated { $0["hostPrefix"] = "b." }.first?.hasPrefix("host prefix") == true)
        let sts = try AWSServiceModel.named("sts")
        let query = try AWSRequestSerializer.serialize(["RoleArn": "arn:aws:iam::1:role/r", "RoleSessionName": "s"], for: try sts.operation("AssumeRole"), in: sts)
        let form: JSONValue = [["Action", "AssumeRole"], ["Version", "2011-06-15"], ["RoleArn", "arn:aws:iam::1:role/r"], ["RoleSessionName", "other"]]
        let base: JSONValue = ["method": "POST", "path": "/", "query": [], "headers": ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"], "hostPrefix": .null]
        #expect(Self.differences(query, expected: base, form: form, protocolName: "query").first?.hasPrefix("form") == true)
    }

    static func differences(_ request: AWSSerializedRequest, expected: JSONValue, form: JSONValue?, protocolName: String) -> [String] {
        var out: [String] = []
        if request.method != expected["method"]?.stringValue { out.append("method \(request.method) ≠ \(expected["method"] ?? .null)") }
        if request.path != expected["path"]?.stringValue { out.append("path \(request.path) ≠ \(expected["path"] ?? .null)") }
        func pairs(_ value: JSONValue?) -> [String] {
            (value?.arrayValue ?? []).map { "\($0.arrayValue?[0].stringValue ?? "")=\($0.arrayValue?[1].stringValue ?? "")" }.sorted()
        }
        let query = request.query.map(\.description).sorted()
        if query != pairs(expected["query"]) { out.append("query \(query) ≠ \(pairs(expected["query"]))") }
        var headers: [String: String] = [:]
        // botocore's serializer leaves to its Glacier handlers what Nimbus' serializer adds (tested in GlacierArchiveTests).
        let handlerHeaders: Set<String> = ["x-amz-glacier-version", "x-amz-content-sha256", "x-amz-sha256-tree-hash"]
        for header in request.headers where !(header.name.lowercased() == "x-amz-glacier-version" || (request.payload != nil && handlerHeaders.contains(header.name.lowercased()))) {
            headers[header.name.lowercased()] = header.value
        }
        var wanted: [String: String] = [:]
        for (name, value) in expected["headers"]?.objectValue ?? [:] { wanted[name.lowercased()] = value.stringValue }
        if headers != wanted {
            let keys = Set(headers.keys).union(wanted.keys).filter { headers[$0] != wanted[$0] }.sorted()
            out.append("headers " + keys.map { "\($0): \(headers[$0] ?? "—") ≠ \(wanted[$0] ?? "—")" }.joined(separator: ", "))
        }
        if protocolName == "query" || protocolName == "ec2" {
            let ours = request.formParameters.map(\.description).sorted()
            if ours != pairs(form) {
                let missing = Set(pairs(form)).subtracting(ours).sorted(), extra = Set(ours).subtracting(pairs(form)).sorted()
                out.append("form: missing \(missing.prefix(6)), extra \(extra.prefix(6))")
            }
        } else {
            let body = Array(Data(base64Encoded: expected["body"]?.stringValue ?? "") ?? Data())
            // A streaming payload travels apart from the serialized body; botocore's body is either.
            let sent = request.payload.map { Array($0.readableBytesView) } ?? request.body
            if let ours = try? JSONValue.parse(sent), let theirs = try? JSONValue.parse(body), !sent.isEmpty {
                if ours != theirs { out.append("body \(ours) ≠ \(theirs)") }
            } else if sent != body {
                out.append("body \(String(decoding: sent, as: UTF8.self)) ≠ \(String(decoding: body, as: UTF8.self))")
            }
        }
        let prefix = expected["hostPrefix"]?.stringValue
        if request.hostPrefix != prefix { out.append("host prefix \(request.hostPrefix ?? "—") ≠ \(prefix ?? "—")") }
        return out
    }
}
