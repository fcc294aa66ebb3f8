import CArchive
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A layer a build made: what `captureLayer` returns and `commitImage` stacks.
public struct BuiltLayer: Sendable, Equatable {
    /// `sha256:<hex>` of the uncompressed tar; also the digest of its blob, stored uncompressed.
    public var diffID: String
    /// Bytes of the tar.
    public var size: Int64

    public init(diffID: String, size: Int64) {
        self.diffID = diffID
        self.size = size
    }
}

/// Capturing a directory in overlay format (a container's upper directory after a build step)
/// as a layer of the store. The tar is the layer's one true form (its hash is the diff ID a
/// registry and `image save` see); the directory, moved into layers/, is the unpacked copy that
/// overlayfs stacks, and is made to match what unpacking that tar would give: the overlay's own
/// bookkeeping attributes go, and times are the tar's.
extension ImageStore {
    /// The layer's unpacked directory (…/diff), for stacking in an overlay.
    public func layerPath(_ diffID: String) -> String {
        layerDirectory(diffID) + "/diff"
    }

    /// Turns `directory` (an overlayfs upper dir, or any directory in the same overlay format)
    /// into a layer of the store: a tar with OCI whiteouts (`.wh.NAME` for 0/0 character devices,
    /// `.wh..wh..opq` for directories with trusted.overlay.opaque=y), entries in byte order of
    /// their names, depth first, numeric owners only, no atime or ctime, modification times in
    /// whole seconds and clamped to `sourceDateEpoch` when given (BuildKit's rewrite-timestamp),
    /// hard links within the tree as tar hard links, extended attributes except trusted.overlay.*
    /// and security.selinux (the host's label, not the image's). A trusted.overlay.redirect or
    /// .metacopy attribute is an error: such a layer cannot be expressed as a tar.
    ///
    /// The tar is hashed as it is written, stored as an uncompressed blob whose digest is the
    /// diff ID, and `directory` itself is moved (rename(2): it must be on the store's file
    /// system) to layers/sha256/<hex>/diff, after syncfs; if that layer exists already,
    /// `directory` is removed instead. Either way `directory` is gone when this returns.
    /// Until an image or build-cache entry names it, a lease keeps the layer from garbage
    /// collection (for a day, or until `commitImage` records it).
    public func captureLayer(directory: String, sourceDateEpoch: Int64? = nil) throws -> BuiltLayer {
        try FileLock.with(gcLockPath, exclusive: false) {
            let top = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard top >= 0 else { throw StoreFiles.fail("open", directory) }
            defer { close(top) }
            var source = stat()
            var store = stat()
            guard fstat(top, &source) == 0 else { throw StoreFiles.fail("inspect", directory) }
            guard stat(tmpDir, &store) == 0 else { throw StoreFiles.fail("inspect", tmpDir) }
            guard source.st_dev == store.st_dev else {
                throw Error.capture(directory, "", "it is not on the file system of the image store (\(root))")
            }

            let temp = tmpDir + "/blob-\(getpid())-\(UUID().uuidString)"
            let out = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard out >= 0 else { throw StoreFiles.fail("create", temp) }
            // After commitBlob renamed it this finds nothing; before, it drops the partial blob.
            defer { unlink(temp) }
            let sink = TarSink(fd: out, path: temp)
            do {
                try LayerTarWriter(display: directory, epoch: sourceDateEpoch).write(root: top, to: sink)
                guard fsync(out) == 0 else { throw StoreFiles.fail("sync", temp) }
            } catch {
                close(out)
                throw error
            }
            close(out)
            // The tree's data and the metadata the walk changed must be on disk before the store
            // names the layer.
            guard XAttr.syncFileSystem(top) == 0 else { throw StoreFiles.fail("sync the file system of", directory) }

            let layer = BuiltLayer(diffID: "sha256:" + StoreFiles.hex(sink.hasher.finalize()), size: sink.size)
            try commitBlob(temp, digest: layer.diffID)
            _ = try Lease(
                store: self, name: Self.captureLeaseName(layer.diffID), blobs: [layer.diffID], layers: [layer.diffID])
            try installLayer(directory, layer)
            return layer
        }
    }

    /// The lease `captureLayer` takes on a layer, released by the commit that names it.
    static func captureLeaseName(_ diffID: String) -> String {
        "layer-" + diffID.replacing("sha256:", with: "")
    }

