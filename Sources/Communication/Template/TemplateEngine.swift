import Foundation
import Mustache
import NimbusCore
import Synchronization

/// Notification templates over Mustache (hummingbird-project/swift-mustache): layouts and partials,
/// HTML escaping, a plain-text part derived from the HTML when none is written, locale variants with
/// fallback (`pt-BR` → `pt` → default), CLDR plurals, locale-aware dates, numbers and money, compiled
/// templates kept, and a strict mode where a missing value is an error instead of an empty string.
///
/// Templates are named `<name>[.<locale>].<part>`: `welcome.subject`, `welcome.html`, `welcome.pt-BR.html`,
/// `welcome.text`; layouts and partials have plain names (`layout`, `footer`).
///
/// ```swift
/// let engine = try TemplateEngine(templates: [
///     "layout": "<html><body>{{$content}}{{/content}}{{> footer}}</body></html>",
///     "footer": "<p>Nimbus Inc.</p>",
///     "receipt.subject": "Your receipt #{{order.number}}",
///     "receipt.html": "{{<layout}}{{$content}}<p>Hi {{name}}, {{#one(items.count)}}one item{{/one(items.count)}}…{{/content}}{{/layout}}",
///     "receipt.de.subject": "Ihre Quittung Nr. {{order.number}}",
/// ])
/// let message = try engine.renderMessage("receipt", locale: "de-AT", data: ["name": "Zoë", "order": ["number": 1042]])
/// message.subject   // "Ihre Quittung Nr. 1042" (de-AT → de)
/// message.text      // derived from the HTML
/// ```
///
/// In templates: `{{date(sentAt)}}`, `{{datetime(sentAt)}}`, `{{time(sentAt)}}` (ISO 8601 strings),
/// `{{number(n)}}`, `{{percent(ratio)}}`, `{{currency(price)}}` (an object `{"amount": "49.90", "currency": "EUR"}`,
/// the form `Money` encodes to), and plural sections `{{#one(n)}}…{{/one(n)}}{{#other(n)}}…{{/other(n)}}`
/// (also `zero`, `two`, `few`, `many`) by the locale's rules.
public struct TemplateEngine: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// A value the template asks for and the data lacks is an error (an explicit `null` is not missing).
        public var strict: Bool
        /// The locale of templates without a locale in their name, and of renders without one.
        public var defaultLocale: String
        /// Derive the text part from the HTML when a bundle has no `.text` template.
        public var deriveText: Bool

        public init(strict: Bool = true, defaultLocale: String = "en", deriveText: Bool = true) {
            self.strict = strict
            self.defaultLocale = defaultLocale
            self.deriveText = deriveText
        }
    }

    /// A rendered notification: subject, text and HTML.
    public struct RenderedMessage: Sendable, Hashable {
        public var subject: String?
        public var text: String?
        public var html: String?
        /// The locale of the variant used.
        public var locale: String
    }

    public let configuration: Configuration
    private let library: MustacheLibrary
    private let names: Set<String>
    private let compiled: [String: CompiledTemplate]
    private let fallbackNames: Set<String>
    private let formatters = FormatterCache()

    /// Compiles templates given as name → source.
    /// - Throws: `invalidArgument` naming the template that does not parse.
    public init(templates: [String: String], configuration: Configuration = .init()) throws {
        self.configuration = configuration
        var library = MustacheLibrary()
        var compiled: [String: CompiledTemplate] = [:]
        var fallback = Set<String>()
        for (name, source) in templates {
            let text = Self.isTextPart(name) ? "{{%CONTENT_TYPE:TEXT}}" + source : source
            do { try library.register(text, named: name) } catch {
                throw NimbusError(.invalidArgument, "the template '\(name)' does not parse: \(error)", underlying: error)
            }
            do { compiled[name] = try CompiledTemplate(source: source, isTextPart: Self.isTextPart(name)) } catch is CompiledTemplate.Unsupported {
                fallback.insert(name)
            } catch {
                throw NimbusError(.invalidArgument, "the template '\(name)': \(error)", underlying: error)
            }
        }
        self.library = library
        self.compiled = compiled
        fallbackNames = fallback
        names = Set(templates.keys)
    }

    /// Compiles every `*.mustache` file under `directory` (names are paths without the extension: `emails/welcome.html`).
    public init(directory: URL, configuration: Configuration = .init()) throws {
        var templates: [String: String] = [:]
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else {
            throw NimbusError(.notFound, "no template directory at \(directory.path)")
        }
        let root = directory.standardizedFileURL.path
        for case let url as URL in enumerator where url.pathExtension == "mustache" {
            var name = String(url.standardizedFileURL.path.dropFirst(root.count))
            if name.hasPrefix("/") { name.removeFirst() }
            templates[String(name.dropLast(".mustache".count))] = try String(contentsOf: url, encoding: .utf8)
        }
        try self.init(templates: templates, configuration: configuration)
    }

    /// Renders through swift-mustache (templates the compiled path leaves to it; and the reference in tests).
    func renderWithSwiftMustache(_ name: String, data: JSONValue, functions: TemplateFunctions) throws -> (String, Set<String>) {
        let recorder = LookupRecorder()
        let root = TemplateNode.wrap(data, context: RenderContext(functions: functions, recorder: recorder))
        guard let output = library.render(root, withTemplate: name) else { throw NimbusError(.notFound, "the template '\(name)' is not compiled") }
        return (output, recorder.missing)
    }

    /// The functions of a render in `locale` (tests compare the two renderers with them).
    func functions(locale: String?) -> TemplateFunctions {
        TemplateFunctions(locale: Locale(identifier: locale ?? configuration.defaultLocale), formatters: formatters, fallbackNames: fallbackNames)
    }

    /// Whether `name` renders on the compiled path.
    func isCompiled(_ name: String) -> Bool { compiled[name] != nil }

    static func isTextPart(_ name: String) -> Bool { name.hasSuffix(".text") || name.hasSuffix(".subject") || name.hasSuffix(".txt") }

    /// The template names a render of `name` + `part` in `locale` tries, most specific first.
    public func candidates(_ name: String, part: String?, locale: String?) -> [String] {
        let suffix = part.map { ".\($0)" } ?? ""
        var names: [String] = []
        var tag = (locale ?? configuration.defaultLocale).replacingOccurrences(of: "_", with: "-")
        while !tag.isEmpty {
            names.append("\(name).\(tag)\(suffix)")
            guard let dash = tag.lastIndex(of: "-") else { break }
            tag = String(tag[..<dash])
        }
        names.append(name + suffix)
        return names
    }

    /// Renders one template (with locale fallback).
    /// - Throws: `notFound` when no variant exists; `invalidArgument` in strict mode when values are missing.
    public func render(_ name: String, part: String? = nil, locale: String? = nil, data: JSONValue) throws -> String {
        guard let resolved = try render(name, part: part, locale: locale, data: data, required: true) else {
            throw NimbusError(.notFound, "no template \(candidates(name, part: part, locale: locale).joined(separator: ", "))")
        }
        return resolved.text
    }

    /// Renders any `Encodable` (dates as ISO 8601).
    public func render(_ name: String, part: String? = nil, locale: String? = nil, data: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return try render(name, part: part, locale: locale, data: try JSONValue(encoding: data, encoder: encoder))
    }

    /// Renders a bundle: `<name>.subject`, `<name>.text`, `<name>.html` (each with locale fallback); the text is
    /// derived from the HTML when there is no text template.
    public func renderMessage(_ name: String, locale: String? = nil, data: JSONValue) throws -> RenderedMessage {
        let subject = try render(name, part: "subject", locale: locale, data: data, required: false)
        let html = try render(name, part: "html", locale: locale, data: data, required: false)
        let textPart = try render(name, part: "text", locale: locale, data: data, required: false)
        var text = textPart?.text
        if text == nil, configuration.deriveText, let html { text = HTMLToText.convert(html.text) }
        guard subject != nil || html != nil || text != nil else {
            throw NimbusError(.notFound, "no template for the bundle '\(name)' (\(name).subject, \(name).text or \(name).html)")
        }
        // The most specific variant any part used (`pt-BR` over `pt` over the default).
        let used = [subject?.locale, html?.locale, textPart?.locale].compactMap { $0 }.max { $0.count < $1.count } ?? configuration.defaultLocale
        return RenderedMessage(subject: subject?.text.trimmingCharacters(in: .whitespacesAndNewlines), text: text, html: html?.text, locale: used)
    }

    private func render(_ name: String, part: String?, locale: String?, data: JSONValue, required: Bool) throws -> (text: String, locale: String)? {
        guard let chosen = candidates(name, part: part, locale: locale).first(where: names.contains) else { return nil }
        let functions = TemplateFunctions(locale: Locale(identifier: locale ?? configuration.defaultLocale), formatters: formatters, fallbackNames: fallbackNames)
        var output: String?
        var missing = Set<String>()
        if let template = compiled[chosen] {
            var renderer = CompiledRenderer(templates: compiled, functions: functions, recordMissing: configuration.strict)
            do {
                output = try renderer.render(template, data: data)
                missing = renderer.missing
            } catch is CompiledRenderer.NeedsFallback {
                output = nil
            }
        }
        if output == nil {
            let (text, recorded) = try renderWithSwiftMustache(chosen, data: data, functions: functions)
            output = text
            missing = recorded
        }
        guard let output else { throw NimbusError(.notFound, "the template '\(chosen)' is not compiled") }
        if configuration.strict {
            if !missing.isEmpty {
                throw NimbusError(.invalidArgument, "the template '\(chosen)' uses \(missing.sorted().map { "'\($0)'" }.joined(separator: ", ")), missing from the data (strict mode; pass null to leave it empty)")
            }
        }
        let variant = chosen.dropFirst(name.count + 1).split(separator: ".").first.map(String.init)
        return (output, chosen == name + (part.map { ".\($0)" } ?? "") ? configuration.defaultLocale : (variant ?? configuration.defaultLocale))
    }
}

