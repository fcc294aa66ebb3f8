// For `stat()` below: libarchive's headers include <sys/stat.h> outside Glibc's module, so the
// compiler may credit the struct's initializer to CArchive and, with MemberImportVisibility (see
// Package.swift), ask for this import.
import CArchive
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Small file-system steps the store builds on: locks, atomic writes, hashing, and Support's
/// `Files` and `TreeRemoval` (shared with Runtime) with their failures as the store's errors.
enum StoreFiles {
    static func fail(_ op: String, _ path: String, _ err: Int32 = errno) -> ImageStore.Error {
        .system(op, path, err)
    }

    /// rm -rf by directory descriptors (Support's TreeRemoval), its failures as the store's errors.
    static func removeTree(_ path: String) throws {
        do { try TreeRemoval.remove(path: path) } catch let failure as TreeRemoval.Failure {
            throw ImageStore.Error.system(failure.operation, failure.path, failure.errno)
        }
    }

    static func removeTree(_ name: [CChar], in parent: Int32, display: String) throws {
        do { try TreeRemoval.remove(name, in: parent, display: display) } catch let failure as TreeRemoval.Failure {
            throw ImageStore.Error.system(failure.operation, failure.path, failure.errno)
        }
    }

    /// mkdir -p (Support's Files), reporting the errno of the step that failed.
    static func mkdirs(_ path: String, mode: mode_t = 0o755) throws {
        do { try Files.makeDirectories(path, mode: mode) } catch let failure as FileError {
            throw fail("create directory", failure.path, failure.errno)
        }
    }

    /// Writes `data` so that readers see either the old file or the whole new one, never a part,
    /// even after a crash: write a temp file in the same directory, fsync, rename.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let dir = Files.parentDirectory(path)
        let tmp = dir + "/.tmp-\(getpid())-\(UUID().uuidString)"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("create", tmp) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try data.withUnsafeBytes { raw in try writeAll(fd, raw, path: tmp) }
            guard fsync(fd) == 0 else { throw fail("sync", tmp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw fail("rename into place", path) }
        ok = true
        Files.syncDirectory(dir)
    }

    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        do { try Files.writeAll(fd, raw, path: path) } catch let failure as FileError {
            throw fail(failure.operation, failure.path, failure.errno)
        }
    }

    static func read(_ path: String) throws -> Data {
        guard let bytes = Files.readAll(path) else { throw fail("read", path) }
        return Data(bytes)
    }

    static func sha256Hex(_ data: Data) -> String {
        SHA256.hash(data: data).hexString
    }

    static func hex<D: Digest>(_ digest: D) -> String {
        digest.hexString
    }
}

/// An exclusive or shared flock(2) on a file; released on `unlock()` or when the process dies,
/// so a crashed berth never leaves the store locked.
final class FileLock {
    private let fd: Int32

    init(path: String, exclusive: Bool) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreFiles.fail("open lock file", path) }
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            let err = errno
            close(fd)
            throw StoreFiles.fail("lock", path, err)
        }
    }

    func unlock() {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// The exclusive lock if nobody holds the file locked now, else nil (LOCK_NB).
    static func tryExclusive(_ path: String) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreFiles.fail("open lock file", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return FileLock(holding: fd)
    }

    private init(holding fd: Int32) { self.fd = fd }

    static func with<T>(_ path: String, exclusive: Bool, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: path, exclusive: exclusive)
        defer { lock.unlock() }
        return try body()
    }
}