    /// Moves `directory` into the store as the unpacked layer, or drops it if the store has that
    /// layer already. It moves into tmp/ first, so that a failure anywhere leaves nothing half
    /// made in layers/ (and the next collection removes what tmp/ keeps).
    private func installLayer(_ directory: String, _ layer: BuiltLayer) throws {
        let work = tmpDir + "/layer-\(getpid())-\(UUID().uuidString)"
        guard mkdir(work, 0o755) == 0 else { throw StoreFiles.fail("create directory", work) }
        defer { try? StoreFiles.removeTree(work) }
        guard rename(directory, work + "/diff") == 0 else {
            if errno == EXDEV {
                throw Error.capture(directory, "", "it is not on the file system of the image store (\(root))")
            }
            throw StoreFiles.fail("move into the image store", directory)
        }
        let final = layerDirectory(layer.diffID)
        if Files.exists(final + "/diff") { return }
        try StoreFiles.writeAtomically(Data(String(layer.size).utf8), to: work + "/size")
        if rename(work, final) != 0 && errno != EEXIST && errno != ENOTEMPTY {
            throw StoreFiles.fail("move the layer to", final)
        }
        Files.syncDirectory(layersDir)
    }
}

/// Where the tar goes: the blob's temp file, hashed on the way.
private final class TarSink {
    let fd: Int32
    let path: String
    var hasher = SHA256()
    var size: Int64 = 0
    /// The first write error; libarchive only sees -1.
    var failure: ImageStore.Error?

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func write(_ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        let chunk = UnsafeRawBufferPointer(start: buffer, count: count)
        do {
            try StoreFiles.writeAll(fd, chunk, path: path)
        } catch {
            failure = error as? ImageStore.Error ?? .system("write", path, EIO)
            return -1
        }
        hasher.update(bufferPointer: chunk)
        size += Int64(count)
        return count
    }
}

/// Walks a directory in overlay format and writes it as a layer tar (see `captureLayer`).
/// Every call is relative to a directory descriptor, so paths longer than PATH_MAX work; the
/// extended attributes are reached by /proc/self/fd/<parent>/<name>, which is short.
private final class LayerTarWriter {
    private let display: String
    private let epoch: Int64?
    private var archive: OpaquePointer?
    private var sink: TarSink?
    /// The first name written of each regular file with several links: later names link to it.
    private var firstNames: [FileID: [UInt8]] = [:]
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 20

