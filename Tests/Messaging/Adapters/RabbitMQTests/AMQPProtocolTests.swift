import Foundation
import NIOCore
import NimbusCore
@testable import NimbusMessagingRabbitMQ
import Testing

/// The AMQP 0-9-1 definition RabbitMQ generates its own codecs from (Fixtures/amqp-rabbitmq-0.9.1.json).
struct AMQPSpec {
    struct Method { var className: String; var name: String; var classID: Int; var id: Int; var arguments: [(name: String, type: String)]
                    var synchronous: Bool; var content: Bool }
    var methods: [Method] = []
    var properties: [(name: String, type: String)] = []

    static let shared: AMQPSpec = {
        let url = Bundle.module.url(forResource: "amqp-rabbitmq-0.9.1", withExtension: "json", subdirectory: "Fixtures")!
        let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var domains: [String: String] = [:]
        for pair in json["domains"] as! [[String]] { domains[pair[0]] = pair[1] }
        func resolve(_ type: String) -> String { domains[type].map { $0 == type ? $0 : resolve($0) } ?? type }
        var spec = AMQPSpec()
        for klass in json["classes"] as! [[String: Any]] {
            let className = klass["name"] as! String, classID = klass["id"] as! Int
            for method in klass["methods"] as! [[String: Any]] {
                let arguments = (method["arguments"] as! [[String: Any]]).map { argument in
                    (argument["name"] as! String, resolve((argument["type"] as? String) ?? (argument["domain"] as! String)))
                }
                spec.methods.append(Method(className: className, name: method["name"] as! String, classID: classID, id: method["id"] as! Int,
                                           arguments: arguments, synchronous: method["synchronous"] as? Bool ?? false,
                                           content: method["content"] as? Bool ?? false))
            }
            if className == "basic" {
                spec.properties = (klass["properties"] as! [[String: Any]]).map { ($0["name"] as! String, $0["type"] as! String) }
            }
        }
        return spec
    }()

    func method(classID: Int, id: Int) -> Method? { methods.first { $0.classID == classID && $0.id == id } }

    /// Decodes one frame's bytes by the specification alone: what an independent peer would read.
    func decode(_ bytes: [UInt8]) throws -> (type: UInt8, channel: UInt16, method: String?, values: [String: String], rest: [UInt8]) {
        var reader = Reader(bytes: bytes)
        let type = try reader.octet(), channel = UInt16(try reader.short())
        let size = Int(try reader.long())
        let payload = Array(bytes[7..<(7 + size)])
        guard bytes[7 + size] == 0xCE else { throw NimbusError(.invalidArgument, "no frame end") }
        let rest = Array(bytes[(8 + size)...])
        var body = Reader(bytes: payload)
        switch type {
        case 1:
            let classID = try body.short(), methodID = try body.short()
            guard let method = method(classID: classID, id: methodID) else { throw NimbusError(.invalidArgument, "unknown method \(classID).\(methodID)") }
            var values: [String: String] = [:]
            var bitByte = 0, bitIndex = 8
            for (name, type) in method.arguments {
                if type == "bit" {
                    if bitIndex == 8 { bitByte = try body.octet().asInt; bitIndex = 0 }
                    values[name] = String(bitByte & (1 << bitIndex) != 0)
                    bitIndex += 1
                    continue
                }
                bitIndex = 8
                values[name] = try body.value(of: type)
            }
            guard body.offset == payload.count else { throw NimbusError(.invalidArgument, "\(method.name): \(payload.count - body.offset) bytes left over") }
            return (type, channel, "\(method.className).\(method.name)", values, rest)
        case 2:
            var values: [String: String] = ["class-id": String(try body.short()), "weight": String(try body.short()), "body-size": String(try body.longlong())]
            let flags = try body.short()
            for (index, property) in properties.enumerated() where flags & (1 << (15 - index)) != 0 {
                values[property.name] = try body.value(of: property.type)
            }
            guard body.offset == payload.count else { throw NimbusError(.invalidArgument, "header: bytes left over") }
            return (type, channel, nil, values, rest)
        default:
            return (type, channel, nil, ["payload": String(decoding: payload, as: UTF8.self)], rest)
        }
    }

