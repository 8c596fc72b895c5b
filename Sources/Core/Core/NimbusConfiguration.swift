import Configuration
import Foundation
import SystemPackage

/// Where Nimbus reads its settings: environment variables over an optional YAML or JSON file.
///
/// ## Key scheme
/// Keys are dotted, lowercase-first: `<domain>.<adapter>.<setting>`, e.g. `cache.url`,
/// `cache.redis.pool.size`, `server.port`. The same key is spelled
/// - in a file, as nested maps: `cache: { redis: { pool: { size: 8 } } }`;
/// - in the environment, upper-cased with `_` and the `NIMBUS_` prefix: `NIMBUS_CACHE_REDIS_POOL_SIZE=8`.
///
/// The environment wins over the file, so a deployment can override one value without a new file.
/// Keys whose last part is `password`, `token`, `secret`, `apiKey`/`api_key` or `key` are read as
/// secrets: swift-configuration redacts them in its access logs.
///
/// ```swift
/// let config = try await NimbusConfiguration.reader(file: "nimbus.yaml")
/// let url = config.string(forKey: "cache.url", default: "mem://")
/// ```
public enum NimbusConfiguration {
    /// The environment variable prefix.
    public static let environmentPrefix = "NIMBUS"

    /// A reader over the environment (prefixed `NIMBUS_`) and, if given, a `.yaml`/`.yml`/`.json` file.
    /// - Parameters:
    ///   - file: the settings file; `nil` reads the environment only.
    ///   - allowMissingFile: treat a missing file as empty instead of failing.
    ///   - environment: the variables to read (the process environment by default).
    public static func reader(
        file: String? = nil,
        allowMissingFile: Bool = false,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ConfigReader {
        let secrets = SecretsSpecifier<String, String>.dynamic { key, _ in isSecretName(key) }
        let env = EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets)
            .prefixKeys(with: ConfigKey(environmentPrefix.lowercased()))
        var providers: [any ConfigProvider] = [env]
        if let file {
            let path = FilePath(file)
            do {
                if file.hasSuffix(".json") {
                    providers.append(try await FileProvider<JSONSnapshot>(filePath: path, allowMissing: allowMissingFile))
                } else if file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
                    providers.append(try await FileProvider<YAMLSnapshot>(filePath: path, allowMissing: allowMissingFile))
                } else {
                    throw NimbusError(.invalidArgument, "settings file \(file) must end in .yaml, .yml or .json")
                }
            } catch let error as NimbusError {
                throw error
            } catch {
                throw NimbusError(.invalidArgument, "cannot read settings file \(file): \(error); fix the file or pass another path", underlying: error)
            }
        }
        return ConfigReader(providers: providers)
    }

    /// Whether a key or variable name names a secret.
    public static func isSecretName(_ name: String) -> Bool {
        let last = name.split(whereSeparator: { $0 == "." || $0 == "_" }).last.map { $0.lowercased() } ?? ""
        let whole = name.lowercased()
        return ["password", "token", "secret", "key", "apikey", "credentials"].contains(last)
            || whole.hasSuffix("api_key") || whole.hasSuffix("apikey")
    }
}
