import Foundation
import NIOCore
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// Google Cloud Pub/Sub's REST API as a fake: every request body is checked against the committed
/// `pubsub.proto` with the proto-JSON checker (unknown fields, wrong types and missing required
/// fields are refused with INVALID_ARGUMENT), and the service's documented limits are enforced
/// (ack deadlines 10–600 s, modifyAckDeadline 0–600 s, 5–100 delivery attempts, 1,000 messages per
/// publish and pull, label values). Subscriptions keep their own copy of each message published after
/// they were created, lease pulled messages for the ack deadline, count delivery attempts when a
/// dead-letter policy is set, and forward to the dead-letter topic past the maximum.
final class FakePubSub: Sendable {
    struct Stored {
        var id: String
        var data: String
        var attributes: [String: JSONValue]
        var orderingKey: String?
        var publishTime: String
        var attempts = 0
        var leasedUntil: ContinuousClock.Instant?
        var ackID: String?
    }

    struct Subscription {
        var topic: String
        var ackDeadline: Int
        var labels: [String: JSONValue]
        var deadLetterTopic: String?
        var maxAttempts: Int?
        var messages: [Stored] = []
        var json: JSONValue
    }

    struct State {
        var topics: Set<String> = []
        var subscriptions: [String: Subscription] = [:]
        var nextID = 1
    }

    let server: FakeHTTPServer
    let checker: ProtoJSONChecker
    let project = "nimbus-test"
    let state = Mutex(State())

    static let protos: Result<ProtoJSONChecker, any Error> = Result {
        try ProtoJSONChecker(fixtures: ["pubsub", "schema"], in: Bundle.module)
    }

    static func start() async throws -> FakePubSub {
        let fake = FakePubSub(server: try await FakeHTTPServer.start(), checker: try protos.get())
        fake.server.refuseRequests(failing: { fake.departures($0) }) { problems in
            Self.error(400, "INVALID_ARGUMENT", "spec mismatch: " + problems.joined(separator: "; "))
        }
        let root = "/v1/projects/\(fake.project)"
        fake.server.route(.PUT, "\(root)/topics/{topic}") { fake.createTopic($0) }
        fake.server.route(.DELETE, "\(root)/topics/{topic}") { fake.deleteTopic($0) }
        fake.server.route(.GET, "\(root)/topics") { _ in fake.listTopics() }
        fake.server.route(.GET, "\(root)/topics/{topic}/subscriptions") { fake.listSubscriptions($0) }
        fake.server.route(.POST, "\(root)/topics/{verb}") { fake.publish($0) }
        fake.server.route(.PUT, "\(root)/subscriptions/{subscription}") { fake.createSubscription($0) }
        fake.server.route(.GET, "\(root)/subscriptions/{subscription}") { fake.getSubscription($0) }
        fake.server.route(.DELETE, "\(root)/subscriptions/{subscription}") { fake.deleteSubscription($0) }
        fake.server.route(.POST, "\(root)/subscriptions/{verb}") { fake.subscriptionVerb($0) }
        return fake
    }

    private init(server: FakeHTTPServer, checker: ProtoJSONChecker) {
        self.server = server
        self.checker = checker
    }

