import CNetlink

/// The name of a network's bridge: "br-" and 12 hex digits of a hash of the project and network
/// names, as Docker names a bridge after its network's ID. Stable (the same network always gets
/// the same bridge, so teardown after a crash finds it), 15 characters (the kernel's limit), and
/// a different name for every network in practice (48 bits of FNV-1a).
public enum BridgeName {
    public static func of(project: String, network: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array(project.utf8) + [0] + Array(network.utf8) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(hash >> 16, radix: 16)
        return "br-" + String(repeating: "0", count: 12 - hex.count) + hex
    }
}