    struct Reader {
        var bytes: [UInt8]
        var offset = 0
        mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard offset + count <= bytes.count else { throw NimbusError(.invalidArgument, "cut short") }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }
        mutating func integer(_ count: Int) throws -> UInt64 { try take(count).reduce(0) { $0 << 8 | UInt64($1) } }
        mutating func octet() throws -> UInt8 { UInt8(try integer(1)) }
        mutating func short() throws -> Int { Int(try integer(2)) }
        mutating func long() throws -> UInt64 { try integer(4) }
        mutating func longlong() throws -> UInt64 { try integer(8) }
        mutating func value(of type: String) throws -> String {
            switch type {
            case "octet": return String(try octet())
            case "short": return String(try short())
            case "long": return String(try long())
            case "longlong", "timestamp": return String(try longlong())
            case "shortstr": return String(decoding: try take(Int(try octet())), as: UTF8.self)
            case "longstr": return String(decoding: try take(Int(try long())), as: UTF8.self)
            case "table": return try table()
            default: throw NimbusError(.invalidArgument, "type \(type)")
            }
        }
        /// A table written out as `{name=value,...}` with each value's type tag, e.g. `{n=I:-5}`.
        mutating func table() throws -> String {
            let size = Int(try long()); let end = offset + size
            var fields: [String] = []
            while offset < end {
                let name = String(decoding: try take(Int(try octet())), as: UTF8.self)
                fields.append("\(name)=\(try field())")
            }
            guard offset == end else { throw NimbusError(.invalidArgument, "table overruns") }
            return "{" + fields.joined(separator: ",") + "}"
        }
        mutating func field() throws -> String {
            let tag = Character(Unicode.Scalar(try octet()))
            switch tag {
            case "t": return "t:\(try octet() != 0)"
            case "b": return "b:\(Int8(bitPattern: try octet()))"
            case "B": return "B:\(try octet())"
            case "s": return "s:\(Int16(truncatingIfNeeded: try integer(2)))"
            case "u": return "u:\(try integer(2))"
            case "I": return "I:\(Int32(truncatingIfNeeded: try integer(4)))"
            case "i": return "i:\(try integer(4))"
            case "l": return "l:\(Int64(bitPattern: try integer(8)))"
            case "f": return "f:\(Float(bitPattern: UInt32(try integer(4))))"
            case "d": return "d:\(Double(bitPattern: try integer(8)))"
            case "D": return "D:\(try octet()):\(try integer(4))"
            case "S": return "S:" + String(decoding: try take(Int(try long())), as: UTF8.self)
            case "x": return "x:" + (try take(Int(try long()))).map { String($0) }.joined(separator: ".")
            case "T": return "T:\(try integer(8))"
            case "V": return "V"
            case "F": return "F:" + (try table())
            case "A":
                let size = Int(try long()); let end = offset + size
                var items: [String] = []
                while offset < end { items.append(try field()) }
                return "A:[" + items.joined(separator: ";") + "]"
            default: throw NimbusError(.invalidArgument, "unknown field type \(tag)")
            }
        }
    }
}

extension UInt8 { var asInt: Int { Int(self) } }

