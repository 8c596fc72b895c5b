import Foundation
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat
import Yams

/// Loads OpenAPI 3.0 documents (Stripe, Twilio, SendGrid) and converts them to 3.1, kept in a
/// file of its own because both OpenAPIKit modules define `OpenAPI` and `JSONSchema`.
enum OpenAPI30 {
    static func convert(_ data: Data, isYAML: Bool) throws -> OpenAPIKit.OpenAPI.Document {
        let document = isYAML
            ? try YAMLDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: data)
            : try JSONDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: data)
        return document.convert(to: .v3_1_1)
    }
}
