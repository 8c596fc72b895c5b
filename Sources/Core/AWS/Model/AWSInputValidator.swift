import Foundation
import NimbusCore

/// Checks an input against its shape before anything is sent: required members, unknown members
/// (with the closest names), types, enum values, and the model's `min`/`max` (a number's range; a
/// string's, list's or map's length). Every problem is reported at once, each with its path.
///
/// ```swift
/// try AWSInputValidator.validate(["Bucket": "docs", "MaxKeys": -1], for: list, in: s3)
/// // ✗ s3 ListObjectsV2: invalid input: MaxKeys: -1 is below the minimum ...
/// ```
public enum AWSInputValidator {
    /// Validates `input` for `operation`.
    /// - Throws: `invalidArgument` listing every problem.
    public static func validate(_ input: JSONValue, for operation: AWSOperationModel, in model: AWSServiceModel) throws {
        guard let ref = operation.input else {
            if let members = input.objectValue, !members.isEmpty {
                throw NimbusError(.invalidArgument, "\(model.name) \(operation.name) takes no input; got \(members.keys.sorted().joined(separator: ", "))")
            }
            return
        }
        var problems: [String] = []
        check(input, ref: ref, path: "", model: model, problems: &problems, depth: 0)
        guard problems.isEmpty else {
            throw NimbusError(.invalidArgument, "\(model.name) \(operation.name): invalid input: " + problems.prefix(20).joined(separator: "; ")
                              + (problems.count > 20 ? "; and \(problems.count - 20) more" : ""))
        }
    }

    static func check(_ value: JSONValue, ref: AWSShapeRef, path: String, model: AWSServiceModel, problems: inout [String], depth: Int) {
        guard depth < 64, let shape = model.shapes[ref.shape] else { return }
        let here = path.isEmpty ? "the input" : path
        func expect(_ type: String) { problems.append("\(here) must be \(type), not \(value.typeName)") }
        switch shape.kind {
        case .structure:
            if shape.isDocument { return }
            guard let members = value.objectValue else { return expect("an object") }
            for name in shape.required.sorted() where members[name] == nil || members[name] == .null {
                problems.append("\(path.isEmpty ? "" : path + ".")\(name) is required")
            }
            let known = Set(shape.members.map(\.name))
            for name in members.keys.sorted() where !known.contains(name) {
                let close = AWSServiceModel.closeMatches(to: name, in: shape.members.map(\.name), limit: 2)
                problems.append("\(path.isEmpty ? "" : path + ".")\(name) is not a member of \(shape.name)"
                                + (close.isEmpty ? " (members: \(shape.members.map(\.name).prefix(12).joined(separator: ", "))\(shape.members.count > 12 ? ", …" : ""))"
                                   : "; did you mean \(close.joined(separator: " or "))?"))
            }
            if shape.isUnion, members.values.filter({ $0 != .null }).count > 1 {
                problems.append("\(here) is a union: set exactly one of \(shape.members.map(\.name).joined(separator: ", "))")
            }
            for (name, memberRef) in shape.members {
                guard let member = members[name], member != .null else { continue }
                check(member, ref: memberRef, path: path.isEmpty ? name : "\(path).\(name)", model: model, problems: &problems, depth: depth + 1)
            }
        case .list:
            guard let items = value.arrayValue else { return expect("a list") }
            length(items.count, shape: shape, here: here, problems: &problems)
            if let member = shape.member {
                for (index, item) in items.enumerated() {
                    check(item, ref: member, path: "\(path)[\(index)]", model: model, problems: &problems, depth: depth + 1)
                }
            }
        case .map:
            guard let entries = value.objectValue else { return expect("an object (a map)") }
            length(entries.count, shape: shape, here: here, problems: &problems)
            if let valueRef = shape.value {
                for key in entries.keys.sorted() {
                    check(entries[key]!, ref: valueRef, path: "\(path)[\"\(key)\"]", model: model, problems: &problems, depth: depth + 1)
                }
            }
        case .string:
            guard let text = value.stringValue else { return expect("a string") }
            if let allowed = shape.enumValues, !allowed.isEmpty, !allowed.contains(text) {
                problems.append("\(here) '\(text)' is not one of \(allowed.prefix(16).joined(separator: ", "))\(allowed.count > 16 ? ", …" : "")")
            }
            length(text.unicodeScalars.count, shape: shape, here: here, problems: &problems)
        case .blob:
            guard let text = value.stringValue else { return expect("a base64 string") }
            if Data(base64Encoded: text) == nil, !ref.serialization.streaming { problems.append("\(here) must be base64 (it is a blob)") }
        case .boolean:
            guard value.boolValue != nil else { return expect("true or false") }
        case .integer, .long:
            guard let number = value.numberValue else { return expect("an integer") }
            guard number.rounded() == number else { return problems.append("\(here) must be a whole number, not \(number)") }
            if shape.kind == .integer, !(Double(Int32.min)...Double(Int32.max)).contains(number) {
                problems.append("\(here) \(Int64(number)) does not fit a 32-bit integer")
            }
            range(number, shape: shape, here: here, problems: &problems)
        case .float, .double:
            guard let number = value.numberValue else { return expect("a number") }
            range(number, shape: shape, here: here, problems: &problems)
        case .timestamp:
            guard AWSWireFormat.instant(value) != nil else { return expect("a timestamp (ISO 8601 text or epoch seconds)") }
        }
    }

    static func range(_ number: Double, shape: AWSShape, here: String, problems: inout [String]) {
        if let min = shape.min, number < min { problems.append("\(here) \(AWSWireFormat.integerOrFloat(number)) is below the minimum \(AWSWireFormat.integerOrFloat(min))") }
        if let max = shape.max, number > max { problems.append("\(here) \(AWSWireFormat.integerOrFloat(number)) is above the maximum \(AWSWireFormat.integerOrFloat(max))") }
    }

    static func length(_ count: Int, shape: AWSShape, here: String, problems: inout [String]) {
        if let min = shape.min, Double(count) < min { problems.append("\(here) has length \(count), below the minimum \(Int(min))") }
        if let max = shape.max, Double(count) > max { problems.append("\(here) has length \(count), above the maximum \(Int(max))") }
    }
}