    private struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    init(display: String, epoch: Int64?) {
        self.display = display
        self.epoch = epoch
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    func write(root: Int32, to sink: TarSink) throws {
        if let problem = carchive_load_error() { throw fail([], String(cString: problem)) }
        guard let a = archive_write_new() else { throw fail([], "out of memory") }
        defer { archive_write_free(a) }
        archive = a
        self.sink = sink
        archive_write_set_format_pax_restricted(a)
        // Extended attributes as SCHILY.xattr.* records only (GNU tar's, Go's and so Docker's),
        // not libarchive's own LIBARCHIVE.xattr.* beside them.
        try check(archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY"), [], "setting up the tar")
        // No padding beyond the end-of-archive blocks: the empty layer is 1024 zero bytes, as
        // every other tool writes it.
        archive_write_set_bytes_in_last_block(a, 1)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        let opened = archive_write_open(
            a, context, nil,
            { _, ctx, data, length in
                let sink = Unmanaged<TarSink>.fromOpaque(ctx!).takeUnretainedValue()
                return sink.write(data!, length)
            }, nil)
        try check(opened, [], "starting the tar")

        // The root itself is no entry (as in Docker's layers); an opaque root hides every lower
        // layer, which only its whiteout can say.
        let rootAttributes = try attributes(of: [UInt8](), in: root, at: [])
        if rootAttributes.opaque {
            var st = stat()
            guard fstat(root, &st) == 0 else { throw failure([], "cannot inspect it") }
            try marker(Array(".wh..wh..opq".utf8), like: st)
        }
        try walk(root, prefix: [])
        try check(archive_write_close(a), [], "finishing the tar")
    }

    // MARK: the walk

    private func walk(_ dir: Int32, prefix: [UInt8]) throws {
        for name in try names(in: dir, prefix) {
            let path = prefix + name
            let cName = LayerEntryWriter.cString(name)
            var st = stat()
            guard fstatat(dir, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure(path, "cannot inspect it") }
            let type = st.st_mode & S_IFMT
            // overlayfs's whiteout: a 0/0 character device (possibly one of many links to the
            // overlay's shared whiteout).
            if type == S_IFCHR && st.st_rdev == 0 {
                try marker(prefix + Array(".wh.".utf8) + name, like: st)
                continue
            }
            // A socket cannot be archived meaningfully; Docker skips them too.
            if type == S_IFSOCK { continue }
            let xattrs = try attributes(of: name, in: dir, at: path)
            let mtime = self.mtime(st)
            guard let entry = archive_entry_new() else { throw fail(path, "out of memory") }
            defer { archive_entry_free(entry) }
            archive_entry_set_perm(entry, st.st_mode & 0o7777)
            archive_entry_set_uid(entry, Int64(st.st_uid))
            archive_entry_set_gid(entry, Int64(st.st_gid))
            archive_entry_set_mtime(entry, time_t(mtime), 0)
            var times = [timespec(tv_sec: time_t(mtime), tv_nsec: 0), timespec(tv_sec: time_t(mtime), tv_nsec: 0)]

            if type == S_IFREG, st.st_nlink > 1 {
                let id = FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
                if let first = firstNames[id] {
                    setPath(entry, path)
                    archive_entry_set_filetype(entry, UInt32(S_IFREG as mode_t))
                    archive_entry_set_size(entry, 0)
                    LayerEntryWriter.cString(first).withUnsafeBufferPointer {
                        archive_entry_set_hardlink(entry, $0.baseAddress)
                    }
                    try header(entry, path)
                    continue
                }
                firstNames[id] = path
            }
            for (key, value) in xattrs.kept {
                value.withUnsafeBytes { v in
                    LayerEntryWriter.cString(key).withUnsafeBufferPointer {
                        archive_entry_xattr_add_entry(entry, $0.baseAddress, v.baseAddress, v.count)
                    }
                }
            }

            switch type {
            case S_IFDIR:
                setPath(entry, path + [UInt8(ascii: "/")])
                archive_entry_set_filetype(entry, UInt32(S_IFDIR as mode_t))
                archive_entry_set_size(entry, 0)
                try header(entry, path)
                if xattrs.opaque { try marker(path + Array("/.wh..wh..opq".utf8), like: st) }
                let fd = openat(dir, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw failure(path, "cannot open the directory") }
                defer { close(fd) }
                try walk(fd, prefix: path + [UInt8(ascii: "/")])
                // Last: nothing below changes the directory's times any more.
                guard futimens(fd, &times) == 0 else { throw failure(path, "cannot set the times") }
            case S_IFREG:
                setPath(entry, path)
                archive_entry_set_filetype(entry, UInt32(S_IFREG as mode_t))
                archive_entry_set_size(entry, Int64(st.st_size))
                let fd = openat(dir, cName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw failure(path, "cannot open the file") }
                defer { close(fd) }
                try header(entry, path)
                try copy(fd, size: Int64(st.st_size), path)
                try check(archive_write_finish_entry(archive), path, "writing it")
                guard futimens(fd, &times) == 0 else { throw failure(path, "cannot set the times") }
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(st.st_size) + 2)
                let n = readlinkat(dir, cName, &target, target.count - 1)
                guard n >= 0 else { throw failure(path, "cannot read the symlink") }
                guard n < target.count - 1 else { throw fail(path, "the symlink changed while it was read") }
                target[n] = 0
                setPath(entry, path)
                archive_entry_set_filetype(entry, UInt32(S_IFLNK as mode_t))
                archive_entry_set_size(entry, 0)
                archive_entry_set_symlink(entry, target)
                try header(entry, path)
                guard utimensat(dir, cName, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw failure(path, "cannot set the times")
                }
            case S_IFCHR, S_IFBLK, S_IFIFO:
                setPath(entry, path)
                archive_entry_set_filetype(entry, UInt32(type))
                archive_entry_set_size(entry, 0)
                if type != S_IFIFO { archive_entry_set_rdev(entry, st.st_rdev) }
                try header(entry, path)
                guard utimensat(dir, cName, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw failure(path, "cannot set the times")
                }
            default:
                throw fail(path, "unknown file type \(String(type, radix: 8))")
            }
        }
    }

    /// A whiteout or opaque marker: an empty regular file with the owner, permissions and
    /// (clamped) time of what it stands for, as Docker writes them.
    private func marker(_ path: [UInt8], like st: stat) throws {
        guard let entry = archive_entry_new() else { throw fail(path, "out of memory") }
        defer { archive_entry_free(entry) }
        setPath(entry, path)
        archive_entry_set_filetype(entry, UInt32(S_IFREG as mode_t))
        archive_entry_set_perm(entry, st.st_mode & 0o777)
        archive_entry_set_uid(entry, Int64(st.st_uid))
        archive_entry_set_gid(entry, Int64(st.st_gid))
        archive_entry_set_mtime(entry, time_t(mtime(st)), 0)
        archive_entry_set_size(entry, 0)
        try header(entry, path)
    }

    /// Whole seconds (as Docker writes layers), clamped to the epoch when there is one.
    private func mtime(_ st: stat) -> Int64 {
        let seconds = Int64(st.st_mtim.tv_sec)
        guard let epoch else { return seconds }
        return min(seconds, epoch)
    }

    /// The names in `dir`, in byte order.
    private func names(in dir: Int32, _ path: [UInt8]) throws -> [[UInt8]] {
        let listing = fcntl(dir, F_DUPFD_CLOEXEC, 0)
        guard listing >= 0 else { throw failure(path, "cannot duplicate a descriptor") }
        guard let handle = fdopendir(listing) else {
            let err = errno
            close(listing)
            throw failure(path, "cannot list the directory", err)
        }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while true {
            // readdir reports the end and an error alike, the error only in errno.
            errno = 0
            guard let entry = readdir(handle) else {
                if errno != 0 { throw failure(path, "cannot list the directory") }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The extended attributes of `name` in `dir` that go into the tar (sorted by name), and
    /// whether it is an opaque directory. The overlay's other attributes (origin, impure, nlink,
    /// ...) are removed from the file: they describe this overlay, not the layer.
    private func attributes(of name: [UInt8], in dir: Int32, at path: [UInt8]) throws
        -> (kept: [([UInt8], [UInt8])], opaque: Bool)
    {
        // The l*xattr calls do not follow the last component, so the root (no name) is reached
        // as "<fd>/.", not as the magic link "<fd>" itself.
        let file = LayerEntryWriter.cString(
            Array("/proc/self/fd/\(dir)/".utf8) + (name.isEmpty ? [UInt8(ascii: ".")] : name))
        guard let names = XAttr.names(path: file) else { throw failure(path, "cannot list its extended attributes") }
        let overlay = Array("trusted.overlay.".utf8)
        var kept: [([UInt8], [UInt8])] = []
        var opaque = false
        for key in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let cKey = LayerEntryWriter.cString(key)
            if key.starts(with: overlay) {
                let kind = String(decoding: key.dropFirst(overlay.count), as: UTF8.self)
                switch kind {
                case "redirect", "metacopy":
                    throw fail(
                        path,
                        "it has the overlayfs attribute trusted.overlay.\(kind), which a layer cannot express "
                            + "(mount the overlay with redirect_dir=off and metacopy=off)")
                case "opaque":
                    opaque = XAttr.value(path: file, cKey) == [UInt8(ascii: "y")]
                    if opaque { continue }
                default: break
                }
                if XAttr.remove(path: file, cKey) != 0 && errno != ENODATA {
                    throw failure(path, "cannot remove the overlay attribute \(String(decoding: key, as: UTF8.self))")
                }
                continue
            }
            if key.elementsEqual("security.selinux".utf8) { continue }
            guard let value = XAttr.value(path: file, cKey) else {
                if errno == ENODATA { continue }
                throw failure(path, "cannot read the extended attribute \(String(decoding: key, as: UTF8.self))")
            }
            kept.append((key, value))
        }
        return (kept, opaque)
    }

    // MARK: libarchive

    private func setPath(_ entry: OpaquePointer, _ path: [UInt8]) {
        LayerEntryWriter.cString(path).withUnsafeBufferPointer { archive_entry_set_pathname(entry, $0.baseAddress) }
    }

    private func header(_ entry: OpaquePointer, _ path: [UInt8]) throws {
        try check(archive_write_header(archive, entry), path, "writing its header")
    }

    /// Copies exactly `size` bytes of the file: a file that shrank in between is an error (its
    /// header already promised the size).
    private func copy(_ fd: Int32, size: Int64, _ path: [UInt8]) throws {
        var left = size
        while left > 0 {
            let n = read(fd, buffer, Int(min(Int64(capacity), left)))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path, "cannot read the file")
            }
            guard n > 0 else { throw fail(path, "the file shrank while it was read") }
            var offset = 0
            while offset < n {
                let written = archive_write_data(archive, buffer + offset, n - offset)
                if written <= 0 { try check(ARCHIVE_FATAL, path, "writing its data") }
                offset += written
            }
            left -= Int64(n)
        }
    }

    private func check(_ status: Int32, _ path: [UInt8], _ what: String) throws {
        guard status < ARCHIVE_WARN, let archive else { return }
        if let failure = sink?.failure { throw failure }
        let text = archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
        throw fail(path, "\(what): \(text)")
    }

    private func fail(_ path: [UInt8], _ reason: String) -> ImageStore.Error {
        .capture(display, DisplayPath.of(path), reason)
    }

    /// `what` failed with `err` (read before `what` is built).
    private func failure(_ path: [UInt8], _ what: @autoclosure () -> String, _ err: Int32 = errno) -> ImageStore.Error {
        fail(path, "\(what()): \(String(cString: strerror(err)))")
    }
}
