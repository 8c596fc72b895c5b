import NimbusCore

/// The key rules, stated once for every store.
///
/// A key is 1 to 1024 bytes of UTF-8 without control characters (U+0000–U+001F, U+007F): the
/// intersection of what S3, GCS and Azure accept (GCS refuses CR and LF, Azure caps names at
/// 1024 characters, S3 at 1024 bytes). Everything else is an ordinary key on every driver:
/// spaces, any Unicode, `../`, `./`, a leading `/`, `//`, `%2F`, a trailing `/`. Drivers whose
/// medium gives some of these a meaning (a file system, a URL path) escape them, and the
/// conformance suite reads every such key back through each driver.
///
/// `/` has no meaning but one: it is the usual ``BlobListOptions/delimiter``.
public enum BlobKey {
    /// The longest key, in UTF-8 bytes.
    public static let maximumBytes = 1024

    /// Checks a key. - Throws: `invalidArgument` naming the rule it breaks.
    public static func validate(_ key: String) throws {
        let bytes = key.utf8.count
        guard bytes > 0 else { throw NimbusError(.invalidArgument, "a blob key must not be empty") }
        guard bytes <= maximumBytes else {
            throw NimbusError(.invalidArgument, "blob key \"\(key.prefix(40))…\" is \(bytes) bytes of UTF-8; the limit is \(maximumBytes) (hash or shorten long keys)")
        }
        if let control = key.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw NimbusError(.invalidArgument, "blob key \"\(key.prefix(40).debugDescription)\" contains the control character U+\(String(control.value, radix: 16, uppercase: true)); keys allow any other UTF-8")
        }
    }

    /// Checks a metadata map: names of `a–z 0–9 _` starting with a letter (lowercased here; Azure
    /// wants C# identifiers, so no `-`), values of printable ASCII,
    /// 2 KiB in all (S3's limit for user metadata, the smallest of the stores).
    /// - Returns: the map with names lowercased.
    public static func validate(metadata: [String: String]) throws -> [String: String] {
        var normalized: [String: String] = [:]
        var total = 0
        for (name, value) in metadata {
            let lower = name.lowercased()
            guard !lower.isEmpty, lower.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }),
                  lower.first.map({ $0.isLetter }) == true else {
                throw NimbusError(.invalidArgument, "metadata name \"\(name.prefix(40))\" must start with a letter and use a–z, 0–9 and _ (it travels as an HTTP header and, on Azure, as a C# identifier)")
            }
            guard value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f }) else {
                throw NimbusError(.invalidArgument, "metadata \"\(lower)\" has a value outside printable ASCII; encode it (percent or base64) first")
            }
            guard normalized.updateValue(value, forKey: lower) == nil else {
                throw NimbusError(.invalidArgument, "metadata name \"\(lower)\" is given twice (names are case-insensitive)")
            }
            total += lower.utf8.count + value.utf8.count
        }
        guard total <= 2048 else { throw NimbusError(.invalidArgument, "metadata is \(total) bytes; the limit is 2048 (S3's)") }
        return normalized
    }
}
