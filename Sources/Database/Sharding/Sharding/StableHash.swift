/// A 64-bit hash that is the same in every process, on every machine and in every release:
/// FNV-1a over the bytes, finished with the SplitMix64 mixer so nearby keys spread over the whole
/// range. (Swift's `Hasher` is seeded per process, so it cannot place keys on shards.)
///
/// ```swift
/// let h = StableHash.hash("user:42")            // always 0x… for this key
/// ```
public enum StableHash {
    /// The hash of a string's UTF-8 bytes.
    public static func hash(_ key: String) -> UInt64 {
        var copy = key
        return copy.withUTF8 { hash(bytes: $0) }
    }

    /// The hash of bytes, with an optional seed.
    public static func hash(bytes: UnsafeBufferPointer<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
        return mix(value)
    }

    /// The hash of a string with a seed (a second, independent hash of the same key).
    public static func hash(_ key: String, seed: UInt64) -> UInt64 {
        var copy = key
        return copy.withUTF8 { hash(bytes: $0, seed: seed) }
    }

    /// SplitMix64's finalizer: a bijection that mixes every input bit into every output bit.
    @inlinable
    public static func mix(_ input: UInt64) -> UInt64 {
        var z = input &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
