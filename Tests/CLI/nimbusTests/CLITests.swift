import Foundation
import NIOCore
import NimbusAWS
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// Runs the built `nimbus` binary, as a user would.
enum Binary {
    static func url() throws -> URL { try Peer.nimbusBinary() }

    static func run(_ arguments: [String], environment: [String: String] = [:], input: [UInt8]? = nil) async throws -> ProcessRunner.Result {
        try await Peer.runNimbus(arguments, environment: environment, input: input)
    }
}

@Suite("nimbus command line", .timeLimit(.minutes(2)))
struct CLITests {
    @Test("--help groups commands by domain")
    func help() async throws {
        let result = try await Binary.run(["--help"])
        #expect(result.status == 0)
        for group in ["SERVER SUBCOMMANDS", "CATALOG SUBCOMMANDS", "CACHE SUBCOMMANDS", "AI SUBCOMMANDS", "MESSAGING SUBCOMMANDS", "CLOUD SUBCOMMANDS", "COMMERCE SUBCOMMANDS", "COMMUNICATION SUBCOMMANDS"] { #expect(result.stdout.contains(group), "\(group)") }
    }

    @Test("packages prints the catalog in each format")
    func packages() async throws {
        let json = try await Binary.run(["packages", "--format", "json"])
        #expect(json.status == 0)
        let rows = try JSONValue.parse(Data(json.stdout.utf8)).arrayValue
        #expect(rows?.count == 121)
        let done = try await Binary.run(["packages", "--status", "done"])
        #expect(done.stdout.contains("NimbusCache"))
        let bad = try await Binary.run(["packages", "--format", "xml"])
        #expect(bad.status != 0)
    }

    @Test("cache set/get/del on mem:// in one process is empty afterwards; bad URLs explain themselves")
    func cacheMemory() async throws {
        let set = try await Binary.run(["cache", "set", "--url", "mem://", "k", "v"])
        #expect(set.status == 0 && set.stdout == "OK\n")
        let get = try await Binary.run(["cache", "get", "--url", "mem://", "k"])   // a new process: a new memory cache
        #expect(get.status == 1 && get.stderr.contains("(nil)"))
        let bad = try await Binary.run(["cache", "get", "--url", "memcached://x", "k"])
        #expect(bad.status != 0 && bad.stderr.contains("mem://"))
        let ttl = try await Binary.run(["cache", "set", "--ttl", "soon", "k", "v"])
        #expect(ttl.status != 0)
    }

    @Test("cache commands against redis-server", .requires(.redis))
    func cacheRedis() async throws {
        let url = try Peer.redis.url()
        let key = "cli:\(IDGenerator.shared.ulid())"
        #expect(try await Binary.run(["cache", "set", "--url", url, key, "hello world", "--ttl", "60s"]).status == 0)
        let get = try await Binary.run(["cache", "get", key], environment: ["NIMBUS_CACHE_URL": url])
        #expect(get.status == 0 && get.stdout == "hello world\n")
        #expect(try await Binary.run(["cache", "set", "--url", url, "--if-absent", key, "other"]).status == 1)
        #expect(try await Binary.run(["cache", "del", "--url", url, key, key + "-missing"]).stdout == "1\n")
    }

    @Test("rag ingest indexes a directory offline, skips unchanged files, and rag ask cites the passage that answers")
    func rag() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-cli-rag-\(IDGenerator.shared.ulid())")
        let docs = root.appendingPathComponent("docs"), index = root.appendingPathComponent("index").path
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("# Ops\n\n## Backups\n\nBackups run nightly and are kept for thirty days.\n\n## Keys\n\nRotate keys every ninety days.".utf8)
            .write(to: docs.appendingPathComponent("ops.md"))
        try Data("<h1>Billing</h1><p>Refunds take five business days.</p>".utf8).write(to: docs.appendingPathComponent("billing.html"))
        let ingest = try await Binary.run(["rag", "ingest", docs.path, "--index", index])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("documents: 2 (0 unchanged)"))
        #expect(try await Binary.run(["rag", "ingest", docs.path, "--index", index]).stdout.contains("documents: 2 (2 unchanged), chunks stored: 0"))
        let ask = try await Binary.run(["rag", "ask", "--index", index, "--json", "--passages", "2", "how long are backups kept"])
        #expect(ask.status == 0, "\(ask.stderr)")
        let sources = try JSONValue.parse(Data(ask.stdout.utf8))["sources"]?.arrayValue ?? []
        #expect(sources.first?["document"]?.stringValue?.hasSuffix("ops.md") == true)
        #expect(sources.first?["chunk"]?.stringValue?.hasSuffix("ops.md#1") == true, "the Backups section ranks first: \(ask.stdout)")
        let missing = try await Binary.run(["rag", "ask", "--index", root.appendingPathComponent("nope").path, "q"])
        #expect(missing.status != 0 && missing.stderr.contains("no RAG index"))
    }

    @Test("llm chat streams the memory model's reply; models and embed list and embed; unknown models fail")
    func llm() async throws {
        let chat = try await Binary.run(["llm", "chat", "--system", "Be brief.", "Hello from the command line"])
        #expect(chat.status == 0)
        #expect(chat.stdout == "Hello from the command line\n")
        #expect(chat.stderr.contains("[memory] stop"))
        let json = try await Binary.run(["llm", "chat", "--json", "hi"])
        #expect(try JSONValue.parse(Data(json.stdout.utf8))["finishReason"] == "stop")
        let models = try await Binary.run(["llm", "models"])
        #expect(models.stdout.contains("memory") && models.stdout.contains("nimbus-hashing-384"))
        let embed = try await Binary.run(["llm", "embed", "first text", "second text"])
        let lines = embed.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(try JSONValue.parse(Data(lines[0].utf8))["dimensions"] == 384)
        let unknown = try await Binary.run(["llm", "chat", "--model", "nope", "x"])
        #expect(unknown.status != 0 && unknown.stderr.contains("serves memory, not 'nope'"), "\(unknown.output)")
    }

    @Test("serve refuses a non-loopback address without a master key, unless told to allow it")
    func serveRefusesOpenExposure() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-serve-open-\(IDGenerator.shared.ulid())").path
        let refused = try await Binary.run(["serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", state])
        #expect(refused.status != 0 && refused.stderr.contains("--allow-unauthenticated"), "\(refused.output)")
    }

    @Test("serve answers /healthz, /v1/packages and /v1/chat/completions, then exits 0 on SIGTERM")
    func serve() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-serve-\(IDGenerator.shared.ulid())").path
        let process = Process()
        process.executableURL = try Binary.url()
        process.arguments = ["serve", "--port", "0", "--state-dir", state]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // The server logs its port as JSON on standard error (read off the cooperative pool).
        let (port, logged) = await ProcessRunner.firstLine(from: err.fileHandleForReading, timeout: .seconds(30)) { line -> Int? in
            guard let value = try? JSONValue.parse(Data(line.utf8)), value["msg"] == "nimbus serving", let text = value["port"]?.stringValue else { return nil }
            return Int(text)
        }
        let buffer = Data(logged.utf8)
        let bound = try #require(port, "the server did not log its port: \(String(decoding: buffer, as: UTF8.self))")
        let client = NimbusHTTPClient(configuration: .init(service: "nimbus", baseURL: "http://127.0.0.1:\(bound)"))
        let health = try await client.send(NimbusHTTPRequest(.GET, "/healthz"))
        #expect(health.status.code == 200)
        let packages = try await client.json(NimbusHTTPRequest(.GET, "/v1/packages"), as: [JSONValue].self)
        #expect(packages.count == 121)
        #expect(FileManager.default.fileExists(atPath: state))
        // The LLM gateway answers on embedded defaults: no configuration, no key.
        var chat = NimbusHTTPRequest(.POST, "/v1/chat/completions")
        try chat.setJSON(["model": "memory", "messages": [["role": "user", "content": "ping"]]] as JSONValue)
        let completion = try await client.json(chat, as: JSONValue.self)
        #expect(completion["choices"]?.arrayValue?.first?["message"]?["content"] == "ping")

        kill(process.processIdentifier, SIGTERM)
        let stopDeadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < stopDeadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "nimbus serve did not stop within 5 s of SIGTERM")
        if !process.isRunning {
            #expect(process.terminationStatus == 0)
            #expect(process.terminationReason == .exit)
        }
    }
}

