import NimbusCore

/// An OData `$filter` expression for Microsoft Graph, built from typed parts so that a value can
/// never break out of its literal: strings are single-quoted with `'` doubled, property paths are
/// checked against OData's identifier rule, and the rendering is the only way to text.
///
/// ```swift
/// let filter: GraphFilter = .equals("mail", "o'brien@contoso.com") && .startsWith("displayName", "Ada")
/// filter.description    // (mail eq 'o''brien@contoso.com') and (startsWith(displayName,'Ada'))
/// ```
///
/// Graph runs some operators only as *advanced queries* (`ConsistencyLevel: eventual` with
/// `$count=true`): `ne`, `not`, `endsWith`, and any filter combined with `$orderby` on users and groups.
/// ``requiresAdvancedQuery`` says so, and ``GraphQuery`` sends the header and `$count` by itself.
public indirect enum GraphFilter: Sendable, Hashable, CustomStringConvertible {
    /// `property eq value`.
    case equals(String, GraphLiteral)
    /// `property ne value` (advanced query).
    case notEquals(String, GraphLiteral)
    /// `startsWith(property,'prefix')`.
    case startsWith(String, String)
    /// `endsWith(property,'suffix')` (advanced query).
    case endsWith(String, String)
    /// `property in (v1, v2, …)`: at most 15 values in one expression, Graph's limit.
    case isIn(String, [GraphLiteral])
    /// `collection/any(x:x eq value)`, for multi-valued properties such as `groupTypes` or `proxyAddresses`.
    case contains(String, GraphLiteral)
    /// Both.
    case and(GraphFilter, GraphFilter)
    /// Either.
    case or(GraphFilter, GraphFilter)
    /// `not (…)` (advanced query).
    case not(GraphFilter)

    /// `lhs and rhs`.
    public static func && (lhs: GraphFilter, rhs: GraphFilter) -> GraphFilter { .and(lhs, rhs) }
    /// `lhs or rhs`.
    public static func || (lhs: GraphFilter, rhs: GraphFilter) -> GraphFilter { .or(lhs, rhs) }

    /// Whether Graph runs this filter only with `ConsistencyLevel: eventual` and `$count=true`.
    public var requiresAdvancedQuery: Bool {
        switch self {
        case .notEquals, .endsWith, .not: true
        case .and(let a, let b), .or(let a, let b): a.requiresAdvancedQuery || b.requiresAdvancedQuery
        case .equals, .startsWith, .isIn, .contains: false
        }
    }

    /// The expression as sent in `$filter`.
    public var description: String {
        switch self {
        case .equals(let property, let value): "\(property) eq \(value)"
        case .notEquals(let property, let value): "\(property) ne \(value)"
        case .startsWith(let property, let prefix): "startsWith(\(property),\(GraphLiteral.string(prefix)))"
        case .endsWith(let property, let suffix): "endsWith(\(property),\(GraphLiteral.string(suffix)))"
        case .isIn(let property, let values): "\(property) in (\(values.map(\.description).joined(separator: ",")))"
        case .contains(let property, let value): "\(property)/any(x:x eq \(value))"
        case .and(let a, let b): "(\(a)) and (\(b))"
        case .or(let a, let b): "(\(a)) or (\(b))"
        case .not(let inner): "not (\(inner))"
        }
    }

    /// Checks every property path (`mail`, `onPremisesExtensionAttributes/extensionAttribute1`) and list size.
    /// - Throws: `invalidArgument` naming the part Graph would refuse or misread.
    public func validate() throws {
        switch self {
        case .equals(let property, _), .notEquals(let property, _), .startsWith(let property, _), .endsWith(let property, _), .contains(let property, _):
            try Self.check(property)
        case .isIn(let property, let values):
            try Self.check(property)
            guard (1...15).contains(values.count) else {
                throw NimbusError(.invalidArgument, "a Graph `in` filter takes 1 to 15 values, not \(values.count); split the query or combine with `or`")
            }
        case .and(let a, let b), .or(let a, let b):
            try a.validate(); try b.validate()
        case .not(let inner):
            try inner.validate()
        }
    }

    static func check(_ property: String) throws {
        let segments = property.split(separator: "/", omittingEmptySubsequences: false)
        let valid = !segments.isEmpty && segments.allSatisfy { segment in
            guard let first = segment.unicodeScalars.first, first.properties.isAlphabetic || first == "_" else { return false }
            return segment.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_") }
        }
        guard valid else {
            throw NimbusError(.invalidArgument, "\"\(property.prefix(60))\" is not a Graph property path (letters, digits and `_`, segments joined by `/`)")
        }
    }
}

