import ArgumentParser
import Foundation
import NIOCore
import NimbusBlob
import NimbusBlobAzure
import NimbusBlobFile
import NimbusBlobGCS
import NimbusBlobMemory
import NimbusBlobS3
import NimbusCore
import Synchronization

/// `nimbus blob`: list, copy, remove, inspect and presign objects in any store.
struct BlobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blob",
        abstract: "List, copy, remove, inspect and presign objects (S3, GCS, Azure, a directory, memory).",
        discussion: """
        Objects are STORE-URL/KEY: s3://BUCKET/KEY[?region=R&endpoint=URL], gs://BUCKET/KEY[?endpoint=URL&anonymous=true], \
        azblob://CONTAINER/KEY[?account=NAME&endpoint=URL] (credentials from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or Entra ID), dir://ROOT//KEY (a file:// store: the \
        directory, then // and the key). Anything without a scheme is a local file, so `cp` uploads \
        (nimbus blob cp ./db.tar s3://backups/db.tar), downloads, and copies between any two stores.
        """,
        subcommands: [List.self, Copy.self, Remove.self, Stat.self, Presign.self]
    )

    /// An object (or prefix) in a store, or a local file.
    enum Location {
        case object(store: String, key: String)
        case local(path: String)
    }

    static let openers = URLOpenerRegistry<any BlobDriver>.blob.withMemory().withFile().withS3().withGCS().withAzure()

    /// Splits `s3://bucket/key?query` into the store URL and the key; `dir:///root//key` into `file:///root` and the key.
    static func parse(_ text: String) throws -> Location {
        guard let schemeEnd = text.range(of: "://") else { return .local(path: text) }
        let scheme = String(text[..<schemeEnd.lowerBound])
        var rest = String(text[schemeEnd.upperBound...])
        var query = ""
        if let mark = rest.firstIndex(of: "?") { query = String(rest[mark...]); rest = String(rest[..<mark]) }
        switch scheme {
        case "dir":
            guard let split = rest.range(of: "//") else { throw ValidationError("dir:// locations are dir://ROOT//KEY (the directory, //, then the key)") }
            return .object(store: "file://" + rest[..<split.lowerBound] + query, key: String(rest[split.upperBound...]))
        case "file":
            return .local(path: rest)
        default:
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bucket = parts.first, !bucket.isEmpty else { throw ValidationError("\(text) names no bucket") }
            let key = parts.count > 1 ? String(parts[1]).removingPercentEncoding ?? String(parts[1]) : ""
            return .object(store: "\(scheme)://\(bucket)\(query)", key: key)
        }
    }

    static func open(_ store: String) async throws -> Bucket { try await Bucket.open(store, openers: openers) }

    static func object(_ text: String) throws -> (store: String, key: String) {
        guard case .object(let store, let key) = try parse(text) else { throw ValidationError("\(text) is a local path; name an object (s3://bucket/key)") }
        return (store, key)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List objects under a prefix; one level (with `/` folded) unless --recursive.")
        @Argument(help: "STORE-URL/PREFIX (s3://bucket/logs/).") var location: String
        @Flag(name: .shortAndLong, help: "Every key under the prefix.") var recursive = false
        func run() async throws {
            try await Output.refusing {
                let (store, prefix) = try BlobCommand.object(location)
                try await BlobCommand.open(store).closing { bucket in
                    for try await item in bucket.list(prefix: prefix, delimiter: recursive ? nil : "/") {
                        switch item {
                        case .object(let entry):
                            let date = entry.lastModified.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                            print("\(date)  \(String(entry.size).leftPadded(12))  \(entry.key)")
                        case .prefix(let prefix):
                            print("\(String(repeating: " ", count: 20))  \("PRE".leftPadded(12))  \(prefix)")
                        }
                    }
                }
            }
        }
    }

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cp", abstract: "Copy between a local file and a store, or between any two stores.")
        @Argument(help: "Source: STORE-URL/KEY or a local path.") var source: String
        @Argument(help: "Destination: STORE-URL/KEY or a local path.") var destination: String
        @Option(help: "Content-Type of an upload (default: the source's, or application/octet-stream).") var contentType: String?
        @Flag(help: "Do not overwrite: fail if the destination exists.") var noClobber = false
        func run() async throws {
            try await Output.refusing {
                let condition: BlobWriteCondition? = noClobber ? .ifAbsent : nil
                switch (try BlobCommand.parse(source), try BlobCommand.parse(destination)) {
                case (.local(let path), .object(let store, let key)):
                    try await BlobCommand.open(store).closing { bucket in
                        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
                        let progress = Progress(label: key, total: size)
                        let attributes = try await bucket.put(key, from: progress.counting(BlobBody(file: path)),
                                                              options: .init(contentType: contentType, condition: condition), sizeHint: size)
                        progress.finish()
                        print("\(attributes.size) bytes → \(destination)")
                    }
                case (.object(let store, let key), .local(let path)):
                    try await BlobCommand.open(store).closing { bucket in
                        if noClobber, FileManager.default.fileExists(atPath: path) { throw NimbusError(.failedPrecondition, "\(path) exists (--no-clobber)") }
                        let attributes = try await bucket.download(key, to: path)
                        print("\(attributes.size) bytes → \(path)")
                    }
                case (.object(let from, let sourceKey), .object(let to, let destinationKey)) where from == to:
                    try await BlobCommand.open(from).closing { bucket in
                        let attributes = try await bucket.copy(from: sourceKey, to: destinationKey, condition: condition)
                        print("\(attributes.size) bytes → \(destination)")
                    }
                case (.object(let from, let sourceKey), .object(let to, let destinationKey)):
                    let source = try await BlobCommand.open(from)
                    let target = try await BlobCommand.open(to)
                    defer { Task { try? await source.close(); try? await target.close() } }
                    let reader = try await source.reader(sourceKey)
                    let progress = Progress(label: destinationKey, total: reader.attributes.size)
                    let options = BlobWriteOptions(contentType: contentType ?? reader.attributes.contentType, contentEncoding: reader.attributes.contentEncoding,
                                                   contentDisposition: reader.attributes.contentDisposition, contentLanguage: reader.attributes.contentLanguage,
                                                   cacheControl: reader.attributes.cacheControl, metadata: reader.attributes.metadata, condition: condition)
                    let attributes = try await target.put(destinationKey, from: progress.counting(reader.body), options: options, sizeHint: reader.attributes.size)
                    progress.finish()
                    print("\(attributes.size) bytes → \(destination)")
                case (.local, .local):
                    throw ValidationError("both are local paths; use cp(1)")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete an object, or every object under a prefix with --recursive.")
        @Argument(help: "STORE-URL/KEY.") var location: String
        @Flag(name: .shortAndLong, help: "Delete every key under the prefix.") var recursive = false
        func run() async throws {
            try await Output.refusing {
                let (store, key) = try BlobCommand.object(location)
                try await BlobCommand.open(store).closing { bucket in
                    if recursive {
                        var count = 0
                        for key in try await bucket.list(prefix: key).keys() { try await bucket.delete(key); count += 1 }
                        print("deleted \(count) objects")
                    } else {
                        try await bucket.delete(key)
                        print("deleted \(key)")
                    }
                }
            }
        }
    }

    struct Stat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an object's attributes as JSON.")
        @Argument(help: "STORE-URL/KEY.") var location: String
        func run() async throws {
            try await Output.refusing {
                let (store, key) = try BlobCommand.object(location)
                try await BlobCommand.open(store).closing { bucket in
                    let a = try await bucket.attributes(key)
                    var json: [String: JSONValue] = ["key": .string(a.key), "size": .number(Double(a.size)), "metadata": .object(a.metadata.mapValues(JSONValue.string))]
                    for (name, value) in [("contentType", a.contentType), ("contentEncoding", a.contentEncoding), ("contentDisposition", a.contentDisposition),
                                          ("contentLanguage", a.contentLanguage), ("cacheControl", a.cacheControl), ("etag", a.etag), ("version", a.version),
                                          ("storageClass", a.storageClass)] {
                        if let value { json[name] = .string(value) }
                    }
                    if let modified = a.lastModified { json["lastModified"] = .string(ISO8601DateFormatter().string(from: modified)) }
                    if let crc = a.checksums.crc32c { json["crc32c"] = .string(String(format: "%08x", crc)) }
                    print(JSONValue.object(json).description)
                }
            }
        }
    }

    struct Presign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a URL that allows GET (or PUT) on an object without credentials until it expires.")
        @Argument(help: "STORE-URL/KEY.") var location: String
        @Option(help: "get, put or delete.") var method = "get"
        @Option(help: "Seconds until it expires (at most 604800, 7 days).") var expires = 3600
        func run() async throws {
            try await Output.refusing {
                let (store, key) = try BlobCommand.object(location)
                guard let method = BlobSignedMethod(rawValue: method.uppercased()) else { throw ValidationError("--method is get, put or delete") }
                try await BlobCommand.open(store).closing { bucket in
                    print(try await bucket.signedURL(for: key, method: method, expiresIn: .seconds(expires)))
                    for (name, value) in bucket.signedURLHeaders(for: method) {
                        FileHandle.standardError.write(Data("send with the header \(name): \(value)\n".utf8))
                    }
                }
            }
        }
    }
}

