import Foundation
import NIOCore
import NimbusCore

/// A `multipart/form-data` body (RFC 7578): fields and files, for uploads such as OpenAI's
/// `/v1/audio/transcriptions` or `/v1/files`.
///
/// ```swift
/// var form = MultipartFormData()
/// form.append("model", "whisper-1")
/// form.append("file", ByteBuffer(bytes: audio), filename: "clip.mp3", contentType: "audio/mpeg")
/// request.setMultipart(form)
/// ```
public struct MultipartFormData: Sendable {
    /// One part.
    public struct Part: Sendable, Hashable {
        /// The field name.
        public var name: String
        /// The file name, for file parts.
        public var filename: String?
        /// The part's content type (files default to `application/octet-stream`).
        public var contentType: String?
        /// The content.
        public var body: ByteBuffer
    }

    /// The delimiter; random, so that it does not occur in the content.
    public let boundary: String
    /// The parts, in order.
    public private(set) var parts: [Part] = []

    /// Creates an empty body.
    public init(boundary: String = "nimbus-\(IDGenerator.shared.ulid())") { self.boundary = boundary }

    /// The `Content-Type` header value.
    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// Adds a text field.
    public mutating func append(_ name: String, _ value: String) {
        parts.append(Part(name: name, filename: nil, contentType: nil, body: ByteBuffer(string: value)))
    }

    /// Adds a file.
    public mutating func append(_ name: String, _ content: ByteBuffer, filename: String, contentType: String = "application/octet-stream") {
        parts.append(Part(name: name, filename: filename, contentType: contentType, body: content))
    }

    /// The encoded body.
    public func encode() -> ByteBuffer {
        var buffer = ByteBuffer()
        for part in parts {
            buffer.writeString("--\(boundary)\r\n")
            var disposition = "Content-Disposition: form-data; name=\"\(Self.quote(part.name))\""
            if let filename = part.filename { disposition += "; filename=\"\(Self.quote(filename))\"" }
            buffer.writeString(disposition + "\r\n")
            if let type = part.contentType { buffer.writeString("Content-Type: \(type)\r\n") }
            buffer.writeString("\r\n")
            var body = part.body
            buffer.writeBuffer(&body)
            buffer.writeString("\r\n")
        }
        buffer.writeString("--\(boundary)--\r\n")
        return buffer
    }

    /// WHATWG: `"`, CR and LF in names are percent-encoded.
    private static func quote(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "%22").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }

    /// Parses a body, given its `Content-Type` header. - Throws: `invalidArgument` when malformed.
    public static func parse(_ body: ByteBuffer, contentType: String) throws -> MultipartFormData {
        guard let boundaryRange = contentType.range(of: "boundary=") else {
            throw NimbusError(.invalidArgument, "multipart Content-Type has no boundary: \(contentType)")
        }
        var boundary = String(contentType[boundaryRange.upperBound...]).split(separator: ";").first.map(String.init) ?? ""
        boundary = boundary.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        guard !boundary.isEmpty else { throw NimbusError(.invalidArgument, "empty multipart boundary") }
        var result = MultipartFormData(boundary: boundary)
        let bytes = Array(body.readableBytesView)
        let delimiter = Array("--\(boundary)".utf8)
        var positions: [Int] = []
        var index = 0
        while let found = bytes.firstRange(of: delimiter, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard positions.count >= 2 else { throw NimbusError(.invalidArgument, "multipart body has no closing boundary") }
        let closing = positions[positions.count - 1]
        guard bytes.count >= closing + delimiter.count + 2, bytes[closing + delimiter.count] == UInt8(ascii: "-"),
              bytes[closing + delimiter.count + 1] == UInt8(ascii: "-") else {
            throw NimbusError(.invalidArgument, "multipart body does not end with --\(boundary)--")
        }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var partStart = start + delimiter.count
            guard bytes.count > partStart + 1, bytes[partStart] == 13, bytes[partStart + 1] == 10 else {
                throw NimbusError(.invalidArgument, "multipart boundary not followed by CRLF")
            }
            partStart += 2
            let partEnd = end - 2   // the CRLF before the next delimiter
            guard partEnd >= partStart, bytes[partEnd] == 13, bytes[partEnd + 1] == 10 else {
                throw NimbusError(.invalidArgument, "multipart part not terminated by CRLF")
            }
            guard let headerEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8), from: partStart), headerEnd <= partEnd else {
                throw NimbusError(.invalidArgument, "multipart part has no blank line after its headers")
            }
            let headerText = String(decoding: bytes[partStart..<headerEnd], as: UTF8.self)
            var name: String?, filename: String?, type: String?
            for line in headerText.components(separatedBy: "\r\n") {
                let lower = line.lowercased()
                if lower.hasPrefix("content-disposition:") {
                    name = Self.parameter("name", in: line)
                    filename = Self.parameter("filename", in: line)
                } else if lower.hasPrefix("content-type:") {
                    type = line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                }
            }
            guard let name else { throw NimbusError(.invalidArgument, "multipart part without a name") }
            result.parts.append(Part(name: name, filename: filename, contentType: type,
                                     body: ByteBuffer(bytes: bytes[(headerEnd + 4)..<partEnd])))
        }
        return result
    }

    private static func parameter(_ name: String, in line: String) -> String? {
        for piece in line.split(separator: ";") {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("\(name)=") {
                return String(trimmed.dropFirst(name.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}

extension Array where Element == UInt8 {
    func firstRange(of needle: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, count >= needle.count, start <= count - needle.count else { return nil }
        var index = start
        while index <= count - needle.count {
            if self[index] == needle[0] && self[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
