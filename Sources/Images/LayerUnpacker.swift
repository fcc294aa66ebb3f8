import CArchive
import Crypto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks one layer tar (plain, gzip or zstd) into a directory, in a single pass over the blob:
/// libarchive's "raw" reader decompresses, every decompressed byte is hashed on its way to the tar
/// reader (that hash is the layer's diff ID), and the tar reader writes entries to disk.
///
/// OCI whiteouts become what overlayfs understands, so the directory can be a lowerdir as is:
/// `.wh.NAME` becomes a 0/0 character device NAME, `.wh..wh..opq` sets
/// `trusted.overlay.opaque=y` on its directory.
enum LayerUnpacker {
    struct Result {
        /// `sha256:<hex>` of the uncompressed tar stream.
        var diffID: String
        /// Bytes of the uncompressed tar stream.
        var size: Int64
        /// The OCI media type that matches the blob's compression.
        var mediaType: String
    }

    /// Unpacks `blobPath` into `dest`, an existing empty directory. `displayName` names the input
    /// in errors (the user's file, not a temp path).
    static func unpack(blobPath: String, into dest: String, displayName: String) throws -> Result {
        let source = try DecompressedSource(path: blobPath, displayName: displayName)
        defer { source.close() }

        guard let tar = archive_read_new() else { throw ImageStore.Error.unpack(displayName, "out of memory") }
        defer { archive_read_free(tar) }
        archive_read_support_format_tar(tar)
        // The tar reader pulls decompressed bytes from `source`, which hashes them as they pass.
        let context = Unmanaged.passUnretained(source).toOpaque()
        guard archive_read_open(tar, context, nil, { _, ctx, buffer in
            let source = Unmanaged<DecompressedSource>.fromOpaque(ctx!).takeUnretainedValue()
            return source.next(buffer!)
        }, nil) == ARCHIVE_OK else {
            throw source.failure ?? ImageStore.Error.notATar(displayName, archiveError(tar))
        }

        guard let disk = archive_write_disk_new() else { throw ImageStore.Error.unpack(displayName, "out of memory") }
        defer { archive_write_free(disk) }
        // Numeric owners only (no name lookup): the host's /etc/passwd means nothing inside an image.
        // No file flags (chattr +i from a tar would make a layer impossible to delete); Docker ignores them too.
        let flags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
            | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SECURE_SYMLINKS
            | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SPARSE
        archive_write_disk_set_options(disk, flags)

        let root = Array(dest.utf8)
        var sawEntry = false
        while true {
            var entry: OpaquePointer?
            let r = archive_read_next_header(tar, &entry)
            if r == ARCHIVE_EOF { break }
            if r < ARCHIVE_WARN {
                if let failure = source.failure { throw failure }
                if !sawEntry { throw ImageStore.Error.notATar(displayName, archiveError(tar)) }
                throw ImageStore.Error.unpack(displayName, archiveError(tar))
            }
            sawEntry = true
            guard let entry, let rawName = archive_entry_pathname(entry) else { continue }
            let name = Array(UnsafeBufferPointer(start: UnsafeRawPointer(rawName).assumingMemoryBound(to: UInt8.self),
                                                 count: strlen(rawName)))
            let parts = try cleanPath(name, display: String(decoding: name, as: UTF8.self))
            if let last = parts.last, last.starts(with: Array(".wh.".utf8)) {
                try applyWhiteout(root: root, parts: parts, display: String(decoding: name, as: UTF8.self))
                continue
            }
            archive_entry_set_pathname(entry, cString(root + parts.flatMap { [UInt8(ascii: "/")] + $0 }))
            if let rawLink = archive_entry_hardlink(entry) {
                let link = Array(UnsafeBufferPointer(start: UnsafeRawPointer(rawLink).assumingMemoryBound(to: UInt8.self),
                                                     count: strlen(rawLink)))
                let linkParts = try cleanPath(link, display: String(decoding: link, as: UTF8.self))
                archive_entry_set_hardlink(entry, cString(root + linkParts.flatMap { [UInt8(ascii: "/")] + $0 }))
            }
            let displayEntry = String(decoding: name, as: UTF8.self)
            if archive_write_header(disk, entry) < ARCHIVE_WARN {
                throw ImageStore.Error.unpack(displayEntry, archiveError(disk))
            }
            if archive_entry_size(entry) > 0 {
                try copyData(from: tar, to: disk, entry: displayEntry, source: source)
            }
            if archive_write_finish_entry(disk) < ARCHIVE_WARN {
                throw ImageStore.Error.unpack(displayEntry, archiveError(disk))
            }
        }
        // Directory modes and times are fixed up at close, after their contents were written.
        if archive_write_close(disk) < ARCHIVE_WARN {
            throw ImageStore.Error.unpack(displayName, archiveError(disk))
        }
        if let failure = source.failure { throw failure }
        if !sawEntry && source.size == 0 {
            throw ImageStore.Error.notATar(displayName, "the file is empty")
        }
        // The tar reader stops at the end-of-archive marker; the diff ID covers the whole stream.
        try source.drain()
        return Result(diffID: "sha256:" + StoreFiles.hex(source.hasher.finalize()), size: source.size,
                      mediaType: source.mediaType)
    }

