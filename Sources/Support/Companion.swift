#if canImport(Glibc)
    import Glibc
#endif

/// The programs shipped next to `berth` (berth-shim, berth-netd, berth-proxy): found beside the
/// running executable, or where an environment variable says (tests, packagers).
public enum Companion {
    /// `variable`'s value when set, else NAME in the running program's directory.
    public static func path(_ name: String, override variable: String) -> String {
        if let given = getenv(variable) { return String(cString: given) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/" + name
    }
}