/// A literal in a ``GraphFilter``.
public enum GraphLiteral: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral {
    /// `'text'`, with `'` doubled.
    case string(String)
    /// `true` / `false`.
    case bool(Bool)
    /// A number.
    case int(Int)
    /// `null`.
    case null

    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }

    public var description: String {
        switch self {
        case .string(let text): "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
        case .bool(let flag): flag ? "true" : "false"
        case .int(let number): String(number)
        case .null: "null"
        }
    }
}

/// How a Graph list is asked for: filter, search, order, extra properties and page size.
///
/// ```swift
/// var query = GraphQuery(filter: .startsWith("displayName", "Ada"))
/// query.search = [.init("department", "Research")]     // $search="department:Research"
/// query.orderBy = ["displayName"]
/// for try await user in directory.users(query) { … }
/// ```
public struct GraphQuery: Sendable, Hashable {
    /// One `"property:term"` clause of `$search` (tokenized, prefix matching; always an advanced query).
    public struct SearchClause: Sendable, Hashable {
        public var property: String
        public var term: String
        public init(_ property: String, _ term: String) { self.property = property; self.term = term }
    }

    /// `$filter`.
    public var filter: GraphFilter?
    /// `$search` clauses, joined with `AND`.
    public var search: [SearchClause]
    /// `$orderby` (`displayName`, `displayName desc`).
    public var orderBy: [String]
    /// Properties read besides the ones the model type maps.
    public var select: [String]
    /// Page size (`$top`, 1–999).
    public var pageSize: Int?
    /// Force an advanced query (`ConsistencyLevel: eventual` and `$count=true`) even when the parts
    /// above do not need one — to read ``GraphPage/count``.
    public var advanced: Bool

    /// Creates a query.
    public init(filter: GraphFilter? = nil, search: [SearchClause] = [], orderBy: [String] = [], select: [String] = [], pageSize: Int? = nil, advanced: Bool = false) {
        self.filter = filter; self.search = search; self.orderBy = orderBy; self.select = select; self.pageSize = pageSize; self.advanced = advanced
    }

    /// Whether Graph needs `ConsistencyLevel: eventual` and `$count=true` for this query.
    public var isAdvanced: Bool {
        advanced || !search.isEmpty || (filter?.requiresAdvancedQuery ?? false) || (filter != nil && !orderBy.isEmpty)
    }

    /// The query parameters for a list whose model maps `modelFields`.
    /// - Throws: `invalidArgument` for a bad property path, page size or search term.
    func parameters(modelFields: [String]) throws -> [(String, String)] {
        var items: [(String, String)] = []
        if let filter {
            try filter.validate()
            items.append(("$filter", filter.description))
        }
        if !search.isEmpty {
            for clause in search { try GraphFilter.check(clause.property) }
            let text = search.map { "\"\($0.property):\($0.term.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
            items.append(("$search", text.joined(separator: " AND ")))
        }
        if !orderBy.isEmpty {
            for order in orderBy {
                let parts = order.split(separator: " ")
                guard (1...2).contains(parts.count), parts.count == 1 || ["asc", "desc"].contains(parts[1]) else {
                    throw NimbusError(.invalidArgument, "\"\(order.prefix(60))\" is not an $orderby item (`property` or `property desc`)")
                }
                try GraphFilter.check(String(parts[0]))
            }
            items.append(("$orderby", orderBy.joined(separator: ",")))
        }
        let fields = modelFields + select.filter { !modelFields.contains($0) }
        for field in select { try GraphFilter.check(field) }
        if !fields.isEmpty { items.append(("$select", fields.joined(separator: ","))) }
        if let pageSize {
            guard (1...999).contains(pageSize) else { throw NimbusError(.invalidArgument, "Graph pages hold 1 to 999 items, not \(pageSize)") }
            items.append(("$top", String(pageSize)))
        }
        if isAdvanced { items.append(("$count", "true")) }
        return items
    }
}
