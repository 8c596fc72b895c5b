import Foundation
import NimbusAWS
import NimbusCore
import NimbusKMS

/// AWS KMS (`awskms://?region=…`): master keys that never leave AWS. Data keys come from
/// `GenerateDataKey` (AES-256) with the encryption context, which KMS binds to the wrapped key;
/// `Decrypt` refuses another context; `RotateKeyOnDemand` adds key material while old
/// ciphertexts still decrypt; `ReEncrypt` rewraps inside KMS, the data key never coming out.
/// Calls are made once: ``KeyManagement`` retries what is safe to repeat.
public struct AWSKMSDriver: KMSDriver {
    /// The AWS client (credentials, region, endpoint).
    public let aws: AWSClient

    /// KMS through `aws`.
    public init(aws: AWSClient) { self.aws = aws }

    public var provider: String { "aws-kms" }

    static func context(_ context: [String: String]) -> JSONValue { .object(context.mapValues(JSONValue.string)) }

    static func blob(_ value: JSONValue?, _ name: String) throws -> [UInt8] {
        guard let text = value?.stringValue, let bytes = Data(base64Encoded: text) else {
            throw NimbusError(.internal, "AWS KMS answered without a base64 \(name)")
        }
        return Array(bytes)
    }

    public func createKey(description: String) async throws -> String {
        let result = try await aws.call("kms", "CreateKey", input: ["Description": .string(description), "KeyUsage": "ENCRYPT_DECRYPT",
                                                                    "KeySpec": "SYMMETRIC_DEFAULT"], maxAttempts: 1)
        guard let id = result.output["KeyMetadata"]?["KeyId"]?.stringValue else { throw NimbusError(.internal, "AWS KMS created a key without a KeyId") }
        return id
    }

    public func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey {
        var input: JSONValue = ["KeyId": .string(keyID), "NumberOfBytes": 32]
        if !context.isEmpty { input = input.addingMissing(["EncryptionContext": Self.context(context)]) }
        let output = try await aws.call("kms", "GenerateDataKey", input: input, maxAttempts: 1).output
        return DataKey(plaintext: Secret(try Self.blob(output["Plaintext"], "Plaintext")), wrapped: try Self.blob(output["CiphertextBlob"], "CiphertextBlob"),
                       keyID: output["KeyId"]?.stringValue ?? keyID)
    }

    public func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey {
        var input: JSONValue = ["CiphertextBlob": .string(Data(wrapped).base64EncodedString())]
        if !context.isEmpty { input = input.addingMissing(["EncryptionContext": Self.context(context)]) }
        do {
            let output = try await aws.call("kms", "Decrypt", input: input, maxAttempts: 1).output
            return DataKey(plaintext: Secret(try Self.blob(output["Plaintext"], "Plaintext")), wrapped: wrapped, keyID: output["KeyId"]?.stringValue ?? "")
        } catch let error as NimbusError where error.message.contains("InvalidCiphertext") {
            throw NimbusError(.permissionDenied, "AWS KMS refused the data key: the encryption context differs or the key was altered", underlying: error)
        }
    }

    public func rotateKey(_ keyID: String) async throws {
        _ = try await aws.call("kms", "RotateKeyOnDemand", input: ["KeyId": .string(keyID)], maxAttempts: 1)
    }

    public func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey {
        var input: JSONValue = ["CiphertextBlob": .string(Data(wrapped).base64EncodedString()), "DestinationKeyId": .string(keyID)]
        if !context.isEmpty {
            input = input.addingMissing(["SourceEncryptionContext": Self.context(context), "DestinationEncryptionContext": Self.context(context)])
        }
        do {
            let output = try await aws.call("kms", "ReEncrypt", input: input, maxAttempts: 1).output
            return DataKey(plaintext: Secret([]), wrapped: try Self.blob(output["CiphertextBlob"], "CiphertextBlob"), keyID: output["KeyId"]?.stringValue ?? keyID)
        } catch let error as NimbusError where error.message.contains("InvalidCiphertext") {
            throw NimbusError(.permissionDenied, "AWS KMS refused the data key: the encryption context differs or the key was altered", underlying: error)
        }
    }
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// Adds `awskms://` (options `region`, `endpoint`, `profile`; credentials from the AWS chain).
    public func withAWS() -> Self {
        var copy = self
        copy.register("awskms") { url in
            try url.options.validate(known: ["region", "endpoint", "profile"], for: "awskms://")
            return AWSKMSDriver(aws: AWSClient(configuration: AWSClient.Configuration(url: url)))
        }
        return copy
    }
}
