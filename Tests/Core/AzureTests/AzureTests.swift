import Foundation
import NIOHTTP1
import NimbusAzure
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// Microsoft's documentation example key shape (base64); the tests' account.
let testAccount = AzureStorageAccount(name: "nimbusaccount", key: Secret(Data((0..<64).map { UInt8($0 * 7 % 256) }).base64EncodedString()))

@Suite("Azure Storage signatures")
struct AzureSignatureTests {
    static let date = Date(timeIntervalSince1970: 1_714_564_800)          // 2024-05-01T12:00:00Z

    @Test func sharedKeyStringToSignFollowsTheDocumentedLayout() throws {
        let headers = [("x-ms-date", AzureSharedKey.date(Self.date)), ("x-ms-version", "2023-11-03"), ("x-ms-blob-type", "BlockBlob"),
                       ("Content-Length", "11"), ("Content-Type", "text/plain; charset=utf-8"), ("x-ms-meta-Owner", "  ada  lovelace\n   the first ")]
        let toSign = AzureSharedKey.stringToSign(account: "nimbusaccount", method: "PUT", path: "/docs/a%20b.txt", query: [("timeout", "30"), ("comp", "block"), ("blockid", "AAA=")],
                                                 headers: headers)
        let expected = ["PUT", "", "", "11", "", "text/plain; charset=utf-8", "", "", "", "", "", "",
                        "x-ms-blob-type:BlockBlob", "x-ms-date:Wed, 01 May 2024 12:00:00 GMT", "x-ms-meta-owner:ada  lovelace the first", "x-ms-version:2023-11-03",
                        "/nimbusaccount/docs/a%20b.txt", "blockid:AAA=", "comp:block", "timeout:30"].joined(separator: "\n")
        #expect(toSign == expected)
        let zero = AzureSharedKey.stringToSign(account: "a", method: "GET", path: "/", query: [], headers: [("Content-Length", "0"), ("x-ms-date", "d")])
        #expect(zero.hasPrefix("GET\n\n\n\n"), "a zero Content-Length is signed as empty")
        #expect(AzureSharedKey.tableStringToSign(account: "a", method: "GET", path: "/Tables", query: [("comp", "list"), ("x", "y")],
                                                 headers: [("x-ms-date", "d"), ("Content-Type", "application/json")]) == "GET\n\napplication/json\nd\n/a/Tables?comp=list")
        #expect(throws: NimbusError.self) { try AzureStorageAccount(name: "a", key: Secret("not base64!")).sign("x") }
        #expect(!"\(testAccount)".contains(testAccount.key.reveal()))
    }

    /// Microsoft's own SDK signs the same request, with the same key and time, and the signatures must be equal.
    @Test(.requires(.azureSDK)) func signaturesEqualMicrosoftsPythonSDK() async throws {
        let python = try Peer.azureSDK.url()
        let start = Self.date, expiry = Self.date.addingTimeInterval(3600)
        let headers = [("x-ms-date", AzureSharedKey.date(Self.date)), ("x-ms-version", "2022-11-02"), ("x-ms-blob-type", "BlockBlob"),
                       ("Content-Type", "text/plain"), ("Content-Length", "11"), ("x-ms-meta-note", "hello  world")]
        let ours = try AzureSharedKey.authorization(account: testAccount, method: "PUT", path: "/docs/report%202024.txt",
                                                    query: [("timeout", "30")], headers: headers)
        let blobSAS = try AzureSAS.blob(account: testAccount, container: "docs", blob: "report 2024.txt", permissions: "rw", expiry: expiry, start: start,
                                        ip: "10.0.0.1", protocolRestriction: "https", contentType: "text/plain")
        let containerSAS = try AzureSAS.blob(account: testAccount, container: "docs", blob: nil, permissions: "rl", expiry: expiry, start: nil,
                                             protocolRestriction: nil)
        let accountSAS = try AzureSAS.account(testAccount, services: "bq", resourceTypes: "sco", permissions: "rwdl", expiry: expiry, start: start,
                                              protocolRestriction: nil)
        let script = """
            import sys, datetime
            from azure.core.pipeline import PipelineRequest, PipelineContext
            from azure.core.pipeline.transport import HttpRequest
            from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy
            from azure.storage.blob._shared_access_signature import BlobSharedAccessSignature
            from azure.storage.blob._shared.shared_access_signature import SharedAccessSignature
            account, key, date = sys.argv[1], sys.argv[2], sys.argv[3]
            request = HttpRequest("PUT", f"https://{account}.blob.core.windows.net/docs/report%202024.txt?timeout=30",
                                  headers={"x-ms-date": date, "x-ms-version": "2022-11-02", "x-ms-blob-type": "BlockBlob",
                                           "Content-Type": "text/plain", "Content-Length": "11", "x-ms-meta-note": "hello  world"})
            SharedKeyCredentialPolicy(account, key).on_request(PipelineRequest(request, PipelineContext(None)))
            print(request.headers["Authorization"])
            start = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
            expiry = start + datetime.timedelta(hours=1)
            sas = BlobSharedAccessSignature(account, key)
            sas.x_ms_version = "2022-11-02"
            print(sas.generate_blob("docs", "report 2024.txt", permission="rw", expiry=expiry, start=start, ip="10.0.0.1", protocol="https", content_type="text/plain"))
            print(sas.generate_container("docs", permission="rl", expiry=expiry))
            account_sas = SharedAccessSignature(account, key, x_ms_version="2022-11-02")
            print(account_sas.generate_account("bq", "sco", "rwdl", expiry, start=start))
            """
        let result = try await ProcessRunner.run(python, ["-c", script, testAccount.name, testAccount.key.reveal(), AzureSharedKey.date(Self.date)])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 4, "\(result.output)")
        func signature(_ query: String) -> String? {
            query.split(separator: "&").first { $0.hasPrefix("sig=") }.map { String($0.dropFirst(4)).removingPercentEncoding ?? "" }
        }
        #expect(lines[0] == ours, "Shared Key")
        #expect(signature(lines[1]) == blobSAS.first { $0.0 == "sig" }?.1, "blob SAS: \(lines[1])")
        #expect(signature(lines[2]) == containerSAS.first { $0.0 == "sig" }?.1, "container SAS: \(lines[2])")
        #expect(signature(lines[3]) == accountSAS.first { $0.0 == "sig" }?.1, "account SAS: \(lines[3])")
    }
}

