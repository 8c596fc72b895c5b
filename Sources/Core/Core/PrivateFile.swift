import Foundation

/// Files only this process's user may read — keyrings, secrets, identities: read them only if
/// group and others have no access, and replace them atomically with mode 0600.
///
/// ```swift
/// let data = try PrivateFile.read("./.nimbus/keyring.json")      // nil if absent
/// try PrivateFile.write(Data(json), to: "./.nimbus/keyring.json")
/// ```
public enum PrivateFile {
    /// The file's bytes, or `nil` if it does not exist.
    /// - Throws: `permissionDenied` when group or others can access it (with the `chmod` to run),
    ///   or when it cannot be read.
    public static func read(_ path: String, what: String = "the file") throws -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw NimbusError(.permissionDenied, "\(what) \(path) can be read by other users (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw NimbusError(.permissionDenied, "cannot read \(what) \(path): \(error)", underlying: error)
        }
    }

    /// Replaces the file with `data`: written to a temporary file (mode 0600) beside it, then
    /// renamed over it, so a reader sees the old or the new content and never a mix.
    public static func write(_ data: Data, to path: String, what: String = "the file") throws {
        let temporary = path + ".tmp-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw NimbusError(.permissionDenied, "cannot write \(what) next to \(path) (does the directory exist and is it writable?)")
        }
        if rename(temporary, path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(atPath: temporary)
            throw NimbusError(.unavailable, "cannot replace \(what) \(path) (errno \(code))")
        }
    }
}