@Suite("nimbus fx, pay, tax, billing and aws", .timeLimit(.minutes(2)))
struct CommerceCLITests {
    @Test func fxConvertsWithECBRatesFromAFile() async throws {
        let root = try #require(Peer.packageRoot())
        let daily = "\(root)/Tests/Commerce/CurrencyTests/Fixtures/ecb-daily.xml"
        let result = try await Binary.run(["fx", "convert", "100", "USD", "EUR", "--rates", daily, "--json"])
        #expect(result.status == 0, "\(result.output)")
        let json = try JSONValue.parse(Data(result.stdout.utf8))
        #expect(json["currency"] == "EUR" && json["date"] == "2018-06-11")
        // USD 1.1790 per EUR on 2018-06-11: 100 / 1.1790 = 84.8176..., half-even to cents.
        #expect(json["amount"] == "84.82", "\(result.stdout)")
        let down = try await Binary.run(["fx", "convert", "100", "USD", "EUR", "--rates", daily, "--rounding", "down"])
        #expect(down.stdout.hasPrefix("84.81 EUR"), "\(down.output)")
        let unknown = try await Binary.run(["fx", "convert", "100", "USD", "XYZ", "--rates", daily])
        #expect(unknown.status != 0 && unknown.stderr.contains("XYZ"))
    }

