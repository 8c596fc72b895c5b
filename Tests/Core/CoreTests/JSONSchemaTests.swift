import Foundation
import NimbusCore
import Testing

private struct TripInput: Codable, Equatable, JSONSchemaDescribing {
    enum Mode: String, Codable, CaseIterable { case train, plane, bike }
    struct Stop: Codable, Equatable { var city: String; var nights: Int }
    var travellers: Int
    var mode: Mode
    var stops: [Stop]
    var budget: Double?
    var tags: Set<String>
    var notes: [String: String]
    var start: Date
    var returning: Bool?
    static let schemaDescriptions = ["mode": "How to travel", "stops": "Cities in order"]
}

private struct Recursive: Codable { var children: [Recursive] }
private enum Colour: String, Codable { case red, green }      // not CaseIterable
private struct Painted: Codable { var colour: Colour }

@Suite struct JSONSchemaTests {
    @Test func derivationFollowsTheTypesDecoding() throws {
        let schema = try JSONSchema.derive(TripInput.self)
        #expect(schema["type"] == "object")
        #expect(schema["additionalProperties"] == false)
        let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        #expect(required == ["travellers", "mode", "stops", "tags", "notes", "start"], "optionals are not required")
        let properties = try #require(schema["properties"])
        #expect(properties["travellers"] == ["type": "integer"])
        #expect(properties["mode"] == ["type": "string", "enum": ["train", "plane", "bike"], "description": "How to travel"])
        #expect(properties["stops"]?["items"]?["properties"]?["nights"] == ["type": "integer"])
        #expect(properties["stops"]?["description"] == "Cities in order")
        #expect(properties["budget"] == ["type": "number"])
        #expect(properties["tags"] == ["type": "array", "items": ["type": "string"], "uniqueItems": true])
        #expect(properties["notes"] == ["type": "object", "additionalProperties": ["type": "string"]])
        #expect(properties["start"] == ["type": "string", "format": "date-time"])
    }

    @Test func aValueEncodedFromTheTypeFitsItsDerivedSchema() throws {
        let schema = try JSONSchema.derive(TripInput.self)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let trip = TripInput(travellers: 2, mode: .train, stops: [.init(city: "Oslo", nights: 2)], budget: 1200.5, tags: ["a"],
                             notes: ["x": "y"], start: Date(timeIntervalSince1970: 1_800_000_000), returning: nil)
        #expect(JSONSchema.validate(try JSONValue(encoding: trip, encoder: encoder), against: schema) == [])
    }

    @Test func typesDerivationCannotFollowSayWhatToDo() {
        #expect(throws: NimbusError.self) { try JSONSchema.derive(Recursive.self) }
        let error = #expect(throws: NimbusError.self) { try JSONSchema.derive(Painted.self) }
        #expect(error?.message.contains("JSONSchemaProviding") == true)
    }

    @Test func violationsNameTheirPathAndWhatWasExpected() throws {
        let schema = try JSONSchema.derive(TripInput.self)
        let value: JSONValue = ["travellers": 2.5, "mode": "boat", "stops": [["city": 3, "nights": 1]], "tags": ["a", "a"],
                                "notes": ["k": 1], "start": "yesterday", "extra": true]
        let problems = JSONSchema.validate(value, against: schema)
        #expect(problems.contains("/travellers: expected integer, got number 2.5"))
        #expect(problems.contains(#"/mode: must be one of "train", "plane", "bike", got string "boat""#))
        #expect(problems.contains("/stops/0/city: expected string, got number 3"))
        #expect(problems.contains("/tags: items must be unique"))
        #expect(problems.contains("/notes/k: expected string, got number 1"))
        #expect(problems.contains(#"/start: is not a valid date-time: "yesterday""#))
        #expect(problems.contains { $0.hasPrefix("/extra: unknown property") })
        #expect(JSONSchema.validate(["travellers": 1], against: schema).contains("/mode: required property is missing"))
    }

    @Test func boundsCombinatorsAndReferences() {
        let schema: JSONValue = [
            "$defs": ["port": ["type": "integer", "minimum": 1, "maximum": 65535]],
            "type": "object",
            "properties": [
                "port": ["$ref": "#/$defs/port"],
                "name": ["type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"],
                "id": ["anyOf": [["type": "string", "format": "uuid"], ["type": "integer"]]],
                "ratio": ["type": "number", "exclusiveMinimum": 0, "multipleOf": 0.25],
                "list": ["type": ["array", "null"], "maxItems": 2],
            ],
        ]
        #expect(JSONSchema.validate(["port": 80, "name": "abc", "id": 7, "ratio": 0.75, "list": nil], against: schema) == [])
        let problems = JSONSchema.validate(["port": 70000, "name": "ABCDEFG", "id": "nope", "ratio": 0.3, "list": [1, 2, 3]], against: schema)
        #expect(problems.contains("/port: must be ≤ 65535, got 70000"))
        #expect(problems.contains("/name: allows at most 5 characters, has 7"))
        #expect(problems.contains("/name: must match the pattern ^[a-z]+$"))
        #expect(problems.contains { $0.hasPrefix("/id: matches none of the 2 allowed shapes") })
        #expect(problems.contains("/ratio: must be a multiple of 0.25, got 0.3"))
        #expect(problems.contains("/list: allows at most 2 items, has 3"))
    }
}