// MARK: - Functions templates call

/// The transforms both renderers apply: `date`, `datetime`, `time`, `number`, `percent`, `currency`, plural
/// categories, `count`, `empty`, `first`, `last`, `reversed`, `capitalized`, `lowercased`, `uppercased`.
struct TemplateFunctions: Sendable {
    let locale: Locale
    let formatters: FormatterCache
    /// Templates left to swift-mustache (a compiled render that reaches one hands over).
    let fallbackNames: Set<String>

    func apply(_ name: String, to value: JSONValue) -> JSONValue? {
        switch value {
        case .object(let values):
            switch name {
            case "currency": return moneyText(values).map(JSONValue.string)
            case "empty": return .bool(values.isEmpty)
            default: return nil
            }
        case .string(let text):
            switch name {
            case "date", "datetime", "time":
                guard let date = Self.parseDate(text) else { return .string(text) }
                return .string(formatters.date(date, style: name, locale: locale))
            case "empty": return .bool(text.isEmpty)
            case "capitalized": return .string(text.capitalized(with: locale))
            case "lowercased": return .string(text.lowercased(with: locale))
            case "uppercased": return .string(text.uppercased(with: locale))
            default: return Double(text).flatMap { apply(name, to: .number($0)) }
            }
        case .number(let number):
            switch name {
            case "number": return .string(formatters.number(number, style: .decimal, locale: locale))
            case "percent": return .string(formatters.number(number, style: .percent, locale: locale))
            case "zero", "one", "two", "few", "many", "other":
                return .bool(PluralRules.category(of: number, language: locale.language.languageCode?.identifier ?? "en").rawValue == name)
            case "empty": return .bool(number == 0)
            default: return nil
            }
        case .array(let items):
            switch name {
            case "count": return .number(Double(items.count))
            case "empty": return .bool(items.isEmpty)
            case "first": return items.first
            case "last": return items.last
            case "reversed": return .array(items.reversed())
            default: return nil
            }
        case .bool, .null:
            return nil
        }
    }

