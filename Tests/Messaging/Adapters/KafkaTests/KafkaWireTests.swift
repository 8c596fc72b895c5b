import Foundation
import NIOCore
import NimbusCore
@testable import NimbusMessagingKafka
import NimbusTesting
import Testing

/// Reads Apache Kafka's JSON message definitions (the committed fixtures) into schemas.
enum KafkaDefinitions {
    static func load(_ name: String) throws -> KafkaSchema {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/kafka-message") else {
            throw NimbusError(.notFound, "Fixtures/kafka-message/\(name).json is missing")
        }
        let text = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
        let json = try JSONValue.parse(Data(text.utf8))
        var common: [String: [JSONValue]] = [:]
        for item in json["commonStructs"]?.arrayValue ?? [] { common[item["name"]?.stringValue ?? ""] = item["fields"]?.arrayValue ?? [] }
        return KafkaSchema(json["name"]?.stringValue ?? name, apiKey: json["apiKey"]?.numberValue.map { Int($0) },
                           valid: json["validVersions"]?.stringValue ?? "0", flexible: json["flexibleVersions"]?.stringValue ?? "none",
                           try fields(json["fields"]?.arrayValue ?? [], common))
    }

    static func fields(_ items: [JSONValue], _ common: [String: [JSONValue]]) throws -> [KafkaField] {
        try items.map { item in
            let kind = item["type"]?.stringValue ?? ""
            let array = kind.hasPrefix("[]"), element = array ? String(kind.dropFirst(2)) : kind
            let primitive: [String: KafkaFieldType] = ["bool": .bool, "int8": .int8, "int16": .int16, "int32": .int32, "int64": .int64, "uint16": .uint16,
                                                       "uint32": .uint32, "float64": .float64, "string": .string, "bytes": .bytes, "uuid": .uuid,
                                                       "records": .records]
            var type: KafkaFieldType
            if let known = primitive[element] { type = known }
            else {
                guard let members = item["fields"]?.arrayValue ?? common[element] else { throw NimbusError(.invalidArgument, "unknown type \(element)") }
                type = .structure(element, try fields(members, common))
            }
            if array { type = .array(type) }
            let defaultValue: String? = switch item["default"] {
            case .string(let text)?: text
            case .bool(let flag)?: flag ? "true" : "false"
            case .number(let number)?: String(Int(number))
            default: nil
            }
            return KafkaField(item["name"]?.stringValue ?? "", type, item["versions"]?.stringValue ?? "0+",
                              nullable: item["nullableVersions"]?.stringValue ?? "none", tagged: item["taggedVersions"]?.stringValue ?? "none",
                              tag: item["tag"]?.numberValue.map { Int($0) }, default: defaultValue)
        }
    }
}

@Suite("Kafka wire format: schemas, primitives, record batches")
struct KafkaWireTests {
    @Test("the generated schemas equal Apache Kafka's definitions, field by field")
    func schemasMatchDefinitions() throws {
        #expect(KafkaSchema.all.count == 40)
        for schema in KafkaSchema.all {
            #expect(try KafkaDefinitions.load(schema.name) == schema, "\(schema.name)")
        }
    }

