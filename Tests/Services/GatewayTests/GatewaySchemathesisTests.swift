import Foundation
import NimbusCore
import NimbusGateway
import NimbusTesting
import Testing

/// Issue 15 §6: schemathesis fuzzes a live gateway from the OpenAPI document it serves — every
/// operation, valid and invalid bodies, bounded examples — and finds no 5xx, no undocumented status,
/// no wrong content type, and no answer (errors included) outside the documented schema.
@Suite(.requires(.schemathesis), .timeLimit(.minutes(6))) struct GatewaySchemathesisTests {
    @Test func schemathesisFindsNothing() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let document = try await rig.call(.GET, "/openapi.json")
        #expect(document.status == 200 && document.body["openapi"] == "3.1.0")
        #expect(document.body["paths"]?.objectValue?.count == 11, "every route is documented (12 operations on 11 paths)")
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("schemathesis-\(IDGenerator.shared.ulid())").path
        defer { try? FileManager.default.removeItem(atPath: report) }
        let result = try await ProcessRunner.run(try Peer.schemathesis.url(), [
            "run", rig.baseURL + "/openapi.json", "--header", "Authorization: Bearer sk-master-test",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples", "10", "--seed", "15", "--workers", "1", "--phases", "examples,coverage,fuzzing",
            "--request-timeout", "20", "--max-time", "100", "--report", "junit", "--report-dir", report,
        ], environment: ["NO_COLOR": "1"])
        let output = result.output
        #expect(result.status == 0, "schemathesis found problems:\n\(output.suffix(6000))")
        #expect(output.contains("12") && !output.contains("No operations"), "schemathesis tested the operations:\n\(output.suffix(2000))")
        #expect(try await rig.call(.GET, "/openapi.json").status == 200, "the gateway is still serving")
    }
}
