import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// File operations for the start and removal paths, as plain system calls: Foundation's writes
/// fsync and its recursive delete stats more than needed, and every millisecond here is paid
/// by every container. What the image store does the same way is Support's (`Files`,
/// `TreeRemoval`); this adds Runtime's in-place rewrite and its errors.
enum FileTree {
    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0), to: path, mode: mode) }
    }

    /// Overwrites the file in place and then cuts it to length, rather than truncating first:
    /// a file of a recycled container directory (ContainerPool) keeps its data block, where
    /// O_TRUNC would free it and allocate another.
    static func write(_ bytes: UnsafeRawBufferPointer, to path: String, mode: mode_t = 0o644) throws {
        guard let file = FileDescriptor(taking: open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode)) else {
            throw Container.Error(container: "", stage: .files, step: "write \(path)", errno: errno)
        }
        let ok =
            (bytes.count == 0 || pwrite(file.rawValue, bytes.baseAddress, bytes.count, 0) == bytes.count)
            && ftruncate(file.rawValue, off_t(bytes.count)) == 0
        guard ok else { throw Container.Error(container: "", stage: .files, step: "write \(path)", errno: errno) }
    }

    static func mkdir(_ path: String, mode: mode_t = 0o755) throws {
        if Glibc.mkdir(path, mode) != 0 && errno != EEXIST {
            throw Container.Error(container: "", stage: .files, step: "mkdir \(path)", errno: errno)
        }
    }

    /// mkdir -p (Support's Files), its failure as a container's file step.
    static func mkdirs(_ path: String, mode: mode_t = 0o755) throws {
        do { try Files.makeDirectories(path, mode: mode) } catch let error as FileError {
            throw Container.Error(container: "", stage: .files, step: "mkdir \(error.path)", errno: error.errno)
        }
    }

    /// rm -rf of what a directory holds, keeping the directory (TreeRemoval: fd-relative and
    /// iterative, so a container's 100,000-deep tree in its upper dir is no stack overflow).
    static func removeContents(of path: String) throws {
        do { try TreeRemoval.removeContents(of: path) } catch {
            throw Container.Error(container: "", step: "remove \(path)", detail: "\(error)")
        }
    }

    /// rm -rf without following symlinks; true when the path is gone.
    @discardableResult
    static func removeTree(_ path: String) -> Bool {
        (try? TreeRemoval.remove(path: path)) != nil
    }
}

/// Shared, read-only pieces every container's overlay uses, made once per root:
///
///     ROOT/cache/init-layer/      the topmost lower layer: /proc, /dev, /sys, /etc and empty
///                                 /etc/{hosts,hostname,resolv.conf}, so mounting over them
///                                 never copies anything up into the container's upper dir
///                                 (Docker's "-init" layer does the same)
///     ROOT/cache/rootfs-mount/    where each container mounts its overlay, inside its own
///                                 mount namespace (the host never sees these mounts)
enum SharedLayers {
    static func initLayer(root: String) throws -> String {
        let path = root + "/cache/init-layer"
        if access(path + "/etc/resolv.conf", F_OK) == 0 { return path }
        try FileTree.mkdirs(root + "/cache")
        // A temporary name of this call's own: threads of one process making their first
        // containers at once (SupervisionTests) each build one, and a name with only the pid
        // in it let one thread remove what another was building.
        var random = SystemRandomNumberGenerator()
        let temp = path + ".tmp\(getpid())-\(UInt64.random(in: 0...UInt64.max, using: &random))"
        do {
            for dir in ["", "/proc", "/dev", "/sys", "/etc"] { try FileTree.mkdir(temp + dir) }
            for file in ["hosts", "hostname", "resolv.conf"] { try FileTree.write("", to: temp + "/etc/" + file) }
        } catch {
            FileTree.removeTree(temp)
            throw error
        }
        if rename(temp, path) != 0 {
            // Another berth (or thread) made it first.
            FileTree.removeTree(temp)
        }
        return path
    }

    static func mountPoint(root: String) throws -> String {
        let path = root + "/cache/rootfs-mount"
        if access(path, F_OK) != 0 { try FileTree.mkdirs(path) }
        return path
    }
}
