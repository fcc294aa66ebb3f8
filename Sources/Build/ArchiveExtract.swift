import CArchive
import CRuntime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// ADD of a local tar archive (plain, gzip, bzip2, xz or zstd; Docker decides by the content,
/// not the name): unpacked at the destination. The archive is as hostile as an image: every
/// entry's path is resolved inside the step's root (openat2 RESOLVE_IN_ROOT), so neither "../"
/// nor a link the archive made earlier leads out of it, and files are made O_EXCL by name.
enum ArchiveExtract {
    final class Archive {
        let handle: OpaquePointer
        let file: Descriptor
        let display: String
        /// The first entry, read to know it is an archive.
        var pending: OpaquePointer?
        init(handle: OpaquePointer, file: Descriptor, display: String, first: OpaquePointer?) {
            self.handle = handle
            self.file = file
            self.display = display
            pending = first
        }
        deinit { archive_read_free(handle) }
    }

    /// The source opened as an archive, or nil when it is not one (it is then copied as a file).
    static func open(_ source: SourceTree) throws -> Archive? {
        if let problem = carchive_load_error() { throw BuildError(message: "ADD: \(String(cString: problem))") }
        guard let (parent, name, _) = try source.open() else { return nil }
        let entry = SourceTree.Entry(relative: "", parent: parent.fd, name: name, info: stat(), directory: nil)
        guard let file = Descriptor(withExtendedLifetime(parent) { entry.openFile() }) else {
            throw BuildError("open \(source.path)", errno: errno)
        }
        guard let handle = archive_read_new() else { throw BuildError(message: "ADD: out of memory") }
        // The built-in decompressors only: never one that runs an external program.
        archive_read_support_filter_gzip(handle)
        archive_read_support_filter_bzip2(handle)
        archive_read_support_filter_xz(handle)
        archive_read_support_filter_zstd(handle)
        archive_read_support_format_tar(handle)
        let archive = Archive(handle: handle, file: file, display: source.path, first: nil)
        guard archive_read_open_fd(handle, file.fd, 1 << 16) == ARCHIVE_OK else { return nil }
        var first: OpaquePointer?
        let r = archive_read_next_header(handle, &first)
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN else { return nil }
        archive.pending = first
        return archive
    }

    /// Unpacks every entry under `destination` in `root`, with the archive's owners (or
    /// `owner`), modes and times.
    static func extract(
        _ archive: Archive, into root: Int32, at destination: String, owner: (uid: UInt32, gid: UInt32)?
    )
        throws
    {
        var entry = archive.pending
        while let current = entry {
            try write(current, archive, root: root, destination: destination, owner: owner)
            var next: OpaquePointer?
            let r = archive_read_next_header(archive.handle, &next)
            if r == ARCHIVE_EOF { break }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN else {
                throw BuildError(message: "ADD \(archive.display): \(message(archive.handle))")
            }
            entry = next
        }
    }

    private static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unreadable archive"
    }

    private static func write(
        _ entry: OpaquePointer, _ archive: Archive, root: Int32, destination: String,
        owner: (uid: UInt32, gid: UInt32)?
    ) throws {
        guard let raw = archive_entry_pathname(entry) else { return }
        let inside = StageBuild.cleanAbsolute("/" + String(cString: raw))
        if inside == "/" { return }
        let path = StageBuild.cleanAbsolute(destination + inside)
        var name = [CChar](repeating: 0, count: Int(NAME_MAX) + 1)
        guard let parent = Descriptor(berth_in_root_parent(root, path, &name, name.count)) else {
            throw BuildError("ADD: make the directory of \(path)", errno: errno)
        }
        let leaf = Array(name.prefix { $0 != 0 }) + [0]
        let uid = owner?.uid ?? UInt32(clamping: archive_entry_uid(entry))
        let gid = owner?.gid ?? UInt32(clamping: archive_entry_gid(entry))
        let mode = mode_t(archive_entry_perm(entry))
        var times = [
            timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry)),
            timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry)),
        ]
        if let link = archive_entry_hardlink(entry) {
            let target = StageBuild.cleanAbsolute(destination + StageBuild.cleanAbsolute("/" + String(cString: link)))
            guard let source = Descriptor(berth_in_root_open(root, target, Int32(BERTH_O_PATH))) else {
                throw BuildError("ADD: hard link \(path) to \(target)", errno: errno)
            }
            unlinkat(parent.fd, leaf, 0)
            guard linkat(source.fd, "", parent.fd, leaf, StageBuild.atEmptyPath) == 0 else {
                throw BuildError("ADD: hard link \(path)", errno: errno)
            }
            return
        }
        switch archive_entry_filetype(entry) {
        case UInt32(Glibc.S_IFDIR):
            if mkdirat(parent.fd, leaf, 0o700) != 0 && errno != EEXIST {
                throw BuildError("ADD: mkdir \(path)", errno: errno)
            }
            guard let dir = Descriptor(openat(parent.fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)),
                fchown(dir.fd, uid, gid) == 0, fchmod(dir.fd, mode) == 0
            else { throw BuildError("ADD: make \(path)", errno: errno) }
            futimens(dir.fd, &times)
        case UInt32(Glibc.S_IFREG):
            if unlinkat(parent.fd, leaf, 0) != 0 && errno != ENOENT {
                throw BuildError("ADD: replace \(path)", errno: errno)
            }
            guard
                let file = Descriptor(
                    openat(parent.fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600))
            else { throw BuildError("ADD: create \(path)", errno: errno) }
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { archive_read_data(archive.handle, $0.baseAddress, $0.count) }
                if n == 0 { break }
                guard n > 0 else { throw BuildError(message: "ADD \(archive.display): \(message(archive.handle))") }
                do {
                    try buffer.withUnsafeBytes {
                        try Files.writeAll(file.fd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: path)
                    }
                } catch let error as FileError {
                    throw BuildError("ADD: write \(path)", errno: error.errno)
                }
            }
            guard fchown(file.fd, uid, gid) == 0, fchmod(file.fd, mode) == 0 else {
                throw BuildError("ADD: set the owner and mode of \(path)", errno: errno)
            }
            futimens(file.fd, &times)
        case UInt32(Glibc.S_IFLNK):
            guard let target = archive_entry_symlink(entry) else { return }
            unlinkat(parent.fd, leaf, 0)
            guard symlinkat(target, parent.fd, leaf) == 0,
                fchownat(parent.fd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) == 0
            else { throw BuildError("ADD: symlink \(path)", errno: errno) }
            utimensat(parent.fd, leaf, &times, AT_SYMLINK_NOFOLLOW)
        default:
            // Devices, FIFOs: made as Docker's untar makes them.
            unlinkat(parent.fd, leaf, 0)
            guard
                mknodat(
                    parent.fd, leaf, mode_t(archive_entry_filetype(entry)) | 0o600, dev_t(archive_entry_rdev(entry)))
                    == 0,
                fchownat(parent.fd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) == 0,
                berth_chmod_node(parent.fd, leaf, mode, archive_entry_filetype(entry)) == 0
            else { throw BuildError("ADD: make \(path)", errno: errno) }
            utimensat(parent.fd, leaf, &times, AT_SYMLINK_NOFOLLOW)
        }
    }
}
