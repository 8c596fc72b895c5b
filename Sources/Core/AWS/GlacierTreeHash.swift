import Crypto
import Foundation
import NIOCore

/// Amazon Glacier's SHA-256 tree hash (`x-amz-sha256-tree-hash`): SHA-256 of each 1 MiB chunk, then
/// hashes of concatenated pairs, level by level (an odd one out is carried up), to one root.
///
/// ```swift
/// let checksum = GlacierTreeHash.hex(of: bytes)    // for UploadArchive, and to check GetJobOutput
/// ```
public enum GlacierTreeHash {
    static let chunk = 1024 * 1024

    /// The tree hash of `bytes`, in lowercase hex.
    public static func hex(of bytes: ByteBuffer) -> String {
        var level: [SHA256.Digest] = []
        bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            repeat {
                let end = min(buffer.count, offset + chunk)
                level.append(SHA256.hash(data: UnsafeRawBufferPointer(rebasing: buffer[offset..<end])))
                offset = end
            } while offset < buffer.count
        }
        while level.count > 1 {
            var next: [SHA256.Digest] = []
            next.reserveCapacity((level.count + 1) / 2)
            var index = 0
            while index < level.count {
                if index + 1 < level.count {
                    var hasher = SHA256()
                    level[index].withUnsafeBytes { hasher.update(bufferPointer: $0) }
                    level[index + 1].withUnsafeBytes { hasher.update(bufferPointer: $0) }
                    next.append(hasher.finalize())
                } else {
                    next.append(level[index])
                }
                index += 2
            }
            level = next
        }
        return level[0].map { String(format: "%02x", $0) }.joined()
    }
}