@Suite("AMQP 0-9-1 wire format (checked against RabbitMQ's protocol definition)")
struct AMQPProtocolTests {
    func bytes(_ frame: AMQPFrame) -> [UInt8] {
        var buffer = ByteBuffer()
        AMQPWire.write(frame, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test("the method table is the specification's: every method of the classes spoken, ids, argument names and types, sync and content flags")
    func methodTable() {
        let spec = AMQPSpec.shared
        let spoken = Set(["connection", "channel", "exchange", "queue", "basic", "confirm", "tx"])
        let expected = spec.methods.filter { spoken.contains($0.className) }
        #expect(expected.count == AMQPMethodSignature.all.count)
        for method in expected {
            let name = "\(method.className).\(method.name)"
            guard let ours = AMQPMethodSignature.byID[UInt32(method.classID) << 16 | UInt32(method.id)] else {
                Issue.record("\(name) (\(method.classID).\(method.id)) is missing"); continue
            }
            #expect(ours.name == name)
            #expect(ours.arguments.map(\.name) == method.arguments.map(\.name), "\(name)")
            #expect(ours.arguments.map(\.type.rawValue) == method.arguments.map(\.type), "\(name)")
            #expect(ours.synchronous == method.synchronous, "\(name) synchronous")
            #expect(ours.content == method.content, "\(name) content")
        }
        // The content properties, in flag order.
        #expect(spec.properties.map(\.type) == AMQPWire.propertyOrder.map(\.type.rawValue))
    }

    @Test("every method frame we send decodes by the specification to the values we put in (bits packed, tables typed)")
    func methodsDecodeBySpec() throws {
        let table: AMQPTable = ["x-queue-type": .string("quorum"), "n": .int32(-5), "u": .uint32(7), "big": .int64(-9_000_000_000), "ok": .bool(true),
                                "b": .int8(-2), "B": .uint8(200), "s": .int16(-300), "us": .uint16(60_000), "f": .float(1.5), "d": .double(-2.25),
                                "dec": .decimal(scale: 2, value: 12345), "raw": .bytes([0, 255]), "when": .timestamp(1_700_000_000),
                                "nest": .table(["ü": .string("é")]), "list": .array([.int32(1), .string("two"), .void])]
        let cases: [(AMQPMethod, [String: String])] = [
            (AMQPMethod("queue.declare", ["queue": .shortstr("orders"), "durable": .bit(true), "auto-delete": .bit(true), "arguments": .table(table)]),
             ["queue": "orders", "passive": "false", "durable": "true", "exclusive": "false", "auto-delete": "true", "nowait": "false", "ticket": "0",
              "arguments": "{x-queue-type=S:quorum,n=I:-5,u=i:7,big=l:-9000000000,ok=t:true,b=b:-2,B=B:200,s=s:-300,us=u:60000,f=f:1.5,d=d:-2.25,"
                + "dec=D:2:12345,raw=x:0.255,when=T:1700000000,nest=F:{ü=S:é},list=A:[I:1;S:two;V]}"]),
            (AMQPMethod("basic.consume", ["queue": .shortstr("q"), "consumer-tag": .shortstr("c1"), "no-ack": .bit(true), "exclusive": .bit(true)]),
             ["queue": "q", "consumer-tag": "c1", "no-local": "false", "no-ack": "true", "exclusive": "true", "nowait": "false", "arguments": "{}", "ticket": "0"]),
            (AMQPMethod("basic.nack", ["delivery-tag": .longlong(1 << 40), "multiple": .bit(false), "requeue": .bit(true)]),
             ["delivery-tag": "1099511627776", "multiple": "false", "requeue": "true"]),
            (AMQPMethod("exchange.declare", ["exchange": .shortstr("t"), "type": .shortstr("fanout"), "durable": .bit(true), "internal": .bit(true)]),
             ["exchange": "t", "type": "fanout", "passive": "false", "durable": "true", "auto-delete": "false", "internal": "true", "nowait": "false",
              "arguments": "{}", "ticket": "0"]),
            (AMQPMethod("connection.tune-ok", ["channel-max": .short(2047), "frame-max": .long(131_072), "heartbeat": .short(30)]),
             ["channel-max": "2047", "frame-max": "131072", "heartbeat": "30"]),
            (AMQPMethod("basic.qos", ["prefetch-count": .short(100)]), ["prefetch-size": "0", "prefetch-count": "100", "global": "false"]),
        ]
        for (method, expected) in cases {
            let decoded = try AMQPSpec.shared.decode(bytes(.method(channel: 9, method)))
            #expect(decoded.type == 1 && decoded.channel == 9 && decoded.method == method.name && decoded.rest.isEmpty)
            #expect(decoded.values == expected, "\(method.name)")
            // And our own reader reads back what it wrote.
            var buffer = ByteBuffer(bytes: bytes(.method(channel: 9, method)))
            #expect(try AMQPWire.readFrame(&buffer, maximumSize: 1 << 20) == .method(channel: 9, method))
        }
    }

    @Test("a publish is a method, a content header with the properties present, and body frames cut at frame-max")
    func publishFrames() throws {
        let properties = AMQPProperties(contentType: "text/plain", headers: ["k": .string("v")], deliveryMode: 2, messageID: "m-1", timestamp: 1_700_000_000)
        var buffer = ByteBuffer()
        let body = ByteBuffer(string: String(repeating: "abcdefghij", count: 1000))     // 10,000 bytes
        AMQPWire.writeContent(AMQPMethod("basic.publish", ["exchange": .shortstr("orders"), "mandatory": .bit(true)]), channel: 3,
                              properties: properties, body: body, frameMax: 4096, into: &buffer)
        var rest = Array(buffer.readableBytesView)
        let method = try AMQPSpec.shared.decode(rest)
        #expect(method.method == "basic.publish" && method.values["exchange"] == "orders" && method.values["mandatory"] == "true"
                && method.values["immediate"] == "false")
        rest = method.rest
        let header = try AMQPSpec.shared.decode(rest)
        #expect(header.type == 2 && header.channel == 3)
        #expect(header.values == ["class-id": "60", "weight": "0", "body-size": "10000", "content-type": "text/plain", "headers": "{k=S:v}",
                                  "delivery-mode": "2", "message-id": "m-1", "timestamp": "1700000000"])
        rest = header.rest
        var sizes: [Int] = [], text = ""
        while !rest.isEmpty {
            let frame = try AMQPSpec.shared.decode(rest)
            #expect(frame.type == 3)
            sizes.append(frame.values["payload"]!.utf8.count)
            text += frame.values["payload"]!
            rest = frame.rest
        }
        #expect(sizes == [4088, 4088, 1824])
        #expect(text == String(buffer: body))
        // Our reader gets the same properties back.
        var again = buffer
        _ = try AMQPWire.readFrame(&again, maximumSize: 4096)
        guard case .header(_, _, let size, let read)? = try AMQPWire.readFrame(&again, maximumSize: 4096) else { Issue.record("no header"); return }
        #expect(size == 10_000 && read == properties)
    }

    @Test("fixed bytes: the protocol header and a heartbeat")
    func fixedBytes() {
        #expect(AMQPWire.protocolHeader == Array("AMQP".utf8) + [0, 0, 9, 1])
        #expect(bytes(.heartbeat) == [8, 0, 0, 0, 0, 0, 0, 0xCE])
    }

    @Test("a frame split anywhere waits for the rest; nothing is consumed early")
    func partialFrames() throws {
        let whole = bytes(.method(channel: 1, AMQPMethod("basic.deliver", ["consumer-tag": .shortstr("c"), "delivery-tag": .longlong(5),
                                                                           "exchange": .shortstr("e")])))
        for cut in 0..<whole.count {
            var buffer = ByteBuffer(bytes: whole.prefix(cut))
            #expect(try AMQPWire.readFrame(&buffer, maximumSize: 4096) == nil, "cut at \(cut)")
            #expect(buffer.readableBytes == cut)
        }
        var buffer = ByteBuffer(bytes: whole)
        guard case .method(1, let method)? = try AMQPWire.readFrame(&buffer, maximumSize: 4096) else { Issue.record("no method"); return }
        #expect(method.integer("delivery-tag") == 5 && method.string("consumer-tag") == "c" && method.string("exchange") == "e")
    }

    @Test("hostile frames are errors, never crashes: no frame end, oversized, unknown method or field type, tables longer than their frame, deep nesting")
    func hostile() {
        var nested = ByteBuffer()
        var table: AMQPTable = ["x": .void]
        for _ in 0..<40 { table = ["n": .table(table)] }
        AMQPWire.write(.method(channel: 1, AMQPMethod("queue.declare", ["arguments": .table(table)])), into: &nested)
        let good = bytes(.method(channel: 1, AMQPMethod("basic.ack", ["delivery-tag": .longlong(1)])))
        var noEnd = good; noEnd[noEnd.count - 1] = 0
        var unknownMethod = good; unknownMethod[9] = 0x7F
        let cutTable: [UInt8] = [1, 0, 1, 0, 0, 0, 12, 0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xCE]
        let badTag = [1, 0, 1, 0, 0, 0, 15] + [0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0x61, 0x5A] + [0xCE] as [UInt8]
        let leftOver = [1, 0, 1, 0, 0, 0, 13] + [0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 7] + [0xCE] as [UInt8]
        for (name, frame) in [("no frame end", noEnd), ("oversized", [1, 0, 1, 0x7F, 0, 0, 0] + [UInt8](repeating: 0, count: 8)),
                              ("unknown method", unknownMethod), ("table longer than frame", cutTable), ("unknown field type", badTag), ("bytes after the arguments", leftOver),
                              ("deep nesting", Array(nested.readableBytesView)), ("unknown frame type", [9, 0, 0, 0, 0, 0, 0, 0xCE]),
                              ("protocol header back", Array("AMQP".utf8) + [0, 0, 9, 1])] {
            var buffer = ByteBuffer(bytes: frame)
            #expect(throws: AMQPFrameError.self, "\(name)") { _ = try AMQPWire.readFrame(&buffer, maximumSize: 1 << 20) }
        }
    }

    @Test("errors from the server map to codes that say what to do")
    func errorMapping() {
        func error(_ code: UInt16, _ text: String, connection: Bool = false) -> NimbusError {
            AMQPChannel.error(for: AMQPMethod("channel.close", ["reply-code": .short(code), "reply-text": .shortstr(text), "class-id": .short(50),
                                                                 "method-id": .short(10)]), endpoint: "h:1", connectionLevel: connection, channel: 4)
        }
        #expect(error(404, "NOT_FOUND - no queue 'q'").code == .notFound)
        #expect(error(404, "NOT_FOUND - no queue 'q'").message.contains("queue.declare"))
        #expect(error(406, "PRECONDITION_FAILED - inequivalent arg").code == .failedPrecondition)
        #expect(error(403, "ACCESS_REFUSED").code == .permissionDenied)
        #expect(error(403, "ACCESS_REFUSED - Login was refused", connection: true).code == .unauthenticated)
        #expect(error(320, "CONNECTION_FORCED - shutdown", connection: true).code == .unavailable)
        #expect(error(530, "NOT_ALLOWED - vhost x not found", connection: true).code == .permissionDenied)
    }
}