    private static func copyData(from tar: OpaquePointer, to disk: OpaquePointer, entry: String,
                                 source: DecompressedSource) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let r = archive_read_data_block(tar, &buffer, &size, &offset)
            if r == ARCHIVE_EOF { return }
            if r < ARCHIVE_WARN {
                throw source.failure ?? ImageStore.Error.unpack(entry, archiveError(tar))
            }
            if archive_write_data_block(disk, buffer, size, offset) < ARCHIVE_WARN {
                throw ImageStore.Error.unpack(entry, archiveError(disk))
            }
        }
    }

    /// Splits a tar path into components, dropping `/`, `.` and empty parts. A `..` anywhere is
    /// refused: a layer must never write outside its directory.
    static func cleanPath(_ path: [UInt8], display: String) throws -> [[UInt8]] {
        var parts: [[UInt8]] = []
        for part in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw ImageStore.Error.unpack(display, "the path leaves the layer with '..'")
            }
            parts.append(Array(part))
        }
        return parts
    }

    /// Turns an OCI whiteout entry into its overlayfs form.
    private static func applyWhiteout(root: [UInt8], parts: [[UInt8]], display: String) throws {
        let base = parts.last!
        let dirParts = Array(parts.dropLast())
        let dir = try realDirectory(root: root, parts: dirParts, display: display)
        if base.elementsEqual(Array(".wh..wh..opq".utf8)) {
            guard XAttr.set(dir, "trusted.overlay.opaque", "y") == 0 else {
                throw ImageStore.Error.unpack(display, "cannot mark the directory opaque: \(String(cString: strerror(errno)))")
            }
            return
        }
        // Other `.wh..wh.` names are aufs bookkeeping with no meaning in an image.
        if base.starts(with: Array(".wh..wh.".utf8)) { return }
        let hidden = Array(base.dropFirst(4))
        let target = dir + "/" + String(decoding: hidden, as: UTF8.self)
        let targetBytes = Array(dir.utf8) + [UInt8(ascii: "/")] + hidden
        // A file of the same name in this same layer wins; the whiteout only hides lower layers.
        var st = stat()
        if cString(targetBytes).withUnsafeBufferPointer({ lstat($0.baseAddress!, &st) }) == 0 { return }
        let r = cString(targetBytes).withUnsafeBufferPointer { mknod($0.baseAddress!, S_IFCHR | 0o000, 0 /* makedev(0, 0) */) }
        guard r == 0 else {
            throw ImageStore.Error.unpack(display, "cannot create the whiteout \(target): \(String(cString: strerror(errno)))")
        }
    }

    /// The directory `root/parts...`, created as needed, refusing to pass through a symlink (which
    /// could point outside the layer).
    private static func realDirectory(root: [UInt8], parts: [[UInt8]], display: String) throws -> String {
        var path = root
        for part in parts {
            path += [UInt8(ascii: "/")] + part
            var st = stat()
            let c = cString(path)
            if c.withUnsafeBufferPointer({ lstat($0.baseAddress!, &st) }) != 0 {
                guard c.withUnsafeBufferPointer({ mkdir($0.baseAddress!, 0o755) }) == 0 else {
                    throw ImageStore.Error.unpack(display, "cannot create its directory: \(String(cString: strerror(errno)))")
                }
                continue
            }
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw ImageStore.Error.unpack(display, "its parent is a symlink or a file, not a directory")
            }
        }
        return String(decoding: path, as: UTF8.self)
    }

    private static func cString(_ bytes: [UInt8]) -> [CChar] {
        bytes.map { CChar(bitPattern: $0) } + [0]
    }

    static func archiveError(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}

