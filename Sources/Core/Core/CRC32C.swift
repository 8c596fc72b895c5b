/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka record batches,
/// iSCSI, ext4, Google Cloud Storage and S3's `x-amz-checksum-crc32c`.
///
/// Slicing-by-8: eight table lookups per eight bytes.
///
/// ```swift
/// CRC32C.checksum("123456789".utf8)    // 0xE3069283
/// var crc = CRC32C(); crc.update(part1); crc.update(part2); crc.value
/// ```
public struct CRC32C: Sendable, Hashable {
    private var state: UInt32 = 0xFFFF_FFFF

    /// Starts a checksum.
    public init() {}

    /// The checksum of everything given so far.
    public var value: UInt32 { ~state }

    /// Adds `bytes`.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil { update(Array(bytes)) }
    }

    /// Adds the bytes of `buffer`.
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        var crc = state
        var index = 0
        let count = buffer.count
        Self.tables.withUnsafeBufferPointer { table in
            while count - index >= 8 {
                let low = buffer.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian ^ crc
                let high = buffer.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self).littleEndian
                crc = table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(buffer[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        state = crc
    }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The checksum of `a` followed by `b`, from `a`'s checksum, `b`'s checksum and `b`'s length — so parts
    /// checksummed apart (in parallel) give the whole object's without a second pass over its bytes.
    ///
    /// ```swift
    /// CRC32C.combine(CRC32C.checksum(a), CRC32C.checksum(b), length: b.count) == CRC32C.checksum(a + b)
    /// ```
    public static func combine(_ first: UInt32, _ second: UInt32, length: Int) -> UInt32 {
        guard length > 0 else { return first }
        // Appending `length` zero bytes to `first` is a linear map over GF(2): apply the operator for one
        // zero byte's powers of two (squared in turn) for each set bit of the length, then add `second`.
        var odd = [UInt32](repeating: 0, count: 32), even = [UInt32](repeating: 0, count: 32)
        odd[0] = 0x82F6_3B78                          // one zero bit
        for bit in 1..<32 { odd[bit] = 1 << (bit - 1) }
        square(&even, odd)                            // two zero bits
        square(&odd, even)                            // four zero bits
        var crc = first
        var remaining = length
        while remaining != 0 {
            square(&even, odd)                        // the first pass: one zero byte
            if remaining & 1 != 0 { crc = times(even, crc) }
            remaining >>= 1
            guard remaining != 0 else { break }
            square(&odd, even)
            if remaining & 1 != 0 { crc = times(odd, crc) }
            remaining >>= 1
        }
        return crc ^ second
    }

    private static func times(_ matrix: [UInt32], _ vector: UInt32) -> UInt32 {
        var sum: UInt32 = 0, vector = vector, row = 0
        while vector != 0 {
            if vector & 1 != 0 { sum ^= matrix[row] }
            vector >>= 1
            row += 1
        }
        return sum
    }

    private static func square(_ result: inout [UInt32], _ matrix: [UInt32]) {
        for row in 0..<32 { result[row] = times(matrix, matrix[row]) }
    }

    /// Eight 256-entry tables: table k maps a byte to its CRC after k further zero bytes.
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[byte] = crc
        }
        for byte in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