/// Bytes moved so far, drawn on standard error when it is a terminal.
final class Progress: Sendable {
    let label: String
    let total: Int64?
    let enabled = isatty(STDERR_FILENO) == 1
    private let moved = Mutex<(bytes: Int64, drawn: ContinuousClock.Instant?)>((0, nil))

    init(label: String, total: Int64?) { self.label = label; self.total = total }

    func add(_ count: Int) {
        guard enabled else { return }
        let line: String? = moved.withLock { state in
            state.bytes += Int64(count)
            let now = ContinuousClock.now
            if let drawn = state.drawn, now - drawn < .milliseconds(100) { return nil }
            state.drawn = now
            let done = Double(state.bytes) / 1_048_576
            if let total, total > 0 {
                let fraction = min(1, Double(state.bytes) / Double(total))
                let bar = String(repeating: "█", count: Int(fraction * 30)) + String(repeating: "·", count: 30 - Int(fraction * 30))
                return String(format: "\r%@ %@ %5.1f%% %.1f MiB", label.suffix(30).description, bar, fraction * 100, done)
            }
            return String(format: "\r%@ %.1f MiB", label.suffix(30).description, done)
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() { if enabled { FileHandle.standardError.write(Data("\n".utf8)) } }

    func counting<S: AsyncSequence & Sendable>(_ stream: S) -> Counted<S> where S.Element == ByteBuffer { Counted(base: stream, progress: self) }

    struct Counted<S: AsyncSequence & Sendable>: AsyncSequence, Sendable where S.Element == ByteBuffer {
        typealias Element = ByteBuffer
        let base: S
        let progress: Progress
        func makeAsyncIterator() -> Iterator { Iterator(base: BlobBody(base).makeAsyncIterator(), progress: progress) }
        struct Iterator: AsyncIteratorProtocol {
            var base: BlobBody.AsyncIterator
            let progress: Progress
            mutating func next() async throws -> ByteBuffer? {
                let chunk = try await base.next()
                if let chunk { progress.add(chunk.readableBytes) }
                return chunk
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
