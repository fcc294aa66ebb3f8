import CRuntime
import CSeccomp
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Seccomp profiles in Docker's JSON format, compiled with libseccomp to classic BPF in the
/// parent and cached on disk by content hash (ROOT/cache/seccomp/SHA.bpf). The container's child
/// only installs the bytes.
public enum Seccomp {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    struct Profile: Decodable {
        var defaultAction: String
        var defaultErrnoRet: UInt32?
        var archMap: [ArchMap]?
        var architectures: [String]?
        var syscalls: [Rule]?

        struct ArchMap: Decodable {
            var architecture: String
            var subArchitectures: [String]?
        }
        struct Rule: Decodable {
            var names: [String]?
            var name: String?
            var action: String
            var errnoRet: UInt32?
            var args: [Arg]?
            var includes: Filter?
            var excludes: Filter?
        }
        struct Arg: Decodable {
            var index: UInt32
            var value: UInt64
            var valueTwo: UInt64?
            var op: String
        }
        struct Filter: Decodable {
            var caps: [String]?
            var arches: [String]?
            var minKernel: String?
        }
    }

    /// The BPF program (struct sock_filter[]) for a profile and a capability set, from the cache
    /// when this exact input was compiled before.
    public static func filter(profileJSON: String, capabilities: UInt64, root: String) throws -> [UInt8] {
        let key = "berth-seccomp-v2\n\(hostArch)\n\(kernelRelease)\n\(String(capabilities, radix: 16))\n" + profileJSON
        let hash = sha256Hex(Array(key.utf8))
        let dir = root + "/cache/seccomp"
        let path = dir + "/" + hash + ".bpf"
        if let cached = Files.readAll(path), !cached.isEmpty, cached.count % 8 == 0 { return cached }
        let program = try compile(profileJSON: profileJSON, capabilities: capabilities)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let temp = path + ".\(getpid()).tmp"
        if FileManager.default.createFile(atPath: temp, contents: Data(program)) {
            if rename(temp, path) != 0 { unlink(temp) }
        }
        return program
    }

    /// The largest profile berth reads: Docker's default profile is about 30 KB of JSON.
    public static let maximumProfileSize = 1 << 20