    var url: String { "gcppubsub://\(project)?endpoint=\(server.baseURL)" }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }
    func stop() async { await server.shutdown() }

    /// The request message each method takes (path fields come from the URL).
    func departures(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        guard request.method == "PUT" || request.method == "POST" else { return [] }
        let body = (try? request.json()) ?? .null
        let last = String(request.path.split(separator: "/").last ?? "")
        let message: String, path: Set<String>
        if last.hasSuffix(":publish") { (message, path) = ("PublishRequest", ["topic"]) }
        else if last.hasSuffix(":pull") { (message, path) = ("PullRequest", ["subscription"]) }
        else if last.hasSuffix(":acknowledge") { (message, path) = ("AcknowledgeRequest", ["subscription"]) }
        else if last.hasSuffix(":modifyAckDeadline") { (message, path) = ("ModifyAckDeadlineRequest", ["subscription"]) }
        else if request.path.contains("/topics/") && request.method == "PUT" { (message, path) = ("Topic", ["name"]) }
        else if request.path.contains("/subscriptions/") && request.method == "PUT" { (message, path) = ("Subscription", ["name"]) }
        else { return ["\(request.method) \(request.path) is not a Pub/Sub method the fake knows"] }
        var found = checker.check(body, message: message, pathFields: path)
        if request.header("content-type")?.hasPrefix("application/json") != true { found.append("the body is not sent as application/json") }
        return found
    }

    static func error(_ code: Int, _ status: String, _ message: String) -> FakeHTTPServer.Reply {
        .json(code, ["error": ["code": .number(Double(code)), "message": .string(message), "status": .string(status)]])
    }

    private func name(_ request: FakeHTTPServer.CapturedRequest, after marker: String) -> String {
        let parts = request.path.split(separator: "/").map(String.init)
        guard let index = parts.firstIndex(of: marker), index + 1 < parts.count else { return "" }
        return parts[index + 1].removingPercentEncoding ?? parts[index + 1]
    }

    // MARK: Topics

    func createTopic(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let topic = name(request, after: "topics")
        let created = state.withLock { $0.topics.insert(topic).inserted }
        return created ? .json(200, ["name": .string("projects/\(project)/topics/\(topic)")]) : Self.error(409, "ALREADY_EXISTS", "Resource already exists in the project (resource=\(topic)).")
    }

    func deleteTopic(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let topic = name(request, after: "topics")
        let removed = state.withLock { $0.topics.remove(topic) != nil }
        return removed ? .json(200, [:]) : Self.error(404, "NOT_FOUND", "Resource not found (resource=\(topic)).")
    }

    func listTopics() -> FakeHTTPServer.Reply {
        let topics = state.withLock { $0.topics.sorted() }
        return .json(200, ["topics": .array(topics.map { ["name": .string("projects/\(project)/topics/\($0)")] })])
    }

    func listSubscriptions(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let topic = name(request, after: "topics")
        return state.withLock { state in
            guard state.topics.contains(topic) else { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(topic)).") }
            let names = state.subscriptions.filter { $0.value.topic == topic }.keys.sorted()
            return .json(200, ["subscriptions": .array(names.map { .string("projects/\(project)/subscriptions/\($0)") })])
        }
    }

    func publish(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let verb = name(request, after: "topics")
        guard verb.hasSuffix(":publish") else { return Self.error(404, "NOT_FOUND", "no method \(verb)") }
        let topic = String(verb.dropLast(":publish".count))
        guard let body = try? request.json(), let messages = body["messages"]?.arrayValue, !messages.isEmpty else {
            return Self.error(400, "INVALID_ARGUMENT", "The value for message_count is too small. You passed 0 in the request, but the minimum value is 1.")
        }
        guard messages.count <= 1000 else { return Self.error(400, "INVALID_ARGUMENT", "The value for message_count is too large. You passed \(messages.count) in the request, but the maximum value is 1000.") }
        for message in messages where Data(base64Encoded: message["data"]?.stringValue ?? "") == nil {
            return Self.error(400, "INVALID_ARGUMENT", "Invalid data in message: not base64.")
        }
        return state.withLock { state in
            guard state.topics.contains(topic) else { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(topic)).") }
            var ids: [JSONValue] = []
            let now = ISO8601DateFormatter().string(from: Date())
            for message in messages {
                let id = String(state.nextID)
                state.nextID += 1
                ids.append(.string(id))
                let stored = Stored(id: id, data: message["data"]?.stringValue ?? "", attributes: message["attributes"]?.objectValue ?? [:],
                                    orderingKey: message["orderingKey"]?.stringValue, publishTime: now)
                for key in state.subscriptions.keys where state.subscriptions[key]?.topic == topic { state.subscriptions[key]?.messages.append(stored) }
            }
            return .json(200, ["messageIds": .array(ids)])
        }
    }

    // MARK: Subscriptions

    func createSubscription(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let subscription = name(request, after: "subscriptions")
        guard let body = try? request.json() else { return Self.error(400, "INVALID_ARGUMENT", "no body") }
        let topic = String(body["topic"]?.stringValue?.split(separator: "/").last ?? "")
        let deadline = Int(body["ackDeadlineSeconds"]?.numberValue ?? 10)
        guard (10...600).contains(deadline) else { return Self.error(400, "INVALID_ARGUMENT", "Invalid ack deadline given: \(deadline). The minimum is 10 seconds and the maximum is 600 seconds.") }
        let labels = body["labels"]?.objectValue ?? [:]
        for (key, value) in labels {
            let text = value.stringValue ?? ""
            let allowed = CharacterSet.lowercaseLetters.union(.decimalDigits).union(CharacterSet(charactersIn: "-_"))
            guard text.count <= 63, key.count <= 63, text.unicodeScalars.allSatisfy(allowed.contains), key.unicodeScalars.allSatisfy(allowed.contains) else {
                return Self.error(400, "INVALID_ARGUMENT", "Invalid label \(key)=\(text).")
            }
        }
        var deadLetterTopic: String?, maxAttempts: Int?
        if let policy = body["deadLetterPolicy"] {
            deadLetterTopic = policy["deadLetterTopic"]?.stringValue.map { String($0.split(separator: "/").last ?? "") }
            maxAttempts = Int(policy["maxDeliveryAttempts"]?.numberValue ?? 5)
            guard (5...100).contains(maxAttempts!) else { return Self.error(400, "INVALID_ARGUMENT", "max_delivery_attempts must be between 5 and 100.") }
        }
        return state.withLock { state in
            guard state.subscriptions[subscription] == nil else { return Self.error(409, "ALREADY_EXISTS", "Resource already exists in the project (resource=\(subscription)).") }
            guard state.topics.contains(topic) else { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(topic)).") }
            if let deadLetterTopic, !state.topics.contains(deadLetterTopic) { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(deadLetterTopic)).") }
            var json = body.objectValue ?? [:]
            json["name"] = .string("projects/\(project)/subscriptions/\(subscription)")
            json["ackDeadlineSeconds"] = .number(Double(deadline))
            state.subscriptions[subscription] = Subscription(topic: topic, ackDeadline: deadline, labels: labels, deadLetterTopic: deadLetterTopic,
                                                             maxAttempts: maxAttempts, json: .object(json))
            return .json(200, .object(json))
        }
    }

    func getSubscription(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let subscription = name(request, after: "subscriptions")
        return state.withLock { state in
            guard let found = state.subscriptions[subscription] else { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(subscription)).") }
            return .json(200, found.json)
        }
    }

    func deleteSubscription(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let subscription = name(request, after: "subscriptions")
        let removed = state.withLock { $0.subscriptions.removeValue(forKey: subscription) != nil }
        return removed ? .json(200, [:]) : Self.error(404, "NOT_FOUND", "Resource not found (resource=\(subscription)).")
    }

    func subscriptionVerb(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let verb = name(request, after: "subscriptions")
        guard let colon = verb.firstIndex(of: ":") else { return Self.error(404, "NOT_FOUND", "no method \(verb)") }
        let subscription = String(verb[..<colon]), method = String(verb[verb.index(after: colon)...])
        let body = (try? request.json()) ?? [:]
        return state.withLock { state in
            guard var entry = state.subscriptions[subscription] else { return Self.error(404, "NOT_FOUND", "Resource not found (resource=\(subscription)).") }
            defer { state.subscriptions[subscription] = entry }
            let now = ContinuousClock.now
            switch method {
            case "pull":
                let maximum = Int(body["maxMessages"]?.numberValue ?? 0)
                guard (1...1000).contains(maximum) else { return Self.error(400, "INVALID_ARGUMENT", "max_messages must be between 1 and 1000, got \(maximum).") }
                var out: [JSONValue] = []
                var index = 0
                while index < entry.messages.count, out.count < maximum {
                    var message = entry.messages[index]
                    if let until = message.leasedUntil, until > now { index += 1; continue }
                    if let limit = entry.maxAttempts, let dead = entry.deadLetterTopic, message.attempts >= limit {
                        // Pub/Sub's own forwarding, past the maximum attempts.
                        var forwarded = message
                        forwarded.attempts = 0; forwarded.leasedUntil = nil; forwarded.ackID = nil
                        for key in state.subscriptions.keys where state.subscriptions[key]?.topic == dead && key != subscription {
                            state.subscriptions[key]?.messages.append(forwarded)
                        }
                        entry.messages.remove(at: index)
                        continue
                    }
                    message.attempts += 1
                    message.leasedUntil = now + .seconds(entry.ackDeadline)
                    message.ackID = "ack-\(subscription)-\(message.id)-\(message.attempts)-\(state.nextID)"
                    state.nextID += 1
                    entry.messages[index] = message
                    var payload: [String: JSONValue] = ["data": .string(message.data), "messageId": .string(message.id), "publishTime": .string(message.publishTime)]
                    if !message.attributes.isEmpty { payload["attributes"] = .object(message.attributes) }
                    if let key = message.orderingKey { payload["orderingKey"] = .string(key) }
                    var received: [String: JSONValue] = ["ackId": .string(message.ackID!), "message": .object(payload)]
                    if entry.deadLetterTopic != nil { received["deliveryAttempt"] = .number(Double(message.attempts)) }
                    out.append(.object(received))
                    index += 1
                }
                return .json(200, out.isEmpty ? [:] : ["receivedMessages": .array(out)])
            case "acknowledge":
                let ids = Set(body["ackIds"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                guard !ids.isEmpty else { return Self.error(400, "INVALID_ARGUMENT", "No ack ids specified.") }
                // Expired ack ids are ignored, as Pub/Sub does without exactly-once delivery.
                entry.messages.removeAll { message in message.ackID.map(ids.contains) == true && (message.leasedUntil.map { $0 > now } ?? false) }
                return .json(200, [:])
            case "modifyAckDeadline":
                let ids = Set(body["ackIds"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                let seconds = Int(body["ackDeadlineSeconds"]?.numberValue ?? -1)
                guard (0...600).contains(seconds) else { return Self.error(400, "INVALID_ARGUMENT", "Invalid ack deadline given: \(seconds). The minimum is 0 seconds and the maximum is 600 seconds.") }
                for index in entry.messages.indices where entry.messages[index].ackID.map(ids.contains) == true {
                    guard entry.messages[index].leasedUntil.map({ $0 > now }) ?? false else { continue }
                    entry.messages[index].leasedUntil = now + .seconds(seconds)
                    if seconds == 0 { entry.messages[index].ackID = nil }
                }
                return .json(200, [:])
            default:
                return Self.error(404, "NOT_FOUND", "no method \(method)")
            }
        }
    }
}