@Suite("Azure tokens and ARM", .timeLimit(.minutes(2)))
struct AzureTokenAndARMTests {
    @Test func clientSecretWorkloadAndManagedIdentityTokens() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/tenant-1/oauth2/v2.0/token") { request in
            let form = Dictionary(FormDecoder.pairs(request.bodyText), uniquingKeysWith: { $1 })
            #expect(form["scope"] == "https://storage.azure.com/.default" && form["grant_type"] == "client_credentials")
            if form["client_secret"] == "s3cret" { return .json(200, #"{"token_type":"Bearer","expires_in":3599,"access_token":"entra-token"}"#) }
            if form["client_assertion"] == "federated-jwt", form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
                return .json(200, #"{"token_type":"Bearer","expires_in":3599,"access_token":"workload-token"}"#)
            }
            return .json(401, #"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#)
        }
        let environment = ["AZURE_AUTHORITY_HOST": server.baseURL]
        #expect(try await ClientSecretCredential(tenant: "tenant-1", clientID: "app", secret: Secret("s3cret"), environment: environment)
            .fetchToken(scope: "https://storage.azure.com/.default").value.reveal() == "entra-token")
        do {
            _ = try await ClientSecretCredential(tenant: "tenant-1", clientID: "app", secret: Secret("wrong-secret"), environment: environment)
                .fetchToken(scope: "https://storage.azure.com/.default")
            Issue.record("a wrong secret is unauthenticated")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated && error.message.contains("invalid_client") && !error.description.contains("wrong-secret"))
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fed-\(UUID().uuidString)")
        try "federated-jwt\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let workload = try WorkloadIdentityCredential(environment: environment.merging(["AZURE_TENANT_ID": "tenant-1", "AZURE_CLIENT_ID": "app",
                                                                                        "AZURE_FEDERATED_TOKEN_FILE": file.path]) { $1 })
        #expect(try await workload.fetchToken(scope: "https://storage.azure.com/.default").value.reveal() == "workload-token")
        #expect(throws: NimbusError.self) { try WorkloadIdentityCredential(environment: [:]) }

        server.route(.GET, "/metadata/identity/oauth2/token") { request in
            guard request.header("metadata") == "true", request.queryItem("resource") == "https://storage.azure.com", request.queryItem("api-version") == "2018-02-01" else {
                return .json(400, #"{"error":"invalid_request"}"#)
            }
            return .json(200, #"{"access_token":"imds-token","expires_in":"86399","resource":"https://storage.azure.com","token_type":"Bearer"}"#)
        }
        server.route(.GET, "/msi/token") { request in
            request.header("x-identity-header") == "secret-header" && request.queryItem("api-version") == "2019-08-01"
                ? .json(200, #"{"access_token":"appservice-token","expires_on":"1714568400","resource":"https://storage.azure.com","token_type":"Bearer"}"#)
                : .json(401, #"{"error":"no"}"#)
        }
        let imds = try await ManagedIdentityCredential(environment: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": server.baseURL]).fetchToken(scope: "https://storage.azure.com/.default")
        #expect(imds.value.reveal() == "imds-token" && imds.expiresIn == .seconds(86_399), "expires_in arrives as a string")
        let appService = try await ManagedIdentityCredential(environment: ["IDENTITY_ENDPOINT": server.baseURL + "/msi/token", "IDENTITY_HEADER": "secret-header"])
            .fetchToken(scope: "https://storage.azure.com/.default")
        #expect(appService.value.reveal() == "appservice-token")
    }

    struct StaticToken: AzureTokenSource {
        func fetchToken(scope: String) async throws -> AccessTokenCache.Token { .init(value: Secret("arm-token"), expiresIn: .seconds(3600)) }
    }

    @Test func armFollowsLongRunningOperationsAndMapsErrors() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let base = server.baseURL
        server.route(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/async") { request in
            #expect(request.queryItem("api-version") == "2023-01-01" && request.header("authorization") == "Bearer arm-token")
            return .json(201, #"{"properties":{"provisioningState":"Accepted"}}"#, headers: [("Azure-AsyncOperation", base + "/ops/1"), ("Retry-After", "0")])
        }
        server.route(.GET, "/ops/1", replies: [.json(200, #"{"status":"InProgress"}"#), .json(200, #"{"status":"Succeeded"}"#)])
        server.route(.GET, "/subscriptions/s/resourceGroups/rg/providers/X/things/async", reply: .json(200, #"{"name":"async","properties":{"provisioningState":"Succeeded"}}"#))
        server.route(.DELETE, "/subscriptions/s/resourceGroups/rg/providers/X/things/located", reply: .response(status: 202, headers: [("Location", base + "/loc/1")], body: .init()))
        server.route(.GET, "/loc/1", replies: [.response(status: 202, headers: [], body: .init()), .json(200, #"{"deleted":true}"#)])
        server.route(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/state", reply: .json(200, #"{"properties":{"provisioningState":"Creating"}}"#))
        server.route(.GET, "/subscriptions/s/resourceGroups/rg/providers/X/things/state", replies: [
            .json(200, #"{"properties":{"provisioningState":"Creating"}}"#), .json(200, #"{"properties":{"provisioningState":"Succeeded"}}"#)])
        server.route(.GET, "/subscriptions/s/resourceGroups/missing", reply: .json(404, #"{"error":{"code":"ResourceGroupNotFound","message":"Resource group 'missing' could not be found."}}"#))
        server.route(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/failing", reply: .json(201, "{}", headers: [("Azure-AsyncOperation", base + "/ops/2")]))
        server.route(.GET, "/ops/2", reply: .json(200, #"{"status":"Failed","error":{"code":"QuotaExceeded","message":"no cores left"}}"#))
        let arm = AzureARMClient(credential: StaticToken(), endpoint: base)
        let made = try await arm.call(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/async", apiVersion: "2023-01-01", body: ["location": "westeurope"],
                                      pollInterval: .milliseconds(10))
        #expect(made["name"] == "async")
        #expect(try await arm.call(.DELETE, "/subscriptions/s/resourceGroups/rg/providers/X/things/located", apiVersion: "2023-01-01",
                                   pollInterval: .milliseconds(10))["deleted"] == true)
        #expect(try await arm.call(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/state", apiVersion: "2023-01-01", body: [:],
                                   pollInterval: .milliseconds(10))["properties"]?["provisioningState"] == "Succeeded")
        do {
            _ = try await arm.call(.GET, "/subscriptions/s/resourceGroups/missing", apiVersion: "2021-04-01")
            Issue.record("a missing group is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound && error.message.contains("ResourceGroupNotFound")) }
        await #expect(throws: NimbusError.self) {
            try await arm.call(.PUT, "/subscriptions/s/resourceGroups/rg/providers/X/things/failing", apiVersion: "2023-01-01", body: [:], pollInterval: .milliseconds(10))
        }
        #expect(AzureErrorCodes.map("BlobNotFound", status: 404) == .notFound && AzureErrorCodes.map("ServerBusy", status: 503) == .resourceExhausted)
    }

    @Test("links in answers (Key Vault nextLink, ARM Location) are followed only on the service's own origin")
    func linksStayOnTheServiceOrigin() async throws {
        let vault = try await FakeHTTPServer.start()
        let elsewhere = try await FakeHTTPServer.start()
        vault.route(.GET, "/secrets", reply: .json(200, .object(["value": [["id": "a"]], "nextLink": .string(elsewhere.baseURL + "/secrets?$skiptoken=2")])))
        let client = AzureKeyVaultClient(vaultURL: vault.baseURL, credential: AzureStaticToken(Secret("kv-token")), retry: .none)
        let refused = await #expect(throws: NimbusError.self) { _ = try await client.list("/secrets") }
        #expect(refused?.message.contains("not following it") == true)

        let arm = AzureARMClient(credential: AzureStaticToken(Secret("arm-token")), endpoint: vault.baseURL)
        vault.route(.DELETE, "/subscriptions/s/things/x", reply: .response(status: 202, headers: [("Location", elsewhere.baseURL + "/loc")], body: .init()))
        let located = await #expect(throws: NimbusError.self) {
            _ = try await arm.call(.DELETE, "/subscriptions/s/things/x", apiVersion: "2023-01-01", pollInterval: .milliseconds(10))
        }
        #expect(located?.message.contains("not sending the token there") == true)
        #expect(elsewhere.requests.isEmpty)
        #expect(HTTPOrigin("https://vault.azure.net/x") == HTTPOrigin("HTTPS://Vault.Azure.net:443/y"))
        #expect(HTTPOrigin("https://vault.azure.net.evil.com/") != HTTPOrigin("https://vault.azure.net/"))
        #expect(HTTPOrigin("ftp://x/") == nil && HTTPOrigin("/relative") == nil)
        await vault.shutdown(); await elsewhere.shutdown()
    }
}
