import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Where builds work, under the state root, beside the store (one file system, so a captured
/// upper dir is renamed into the store, never copied):
///
///     ROOT/builder/lock                 held shared by every build; exclusive to sweep tmp/
///     ROOT/builder/tmp/STEP/{upper,work} a COPY/ADD/WORKDIR step's tree, and RUN's captured upper
///     ROOT/builder/cache-mounts/ID/     RUN --mount=type=cache directories, kept between builds
///
/// A build killed half-way leaves its step directories in tmp/; the next build that finds no
/// other build running removes them. Its overlays are detached mounts, gone with the process.
final class Workspace {
    let root: String
    let dir: String
    let tmp: String
    let cacheMounts: String
    private let lock: Descriptor

    init(root: String) throws {
        self.root = root
        dir = root + "/builder"
        tmp = dir + "/tmp"
        cacheMounts = dir + "/cache-mounts"
        do {
            for d in [tmp, cacheMounts] { try Files.makeDirectories(d, mode: 0o700) }
        } catch let error as FileError {
            throw BuildError("mkdir \(error.path)", errno: error.errno)
        }
        guard let lock = Descriptor(open(dir + "/lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)) else {
            throw BuildError("open \(dir)/lock", errno: errno)
        }
        self.lock = lock
        // No other build running: what killed builds left goes.
        if flock(lock.fd, LOCK_EX | LOCK_NB) == 0 {
            for name in Files.names(in: tmp) { try? TreeRemoval.remove(path: tmp + "/" + name) }
            // Still under the exclusive lock: once it is shared, another build may start a RUN
            // container that this sweep would take for a leftover and remove while it runs.
            RunStep.removeLeftovers(root: root)
        }
        while flock(lock.fd, LOCK_SH) != 0 && errno == EINTR {}
    }

    /// A fresh step directory in tmp/.
    func stepDirectory() throws -> String {
        let path = tmp + "/" + UUID().uuidString.lowercased()
        guard mkdir(path, 0o700) == 0 else { throw BuildError("mkdir \(path)", errno: errno) }
        return path
    }

    /// The overlay a COPY, ADD or WORKDIR step writes into: `layers` (lowest first) under a new
    /// upper dir at STEP/upper. A detached mount: no path names it, and it is gone when the
    /// descriptor is closed, however the build ends.
    func openOverlay(layers: [String], step: String) throws -> Descriptor {
        for sub in ["upper", "work"] {
            guard mkdir(step + "/" + sub, 0o755) == 0 else { throw BuildError("mkdir \(step)/\(sub)", errno: errno) }
        }
        // overlayfs wants one lower dir at least: an empty one for an image with no layer.
        let lower = layers.isEmpty ? [try emptyLayer()] : layers.reversed()
        return try mounted("the step's overlay") { message in
            berth_overlay_open(lower.joined(separator: ":"), step + "/upper", step + "/work", &message, message.count)
        }
    }

    /// An image's layers read-only (COPY --from): overlayfs wants two lower dirs at least
    /// without an upper one, so an empty one lies at the bottom.
    func openReadOnly(layers: [String]) throws -> Descriptor {
        let lower = layers.reversed() + [try emptyLayer()]
        return try mounted("the image's layers") { message in
            berth_overlay_open_readonly(lower.joined(separator: ":"), &message, message.count)
        }
    }

    private func emptyLayer() throws -> String {
        let empty = root + "/cache/empty-layer"
        do { try Files.makeDirectories(empty) } catch let error as FileError {
            throw BuildError("mkdir \(error.path)", errno: error.errno)
        }
        return empty
    }

    /// The mount `open` makes (a descriptor or -errno, and the kernel's words in `message`).
    private func mounted(_ what: String, _ open: (inout [CChar]) -> Int32) throws -> Descriptor {
        var message = [CChar](repeating: 0, count: 512)
        let fd = open(&message)
        guard let mount = Descriptor(fd) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw BuildError(
                message: "mount \(what): \(String(cString: strerror(-fd)))" + (reason.isEmpty ? "" : " (\(reason))"))
        }
        return mount
    }

    /// A RUN --mount=type=cache directory, made on first use with the mount's owner and mode.
    func cacheMount(id: String, uid: UInt32, gid: UInt32, mode: UInt32) throws -> String {
        // The ID is a name of the user's choosing: hashed, so no ID reaches outside cache-mounts.
        var key = CacheKey(parent: "cache-mount")
        key.add(id)
        let path = cacheMounts + "/" + key.value
        if mkdir(path, mode_t(mode)) == 0 {
            chown(path, uid, gid)
            chmod(path, mode_t(mode))
        } else if errno != EEXIST {
            throw BuildError("mkdir \(path)", errno: errno)
        }
        return path
    }

    static func remove(_ path: String) {
        try? TreeRemoval.remove(path: path)
    }
}