    /// How an object renders: a money object as its formatted amount, anything else as nothing.
    func objectText(_ value: JSONValue) -> String {
        guard case .object(let values) = value else { return "" }
        return moneyText(values) ?? ""
    }

    /// `{"amount": "49.90", "currency": "EUR"}` (the form `Money` encodes to) in the locale's format.
    func moneyText(_ values: [String: JSONValue]) -> String? {
        guard let amount = values["amount"].flatMap({ $0.stringValue.flatMap { Decimal(string: $0, locale: Locale(identifier: "en_US_POSIX")) } ?? $0.numberValue.map { Decimal($0) } }),
              let code = values["currency"]?.stringValue else { return nil }
        return formatters.currency(amount, code: code, locale: locale)
    }

    /// A number as JSON wrote it: integers without a fraction.
    static func plain(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }

    static func parseDate(_ text: String) -> Date? {
        if let date = Date(iso8601: text) { return date }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]                          // a bare date, too
        return formatter.date(from: text)
    }
}

// MARK: - The data as swift-mustache sees it (the fallback renderer)

/// What every node of one render shares: its functions and the strict-mode recorder.
final class RenderContext {
    let functions: TemplateFunctions
    let recorder: LookupRecorder
    init(functions: TemplateFunctions, recorder: LookupRecorder) {
        self.functions = functions
        self.recorder = recorder
    }
}

/// Names looked up and names found during one render (a name missing at one level of the context stack may be
/// found at another; only names found nowhere are missing).
final class LookupRecorder {
    var asked = Set<String>()
    var found = Set<String>()
    var missing: Set<String> { asked.subtracting(found) }
}

enum TemplateNode {
    static func wrap(_ value: JSONValue, context: RenderContext) -> Any {
        switch value {
        case .object(let object): return TemplateObject(object, context: context)
        case .array(let items): return TemplateArray(items, context: context)
        case .string(let text): return TemplateString(text: text, context: context)
        case .number(let number): return TemplateNumber(value: number, context: context)
        case .bool(let flag): return flag
        case .null: return TemplateNull()
        }
    }

    static func transform(_ name: String, _ value: JSONValue, context: RenderContext) -> Any? {
        context.functions.apply(name, to: value).map { wrap($0, context: context) }
    }
}

final class TemplateObject: MustacheParent, MustacheTransformable, MustacheCustomRenderable {
    let values: [String: JSONValue]
    let context: RenderContext

