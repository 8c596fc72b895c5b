// SigV4 signatures per second, on the same requests as Benchmarks/sigv4-vs-botocore/botocore_side.py.
import Foundation
import NimbusAWS
import NimbusCore

let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                 sessionToken: Secret("session-token-example"))
let jsonBody = Array(String(repeating: "{\"TableName\":\"users\",\"Key\":{\"id\":{\"S\":\"42\"}}}", count: 20).utf8)   // ~1 KB
let cases: [(name: String, signer: SigV4, request: SigV4.Request)] = [
    ("get-query", SigV4(service: "sqs", region: "us-east-1"),
     SigV4.Request(method: "GET", path: "/123456789012/queue", query: [("Action", "ReceiveMessage"), ("MaxNumberOfMessages", "10"), ("WaitTimeSeconds", "20")],
                   headers: [("Host", "sqs.us-east-1.amazonaws.com"), ("User-Agent", "bench")])),
    ("post-json-1k", SigV4(service: "dynamodb", region: "eu-west-1"),
     SigV4.Request(method: "POST", path: "/", headers: [("Host", "dynamodb.eu-west-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.0"),
                                                        ("X-Amz-Target", "DynamoDB_20120810.GetItem")], body: jsonBody)),
    ("s3-put", SigV4(service: "s3", region: "us-west-2", options: .s3),
     SigV4.Request(method: "PUT", path: "/bucket/photos/2024/cat%20picture.jpg", headers: [("Host", "s3.us-west-2.amazonaws.com"),
                                                                                     ("Content-Type", "image/jpeg"), ("Content-Length", "1024")],
                   body: Array(repeating: 7, count: 1024))),
]
let seconds = Double(CommandLine.arguments.dropFirst().first ?? "3") ?? 3
var sink = 0
for (name, signer, request) in cases {
    // Warm up, then count signatures for `seconds`.
    for _ in 0..<2000 { sink &+= signer.sign(request, credentials: credentials, date: Date()).signature.utf8.count }
    var count = 0
    let start = ContinuousClock.now
    let end = start + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < end {
        for _ in 0..<200 { sink &+= signer.sign(request, credentials: credentials, date: Date()).signature.utf8.count }
        count += 200
    }
    let elapsed = (ContinuousClock.now - start).nimbusSeconds
    print("RESULT nimbus \(name) \(Int(Double(count) / elapsed))")
}
if sink == 42 { print("") }
