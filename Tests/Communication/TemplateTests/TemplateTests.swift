import Foundation
import NimbusCore
import Testing
@testable import NimbusTemplate

@Suite("Notification templates")
struct TemplateTests {
    static let templates: [String: String] = [
        "layout": "<html><body>{{$content}}default{{/content}}{{> footer}}</body></html>",
        "footer": "<p class=\"footer\">Nimbus &amp; Co — <a href=\"https://example.com/u\">Unsubscribe</a></p>",
        "receipt.subject": "Your receipt #{{order.number}} ({{number(order.items.count)}} {{#one(order.items.count)}}item{{/one(order.items.count)}}{{#other(order.items.count)}}items{{/other(order.items.count)}})",
        "receipt.html": """
        {{<layout}}{{$content}}<h1>Hi {{name}}</h1>
        <ul>{{#order.items}}<li>{{title}} — {{currency(price)}}</li>{{/order.items}}</ul>
        <p>Total: <b>{{currency(order.total)}}</b>, ordered {{date(order.placedAt)}}.</p>{{/content}}{{/layout}}
        """,
        "receipt.de.subject": "Ihre Quittung Nr. {{order.number}} ({{order.items.count}} {{#one(order.items.count)}}Artikel{{/one(order.items.count)}}{{#other(order.items.count)}}Artikel{{/other(order.items.count)}})",
        "receipt.pt.subject": "Seu recibo nº {{order.number}}",
        "reminder.text": "Hello {{name}}, you have {{count}} {{#one(count)}}task{{/one(count)}}{{#other(count)}}tasks{{/other(count)}}. <not escaped>",
    ]

    static let data: JSONValue = [
        "name": "Zoë <script>",
        "order": ["number": 1042, "placedAt": "2026-11-26T10:30:00Z",
                  "total": ["amount": "1234.50", "currency": "EUR"],
                  "items": [["title": "Tea & biscuits", "price": ["amount": "4.50", "currency": "EUR"]],
                            ["title": "Teapot", "price": ["amount": "1230.00", "currency": "EUR"]]]],
    ]

    @Test func aBundleRendersWithLayoutPartialsEscapingAndADerivedTextPart() throws {
        let engine = try TemplateEngine(templates: Self.templates)
        let message = try engine.renderMessage("receipt", data: Self.data)
        #expect(message.subject == "Your receipt #1042 (2 items)")
        let html = try #require(message.html)
        #expect(html.hasPrefix("<html><body><h1>Hi Zoë &lt;script&gt;</h1>") && html.contains("<p class=\"footer\">"))
        #expect(html.contains("<li>Tea &amp; biscuits — €4.50</li>") && html.contains("€1,234.50") && html.contains("Nov 26, 2026"))
        let text = try #require(message.text)
        #expect(text.contains("Hi Zoë <script>") && text.contains("- Tea & biscuits — €4.50") && text.contains("Unsubscribe (https://example.com/u)"))
        #expect(!text.contains("<") || text.contains("<script>"), "tags are gone; decoded text stays")
    }

    @Test func localesFallBackAndFormatByTheirRules() throws {
        let engine = try TemplateEngine(templates: Self.templates)
        let german = try engine.renderMessage("receipt", locale: "de-AT", data: Self.data)
        #expect(german.subject == "Ihre Quittung Nr. 1042 (2 Artikel)" && german.locale == "de")
        #expect(german.html?.contains("1.234,50") == true, "Austrian German groups with dots: \(german.html ?? "")")
        #expect(try engine.renderMessage("receipt", locale: "pt-BR", data: Self.data).subject == "Seu recibo nº 1042")
        #expect(try engine.renderMessage("receipt", locale: "ja", data: Self.data).subject == "Your receipt #1042 (2 items)", "no Japanese variant: the default")
        #expect(engine.candidates("receipt", part: "html", locale: "pt-BR") == ["receipt.pt-BR.html", "receipt.pt.html", "receipt.html"])
    }

    @Test func textTemplatesAreNotHTMLEscapedAndPluralsFollowCLDR() throws {
        let engine = try TemplateEngine(templates: Self.templates)
        #expect(try engine.render("reminder", part: "text", data: ["name": "A&B", "count": 1]) == "Hello A&B, you have 1 task. <not escaped>")
        #expect(try engine.render("reminder", part: "text", data: ["name": "A", "count": 0]) == "Hello A, you have 0 tasks. <not escaped>")
        #expect(PluralRules.category(of: 0, language: "fr") == .one && PluralRules.category(of: 0, language: "en") == .other)
        #expect([1, 2, 5, 21, 22, 25, 11, 12].map { PluralRules.category(of: $0, language: "ru") } == [.one, .few, .many, .one, .few, .many, .many, .many])
        #expect([1, 2, 5, 22, 12].map { PluralRules.category(of: $0, language: "pl") } == [.one, .few, .many, .few, .many])
        #expect([0, 1, 2, 3, 11, 100].map { PluralRules.category(of: $0, language: "ar") } == [.zero, .one, .two, .few, .many, .other])
        #expect(PluralRules.category(of: 1.5, language: "en") == .other && PluralRules.category(of: 1, language: "ja") == .other)
    }

    @Test func strictModeNamesWhatIsMissingAndNullIsNotMissing() throws {
        let engine = try TemplateEngine(templates: ["greet.text": "Hi {{name}}{{#vip}} (VIP){{/vip}}, code {{coupon.code}}"])
        let error = #expect(throws: NimbusError.self) { try engine.render("greet", part: "text", data: ["name": "Zoë", "vip": true]) }
        #expect(error?.code == .invalidArgument && error?.message.contains("'coupon'") == true)
        #expect(try engine.render("greet", part: "text", data: ["name": "Zoë", "vip": false, "coupon": .null]) == "Hi Zoë, code ")
        let lenient = try TemplateEngine(templates: ["greet.text": "Hi {{name}}{{missing}}!"], configuration: .init(strict: false))
        #expect(try lenient.render("greet", part: "text", data: ["name": "Zoë"]) == "Hi Zoë!")
        #expect(throws: NimbusError.self) { try TemplateEngine(templates: ["broken.html": "{{#open}} never closed"]) }
        #expect(throws: NimbusError.self) { try engine.render("absent", data: [:]) }
    }

    @Test func templatesLoadFromADirectoryAndEncodablesRender() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("emails"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "Welcome, {{name}}! Joined {{date(joined)}}.".write(to: directory.appendingPathComponent("emails/welcome.text.mustache"), atomically: true, encoding: .utf8)
        let engine = try TemplateEngine(directory: directory)
        struct User: Encodable { var name: String; var joined: Date }
        let text = try engine.render("emails/welcome", part: "text", data: User(name: "Zoë", joined: Date(timeIntervalSince1970: 1_764_152_000)))
        #expect(text == "Welcome, Zoë! Joined Nov 26, 2025.")
    }

    @Test func htmlBecomesReadableText() {
        let html = """
        <html><head><title>x</title><style>p{color:red}</style></head><body>
        <h1>Order&nbsp;shipped</h1><p>Your parcel is on its way.<br>Track it <a href="https://t.example/1">here</a>.</p>
        <ul><li>One</li><li>Two &amp; three</li></ul><img src="x.png" alt="[logo]"><p>&#169; 2026 &#x2014; Nimbus</p></body></html>
        """
        #expect(HTMLToText.convert(html) == "Order shipped\n\nYour parcel is on its way.\nTrack it here (https://t.example/1).\n\n- One\n- Two & three\n[logo]\n© 2026 — Nimbus\n")
    }
}
