// Renders per second of one notification template (HTML-escaped, a 12-row loop, conditionals, nested
// fields) from the same JSON data as Benchmarks/template-vs-jinja2/jinja2_side.py. Prints one RESULT line
// and the rendered text's SHA-256-free length, so both sides can be checked to produce the same output.
import Foundation
import NimbusCore
import NimbusTemplate

let directory = URL(fileURLWithPath: CommandLine.arguments[1])
let seconds = Double(CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : "2") ?? 2
let source = try String(contentsOf: directory.appendingPathComponent("receipt.mustache"), encoding: .utf8)
let data = try JSONValue.parse(try Data(contentsOf: directory.appendingPathComponent("case.json")))
let engine = try TemplateEngine(templates: ["receipt.html": source])
let first = try engine.render("receipt", part: "html", data: data)
if CommandLine.arguments.contains("--print") { print(first); exit(0) }
var sink = 0
for _ in 0..<500 { sink &+= try engine.render("receipt", part: "html", data: data).utf8.count }
var count = 0
let start = ContinuousClock.now
let end = start + .milliseconds(Int(seconds * 1000))
while ContinuousClock.now < end {
    for _ in 0..<100 { sink &+= try engine.render("receipt", part: "html", data: data).utf8.count }
    count += 100
}
let elapsed = (ContinuousClock.now - start).nimbusSeconds
print("RESULT nimbus receipt \(Int(Double(count) / elapsed))")
if sink == 42 { print("") }
