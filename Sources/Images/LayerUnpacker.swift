import CArchive
import Crypto
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Unpacks one layer tar (plain, gzip or zstd) into a directory, in a single pass over the blob:
/// libarchive's "raw" reader decompresses, every decompressed byte is hashed on its way to the tar
/// reader (that hash is the layer's diff ID), and `LayerEntryWriter` writes each entry to disk
/// relative to directory descriptors, so paths longer than PATH_MAX unpack too.
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

    /// Unpacks `blobPath` into the directory open as `destination`, which must be empty.
    /// `displayName` names the layer in errors (the user's file or the blob's digest, not a temp
    /// path). On failure the directory holds part of the layer; the caller removes it.
    static func unpack(blobPath: String, into destination: Int32, displayName: String) throws -> Result {
        let source = try DecompressedSource(path: blobPath, displayName: displayName)
        defer { source.close() }

        guard let tar = archive_read_new() else { throw ImageStore.Error.unpack(displayName, "", "out of memory") }
        defer { archive_read_free(tar) }
        archive_read_support_format_tar(tar)
        // The tar reader pulls decompressed bytes from `source`, which hashes them as they pass.
        let context = Unmanaged.passUnretained(source).toOpaque()
        guard
            archive_read_open(
                tar, context, nil,
                { _, ctx, buffer in
                    let source = Unmanaged<DecompressedSource>.fromOpaque(ctx!).takeUnretainedValue()
                    return source.next(buffer!)
                }, nil) == ARCHIVE_OK
        else {
            throw source.failure ?? ImageStore.Error.notATar(displayName, archiveError(tar))
        }

        let writer = LayerEntryWriter(root: destination)
        var sawEntry = false
        while true {
            var entry: OpaquePointer?
            let r = archive_read_next_header(tar, &entry)
            if r == ARCHIVE_EOF { break }
            if r < ARCHIVE_WARN {
                if let failure = source.failure { throw failure }
                if !sawEntry { throw ImageStore.Error.notATar(displayName, archiveError(tar)) }
                throw ImageStore.Error.unpack(displayName, "", archiveError(tar))
            }
            sawEntry = true
            guard let entry, let rawName = archive_entry_pathname(entry) else { continue }
            let name = bytes(rawName)
            do {
                let parts = try cleanPath(name)
                if let last = parts.last, last.starts(with: Array(".wh.".utf8)) {
                    try applyWhiteout(parts, with: writer)
                    continue
                }
                let target = try archive_entry_hardlink(entry).map { try cleanPath(bytes($0)) }
                try writer.write(entry, at: parts, hardlinkTarget: target) { fd in
                    try copyData(from: tar, to: fd, source: source)
                }
            } catch let failure as LayerWriteFailure {
                throw ImageStore.Error.unpack(displayName, DisplayPath.of(name), failure.reason)
            }
        }
        do {
            try writer.finish()
        } catch let failure as LayerWriteFailure {
            throw ImageStore.Error.unpack(displayName, "", failure.reason)
        }
        if let failure = source.failure { throw failure }
        if !sawEntry && source.size == 0 {
            throw ImageStore.Error.notATar(displayName, "the file is empty")
        }
        // The tar reader stops at the end-of-archive marker; the diff ID covers the whole stream.
        try source.drain()
        return Result(
            diffID: "sha256:" + StoreFiles.hex(source.hasher.finalize()), size: source.size,
            mediaType: source.mediaType)
    }

    /// Writes the current entry's data blocks at their offsets (holes of a sparse file stay holes).
    private static func copyData(from tar: OpaquePointer, to fd: Int32, source: DecompressedSource) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let r = archive_read_data_block(tar, &buffer, &size, &offset)
            if r == ARCHIVE_EOF { return }
            if r < ARCHIVE_WARN {
                if let failure = source.failure { throw failure }
                throw LayerWriteFailure("cannot read its data: \(archiveError(tar))")
            }
            guard let buffer else { continue }
            var written = 0
            while written < size {
                let n = pwrite(fd, buffer + written, size - written, off_t(offset) + off_t(written))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LayerWriteFailure("cannot write the file: \(LayerWriteFailure.text(errno))")
                }
                written += n
            }
        }
    }

    /// Splits a tar path into components, dropping `/`, `.` and empty parts (so an absolute path
    /// lands inside the layer, as Docker puts it). A `..` anywhere is refused: a layer must never
    /// write outside its directory.
    static func cleanPath(_ path: [UInt8]) throws -> [[UInt8]] {
        var parts: [[UInt8]] = []
        for part in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw LayerWriteFailure("the path leaves the layer with '..'")
            }
            parts.append(Array(part))
        }
        return parts
    }

    /// Turns an OCI whiteout entry into its overlayfs form.
    private static func applyWhiteout(_ parts: [[UInt8]], with writer: LayerEntryWriter) throws {
        let base = parts.last!
        let directory = Array(parts.dropLast())
        if base.elementsEqual(".wh..wh..opq".utf8) { return try writer.markOpaque(directory) }
        // Other `.wh..wh.` names are aufs bookkeeping with no meaning in an image.
        if base.starts(with: Array(".wh..wh.".utf8)) { return }
        try writer.whiteout(Array(base.dropFirst(4)), in: directory)
    }

    private static func bytes(_ text: UnsafePointer<CChar>) -> [UInt8] {
        let count = strlen(text)
        return text.withMemoryRebound(to: UInt8.self, capacity: count) {
            Array(UnsafeBufferPointer(start: $0, count: count))
        }
    }

    /// gzip, bzip2, xz and zstd (Docker's decompressors, all inside libarchive), and no other:
    /// filter_all would let a hostile layer start an external decompressor program.
    static func supportDecompressors(_ a: OpaquePointer) {
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_bzip2(a)
        archive_read_support_filter_xz(a)
        archive_read_support_filter_zstd(a)
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
        if let problem = carchive_load_error() {
            throw ImageStore.Error.unpack(displayName, "", String(cString: problem))
        }
        guard let raw = archive_read_new() else { throw ImageStore.Error.unpack(displayName, "", "out of memory") }
        self.raw = raw
        self.displayName = displayName
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        LayerUnpacker.supportDecompressors(raw)
        archive_read_support_format_raw(raw)
        guard archive_read_open_filename(raw, path, 1 << 20) == ARCHIVE_OK else {
            let err = archive_errno(raw)
            let message = LayerUnpacker.archiveError(raw)
            close()
            // libarchive reports format problems as EILSEQ; anything else is the file system's.
            throw err > 0 && err != EILSEQ
                ? ImageStore.Error.system("read", displayName, err)
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
