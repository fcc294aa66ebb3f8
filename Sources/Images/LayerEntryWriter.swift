import CArchive
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Why one archive entry could not be written; LayerUnpacker adds the layer and the entry's name.
struct LayerWriteFailure: Error {
    var reason: String
    /// Set when a directory on the way does not exist (and was not to be made).
    var missing = false

    init(_ reason: String, missing: Bool = false) {
        self.reason = reason
        self.missing = missing
    }

    static func text(_ err: Int32) -> String {
        String(cString: strerror(err))
    }
}

/// Writes the entries of a layer tar into its directory, as libarchive's disk writer did, but with
/// every system call relative to a directory descriptor (openat, mkdirat, symlinkat, linkat,
/// mknodat, fchownat, utimensat, ...) and given one path component. libarchive's writer hands
/// whole paths to the kernel, so a layer holding a path longer than PATH_MAX (Docker and
/// containerd unpack those) could not be unpacked.
///
/// The rules that keep an archive inside its directory:
/// - names come in cleaned by `LayerUnpacker.cleanPath` (no `..`, a leading `/` dropped);
/// - parents are walked with O_NOFOLLOW (`LayerDirectories`), so an entry "through" a symlink the
///   archive made earlier is refused, as is a hard link whose target lies through one;
/// - a hard link's target is looked up the same way from the layer's root, and linkat() does not
///   follow a symlink target, so a link can only name a file inside the layer;
/// - a new entry replaces what is there (unlinked, never written through), except that a
///   directory entry keeps an existing directory, as tar does.
///
/// Directory modes and times are set by `finish()`, once everything below them is written.
/// File flags (chattr +i) in an archive are ignored, as Docker ignores them: an immutable file
/// would make the layer impossible to delete.
final class LayerEntryWriter {
    private let root: Int32
    private let directories: LayerDirectories
    private let asRoot = geteuid() == 0

    private struct DirectoryFixup {
        var parts: [[UInt8]]
        var mode: mode_t
        var times: [timespec]
    }
    private var fixups: [DirectoryFixup] = []
    /// Where each directory's fixup is in `fixups`: a directory listed twice keeps its last values.
    private var fixupIndex: [[[UInt8]]: Int] = [:]

    /// `root` is the layer's (empty) directory; borrowed, not closed here.
    init(root: Int32) {
        self.root = root
        directories = LayerDirectories(root: root)
    }

