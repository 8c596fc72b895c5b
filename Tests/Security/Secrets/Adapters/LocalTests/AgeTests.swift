import Foundation
import NimbusCore
import NimbusSecrets
import NimbusSecretsConformance
@testable import NimbusSecretsLocal
import NimbusTesting
import Testing

/// The age format, both directions against Debian's `age` 1.1.1 (Peer.age).
@Suite("age file format: interoperable with Debian's age", .requires(.age), .timeLimit(.minutes(2)))
struct AgeInteropTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("age-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    func age() throws -> String { try Peer.age.url() }
    func keygen() throws -> String { (try age() as NSString).deletingLastPathComponent + "/age-keygen" }

    /// An identity made by age-keygen, and its path.
    func keygenIdentity() async throws -> (path: String, identity: Age.Identity, recipient: String) {
        let path = directory.appendingPathComponent("key-\(UUID().uuidString.prefix(6)).txt").path
        let made = try await ProcessRunner.run(try keygen(), ["-o", path])
        #expect(made.status == 0, "\(made.output)")
        let identity = try #require(try Age.Identity.parseFile(String(contentsOfFile: path, encoding: .utf8)).first)
        let public_ = try await ProcessRunner.run(try keygen(), ["-y", path])
        return (path, identity, public_.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static let sizes = [0, 1, 65535, 65536, 65537, 200_003]
    static func payload(_ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

    @Test("identities from age-keygen parse, and give the recipient age-keygen -y prints")
    func keys() async throws {
        let key = try await keygenIdentity()
        #expect(key.identity.recipient.description == key.recipient)
        #expect(try Age.Recipient(key.recipient) == key.identity.recipient)
        #expect(!"\(key.identity)".contains("AGE-SECRET-KEY"))
        #expect(throws: NimbusError.self) { _ = try Age.Recipient(key.recipient.uppercased()) }
        #expect(throws: NimbusError.self) { _ = try Age.Recipient(String(key.recipient.dropLast()) + (key.recipient.last == "q" ? "p" : "q")) }
    }

    @Test("files Nimbus writes (binary and armored, one to many recipients) decrypt with age -d")
    func nimbusWrites() async throws {
        let key = try await keygenIdentity()
        let other = Age.Identity.generate()
        for size in Self.sizes {
            for armored in [false, true] {
                let plaintext = Self.payload(size)
                let sealed = try Age.encrypt(plaintext, to: [other.recipient, key.identity.recipient], armored: armored)
                let input = directory.appendingPathComponent("n-\(size)-\(armored).age"), output = directory.appendingPathComponent("n-\(size)-\(armored).out")
                try Data(sealed).write(to: input)
                let run = try await ProcessRunner.run(try age(), ["-d", "-i", key.path, "-o", output.path, input.path])
                #expect(run.status == 0, "size \(size) armored \(armored): \(run.output)")
                // age creates its output file with the first byte it writes: none for an empty plaintext.
                #expect(Array((try? Data(contentsOf: output)) ?? Data()) == plaintext, "size \(size) armored \(armored)")
            }
        }
    }

    @Test("files age -r writes (binary and armored) decrypt in Nimbus")
    func ageWrites() async throws {
        let key = try await keygenIdentity()
        for size in Self.sizes {
            for armored in [false, true] {
                let plaintext = Self.payload(size)
                let input = directory.appendingPathComponent("a-\(size).bin"), output = directory.appendingPathComponent("a-\(size)-\(armored).age")
                try Data(plaintext).write(to: input)
                let run = try await ProcessRunner.run(try age(), ["-r", key.recipient] + (armored ? ["-a"] : []) + ["-o", output.path, input.path])
                #expect(run.status == 0, "\(run.output)")
                #expect(try Age.decrypt(Array(try Data(contentsOf: output)), with: [key.identity]) == plaintext, "size \(size) armored \(armored)")
            }
        }
    }

    @Test("a wrong identity is permissionDenied; any altered, truncated or extended byte is dataLoss — and age agrees")
    func tampering() async throws {
        let key = try await keygenIdentity()
        let sealed = try Age.encrypt(Self.payload(70_000), to: [key.identity.recipient])
        #expect(throws: NimbusError.self) { _ = try Age.decrypt(sealed, with: [Age.Identity.generate()]) }
        do { _ = try Age.decrypt(sealed, with: [Age.Identity.generate()]) } catch let error as NimbusError { #expect(error.code == .permissionDenied) }
        let headerEnd = try #require(sealed.indices.first { index in sealed[index...].starts(with: Array("\n---".utf8)) })
        let cases: [(String, [UInt8])] = [
            ("stanza body bit", { var b = sealed; b[headerEnd - 3] ^= 0x01; return b }()),
            ("MAC character", { var b = sealed; b[headerEnd + 8] = b[headerEnd + 8] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A"); return b }()),
            ("payload bit", { var b = sealed; b[b.count - 100] ^= 0x80; return b }()),
            ("first chunk bit", { var b = sealed; b[headerEnd + 80] ^= 0x01; return b }()),
            ("truncated by one byte", Array(sealed.dropLast())),
            ("truncated to the first chunk", Array(sealed.prefix(sealed.count - (70_000 - 65_536) - 16))),
            ("one extra byte", sealed + [0]),
            ("version line", Array("age-encryption.org/v2".utf8) + sealed.dropFirst(21)),
        ]
        for (what, bytes) in cases {
            do {
                _ = try Age.decrypt(bytes, with: [key.identity])
                Issue.record("\(what) was accepted")
            } catch let error as NimbusError {
                #expect(error.code == .dataLoss || (what == "stanza body bit" && error.code == .permissionDenied), "\(what): \(error)")
            }
            let file = directory.appendingPathComponent("tampered.age")
            try Data(bytes).write(to: file)
            let run = try await ProcessRunner.run(try age(), ["-d", "-i", key.path, "-o", directory.appendingPathComponent("tampered.out").path, file.path])
            #expect(run.status != 0, "age accepted the \(what) case")
        }
    }

    @Test("age:// secrets: the file decrypts with age into the JSON document, and a document age -r encrypted opens")
    func secretsFile() async throws {
        let key = try await keygenIdentity()
        let path = directory.appendingPathComponent("secrets.age").path
        let store = try await SecretStore.open("age://\(path)?identity=\(key.path)", openers: .secrets.withLocal())
        try await store.put("db/password", string: "hunter2")
        try await store.put("db/password", string: "hunter3")
        let mode = try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
        #expect(mode & 0o777 == 0o600)
        let out = directory.appendingPathComponent("secrets.json").path
        let run = try await ProcessRunner.run(try age(), ["-d", "-i", key.path, "-o", out, path])
        #expect(run.status == 0, "\(run.output)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        #expect(document["format"] as? String == "nimbus-secrets/1")
        let versions = try #require((document["secrets"] as? [String: Any])?["db/password"] as? [[String: Any]])
        #expect(versions.compactMap { $0["value"] as? String } == [Data("hunter2".utf8).base64EncodedString(), Data("hunter3".utf8).base64EncodedString()])

        // A document someone edited and re-encrypted with age.
        let edited = #"{"format":"nimbus-secrets/1","secrets":{"stripe/key":[{"version":"7","created":"2026-01-02T03:04:05Z","value":"c2tfbGl2ZV94eXo="}]}}"#
        let plain = directory.appendingPathComponent("edited.json")
        try Data(edited.utf8).write(to: plain)
        let editedPath = directory.appendingPathComponent("edited.age").path
        #expect(try await ProcessRunner.run(try age(), ["-r", key.recipient, "-o", editedPath, plain.path]).status == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: editedPath)
        let reopened = try await SecretStore.open("age://\(editedPath)?identity=\(key.path)", openers: .secrets.withLocal())
        #expect(try await reopened.string("stripe/key").reveal() == "sk_live_xyz")
        #expect(try await reopened.versions("stripe/key").map(\.version) == ["7"])

        // Another identity cannot open it; a world-readable identity file is refused.
        let stranger = directory.appendingPathComponent("stranger.txt").path
        try PrivateFile.write(Data(Age.Identity.generate().fileContents.reveal().utf8), to: stranger)
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("age://\(editedPath)?identity=\(stranger)", openers: .secrets.withLocal()) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key.path)
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("age://\(path)?identity=\(key.path)", openers: .secrets.withLocal()) }
    }
}

@Suite("Local secrets drivers", .timeLimit(.minutes(2)))
struct LocalSecretsTests {
    static func temporary(_ name: String) -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    @Test("conformance: mem://", arguments: SecretsConformance.checks)
    func memory(_ check: SecretsConformance.Check) async throws {
        try await check.run(SecretsConformance.Harness { VersionedSecrets() })
    }

    @Test("conformance: age:// (a fresh file per check)", arguments: SecretsConformance.checks)
    func ageFile(_ check: SecretsConformance.Check) async throws {
        let directory = Self.temporary("age-conformance")
        let identity = directory + "/key.txt"
        try PrivateFile.write(Data(Age.Identity.generate().fileContents.reveal().utf8), to: identity)
        try await check.run(SecretsConformance.Harness { try VersionedSecrets(path: directory + "/secrets.age", identityFile: identity) })
    }

    @Test("conformance: file://", arguments: SecretsConformance.checks)
    func files(_ check: SecretsConformance.Check) async throws {
        let directory = Self.temporary("file-secrets")
        try await check.run(SecretsConformance.Harness { FileSecrets(directory: directory) })
    }

    @Test("file:// refuses a secret that is a symlink out of its directory, and writes 0600 files")
    func fileSafety() async throws {
        let directory = Self.temporary("file-safety")
        let outside = Self.temporary("outside") + "/passwd"
        try Data("root:x:0:0".utf8).write(to: URL(fileURLWithPath: outside))
        try FileManager.default.createSymbolicLink(atPath: directory + "/leak", withDestinationPath: outside)
        let store = SecretStore(driver: FileSecrets(directory: directory))
        do {
            _ = try await store.value("leak")
            Issue.record("a symlink out of the directory was followed")
        } catch let error as NimbusError {
            #expect(error.code == .permissionDenied)
        }
        try await store.put("nested/token", string: "t")
        let mode = try #require((try FileManager.default.attributesOfItem(atPath: directory + "/nested/token")[.posixPermissions] as? NSNumber)?.intValue)
        #expect(mode & 0o777 == 0o600)
        #expect(try await store.names() == ["leak", "nested/token"])
    }

    @Test("Bech32 accepts BIP 173's valid strings and refuses its invalid ones")
    func bech32() {
        for valid in ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
                      "?1ezyfcl"] {
            #expect(Bech32.decode(valid) != nil, "\(valid)")
        }
        for invalid in ["pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "10a06t8", "1qzzfhee", "a12UEL5L"] {
            #expect(Bech32.decode(invalid) == nil, "\(invalid)")
        }
        let data: [UInt8] = Array(0..<32)
        let encoded = Bech32.encode(hrp: "age", data: data)
        #expect(Bech32.decode(encoded)?.data == data && Bech32.decode(encoded)?.hrp == "age")
    }
}
