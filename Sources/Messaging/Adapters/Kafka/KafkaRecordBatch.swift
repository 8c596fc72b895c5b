import NIOCore
import NimbusCore

/// One record of a batch.
public struct KafkaRecord: Sendable, Hashable {
    /// A record header: a string key and an optional value.
    public struct Header: Sendable, Hashable {
        public var key: String
        public var value: ByteBuffer?
        public init(_ key: String, _ value: ByteBuffer?) { self.key = key; self.value = value }
    }

    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [Header]
    /// Milliseconds since 1970.
    public var timestamp: Int64
    /// Its offset in the partition (set when read from a fetched batch).
    public var offset: Int64

    public init(key: ByteBuffer? = nil, value: ByteBuffer?, headers: [Header] = [], timestamp: Int64, offset: Int64 = 0) {
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.offset = offset
    }
}

/// A record batch, format v2 (magic 2): what Produce sends and Fetch returns.
///
/// ```swift
/// var buffer = ByteBuffer()
/// KafkaRecordBatch(records: [KafkaRecord(value: ByteBuffer(string: "hi"), timestamp: now)]).encode(into: &buffer)
/// let batches = try KafkaRecordBatch.decodeAll(buffer)
/// ```
public struct KafkaRecordBatch: Sendable, Hashable {
    public var baseOffset: Int64
    public var partitionLeaderEpoch: Int32
    /// Bits 0–2 compression (only 0, none, is written), bit 3 timestamp type, bit 4 transactional, bit 5 control.
    public var attributes: Int16
    /// The idempotent producer's id, epoch and the sequence of the first record (-1 when not idempotent).
    public var producerID: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var records: [KafkaRecord]

    public init(baseOffset: Int64 = 0, partitionLeaderEpoch: Int32 = -1, attributes: Int16 = 0, producerID: Int64 = -1, producerEpoch: Int16 = -1,
                baseSequence: Int32 = -1, records: [KafkaRecord]) {
        self.baseOffset = baseOffset
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.attributes = attributes
        self.producerID = producerID
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.records = records
    }

    /// The compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    public var compression: Int { Int(attributes & 0x07) }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }

    /// Bytes from the magic byte's end (attributes) to the batch's end are covered by the CRC.
    static let headerSize = 61