    /// With no network and no flags, the shipped snapshot answers at once and says which day it used.
    @Test func fxWorksOfflineOnTheShippedSnapshotAndSaysItsDate() async throws {
        let result = try await Binary.run(["fx", "convert", "100", "USD", "EUR", "--json"])
        #expect(result.status == 0, "\(result.output)")
        let json = try JSONValue.parse(Data(result.stdout.utf8))
        // USD 1.1172 per EUR on 2026-10-30, the snapshot's last day: 100 / 1.1172 = 89.5094..., half-even to cents.
        #expect(json["date"] == "2026-10-30" && json["amount"] == "89.51", "\(result.stdout)")
        #expect(json["source"]?.stringValue?.contains("snapshot") == true)
        let older = try await Binary.run(["fx", "convert", "100", "USD", "EUR", "--date", "2026-08-04", "--json"])
        #expect(try JSONValue.parse(Data(older.stdout.utf8))["date"] == "2026-08-04", "\(older.output)")
    }

    @Test func payCreatesCapturesAndRefundsAcrossInvocationsWithTheEmbeddedEngine() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-pay-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let via = ["--url", "sqlite://\(path)"]
        let created = try await Binary.run(["pay", "create", "50", "EUR", "--method", "pm_card_visa", "--confirm", "--manual", "--metadata", "order=9"] + via)
        #expect(created.status == 0, "\(created.output)")
        let payment = try JSONValue.parse(Data(created.stdout.utf8))
        let id = try #require(payment["id"]?.stringValue)
        #expect(payment["status"] == "requires_capture" && payment["amount"] == ["amount": "50.00", "currency": "EUR"])
        let captured = try JSONValue.parse(Data(try await Binary.run(["pay", "capture", id, "--amount", "30"] + via).stdout.utf8))
        #expect(captured["status"] == "succeeded" && captured["amountReceived"]?["amount"] == "30.00")
        let first = try await Binary.run(["pay", "refund", id, "--amount", "10", "--idempotency-key", "cli-refund-1"] + via)
        let again = try await Binary.run(["pay", "refund", id, "--amount", "10", "--idempotency-key", "cli-refund-1"] + via)
        #expect(try JSONValue.parse(Data(first.stdout.utf8))["id"] == JSONValue.parse(Data(again.stdout.utf8))["id"], "\(again.output)")
        let refunds = try JSONValue.parse(Data(try await Binary.run(["pay", "refunds", id] + via).stdout.utf8))
        #expect(refunds.arrayValue?.count == 1)
        let tooMuch = try await Binary.run(["pay", "refund", id, "--amount", "25"] + via)
        #expect(tooMuch.status != 0 && tooMuch.stderr.contains("refundable"), "\(tooMuch.output)")
        let stripe = try await Binary.run(["pay", "show", id, "--url", "stripe://"], environment: ["STRIPE_SECRET_KEY": ""])
        #expect(stripe.status != 0 && stripe.stderr.contains("STRIPE_SECRET_KEY"))
        let volatile = try await Binary.run(["pay", "show", id, "--url", "mem://"])
        #expect(volatile.status != 0, "mem:// is in-process and volatile: a new command starts empty")
        let typo = try await Binary.run(["pay", "show", id, "--url", "sqlite://\(path)?jounral=wal"])
        #expect(typo.status != 0 && typo.stderr.contains("jounral"), "unknown URL options are errors: \(typo.output)")
        let viaEnvironment = try await Binary.run(["pay", "show", id], environment: ["NIMBUS_PAYMENT_URL": "sqlite://\(path)"])
        #expect(viaEnvironment.status == 0 && viaEnvironment.stdout.contains(id), "NIMBUS_PAYMENT_URL: \(viaEnvironment.output)")
    }

    @Test func taxQuotesVATAndChecksNumbers() async throws {
        let quote = try await Binary.run(["tax", "quote", "--seller", "DE", "--registration", "DE", "--registration", "EU-OSS", "--country", "FR",
                                          "--line", "ebook=10.00:reduced:inclusive", "--line", "course=100", "--date", "2024-05-02"])
        #expect(quote.status == 0, "\(quote.output)")
        #expect(quote.stdout.contains("ebook: net 9.48  tax 0.52 at 5.5% FR") && quote.stdout.contains("total: net 109.48  tax 20.52  gross 130.00 EUR"), "\(quote.stdout)")
        let b2b = try await Binary.run(["tax", "quote", "--seller", "DE", "--registration", "DE", "--country", "FR", "--vat-number", "FR25064285364",
                                        "--line", "license=1000", "--json"])
        let json = try JSONValue.parse(Data(b2b.stdout.utf8))
        #expect(json["tax"] == ["amount": "0.00", "currency": "EUR"] && json["lines"]?.arrayValue?.first?["exemption"] == "reverse_charge", "\(b2b.output)")
        #expect(try await Binary.run(["tax", "validate", "ATU87001119"]).status == 0)
        let bad = try await Binary.run(["tax", "validate", "ATU87001118"])
        #expect(bad.status == 1 && bad.stderr.contains("check digits"))
    }

    @Test func billingRunsTheEmbeddedEngineOnLocalFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-billing-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let common = ["--url", "sqlite://\(directory)/billing.sqlite", "--payment-url", "sqlite://\(directory)/payments.sqlite", "--tax-home", "DE", "--tax-registration", "DE"]
        func run(_ arguments: [String], at day: String = "2025-01-15") async throws -> ProcessRunner.Result {
            let result = try await Binary.run(["billing"] + arguments + common + ["--at", day])
            #expect(result.status == 0, "\(arguments): \(result.output)")
            return result
        }
        _ = try await run(["add-plan", "basic", "--price", "10.00"])
        _ = try await run(["add-customer", "ada", "--name", "Ada", "--country", "DE", "--method", "pm_card_visa"])
        let subscription = try JSONValue.parse(Data(try await run(["subscribe", "ada", "basic"]).stdout.utf8))
        #expect(subscription["status"] == "active")
        let renewal = try await run(["advance"], at: "2025-02-15")
        #expect(renewal.stdout.contains("INV-000002  paid  total 11.90 EUR"), "\(renewal.stdout)")
        #expect(try await run(["advance"], at: "2025-02-16").stdout.contains("nothing due"))
        let list = try await run(["invoices", "ada"])
        #expect(list.stdout.split(separator: "\n").count == 2 && list.stdout.contains("INV-000001  2025-01-15  paid  subtotal 10.00  tax 1.90  total 11.90 EUR"), "\(list.stdout)")
        let missing = try await Binary.run(["billing", "subscribe", "nobody", "basic"] + common)
        #expect(missing.status != 0 && missing.stderr.contains("nobody"))
    }

    @Test(.requires(.postgres)) func billingKeepsItsBooksInPostgreSQLWhenGivenAURL() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_cli_billing")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-billing-pg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let common = ["--url", url, "--payment-url", "sqlite://\(directory)/payments.sqlite", "--at", "2025-01-15"]
        for arguments in [["add-plan", "basic", "--price", "10.00"], ["add-customer", "ada", "--name", "Ada", "--country", "DE", "--method", "pm_card_visa"],
                          ["subscribe", "ada", "basic"]] {
            let result = try await Binary.run(["billing"] + arguments + common)
            #expect(result.status == 0, "\(arguments): \(result.output)")
        }
        let list = try await Binary.run(["billing", "invoices", "ada"] + common)
        #expect(list.stdout.contains("INV-000001  2025-01-15  paid  subtotal 10.00  tax 0.00  total 10.00 EUR"), "\(list.output)")
        let rows = try await ProcessRunner.run("/usr/bin/env", ["psql", url.replacingOccurrences(of: "?sslmode=disable", with: ""), "-tAc",
                                                                "SELECT count(*) FROM nimbus_billing_documents WHERE kind = 'invoice'"])
        #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(rows.output)")
    }

    @Test(.requires(.moto)) func awsCallsMotoAndPresignsADownloadableURL() async throws {
        let moto = try Peer.moto.url()
        let keys = ["AWS_ACCESS_KEY_ID": Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID") ?? "", "AWS_SECRET_ACCESS_KEY": Peer.setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") ?? "",
                    "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"]
        let identity = try await Binary.run(["aws", "call", "sts", "GetCallerIdentity", "--endpoint-url", moto], environment: keys)
        #expect(identity.status == 0 && identity.stdout.contains(":user/nimbus"), "\(identity.output)")
        var wrong = keys
        wrong["AWS_SECRET_ACCESS_KEY"] = "wrong"
        let refused = try await Binary.run(["aws", "call", "sts", "GetCallerIdentity", "--endpoint-url", moto], environment: wrong)
        #expect(refused.status == 254 && refused.stderr.contains("An error occurred (") , "\(refused.output)")
        let s3 = try #require(Peer.setting("NIMBUS_PEER_MOTO_S3_URL"))
        let plain = ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]
        let bucket = "cli-\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try await Binary.run(["aws", "call", "s3", "CreateBucket", "--input", "{\"Bucket\":\"\(bucket)\"}", "--endpoint-url", s3], environment: plain).status == 0)
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-aws-\(UUID().uuidString)")
        try Data("quarterly".utf8).write(to: report)
        defer { try? FileManager.default.removeItem(at: report) }
        let put = try await Binary.run(["aws", "call", "s3", "PutObject", "--input", "{\"Bucket\":\"\(bucket)\",\"Key\":\"reports/q 1.txt\",\"ContentType\":\"text/plain\"}",
                                        "--payload-file", report.path, "--endpoint-url", s3], environment: plain)
        #expect(put.status == 0 && put.stdout.contains("ETag"), "\(put.output)")
        // The issue's two calls: each binds its input (bucket in the path, key, query) instead of sending GET / and listing buckets.
        let listed = try await Binary.run(["aws", "call", "s3", "ListObjectsV2", "--input", "{\"Bucket\":\"\(bucket)\",\"Prefix\":\"reports/\"}",
                                           "--endpoint-url", s3], environment: plain)
        let page = try JSONValue.parse(Data(listed.stdout.utf8))
        #expect(listed.status == 0 && page["KeyCount"] == 1 && page["Contents"]?.arrayValue?.first?["Key"] == "reports/q 1.txt" && page["Buckets"] == nil, "\(listed.output)")
        let got = try await Binary.run(["aws", "call", "s3", "GetObject", "--input", "{\"Bucket\":\"\(bucket)\",\"Key\":\"reports/q 1.txt\"}",
                                        "--outfile", "-", "--endpoint-url", s3], environment: plain)
        #expect(got.status == 0 && got.stdout == "quarterly" && got.stderr.contains("\"ContentLength\":9"), "\(got.output)")
        let streamed = try await Binary.run(["aws", "call", "s3", "GetObject", "--input", "{\"Bucket\":\"\(bucket)\",\"Key\":\"reports/q 1.txt\"}",
                                             "--endpoint-url", s3], environment: plain)
        #expect(streamed.status == 252 && streamed.stderr.contains("--outfile"), "\(streamed.output)")
        // Refused before sending, with close matches, exit 252 — never a wrong answer with 0.
        let typo = try await Binary.run(["aws", "call", "s3", "ListObjectV2", "--input", "{\"Bucket\":\"\(bucket)\"}", "--endpoint-url", s3], environment: plain)
        #expect(typo.status == 252 && typo.stderr.contains("ListObjectsV2"), "\(typo.output)")
        let unknownService = try await Binary.run(["aws", "call", "s4", "ListBuckets", "--endpoint-url", s3], environment: plain)
        #expect(unknownService.status == 252 && unknownService.stderr.contains("s3"), "\(unknownService.output)")
        let missing = try await Binary.run(["aws", "call", "s3", "GetObject", "--input", "{\"Bucket\":\"\(bucket)\"}", "--outfile", "-", "--endpoint-url", s3], environment: plain)
        #expect(missing.status == 252 && missing.stderr.contains("Key is required"), "\(missing.output)")
        let noSuchKey = try await Binary.run(["aws", "call", "s3", "GetObject", "--input", "{\"Bucket\":\"\(bucket)\",\"Key\":\"nope\"}", "--outfile", "-",
                                              "--endpoint-url", s3], environment: plain)
        #expect(noSuchKey.status == 254 && noSuchKey.stderr.contains("NoSuchKey"), "\(noSuchKey.output)")
        let pages = try await Binary.run(["aws", "call", "s3", "ListObjectsV2", "--input", "{\"Bucket\":\"\(bucket)\"}", "--all-pages", "--endpoint-url", s3],
                                         environment: plain)
        let pageList = try JSONValue.parse(Data(pages.stdout.utf8))
        #expect(pages.status == 0 && pageList.arrayValue?.count == 1, "\(pages.output)")
        let waited = try await Binary.run(["aws", "wait", "s3", "ObjectExists", "--input", "{\"Bucket\":\"\(bucket)\",\"Key\":\"reports/q 1.txt\"}",
                                           "--endpoint-url", s3], environment: plain)
        #expect(waited.status == 0, "\(waited.output)")
        let aws = AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "test", secretAccessKey: Secret("test")),
                                                 endpointURL: s3, environment: [:]))
        try await AWS.S3(client: aws).putObject(.init(bucket: bucket, key: "report.txt", body: ByteBuffer(string: "quarterly")))
        let presigned = try await Binary.run(["aws", "presign", "GET", "s3://\(bucket)/report.txt", "--expires", "300", "--endpoint-url", s3], environment: plain)
        #expect(presigned.status == 0, "\(presigned.output)")
        let url = presigned.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let download = try await ProcessRunner.run("/usr/bin/env", ["curl", "-sf", url])
        #expect(download.stdout == "quarterly", "\(download.output)")
    }
}

