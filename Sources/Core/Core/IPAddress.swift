import Foundation

/// IPv4 and IPv6 addresses as bytes, and CIDR networks: the one parser for firewall ranges,
/// `@ipMatch` and AWS WAF IP sets.
///
/// ```swift
/// IPAddress.bytes("10.0.0.1")                                   // [10, 0, 0, 1]
/// IPAddress.network(IPAddress.bytes("10.0.0.1")!, prefix: 24)   // [10, 0, 0, 0]
/// ```
public enum IPAddress {
    /// The 4 (IPv4) or 16 (IPv6) bytes of a textual address, or `nil`.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// The textual form of 4 or 16 bytes (`2001:db8::`), or `nil` for another length.
    public static func text(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var text = [CChar](repeating: 0, count: 64)
        let written = bytes.withUnsafeBytes { inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, 64) }
        guard written != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `bytes` with every bit after the first `prefix` cleared: the network's address.
    public static func network(_ bytes: [UInt8], prefix: Int) -> [UInt8] {
        var network = bytes
        for index in network.indices {
            let keep = max(0, min(8, prefix - index * 8))
            network[index] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return network
    }
}
