import Configuration
import NimbusCore

/// Where a command connects: every domain's `--url`, with the same fallbacks.
enum DomainURL {
    /// The flag's URL, else the settings key (`payment.url`; the environment's `NIMBUS_PAYMENT_URL`
    /// overrides a settings file), else the domain's embedded default.
    static func resolve(_ flag: String?, key: String, default fallback: String, config: String? = nil) async throws -> String {
        if let flag { return flag }
        return try await NimbusConfiguration.reader(file: config).string(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: fallback)
    }
}
