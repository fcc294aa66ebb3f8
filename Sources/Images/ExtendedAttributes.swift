#if canImport(Glibc)
    import Glibc
#endif

/// The extended-attribute calls of libc (and syncfs). Swift's Glibc module does not export
/// <sys/xattr.h>, so each symbol is looked up once, on first use (only unpacking and capturing
/// layers need them).
enum XAttr {
    private typealias SetFn = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias PathSetFn =
        @convention(c) (
            UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32
        ) -> Int32
    private typealias ListFn = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<CChar>?, Int) -> Int
    private typealias GetFn =
        @convention(c) (
            UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int
        ) -> Int
    private typealias RemoveFn = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32
    private typealias SyncFn = @convention(c) (Int32) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name).map { unsafeBitCast($0, to: type) }
    }
    private static let setFn = symbol("fsetxattr", as: SetFn.self)
    private static let lsetFn = symbol("lsetxattr", as: PathSetFn.self)
    private static let llistFn = symbol("llistxattr", as: ListFn.self)
    private static let lgetFn = symbol("lgetxattr", as: GetFn.self)
    private static let lremoveFn = symbol("lremovexattr", as: RemoveFn.self)
    private static let syncfsFn = symbol("syncfs", as: SyncFn.self)

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

    /// lsetxattr(2): sets `name` on `path` itself, a symlink not followed.
    static func set(path: String, _ name: String, _ value: [UInt8]) -> Int32 {
        guard let lsetFn else {
            errno = ENOSYS
            return -1
        }
        return value.withUnsafeBytes { lsetFn(path, name, $0.baseAddress, $0.count, 0) }
    }

    /// The names of the extended attributes of `path` (a symlink not followed), or nil with errno
    /// set. A file system without extended attributes has none.
    static func names(path: UnsafePointer<CChar>) -> [[UInt8]]? {
        guard let llistFn else {
            errno = ENOSYS
            return nil
        }
        while true {
            let size = llistFn(path, nil, 0)
            if size < 0 { return errno == ENOTSUP ? [] : nil }
            if size == 0 { return [] }
            var buffer = [CChar](repeating: 0, count: size)
            let n = llistFn(path, &buffer, size)
            if n < 0 {
                if errno == ERANGE { continue }  // grew in between
                return nil
            }
            return buffer.prefix(n).split(separator: 0).map { $0.map { UInt8(bitPattern: $0) } }
        }
    }

    /// The value of `name` on `path` (a symlink not followed), or nil with errno set.
    static func value(path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>) -> [UInt8]? {
        guard let lgetFn else {
            errno = ENOSYS
            return nil
        }
        while true {
            let size = lgetFn(path, name, nil, 0)
            if size < 0 { return nil }
            if size == 0 { return [] }
            var buffer = [UInt8](repeating: 0, count: size)
            let n = lgetFn(path, name, &buffer, size)
            if n < 0 {
                if errno == ERANGE { continue }
                return nil
            }
            return Array(buffer.prefix(n))
        }
    }

    /// Removes `name` from `path` (a symlink not followed). Returns 0 or -1 with errno set.
    static func remove(path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>) -> Int32 {
        guard let lremoveFn else {
            errno = ENOSYS
            return -1
        }
        return lremoveFn(path, name)
    }

    /// syncfs(2): writes out the whole file system `fd` is on.
    static func syncFileSystem(_ fd: Int32) -> Int32 {
        guard let syncfsFn else {
            errno = ENOSYS
            return -1
        }
        return syncfsFn(fd)
    }
}
