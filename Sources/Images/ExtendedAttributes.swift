#if canImport(Glibc)
    import Glibc
#endif

/// fsetxattr(2) from libc. Swift's Glibc module does not export <sys/xattr.h>, so the symbol is
/// looked up once, on first use (only unpacking needs it).
enum XAttr {
    private typealias SetFn = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private static let setFn: SetFn? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fsetxattr")
        .map { unsafeBitCast($0, to: SetFn.self) }

    /// Sets `name` on the file open as `fd`. Returns 0 or -1 with errno set, like the system call.
    static func set(_ fd: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeRawBufferPointer) -> Int32 {
        guard let setFn else {
            errno = ENOSYS
            return -1
        }
        return setFn(fd, name, value.baseAddress, value.count, 0)
    }

    static func set(_ fd: Int32, _ name: String, _ value: [UInt8]) -> Int32 {
        value.withUnsafeBytes { set(fd, name, $0) }
    }
}
