// BlobBenchmark — the Nimbus side of Benchmarks/blob-vs-boto3 (one process per case, so the run
// script can read each case's peak RSS):
//
//   BlobBenchmark s3-put ENDPOINT BUCKET SIZE COUNT   COUNT objects of SIZE bytes through Bucket.put
//   BlobBenchmark s3-get ENDPOINT BUCKET SIZE COUNT   the same objects through Bucket.download to a file
//   BlobBenchmark file-copy SOURCE DIRECTORY          SOURCE into a file:// store through Bucket.upload
//
// Prints `RESULT nimbus CASE MB/s`. The transfer settings are the Bucket defaults, which the boto3
// side copies: multipart above 16 MiB, parts of 8 MiB, 4 at a time.
import Foundation
import NIOCore
import NimbusBlob
import NimbusBlobFile
import NimbusBlobS3
import NimbusCore

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: BlobBenchmark s3-put|s3-get ENDPOINT BUCKET SIZE COUNT | file-copy SOURCE DIRECTORY\n".utf8))
    exit(2)
}
let configuration = Bucket.Configuration(multipartThreshold: 16 * 1024 * 1024, partSize: 8 * 1024 * 1024, concurrency: 4)

func report(_ name: String, bytes: Int64, since start: ContinuousClock.Instant) {
    let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds)
    print(String(format: "RESULT nimbus %@ %.1f", name, Double(bytes) / 1_048_576 / seconds))
}

func sizeName(_ size: Int) -> String { size % 1_048_576 == 0 ? "\(size / 1_048_576)MiB" : "\(size)B" }

switch arguments[1] {
case "s3-put", "s3-get":
    let (endpoint, bucketName, size, count) = (arguments[2], arguments[3], Int(arguments[4])!, Int(arguments[5])!)
    let bucket = try await Bucket.open("s3://\(bucketName)?endpoint=\(endpoint)&region=us-east-1", openers: .blob.withS3(), configuration: configuration)
    if arguments[1] == "s3-put" {
        // Pseudo-random bytes (not compressible, not all alike), made once.
        var data = ByteBuffer()
        data.reserveCapacity(size)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        while data.readableBytes + 8 <= size { state = state &* 6_364_136_223_846_793_005 &+ 1; data.writeInteger(state) }
        while data.readableBytes < size { data.writeInteger(UInt8(truncatingIfNeeded: state)) }
        let start = ContinuousClock.now
        for index in 0..<count { try await bucket.put("bench/\(size)/\(index)", data) }
        report("s3-put-\(sizeName(size))", bytes: Int64(size) * Int64(count), since: start)
    } else {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("blob-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let start = ContinuousClock.now
        for index in 0..<count { try await bucket.download("bench/\(size)/\(index)", to: directory.appendingPathComponent("\(index)").path) }
        report("s3-get-\(sizeName(size))", bytes: Int64(size) * Int64(count), since: start)
    }
    try await bucket.close()
case "file-copy":
    let (source, directory) = (arguments[2], arguments[3])
    let bucket = try await Bucket.open("file://\(directory)", openers: .blob.withFile(), configuration: configuration)
    let size = (try FileManager.default.attributesOfItem(atPath: source)[.size] as? NSNumber)?.int64Value ?? 0
    let start = ContinuousClock.now
    try await bucket.upload("copy", file: source)
    report("file-copy", bytes: size, since: start)
    try await bucket.close()
default:
    FileHandle.standardError.write(Data("unknown case \(arguments[1])\n".utf8))
    exit(2)
}