/// The decompressed byte stream of a blob, hashed as it is read.
final class DecompressedSource {
    let raw: OpaquePointer
    let displayName: String
    var hasher = SHA256()
    var size: Int64 = 0
    var mediaType = MediaType.layerTar
    /// The first error met while reading; libarchive only sees "-1" from the callback.
    var failure: ImageStore.Error?
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 20
    private var closed = false

    init(path: String, displayName: String) throws {
        // Every archive read starts here, so this is where a missing libarchive is reported.
        if let problem = carchive_load_error() { throw ImageStore.Error.unpack(displayName, String(cString: problem)) }
        guard let raw = archive_read_new() else { throw ImageStore.Error.unpack(displayName, "out of memory") }
        self.raw = raw
        self.displayName = displayName
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        archive_read_support_filter_all(raw)
        archive_read_support_format_raw(raw)
        guard archive_read_open_filename(raw, path, 1 << 20) == ARCHIVE_OK else {
            let err = archive_errno(raw)
            let message = LayerUnpacker.archiveError(raw)
            close()
            // libarchive reports format problems as EILSEQ; anything else is the file system's.
            throw err > 0 && err != EILSEQ ? ImageStore.Error.system("read", displayName, err)
                : ImageStore.Error.notATar(displayName, message)
        }
        var entry: OpaquePointer?
        let r = archive_read_next_header(raw, &entry)
        if r == ARCHIVE_EOF {
            close()
            throw ImageStore.Error.notATar(displayName, "the file is empty")
        }
        guard r >= ARCHIVE_WARN else {
            let message = LayerUnpacker.archiveError(raw)
            close()
            throw ImageStore.Error.notATar(displayName, message)
        }
        switch archive_filter_code(raw, 0) {
        case ARCHIVE_FILTER_NONE: mediaType = MediaType.layerTar
        case ARCHIVE_FILTER_GZIP: mediaType = MediaType.layerTarGzip
        case ARCHIVE_FILTER_ZSTD: mediaType = MediaType.layerTar + "+zstd"
        default:
            let name = archive_filter_name(raw, 0).map { String(cString: $0) } ?? "an unknown method"
            close()
            throw ImageStore.Error.notATar(displayName, "it is compressed with \(name); use a plain, gzip or zstd tar")
        }
    }

    /// libarchive's read callback: hands out the next decompressed chunk, 0 at the end, -1 on error.
    func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> la_ssize_t {
        let n = archive_read_data(raw, buffer, capacity)
        if n < 0 {
            failure = .notATar(displayName, "cannot decompress: \(LayerUnpacker.archiveError(raw))")
            return -1
        }
        if n > 0 {
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
            size += Int64(n)
        }
        out.pointee = UnsafeRawPointer(buffer)
        return n
    }

    /// Reads (and hashes) whatever follows the tar's end marker.
    func drain() throws {
        var out: UnsafeRawPointer?
        while true {
            let n = next(&out)
            if n < 0 { throw failure! }
            if n == 0 { return }
        }
    }

    func close() {
        if closed { return }
        closed = true
        archive_read_free(raw)
        buffer.deallocate()
    }
}

/// setxattr(2) from libc. Swift's Glibc module does not export <sys/xattr.h>, so look the symbol
/// up once at run time.
enum XAttr {
    private typealias SetFn = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private static let setFn: SetFn? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setxattr")
        .map { unsafeBitCast($0, to: SetFn.self) }

    /// Returns 0 or -1 with errno set, like the system call.
    static func set(_ path: String, _ name: String, _ value: String) -> Int32 {
        guard let setFn else {
            errno = ENOSYS
            return -1
        }
        return Array(value.utf8).withUnsafeBytes { setFn(path, name, $0.baseAddress, $0.count, 0) }
    }
}