    /// Writes `entry` at `parts` (cleaned, relative to the root). `hardlinkTarget` is set (and
    /// cleaned) for a hard link. `copyData` writes the entry's content into the descriptor given.
    func write(
        _ entry: OpaquePointer, at parts: [[UInt8]], hardlinkTarget: [[UInt8]]?,
        copyData: (Int32) throws -> Void
    ) throws {
        if let hardlinkTarget {
            return try writeHardLink(entry, at: parts, target: hardlinkTarget, copyData: copyData)
        }
        let type = archive_entry_filetype(entry)
        guard let last = parts.last else {
            // "./": the layer's root directory itself, whose owner and mode the image's / gets.
            guard type == S_IFDIR else { throw LayerWriteFailure("the layer's root can only be a directory") }
            return try updateDirectory(root, at: [], from: entry)
        }
        // Sockets cannot be archived meaningfully; Docker skips them too.
        if type == S_IFSOCK { return }
        let parent = try directories.open(parts.dropLast(), create: true)
        let name = Self.cString(last)
        let keptDirectory = try makeRoom(name, in: parent, forDirectory: type == S_IFDIR)
        switch type {
        case S_IFDIR:
            if !keptDirectory {
                guard mkdirat(parent, name, 0o700) == 0 else { throw failure("cannot create the directory") }
            }
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw failure("cannot open the directory") }
            defer { close(fd) }
            try updateDirectory(fd, at: parts, from: entry)
        case S_IFREG:
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure("cannot create the file") }
            defer { close(fd) }
            try copyData(fd)
            // A sparse file's trailing hole is not in the data blocks.
            var st = stat()
            let size = archive_entry_size(entry)
            if archive_entry_size_is_set(entry) != 0, fstat(fd, &st) == 0, Int64(st.st_size) < size {
                guard ftruncate(fd, off_t(size)) == 0 else { throw failure("cannot extend the file") }
            }
            // Owner first: chown clears the set-user-ID and set-group-ID bits the mode may set.
            try setOwner(fd, entry)
            guard fchmod(fd, Self.permissions(entry)) == 0 else { throw failure("cannot set the mode") }
            try setExtendedAttributes(fd, entry, isDirectory: false)
            var times = Self.times(entry)
            guard futimens(fd, &times) == 0 else { throw failure("cannot set the times") }
        case S_IFLNK:
            guard let target = archive_entry_symlink(entry) else {
                throw LayerWriteFailure("the symlink has no target")
            }
            guard symlinkat(target, parent, name) == 0 else { throw failure("cannot create the symlink") }
            try setMetadata(of: name, in: parent, entry, setMode: false)
        case S_IFCHR, S_IFBLK, S_IFIFO:
            guard mknodat(parent, name, type | Self.permissions(entry), archive_entry_rdev(entry)) == 0 else {
                throw failure("cannot create the device or FIFO")
            }
            try setMetadata(of: name, in: parent, entry, setMode: true)
        default:
            throw LayerWriteFailure("unknown file type \(String(type, radix: 8))")
        }
    }

    /// Turns `.wh..wh..opq` in `directory` into overlayfs's opaque mark.
    func markOpaque(_ directory: [[UInt8]]) throws {
        let fd = try directories.open(directory[...], create: true)
        guard XAttr.set(fd, "trusted.overlay.opaque", [UInt8(ascii: "y")]) == 0 else {
            throw failure("cannot mark the directory opaque")
        }
    }

    /// Turns `.wh.NAME` into overlayfs's whiteout for NAME: a 0/0 character device.
    func whiteout(_ hidden: [UInt8], in directory: [[UInt8]]) throws {
        // "." and ".." can be neither hidden nor made.
        if hidden.isEmpty || hidden == [UInt8(ascii: ".")] || hidden == Array("..".utf8) { return }
        let parent = try directories.open(directory[...], create: true)
        let name = Self.cString(hidden)
        // A file of the same name in this same layer wins; the whiteout only hides lower layers.
        var st = stat()
        if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return }
        // Device number 0 (makedev(0, 0)): overlayfs's whiteout.
        guard mknodat(parent, name, S_IFCHR | 0o000, 0) == 0 else {
            throw failure("cannot create the whiteout")
        }
    }

    /// Sets the modes and times of the directories written, now that nothing below them changes.
    func finish() throws {
        defer { directories.closeAll() }
        for fixup in fixups {
            // A later entry replaced or removed the directory: nothing to fix.
            guard let fd = try? directories.open(fixup.parts[...], create: false) else { continue }
            var times = fixup.times
            guard fchmod(fd, fixup.mode) == 0, futimens(fd, &times) == 0 else {
                throw failure("cannot set the mode and times of the directory \(DisplayPath.joined(fixup.parts))")
            }
        }
    }

    // MARK: entry kinds

    private func writeHardLink(
        _ entry: OpaquePointer, at parts: [[UInt8]], target: [[UInt8]],
        copyData: (Int32) throws -> Void
    ) throws {
        guard let name = parts.last, let targetName = target.last else {
            throw LayerWriteFailure("a hard link cannot be or name the layer's root")
        }
        if parts == target { return }
        let shownTarget = DisplayPath.joined(target)
        // The walk to the link's own parent reuses the walker's descriptors, so keep a copy.
        let targetDirectory: Int32
        do {
            targetDirectory = fcntl(try directories.open(target.dropLast(), create: false), F_DUPFD_CLOEXEC, 0)
        } catch let failure as LayerWriteFailure {
            if failure.missing { throw LayerWriteFailure("the hard link's target \(shownTarget) is not in the layer") }
            throw LayerWriteFailure("the hard link's target \(shownTarget): \(failure.reason)")
        }
        guard targetDirectory >= 0 else { throw failure("cannot duplicate a descriptor") }
        defer { close(targetDirectory) }
        let parent = try directories.open(parts.dropLast(), create: true)
        let cName = Self.cString(name)
        _ = try makeRoom(cName, in: parent, forDirectory: false)
        // Flags 0: a target that is a symlink is linked itself, never followed out of the layer.
        guard linkat(targetDirectory, Self.cString(targetName), parent, cName, 0) == 0 else {
            if errno == ENOENT { throw LayerWriteFailure("the hard link's target \(shownTarget) is not in the layer") }
            throw failure("cannot link to \(shownTarget)")
        }
        // pax allows a hard link to carry the content of the file both names share.
        guard archive_entry_size(entry) > 0 else { return }
        var st = stat()
        guard fstatat(parent, cName, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG else { return }
        let fd = openat(parent, cName, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open the linked file") }
        defer { close(fd) }
        try copyData(fd)
    }

    /// Owner, extended attributes, ACLs (and deferred mode and times) of a directory entry.
    private func updateDirectory(_ fd: Int32, at parts: [[UInt8]], from entry: OpaquePointer) throws {
        try setOwner(fd, entry)
        try setExtendedAttributes(fd, entry, isDirectory: true)
        // Applied by finish(): writing the contents changes the times, and a read-only mode could
        // keep an unprivileged unpacker from writing them.
        let fixup = DirectoryFixup(parts: parts, mode: Self.permissions(entry), times: Self.times(entry))
        if let i = fixupIndex[parts] {
            fixups[i] = fixup
        } else {
            fixupIndex[parts] = fixups.count
            fixups.append(fixup)
        }
    }

    /// Clears the way for a new entry `name` in `parent`. What is there is unlinked (so a hard
    /// link's other names keep their content); an existing directory is removed with its contents
    /// unless the new entry is a directory too, which then keeps it. Returns whether it was kept.
    private func makeRoom(_ name: [CChar], in parent: Int32, forDirectory: Bool) throws -> Bool {
        var st = stat()
        guard fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return false }
            throw failure("cannot inspect what is there")
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            if forDirectory { return true }
            // Nothing below `parent` is among the walker's open descriptors (they lead to it).
            do {
                try StoreFiles.removeTree(name, in: parent, display: "the directory there")
            } catch {
                throw LayerWriteFailure("cannot replace the directory there: \(error)")
            }
            return false
        }
        guard unlinkat(parent, name, 0) == 0 else { throw failure("cannot replace what is there") }
        return false
    }

    // MARK: metadata

    /// Owner, mode (when `setMode`) and times of a symlink, device or FIFO, by name in `parent`:
    /// such files cannot be opened for writing metadata without touching a device.
    private func setMetadata(of name: [CChar], in parent: Int32, _ entry: OpaquePointer, setMode: Bool) throws {
        let (uid, gid) = try Self.owner(entry)
        if fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && asRoot {
            throw failure("cannot set the owner to \(uid):\(gid)")
        }
        // The name was just made by mknodat, so it is not a symlink that fchmodat could follow.
        if setMode {
            guard fchmodat(parent, name, Self.permissions(entry), 0) == 0 else { throw failure("cannot set the mode") }
        }
        var times = Self.times(entry)
        guard utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("cannot set the times") }
    }

    /// Numeric owners only (no name lookup): the host's /etc/passwd means nothing inside an image.
    /// Without privilege the owner cannot be set; libarchive let that pass with a warning too.
    private func setOwner(_ fd: Int32, _ entry: OpaquePointer) throws {
        let (uid, gid) = try Self.owner(entry)
        if fchown(fd, uid, gid) != 0 && asRoot { throw failure("cannot set the owner to \(uid):\(gid)") }
    }

    /// The entry's extended attributes and POSIX ACLs. An attribute the file system or a security
    /// module refuses (no user.* support, an SELinux label) is skipped, as libarchive's writer
    /// did; running out of space for them is an error.
    private func setExtendedAttributes(_ fd: Int32, _ entry: OpaquePointer, isDirectory: Bool) throws {
        func refused(_ err: Int32) -> Bool {
            err == ENOTSUP || err == EOPNOTSUPP || err == EPERM || err == EACCES
        }
        archive_entry_xattr_reset(entry)
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            if XAttr.set(fd, name, UnsafeRawBufferPointer(start: value, count: size)) != 0 && !refused(errno) {
                throw failure("cannot set the extended attribute \(String(cString: name))")
            }
        }
        for (type, attribute) in [
            (ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"),
            (ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"),
        ] {
            if type == ARCHIVE_ENTRY_ACL_TYPE_DEFAULT && !isDirectory { continue }
            guard let acl = PosixACL.xattrValue(entry, type: type) else { continue }
            if XAttr.set(fd, attribute, acl) != 0 && !refused(errno) { throw failure("cannot set the ACL") }
        }
    }

    private static func owner(_ entry: OpaquePointer) throws -> (uid_t, gid_t) {
        let uid = archive_entry_uid(entry)
        let gid = archive_entry_gid(entry)
        // (uid_t)-1 would mean "leave unchanged" to chown.
        guard uid >= 0 && uid < Int64(UInt32.max) && gid >= 0 && gid < Int64(UInt32.max) else {
            throw LayerWriteFailure("the owner \(uid):\(gid) is out of range")
        }
        return (uid_t(uid), gid_t(gid))
    }

    /// Permission bits including set-user-ID, set-group-ID and sticky, applied without the umask.
    private static func permissions(_ entry: OpaquePointer) -> mode_t {
        archive_entry_perm(entry) & 0o7777
    }

    /// UTIME_OMIT from <sys/stat.h>, a macro Swift does not import.
    private static let omitTime = 0x3fff_fffe

    /// Access and modification times for utimensat; an unset access time takes the modification
    /// time, an unset modification time leaves the file's.
    private static func times(_ entry: OpaquePointer) -> [timespec] {
        let omit = timespec(tv_sec: 0, tv_nsec: omitTime)
        let mtime =
            archive_entry_mtime_is_set(entry) != 0
            ? timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry)) : omit
        let atime =
            archive_entry_atime_is_set(entry) != 0
            ? timespec(tv_sec: archive_entry_atime(entry), tv_nsec: archive_entry_atime_nsec(entry)) : mtime
        return [atime, mtime]
    }

    // MARK: helpers

    /// `what` failed with `err`. An autoclosure, so that errno is read before `what` is built.
    private func failure(_ what: @autoclosure () -> String, _ err: Int32 = errno) -> LayerWriteFailure {
        LayerWriteFailure("\(what()): \(LayerWriteFailure.text(err))")
    }

    /// A path component as the NUL-terminated string system calls take.
    static func cString(_ bytes: [UInt8]) -> [CChar] {
        bytes.map { CChar(bitPattern: $0) } + [0]
    }
}
