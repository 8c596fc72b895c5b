import Foundation
import NIOCore
import NimbusCore

/// Splits newline-delimited JSON (Ollama's streaming format, JSON Lines) into lines.
///
/// `\n` ends a line (a preceding `\r` is dropped); blank lines are skipped; a last line without
/// a newline still counts at the end of the stream.
public struct NDJSONLineSplitter: Sendable {
    /// The longest line accepted.
    public var maximumLineLength: Int
    private var partial: [UInt8] = []

    /// Creates a splitter.
    public init(maximumLineLength: Int = 8 * 1024 * 1024) { self.maximumLineLength = maximumLineLength }

    /// Consumes a chunk; returns the complete lines.
    public mutating func feed(_ buffer: ByteBuffer) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in buffer.readableBytesView {
            if byte == 10 {
                if partial.last == 13 { partial.removeLast() }
                if !partial.allSatisfy({ $0 == 32 || $0 == 9 }) { lines.append(partial) }
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
                if partial.count > maximumLineLength {
                    throw NimbusError(.resourceExhausted, "NDJSON line over \(maximumLineLength) bytes")
                }
            }
        }
        return lines
    }

    /// The last line, if the stream did not end with a newline.
    public mutating func finish() -> [UInt8]? {
        defer { partial = [] }
        if partial.last == 13 { partial.removeLast() }
        return partial.allSatisfy({ $0 == 32 || $0 == 9 }) ? nil : partial
    }
}

/// Values decoded from a newline-delimited JSON stream.
///
/// ```swift
/// for try await chunk in NDJSONStream(response.body, of: OllamaChunk.self) { ... }
/// ```
/// A line that is not a `T` throws `internal` with its line number and start, so a vendor's
/// format change is visible, not silent. Breaking out of the loop cancels the request.
public struct NDJSONStream<Base: AsyncSequence & Sendable, T: Decodable & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = T
    let base: Base
    let decoder: @Sendable () -> JSONDecoder
    let maximumLineLength: Int

    /// Decodes `base` as lines of `T`.
    public init(_ base: Base, of type: T.Type, decoder: @escaping @Sendable () -> JSONDecoder = { .nimbus }, maximumLineLength: Int = 8 * 1024 * 1024) {
        self.base = base
        self.decoder = decoder
        self.maximumLineLength = maximumLineLength
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var splitter: NDJSONLineSplitter
        let decoder: JSONDecoder
        var ready: [[UInt8]] = []
        var finished = false
        var lineNumber = 0

        public mutating func next() async throws -> T? {
            while ready.isEmpty {
                guard !finished else { return nil }
                if let chunk = try await base.next() {
                    ready = try splitter.feed(chunk)
                } else {
                    finished = true
                    if let last = splitter.finish() { ready = [last] }
                }
            }
            let line = ready.removeFirst()
            lineNumber += 1
            do {
                return try decoder.decode(T.self, from: Data(line))
            } catch {
                let preview = String(decoding: line.prefix(120), as: UTF8.self)
                throw NimbusError(.internal, "NDJSON line \(lineNumber) is not a \(T.self): \(error); line starts: \(preview)", underlying: error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), splitter: NDJSONLineSplitter(maximumLineLength: maximumLineLength), decoder: decoder())
    }
}