    /// Reads a profile file in Docker's JSON format. It must be a regular file (not a FIFO,
    /// device or directory, which could block or never end) of at most `maximumProfileSize`
    /// bytes of UTF-8. Every failure is one line naming the file, in Docker's words:
    /// `opening seccomp profile (PATH) failed: REASON`.
    public static func loadProfile(path: String) throws -> String {
        // The path as one line (control characters escaped), so the message stays one line.
        let shown = path.unicodeScalars.map { c -> String in
            switch c {
            case "\n": return "\\n"
            case "\t": return "\\t"
            case "\r": return "\\r"
            default: return c.value < 0x20 || c.value == 0x7f ? "\\x" + String(c.value, radix: 16) : String(c)
            }
        }.joined()
        func failure(_ reason: String) -> Error {
            Error(description: "opening seccomp profile (\(shown)) failed: \(reason)")
        }
        func kind(_ mode: mode_t) -> String {
            switch mode & S_IFMT {
            case S_IFDIR: return "a directory"
            case S_IFCHR: return "a character device"
            case S_IFBLK: return "a block device"
            case S_IFIFO: return "a FIFO"
            case S_IFSOCK: return "a socket"
            default: return "not a regular file"
            }
        }
        guard !path.isEmpty else { throw failure("no file name given") }
        guard !path.utf8.contains(0) else { throw failure("the file name contains a NUL byte") }
        // The type is checked before the open, which alone could block (a FIFO) or act (a device).
        var st = stat()
        guard stat(path, &st) == 0 else { throw failure(String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw failure("it is \(kind(st.st_mode)), not a regular file") }
        // O_NONBLOCK and the second check: the path may have been swapped for a FIFO meanwhile.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw failure(String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw failure("it is \(kind(st.st_mode)), not a regular file") }
        let limit = maximumProfileSize
        let tooLarge = "larger than \(limit >> 20) MiB"
        guard st.st_size <= limit else { throw failure(tooLarge) }
        // Up to one byte more than the limit is read, so a file that grew since the fstat is caught.
        var bytes = [UInt8](repeating: 0, count: min(Int(st.st_size) + 4096, limit + 1))
        var count = 0
        while true {
            if count == bytes.count {
                guard bytes.count <= limit else { break }
                bytes += [UInt8](repeating: 0, count: min(bytes.count, limit + 1 - bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw failure(String(cString: strerror(errno))) }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw failure(tooLarge) }
        guard let text = String(validating: bytes[..<count], as: UTF8.self) else {
            throw failure("the file is not UTF-8 text")
        }
        return text
    }

    // MARK: compiling

    static let actionAllow: UInt32 = 0x7fff_0000
    static func actionErrno(_ e: UInt32) -> UInt32 { 0x0005_0000 | (e & 0xffff) }

    static func action(_ name: String, errno: UInt32?, defaultErrno: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_ALLOW": return actionAllow
        case "SCMP_ACT_ERRNO": return actionErrno(errno ?? defaultErrno ?? UInt32(EPERM))
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((errno ?? 0) & 0xffff)
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        default: throw Error(description: "seccomp profile: unsupported action \(name)")
        }
    }

    static func compare(_ op: String) throws -> scmp_compare {
        switch op {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: throw Error(description: "seccomp profile: unknown operator \(op)")
        }
    }

    /// Go-style architecture name, as Docker profiles write `includes.arches`.
    static let hostArch: String = {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        default: return machine
        }
    }()

    static let kernelRelease: String = {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    static func kernelAtLeast(_ version: String) -> Bool {
        func numbers(_ s: String) -> [Int] {
            s.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        }
        let have = numbers(kernelRelease)
        let want = numbers(version)
        for i in 0..<max(have.count, want.count) {
            let a = i < have.count ? have[i] : 0
            let b = i < want.count ? want[i] : 0
            if a != b { return a > b }
        }
        return true
    }

    /// libseccomp's name for a Docker arch constant ("SCMP_ARCH_X86_64" -> "x86_64").
    static func libseccompArch(_ docker: String) -> String {
        var name = docker
        if name.hasPrefix("SCMP_ARCH_") { name.removeFirst(10) }
        return name.lowercased()
    }

    static func compile(profileJSON: String, capabilities: UInt64) throws -> [UInt8] {
        let profile: Profile
        do {
            profile = try JSONDecoder().decode(Profile.self, from: Data(profileJSON.utf8))
        } catch {
            throw Error(description: "seccomp profile is not valid JSON in Docker's format: \(error)")
        }
        let defaultAction = try action(profile.defaultAction, errno: profile.defaultErrnoRet, defaultErrno: nil)
        guard let ctx = seccomp_init(defaultAction) else { throw Error(description: "seccomp_init failed") }
        defer { seccomp_release(ctx) }
        // A binary tree of syscall numbers instead of libseccomp's linear chain: on load the
        // kernel runs the filter once per syscall number to build its action cache, so a chain
        // of ~1000 instructions costs ~0.6 ms in every container start; the tree ~0.1 ms (measured).
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)

        // Sub-architectures of the native one (x86 and x32 on x86_64), as Docker adds them.
        let native = seccomp_arch_native()
        var arches: [String] = []
        for entry in profile.archMap ?? [] where seccomp_arch_resolve_name(libseccompArch(entry.architecture)) == native
        {
            arches += entry.subArchitectures ?? []
        }
        for name in arches {
            let arch = seccomp_arch_resolve_name(libseccompArch(name))
            if arch != 0 && arch != native {
                let rc = seccomp_arch_add(ctx, arch)
                if rc != 0 && rc != -EEXIST {
                    throw Error(
                        description: "seccomp: cannot add architecture \(name): \(String(cString: strerror(-rc)))")
                }
            }
        }

        let capNames = Set(Capabilities.names(of: capabilities))
        for rule in profile.syscalls ?? [] {
            if let inc = rule.includes {
                if let caps = inc.caps, !caps.allSatisfy({ capNames.contains(canonicalCap($0)) }) { continue }
                if let a = inc.arches, !a.contains(hostArch) { continue }
                if let k = inc.minKernel, !kernelAtLeast(k) { continue }
            }
            if let exc = rule.excludes {
                if let caps = exc.caps, caps.contains(where: { capNames.contains(canonicalCap($0)) }) { continue }
                if let a = exc.arches, a.contains(hostArch) { continue }
            }
            let act = try action(rule.action, errno: rule.errnoRet, defaultErrno: profile.defaultErrnoRet)
            if act == defaultAction { continue }
            var conditions: [scmp_arg_cmp] = []
            for arg in rule.args ?? [] {
                conditions.append(
                    scmp_arg_cmp(
                        arg: arg.index, op: try compare(arg.op), datum_a: arg.value, datum_b: arg.valueTwo ?? 0))
            }
            // One comparison per argument index: AND them in one rule; repeated indexes mean OR.
            let repeated = Set(conditions.map { $0.arg }).count != conditions.count
            let groups: [[scmp_arg_cmp]] = repeated ? conditions.map { [$0] } : [conditions]
            for name in (rule.names ?? []) + (rule.name.map { [$0] } ?? []) {
                let number = seccomp_syscall_resolve_name(name)
                if number == __NR_SCMP_ERROR { continue }
                for group in groups {
                    let rc = group.withUnsafeBufferPointer {
                        seccomp_rule_add_array(ctx, act, number, UInt32($0.count), $0.baseAddress)
                    }
                    if rc != 0 && rc != -EEXIST {
                        throw Error(
                            description: "seccomp: rule for \(name) rejected: \(String(cString: strerror(-rc)))")
                    }
                }
            }
        }

        let fd = berth_memfd("berth-seccomp")
        guard fd >= 0 else { throw Error(description: "seccomp: memfd_create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw Error(description: "seccomp: export: \(String(cString: strerror(-rc)))") }
        lseek(fd, 0, SEEK_SET)
        guard let program = Files.readAll(fd: fd) else {
            throw Error(description: "seccomp: read the program: \(String(cString: strerror(errno)))")
        }
        return program
    }

    static func canonicalCap(_ name: String) -> String {
        let n = name.uppercased()
        return n.hasPrefix("CAP_") ? n : "CAP_" + n
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in SHA256.hash(data: bytes) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
