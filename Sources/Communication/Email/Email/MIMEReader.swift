import Foundation
import NimbusCore

/// Reads a MIME message (inbound mail, a delivered copy): unfolded headers, RFC 2047 words, multipart
/// bodies, base64 and quoted-printable parts, RFC 2231 file names. Bytes from the network: it never
/// traps, whatever they are (fuzzed by `scripts/fuzz mime`).
///
/// ```swift
/// let message = try MIMEReader(bytes)
/// let subject = message.subject, text = message.text(of: "text/plain")
/// ```
public struct MIMEReader: Sendable {
    public struct Part: Sendable {
        public var contentType: String
        public var filename: String?
        public var data: [UInt8]
    }

    public var headers: [(name: String, value: String)]
    public var parts: [Part]
    /// The message as delivered.
    public let rawBytes: [UInt8]
    /// The message as delivered, as text.
    public var raw: String { String(decoding: rawBytes, as: UTF8.self) }

    public init(_ raw: [UInt8]) throws {
        rawBytes = raw
        let text = String(decoding: raw, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        guard let split = text.range(of: "\n\n") else { throw NimbusError(.invalidArgument, "the message has no blank line after its headers") }
        headers = Self.headers(String(text[..<split.lowerBound]))
        parts = []
        parts = Self.parts(headers: headers, body: String(text[split.upperBound...]))
    }

    public func header(_ name: String) -> String? { headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value }
    public var subject: String? { header("Subject").map(Self.decodeWords) }

    /// The decoded text of the first part of a type.
    public func text(of type: String) -> String? {
        parts.first { $0.contentType.lowercased().hasPrefix(type) }.map { String(decoding: $0.data, as: UTF8.self) }
    }

    static func headers(_ block: String) -> [(name: String, value: String)] {
        var result: [(String, String)] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first == " " || first == "\t", !result.isEmpty {
                result[result.count - 1].1 += String(line)
            } else if let colon = line.firstIndex(of: ":") {
                result.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return result.map { (name: $0.0, value: $0.1) }
    }

    static func parameter(_ name: String, in value: String) -> String? {
        for piece in value.components(separatedBy: ";").dropFirst() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased().hasPrefix(name.lowercased() + "*=") {
                let encoded = trimmed.dropFirst(name.count + 2)
                let afterCharset = encoded.components(separatedBy: "'").last ?? String(encoded)
                return afterCharset.removingPercentEncoding
            }
            if trimmed.lowercased().hasPrefix(name.lowercased() + "=") {
                return decodeWords(trimmed.dropFirst(name.count + 1).trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
        }
        return nil
    }

    static func parts(headers: [(name: String, value: String)], body: String) -> [Part] {
        let contentType = headers.first { $0.name.equalsIgnoringASCIICase("content-type") }?.value ?? "text/plain"
        if contentType.lowercased().hasPrefix("multipart/"), let boundary = parameter("boundary", in: contentType) {
            var result: [Part] = []
            let sections = body.components(separatedBy: "--" + boundary)
            for section in sections.dropFirst() where !section.hasPrefix("--") {
                var content = section
                if content.hasPrefix("\n") { content.removeFirst() }
                if content.hasSuffix("\n") { content.removeLast() }                 // the CRLF before a delimiter is the delimiter's
                guard let split = content.range(of: "\n\n") else { continue }
                result += parts(headers: Self.headers(String(content[..<split.lowerBound])), body: String(content[split.upperBound...]))
            }
            return result
        }
        let encoding = headers.first { $0.name.equalsIgnoringASCIICase("content-transfer-encoding") }?.value.lowercased() ?? "7bit"
        let disposition = headers.first { $0.name.equalsIgnoringASCIICase("content-disposition") }?.value ?? ""
        let data: [UInt8]
        switch encoding {
        case "base64": data = Data(base64Encoded: body.filter { !$0.isWhitespace }).map(Array.init) ?? []
        case "quoted-printable": data = quotedPrintable(body)
        default: data = Array(body.utf8)
        }
        return [Part(contentType: contentType, filename: parameter("filename", in: disposition) ?? parameter("name", in: contentType), data: data)]
    }

    static func quotedPrintable(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "="), index + 1 < bytes.count, bytes[index + 1] == 10 { index += 2; continue }   // soft break
            if bytes[index] == UInt8(ascii: "="), index + 2 < bytes.count, let value = UInt8(String(decoding: bytes[index + 1...index + 2], as: UTF8.self), radix: 16) {
                out.append(value)
                index += 3
                continue
            }
            out.append(bytes[index])
            index += 1
        }
        return out
    }

    /// Decodes RFC 2047 `=?charset?B|Q?…?=` words (whitespace between adjacent words dropped).
    public static func decodeWords(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var result = "", rest = Substring(value), lastWasWord = false
        while let start = rest.range(of: "=?") {
            let before = rest[..<start.lowerBound]
            if !(lastWasWord && before.allSatisfy(\.isWhitespace)) { result += before }
            let afterStart = rest[start.upperBound...]
            let pieces = afterStart.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            guard pieces.count >= 3, let end = afterStart.range(of: "?=", range: afterStart.index(afterStart.startIndex, offsetBy: pieces[0].count + pieces[1].count + 2)..<afterStart.endIndex) else {
                result += rest[start.lowerBound...]
                return result
            }
            let encoding = pieces[1].uppercased()
            let payload = String(afterStart[afterStart.index(afterStart.startIndex, offsetBy: pieces[0].count + pieces[1].count + 2)..<end.lowerBound])
            if encoding == "B" {
                result += String(decoding: Data(base64Encoded: payload) ?? Data(), as: UTF8.self)
            } else {
                result += String(decoding: quotedPrintable(payload.replacingOccurrences(of: "_", with: " ")), as: UTF8.self)
            }
            rest = afterStart[end.upperBound...]
            lastWasWord = true
        }
        return result + rest
    }
}