    init(_ values: [String: JSONValue], context: RenderContext) {
        self.values = values
        self.context = context
    }

    func child(named name: String) -> Any? {
        context.recorder.asked.insert(name)
        guard let value = values[name] else { return nil }
        context.recorder.found.insert(name)
        return TemplateNode.wrap(value, context: context)
    }

    func transform(_ name: String) -> Any? { TemplateNode.transform(name, .object(values), context: context) }
    var renderText: String { context.functions.objectText(.object(values)) }
    var isNull: Bool { false }
}

/// A list: iterated by sections, and `{{items.count}}` / `{{count(items)}}` for its size (plural sections included).
final class TemplateArray: MustacheSequence, MustacheParent, MustacheTransformable, CustomStringConvertible {
    let items: [JSONValue]
    let context: RenderContext
    init(_ items: [JSONValue], context: RenderContext) {
        self.items = items
        self.context = context
    }
    func makeIterator() -> IndexingIterator<[Any]> { items.map { TemplateNode.wrap($0, context: context) }.makeIterator() }
    func child(named name: String) -> Any? {
        CompiledRenderer.child(name, of: .array(items)).map { TemplateNode.wrap($0, context: context) }
    }
    func transform(_ name: String) -> Any? { TemplateNode.transform(name, .array(items), context: context) }
    var description: String { "" }
}

struct TemplateNull: MustacheCustomRenderable {
    var renderText: String { "" }
    var isNull: Bool { true }
}

final class TemplateString: MustacheCustomRenderable, MustacheTransformable, CustomStringConvertible {
    let text: String
    let context: RenderContext
    init(text: String, context: RenderContext) {
        self.text = text
        self.context = context
    }
    var renderText: String { text }
    var isNull: Bool { false }
    var description: String { text }
    func transform(_ name: String) -> Any? { TemplateNode.transform(name, .string(text), context: context) }
}

final class TemplateNumber: MustacheCustomRenderable, MustacheTransformable {
    let value: Double
    let context: RenderContext
    init(value: Double, context: RenderContext) {
        self.value = value
        self.context = context
    }
    var renderText: String { TemplateFunctions.plain(value) }
    var isNull: Bool { false }
    func transform(_ name: String) -> Any? { TemplateNode.transform(name, .number(value), context: context) }
}

/// Number, currency and date formatters per locale, made once (they are expensive to create).
final class FormatterCache: Sendable {
    private let numbers = Mutex<[String: NumberFormatterBox]>([:])
    private let dates = Mutex<[String: DateFormatterBox]>([:])

    func number(_ value: Double, style: NumberFormatter.Style, locale: Locale) -> String {
        withNumberFormatter("\(locale.identifier)|\(style.rawValue)", make: { formatter in
            formatter.locale = locale
            formatter.numberStyle = style
            formatter.maximumFractionDigits = style == .percent ? 1 : 6
        }) { $0.string(from: NSNumber(value: value)) ?? String(value) }
    }

    func currency(_ amount: Decimal, code: String, locale: Locale) -> String {
        withNumberFormatter("\(locale.identifier)|currency|\(code)", make: { formatter in
            formatter.locale = locale
            formatter.numberStyle = .currency
            formatter.currencyCode = code
        }) { $0.string(from: amount as NSDecimalNumber) ?? "\(amount) \(code)" }
    }

    /// Runs `use` with the formatter cached under `key`, made by `make` the first time (under the cache's lock).
    private func withNumberFormatter(_ key: String, make: (NumberFormatter) -> Void, use: (NumberFormatter) -> String) -> String {
        numbers.withLock { cache in
            let box = cache[key] ?? {
                let formatter = NumberFormatter()
                make(formatter)
                return NumberFormatterBox(formatter)
            }()
            cache[key] = box
            return use(box.formatter)
        }
    }

    func date(_ date: Date, style: String, locale: Locale) -> String {
        let key = "\(locale.identifier)|\(style)"
        return dates.withLock { cache in
            let box = cache[key] ?? {
                let formatter = DateFormatter()
                formatter.locale = locale
                formatter.timeZone = TimeZone(identifier: "UTC")
                formatter.dateStyle = style == "time" ? .none : .medium
                formatter.timeStyle = style == "date" ? .none : .short
                return DateFormatterBox(formatter)
            }()
            cache[key] = box
            return box.formatter.string(from: date)
        }
    }
}

/// Formatters are used only under the cache's lock.
final class NumberFormatterBox: @unchecked Sendable {
    let formatter: NumberFormatter
    init(_ formatter: NumberFormatter) { self.formatter = formatter }
}

final class DateFormatterBox: @unchecked Sendable {
    let formatter: DateFormatter
    init(_ formatter: DateFormatter) { self.formatter = formatter }
}