    /// Appends the batch, CRC-32C included.
    public func encode(into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        let firstTimestamp = records.first?.timestamp ?? 0
        let maxTimestamp = records.map(\.timestamp).max() ?? firstTimestamp
        buffer.writeInteger(baseOffset)
        buffer.writeInteger(Int32(0))                       // batch length, set below
        buffer.writeInteger(partitionLeaderEpoch)
        buffer.writeInteger(UInt8(2))                       // magic
        buffer.writeInteger(UInt32(0))                      // CRC, set below
        let crcStart = buffer.writerIndex
        buffer.writeInteger(attributes & ~0x07)             // no compression
        buffer.writeInteger(Int32(max(records.count - 1, 0)))
        buffer.writeInteger(firstTimestamp)
        buffer.writeInteger(maxTimestamp)
        buffer.writeInteger(producerID)
        buffer.writeInteger(producerEpoch)
        buffer.writeInteger(baseSequence)
        buffer.writeInteger(Int32(records.count))
        for (index, record) in records.enumerated() {
            Self.encode(record, offsetDelta: Int64(index), timestampDelta: record.timestamp - firstTimestamp, into: &buffer)
        }
        buffer.setInteger(Int32(buffer.writerIndex - start - 12), at: start + 8)
        let crc = buffer.withUnsafeReadableBytes { bytes in
            var crc = CRC32C()
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[(crcStart - buffer.readerIndex)...]))
            return crc.value
        }
        buffer.setInteger(crc, at: crcStart - 4)
    }

    static func encode(_ record: KafkaRecord, offsetDelta: Int64, timestampDelta: Int64, into buffer: inout ByteBuffer) {
        var size = 1 + KafkaPrimitives.varintSize(timestampDelta) + KafkaPrimitives.varintSize(offsetDelta)
        size += record.key.map { KafkaPrimitives.varintSize(Int64($0.readableBytes)) + $0.readableBytes } ?? 1
        size += record.value.map { KafkaPrimitives.varintSize(Int64($0.readableBytes)) + $0.readableBytes } ?? 1
        size += KafkaPrimitives.varintSize(Int64(record.headers.count))
        for header in record.headers {
            let keyLength = header.key.utf8.count
            size += KafkaPrimitives.varintSize(Int64(keyLength)) + keyLength
            size += header.value.map { KafkaPrimitives.varintSize(Int64($0.readableBytes)) + $0.readableBytes } ?? 1
        }
        KafkaPrimitives.writeVarint(Int64(size), into: &buffer)
        buffer.writeInteger(UInt8(0))                       // record attributes (unused)
        KafkaPrimitives.writeVarint(timestampDelta, into: &buffer)
        KafkaPrimitives.writeVarint(offsetDelta, into: &buffer)
        writeBytes(record.key, into: &buffer)
        writeBytes(record.value, into: &buffer)
        KafkaPrimitives.writeVarint(Int64(record.headers.count), into: &buffer)
        for header in record.headers {
            KafkaPrimitives.writeVarint(Int64(header.key.utf8.count), into: &buffer)
            buffer.writeString(header.key)
            writeBytes(header.value, into: &buffer)
        }
    }

    static func writeBytes(_ bytes: ByteBuffer?, into buffer: inout ByteBuffer) {
        guard let bytes else { KafkaPrimitives.writeVarint(-1, into: &buffer); return }
        KafkaPrimitives.writeVarint(Int64(bytes.readableBytes), into: &buffer)
        buffer.writeImmutableBuffer(bytes)
    }

    /// Reads every whole batch in a Fetch response's records; a batch cut off at the end (the broker
    /// stops at the byte limit) is left out.
    /// - Throws: ``KafkaProtocolError`` for a wrong CRC, a magic other than 2, compressed batches, or records that do not fit.
    public static func decodeAll(_ records: ByteBuffer) throws -> [KafkaRecordBatch] {
        var buffer = records
        var batches: [KafkaRecordBatch] = []
        while buffer.readableBytes >= 12 {
            guard let length = buffer.getInteger(at: buffer.readerIndex + 8, as: Int32.self), length >= 49 else {
                throw KafkaProtocolError("a record batch has an impossible length")
            }
            guard buffer.readableBytes >= 12 + Int(length) else { break }
            var batch = buffer.readSlice(length: 12 + Int(length))!
            batches.append(try decode(&batch))
        }
        return batches
    }

    static func decode(_ buffer: inout ByteBuffer) throws -> KafkaRecordBatch {
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let value = buffer.readInteger(as: T.self) else { throw KafkaProtocolError("a record batch is cut short") }
            return value
        }
        let baseOffset = try take(Int64.self)
        _ = try take(Int32.self)
        let leaderEpoch = try take(Int32.self)
        let magic = try take(Int8.self)
        guard magic == 2 else { throw KafkaProtocolError("record batch magic \(magic) (only v2 is read)") }
        let crc = try take(UInt32.self)
        let computed = buffer.withUnsafeReadableBytes { bytes in
            var check = CRC32C()
            check.update(bytes)
            return check.value
        }
        guard computed == crc else {
            throw KafkaProtocolError("a record batch at offset \(baseOffset) fails its CRC-32C (0x\(String(crc, radix: 16)) stored, 0x\(String(computed, radix: 16)) computed)")
        }
        let attributes = try take(Int16.self)
        guard attributes & 0x07 == 0 else {
            throw KafkaProtocolError("a record batch at offset \(baseOffset) is compressed (codec \(attributes & 0x07)); compressed batches are not read yet")
        }
        _ = try take(Int32.self)                            // last offset delta
        let firstTimestamp = try take(Int64.self)
        _ = try take(Int64.self)                            // max timestamp
        let producerID = try take(Int64.self), producerEpoch = try take(Int16.self), baseSequence = try take(Int32.self)
        let count = try take(Int32.self)
        guard count >= 0, Int(count) <= buffer.readableBytes else { throw KafkaProtocolError("a record batch claims \(count) records in \(buffer.readableBytes) bytes") }
        var records: [KafkaRecord] = []
        records.reserveCapacity(Int(count))
        for _ in 0..<count {
            let size = try KafkaPrimitives.readVarint(&buffer, "record")
            guard size >= 0, var record = buffer.readSlice(length: Int(size)) else { throw KafkaProtocolError("a record is cut short") }
            _ = record.readInteger(as: UInt8.self)
            let timestampDelta = try KafkaPrimitives.readVarint(&record, "record")
            let offsetDelta = try KafkaPrimitives.readVarint(&record, "record")
            let key = try readBytes(&record)
            let value = try readBytes(&record)
            let headerCount = try KafkaPrimitives.readVarint(&record, "record")
            guard headerCount >= 0, headerCount <= record.readableBytes else { throw KafkaProtocolError("a record claims \(headerCount) headers") }
            var headers: [KafkaRecord.Header] = []
            for _ in 0..<headerCount {
                guard let keyBytes = try readBytes(&record) else { throw KafkaProtocolError("a record header has a null key") }
                headers.append(.init(String(buffer: keyBytes), try readBytes(&record)))
            }
            records.append(KafkaRecord(key: key, value: value, headers: headers, timestamp: firstTimestamp + timestampDelta,
                                       offset: baseOffset + offsetDelta))
        }
        return KafkaRecordBatch(baseOffset: baseOffset, partitionLeaderEpoch: leaderEpoch, attributes: attributes, producerID: producerID,
                                producerEpoch: producerEpoch, baseSequence: baseSequence, records: records)
    }

    static func readBytes(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let length = try KafkaPrimitives.readVarint(&buffer, "record")
        if length < 0 { return nil }
        guard let bytes = buffer.readSlice(length: Int(length)) else { throw KafkaProtocolError("a record's key, value or header is cut short") }
        return bytes
    }
}
