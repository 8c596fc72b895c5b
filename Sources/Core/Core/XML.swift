import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element: what AWS's query and REST-XML protocols and Azure Storage answer.
///
/// ```swift
/// let root = try XMLElement.parse(Data(body.readableBytesView))
/// let names = root["Blobs"]?.all("Blob").compactMap { $0["Name"]?.text }
/// ```
public struct XMLElement: Sendable, Hashable {
    /// The element's local name.
    public var name: String
    /// Its text (for leaves).
    public var text: String
    /// Its child elements, in order.
    public var children: [XMLElement]
    /// Its attributes, by local name (Azure's `<Name Encoded="true">`).
    public var attributes: [String: String]

    public init(name: String, text: String = "", children: [XMLElement] = [], attributes: [String: String] = [:]) {
        self.name = name; self.text = text; self.children = children; self.attributes = attributes
    }

    /// `text` with `&`, `<` and `>` escaped, for an element's text.
    public static func escape(_ text: String) -> String {
        guard text.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" }) else { return text }
        return text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// `text` escaped for a double-quoted attribute value (`"`, and line breaks and tabs as character references, which
    /// attribute normalisation would otherwise turn into spaces).
    public static func escapeAttribute(_ text: String) -> String {
        escape(text).replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "\r", with: "&#13;")
            .replacingOccurrences(of: "\n", with: "&#10;").replacingOccurrences(of: "\t", with: "&#09;")
    }

    /// The first child named `name`.
    public subscript(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`.
    public func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// Parses a document. - Throws: `dataLoss` for a body that is not XML.
    public static func parse(_ data: some DataProtocol) throws -> XMLElement {
        let delegate = Builder()
        let parser = XMLParser(data: Data(data))
        parser.delegate = delegate
        guard parser.parse(), let root = delegate.root else {
            throw NimbusError(.dataLoss, "the response is not XML: \(parser.parserError.map { "\($0)" } ?? "no root element")")
        }
        return root
    }

    /// The element as JSON: leaves are strings; repeated children or `member`/`item` lists become
    /// arrays; `entry` lists with `key`/`value` become objects (the query protocol's maps).
    public var json: JSONValue {
        guard !children.isEmpty else { return .string(text) }
        let names = Set(children.map(\.name))
        if names.count == 1, let only = names.first, ["member", "item"].contains(only) {
            return .array(children.map(\.json))
        }
        if names == ["entry"], children.allSatisfy({ $0["key"] != nil }) {
            return .object(Dictionary(children.map { ($0["key"]?.text ?? "", $0["value"]?.json ?? .null) }, uniquingKeysWith: { _, last in last }))
        }
        var grouped: [String: [JSONValue]] = [:]
        for child in children { grouped[child.name, default: []].append(child.json) }
        let object = grouped.mapValues { $0.count == 1 ? $0[0] : .array($0) }
        return .object(object)
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLElement] = []
        var root: XMLElement?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
            var named: [String: String] = [:]
            for (key, value) in attributes { named[key.split(separator: ":").last.map(String.init) ?? key] = value }
            stack.append(XMLElement(name: local, attributes: named))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard var element = stack.popLast() else { return }
            if !element.children.isEmpty { element.text = element.text.trimmingCharacters(in: .whitespacesAndNewlines) }
            if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
        }
    }
}
