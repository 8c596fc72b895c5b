import Foundation
import NimbusCore
import Testing
@testable import NimbusTemplate

/// The compiled renderer against swift-mustache on the same templates and data: every output must be equal,
/// whitespace included (standalone lines, partial and block indentation, nested sections, inverted sections,
/// comments, transforms, sequence transforms, escaping, the text content type).
@Suite("Compiled templates agree with swift-mustache")
struct CompiledTemplateTests {
    static let templates: [String: String] = [
        "vars.html": "Hi {{name}}! {{{name}}} {{&name}} {{n}} {{pi}} {{flag}} {{nothing}} {{money}} {{list}} {{ spaced }}",
        "dotted.html": "{{person.name}} lives in {{person.address.city}}; top {{.person.name}}; missing {{person.nope}} end",
        "sections.html": "{{#items}}[{{name}}{{#first()}} first{{/first()}}{{#last()}} last{{/last()}} {{index()}}{{#even()}} even{{/even()}}]{{/items}}{{^items}}none{{/items}}",
        "empty.html": "{{#none}}x{{/none}}{{^none}}no items{{/none}}|{{#flag}}yes{{/flag}}{{^flag}}no{{/flag}}|{{#off}}on{{/off}}{{^off}}off{{/off}}|{{#nothing}}n{{/nothing}}{{^nothing}}null{{/nothing}}",
        "scope.html": "{{#person}}{{name}} at {{company}} ({{person.name}}){{/person}} {{#n}}n={{.}}{{/n}} {{#name}}[{{.}}]{{/name}}",
        "standalone.html": "Begin\n  {{#items}}\n  - {{name}}\n  {{/items}}\n  {{! a comment }}\nEnd\n{{^none}}\n  nothing\n{{/none}}\n",
        "inline.html": "  {{#flag}}x{{/flag}}  \n {{name}} {{! c }} after\n",
        "partials.html": "Top\n  {{> item}}\n{{#items}}{{> item}}{{/items}}\n",
        "item": "<{{name}}>\nsecond line\n",
        "child.html": "{{<base}}\n{{$title}}Custom {{name}}{{/title}}\n{{/base}}\n",
        "base": "<h1>{{$title}}Default title{{/title}}</h1>\n  {{$body}}\n  default body\n  {{/body}}\nEnd\n",
        "transforms.html": "{{count(items)}} {{items.count}} {{#one(items.count)}}one{{/one(items.count)}}{{#other(items.count)}}other{{/other(items.count)}} {{uppercased(name)}} {{number(big)}} {{percent(ratio)}} {{currency(money)}} {{date(day)}} {{#empty(none)}}empty{{/empty(none)}}",
        "note.text": "Dear {{name}} <{{person.name}}>, {{#items}}{{name}};{{/items}}\n",
        "nested.html": "{{#items}}{{#tags}}{{.}}{{name}}|{{/tags}}{{/items}}",
    ]

    static let data: [JSONValue] = [
        ["name": "Zoë <b>&\"'", "n": 42, "pi": 3.25, "flag": true, "off": false, "nothing": .null, "money": ["amount": "12.50", "currency": "EUR"],
         "list": [1, 2], "spaced": "s", "company": "Acme", "big": 1234567, "ratio": 0.256, "day": "2026-03-01T00:00:00Z",
         "person": ["name": "Ada", "address": ["city": "London"]],
         "items": [["name": "one", "tags": ["a", "b"]], ["name": "two", "tags": []], ["name": "<three>", "tags": ["c"]]],
         "none": []],
        ["name": "x", "n": 0, "pi": -1.5, "flag": false, "off": true, "nothing": "something", "money": ["amount": 3, "currency": "JPY"],
         "list": [], "spaced": "", "company": .null, "big": -5, "ratio": 1, "day": "not a date",
         "person": ["name": "B", "address": ["city": .null]], "items": [["name": "only", "tags": ["z"]]], "none": [["name": "surprise"]]],
    ]

    @Test func everyTemplateRendersTheSameOnBothPaths() throws {
        let engine = try TemplateEngine(templates: Self.templates, configuration: .init(strict: false))
        for name in Self.templates.keys.sorted() where name.contains(".") {
            #expect(engine.isCompiled(name), "\(name) compiles")
            for (index, data) in Self.data.enumerated() {
                for locale in ["en", "de"] {
                    let fast = try engine.render(String(name.split(separator: ".")[0]), part: String(name.split(separator: ".")[1]), locale: locale, data: data)
                    let reference = try engine.renderWithSwiftMustache(name, data: data, functions: engine.functions(locale: locale)).0
                    #expect(fast == reference, "\(name) with data \(index) in \(locale):\n--- compiled\n\(fast)\n--- swift-mustache\n\(reference)")
                }
            }
        }
    }

    @Test func setDelimitersFallBackToSwiftMustacheAndDynamicPartialsAreRefused() throws {
        let engine = try TemplateEngine(templates: ["delims.html": "{{=<% %>=}}<% name %> {{literal}}", "p": "P{{name}}"], configuration: .init(strict: false))
        #expect(!engine.isCompiled("delims.html") && engine.isCompiled("p"))
        #expect(try engine.render("delims", part: "html", data: ["name": "Zoë"]) == "Zoë {{literal}}")
        #expect(throws: NimbusError.self) { try TemplateEngine(templates: ["dyn.html": "{{>*which}}"]) }
    }

    @Test func malformedTemplatesAreRefused() {
        for source in ["{{#a}}never closed", "{{#a}}x{{/b}}", "{{name", "{{}}"] {
            #expect(throws: (any Error).self, "\(source)") { try TemplateEngine(templates: ["bad.html": source]) }
        }
    }
}