@Suite("nimbus communication commands", .timeLimit(.minutes(2)))
struct CommunicationCLITests {
    @Test("email send writes the local outbox; template render fills a bundle and refuses missing values")
    func emailAndTemplates() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("templates"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sent = try await Binary.run(["email", "send", "--url", "file://\(directory.path)/outbox", "--from", "Shop <shop@example.com>",
                                         "--to", "zoe@example.org", "--subject", "Grüße", "--text", "hello"])
        #expect(sent.status == 0, "\(sent.output)")
        let receipt = try JSONValue.parse(Data(sent.stdout.utf8))
        let file = directory.appendingPathComponent("outbox").appendingPathComponent(try #require(receipt["providerMessageID"]?.stringValue))
        #expect(try String(contentsOf: file, encoding: .utf8).contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?="))
        try "Hi {{name}}, {{#one(count)}}one item{{/one(count)}}{{#other(count)}}{{count}} items{{/other(count)}}".write(
            to: directory.appendingPathComponent("templates/cart.text.mustache"), atomically: true, encoding: .utf8)
        let rendered = try await Binary.run(["template", "render", "cart", "--dir", directory.appendingPathComponent("templates").path, "--part", "text",
                                             "--data", #"{"name":"Zoë","count":3}"#])
        #expect(rendered.status == 0 && rendered.stdout == "Hi Zoë, 3 items", "\(rendered.output)")
        let missing = try await Binary.run(["template", "render", "cart", "--dir", directory.appendingPathComponent("templates").path, "--part", "text", "--data", "{}"])
        #expect(missing.status != 0 && missing.stderr.contains("'name'"))
        let sms = try await Binary.run(["sms", "send", "--from", "Nimbus", "--to", "+14155550100", "Ваш код 1234"])
        #expect(sms.status == 0 && sms.stdout.contains("UCS-2"), "\(sms.output)")
        let badNumber = try await Binary.run(["sms", "send", "--from", "Nimbus", "--to", "4155550100", "x"])
        #expect(badNumber.status != 0 && badNumber.stderr.contains("E.164"))
    }
}
