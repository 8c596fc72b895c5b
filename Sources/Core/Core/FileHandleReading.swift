#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

extension FileHandle {
    /// Everything until end of file. Foundation's `readDataToEndOfFile()` and `availableData` trap
    /// (`try!`) when a signal interrupts the read (EINTR), which a busy process with children sees;
    /// this retries instead.
    ///
    /// ```swift
    /// let output = pipe.fileHandleForReading.readAllBytes()      // not readDataToEndOfFile()
    /// ```
    public func readAllBytes() -> Data {
        var data = Data()
        while true {
            let chunk = readAvailableBytes()
            if chunk.isEmpty { return data }
            data.append(chunk)
        }
    }

    /// What one `read(2)` returns: empty at end of file (or on an error other than EINTR).
    public func readAvailableBytes(upTo count: Int = 64 * 1024) -> Data {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let read = buffer.withUnsafeMutableBytes { Foundation.read(fileDescriptor, $0.baseAddress, $0.count) }
            if read > 0 { return Data(buffer[0..<read]) }
            if read < 0 && errno == EINTR { continue }
            return Data()
        }
    }

    /// Writes every byte, retrying on EINTR; stops quietly when the reader has gone (EPIPE).
    public func writeAllBytes(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Foundation.write(fileDescriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { return }
        }
    }
}