    @Test("CRC-32C test vectors (RFC 3720 B.4 and the check value), whole and in pieces")
    func crc32c() {
        #expect(CRC32C.checksum("123456789".utf8) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for cut in [0, 1, 7, 8, 9, 500, 999] {
            var crc = CRC32C()
            crc.update(long[..<cut])
            crc.update(long[cut...])
            #expect(crc.value == CRC32C.checksum(long), "cut at \(cut)")
        }
    }

    @Test("varints: zigzag and unsigned, at their edges; too long is an error")
    func varints() throws {
        for value: Int64 in [0, -1, 1, 63, -64, 64, 300, -300, Int64(Int32.max), Int64(Int32.min), .max, .min] {
            var buffer = ByteBuffer()
            KafkaPrimitives.writeVarint(value, into: &buffer)
            #expect(buffer.readableBytes == KafkaPrimitives.varintSize(value))
            #expect(try KafkaPrimitives.readVarint(&buffer, "test") == value)
        }
        var zero = ByteBuffer(); KafkaPrimitives.writeVarint(-1, into: &zero)
        #expect(Array(zero.readableBytesView) == [0x01])
        var threeHundred = ByteBuffer(); KafkaPrimitives.writeUnsignedVarint(300, into: &threeHundred)
        #expect(Array(threeHundred.readableBytesView) == [0xAC, 0x02])
        var tooLong = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 11))
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaPrimitives.readVarint(&tooLong, "test") }
        var tooLongUnsigned = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 6))
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaPrimitives.readUnsignedVarint(&tooLongUnsigned, "test") }
    }

    @Test("a record batch reads back as written, CRC checked; a flipped bit is refused; a batch cut at the end is left out")
    func recordBatchRoundTrip() throws {
        let records = [KafkaRecord(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v1"), headers: [.init("h", ByteBuffer(string: "x")), .init("n", nil)],
                                   timestamp: 1_700_000_000_000),
                       KafkaRecord(value: nil, timestamp: 1_700_000_000_500),
                       KafkaRecord(value: ByteBuffer(repeating: 7, count: 300), timestamp: 1_699_999_999_000)]
        var buffer = ByteBuffer()
        KafkaRecordBatch(baseOffset: 40, producerID: 9, producerEpoch: 1, baseSequence: 5, records: records).encode(into: &buffer)
        let second = KafkaRecordBatch(baseOffset: 43, records: [KafkaRecord(value: ByteBuffer(string: "next"), timestamp: 1)])
        second.encode(into: &buffer)
        let batches = try KafkaRecordBatch.decodeAll(buffer)
        #expect(batches.count == 2)
        #expect(batches[0].records.map(\.offset) == [40, 41, 42])
        #expect(batches[0].records.map(\.value) == records.map(\.value))
        #expect(batches[0].records.map(\.timestamp) == records.map(\.timestamp))
        #expect(batches[0].records[0].headers == records[0].headers && batches[0].records[0].key == ByteBuffer(string: "k"))
        #expect(batches[0].producerID == 9 && batches[0].baseSequence == 5 && batches[0].producerEpoch == 1)
        #expect(batches[1].records.map(\.offset) == [43])

        var cut = buffer
        cut.moveWriterIndex(to: buffer.writerIndex - 3)
        #expect(try KafkaRecordBatch.decodeAll(cut).count == 1)

        var flipped = buffer
        flipped.setInteger(flipped.getInteger(at: 70, as: UInt8.self)! ^ 0x10, at: 70)
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaRecordBatch.decodeAll(flipped) }
    }

    @Test("every message round-trips through the interpreter at every valid version (defaults filled in)")
    func everyVersionRoundTrips() throws {
        for schema in KafkaSchema.all {
            for version in schema.validVersions.lowest...min(schema.validVersions.highest, 20) {
                var buffer = ByteBuffer()
                try schema.encode(KafkaStruct(), version: version, into: &buffer)
                let decoded = try schema.decode(&buffer, version: version)
                #expect(buffer.readableBytes == 0, "\(schema.name) v\(version)")
                var again = ByteBuffer()
                try schema.encode(decoded, version: version, into: &again)
                var first = ByteBuffer()
                try schema.encode(KafkaStruct(), version: version, into: &first)
                #expect(again == first, "\(schema.name) v\(version)")
            }
        }
    }

    @Test("hostile bytes are errors, never crashes or huge allocations")
    func hostile() {
        // An array that claims two billion elements in four bytes.
        var lying = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaSchema.metadataResponse.decode(&lying, version: 1) }
        // A string longer than what is left.
        var cut = ByteBuffer(bytes: [0, 0, 0, 1, 0, 0, 0, 1, 0, 50, 65])
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaSchema.metadataResponse.decode(&cut, version: 1) }
        // A non-nullable string sent as null.
        var null = ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF])
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaSchema.metadataResponse.decode(&null, version: 1) }
        // Tagged fields out of order.
        var tags = ByteBuffer(bytes: [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0])
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaSchema.apiVersionsResponse.decode(&tags, version: 3) }
        // A record batch with an impossible length, and one whose record count lies.
        var batch = ByteBuffer()
        KafkaRecordBatch(records: [KafkaRecord(value: ByteBuffer(string: "x"), timestamp: 0)]).encode(into: &batch)
        var short = batch
        short.setInteger(Int32(3), at: 8)
        #expect(throws: KafkaProtocolError.self) { _ = try KafkaRecordBatch.decodeAll(short) }
        #expect(throws: NimbusError.self) { try KafkaSchema.produceRequest.encode(["Acks": "all"], version: 9, into: &batch) }
        #expect(throws: NimbusError.self) { try KafkaSchema.produceRequest.encode([:], version: 99, into: &batch) }
        let misspelt = #expect(throws: NimbusError.self) { try KafkaSchema.createTopicsRequest.encode(["TimeoutMs": 5], version: 5, into: &batch) }
        #expect(misspelt?.message.contains("timeoutMs") == true)
    }
}
