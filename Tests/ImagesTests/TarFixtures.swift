import Crypto
import Foundation
import Testing

@testable import Images

/// One member of a tar written by `Scratch.makeTar`, field by field, so a test can make archives
/// no well-behaved tar tool writes: `..` names, absolute names, links out of the tree, paths of
/// many kilobytes (stored in pax headers).
struct TarEntry: Encodable {
    var name: String
    var type = "file"
    var data: String?
    var link: String?
    var mode = 0o644
    var uid = 0
    var gid = 0
    var mtime = 1_700_000_000
    /// Extra pax records, e.g. "SCHILY.xattr.user.x" or "SCHILY.acl.access".
    var pax: [String: String]?

    static func file(_ name: String, _ data: String = "", mode: Int = 0o644) -> TarEntry {
        TarEntry(name: name, data: data, mode: mode)
    }

    static func dir(_ name: String, mode: Int = 0o755) -> TarEntry {
        TarEntry(name: name, type: "dir", mode: mode)
    }

    static func symlink(_ name: String, to target: String) -> TarEntry {
        TarEntry(name: name, type: "symlink", link: target, mode: 0o777)
    }

    static func hardlink(_ name: String, to target: String) -> TarEntry {
        TarEntry(name: name, type: "hardlink", link: target)
    }
}

extension Scratch {
    /// Writes `entries`, in order, as a pax tar with python3's tarfile module (which stores names
    /// exactly as given), and returns its path.
    func makeTar(_ name: String, _ entries: [TarEntry]) throws -> String {
        let script = dir + "/make-tar.py"
        if !FileManager.default.fileExists(atPath: script) {
            try Data(Self.makeTarScript.utf8).write(to: URL(fileURLWithPath: script))
        }
        let spec = dir + "/" + name + ".json"
        try JSONEncoder().encode(entries).write(to: URL(fileURLWithPath: spec))
        let out = dir + "/" + name
        try run("/usr/bin/python3", [script, spec, out])
        return out
    }

    private static let makeTarScript = """
        import io, json, sys, tarfile
        types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}
        with open(sys.argv[1]) as f:
            spec = json.load(f)
        with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as t:
            for e in spec:
                info = tarfile.TarInfo(e["name"])
                info.type = types[e["type"]]
                info.mode, info.uid, info.gid, info.mtime = e["mode"], e["uid"], e["gid"], e["mtime"]
                info.linkname = e.get("link") or ""
                info.pax_headers = e.get("pax") or {}
                data = (e.get("data") or "").encode()
                info.size = len(data)
                t.addfile(info, io.BytesIO(data) if data else None)
        """
}

// MARK: trees deeper than PATH_MAX, reached one component at a time as the kernel requires

/// Opens root/parts... with openat, never following a symlink; -1 when something is missing.
func openDeep(_ root: String, _ parts: [String], flags: Int32 = O_RDONLY) -> Int32 {
    var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    for (i, part) in parts.enumerated() where fd >= 0 {
        let last = i == parts.count - 1
        let next = openat(fd, part, (last ? flags : O_RDONLY | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC)
        close(fd)
        fd = next
    }
    return fd
}

/// The content of the file root/parts..., read through descriptors.
func readDeep(_ root: String, _ parts: [String]) -> String? {
    let fd = openDeep(root, parts)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// lstat of root/parts..., through the descriptor of its parent.
func lstatDeep(_ root: String, _ parts: [String]) -> stat? {
    let parent = openDeep(root, Array(parts.dropLast()), flags: O_RDONLY | O_DIRECTORY)
    guard parent >= 0 else { return nil }
    defer { close(parent) }
    var st = stat()
    return fstatat(parent, parts.last!, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st : nil
}

/// Makes the directories root/parts... and a file `content` at the bottom, with mkdirat/openat.
func makeDeepTree(_ root: String, _ parts: [String], file: String, content: String) throws {
    var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    defer { close(fd) }
    for part in parts {
        mkdirat(fd, part, 0o755)
        let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard next >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        close(fd)
        fd = next
    }
    let out = openat(fd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard out >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
    _ = Array(content.utf8).withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
    close(out)
}

/// `count` directory names of `length` bytes each, distinct at the front.
func longNames(_ count: Int, length: Int) -> [String] {
    (0..<count).map { i in
        let prefix = String(format: "d%03d-", i)
        return prefix + String(repeating: "x", count: length - prefix.count)
    }
}

/// Every file under `directory` with what a layer could change about it: type, mode, owner,
/// size, link count, modification time, the overlay opaque mark and the content's hash.
func snapshot(_ directory: String) -> [String: String] {
    var result: [String: String] = [:]
    func walk(_ relative: String) {
        let path = directory + relative
        guard let st = lstatOf(path) else { return }
        var line =
            "type=\(st.st_mode & S_IFMT) mode=\(String(st.st_mode & 0o7777, radix: 8)) "
            + "owner=\(st.st_uid):\(st.st_gid) size=\(st.st_size) links=\(st.st_nlink) "
            + "mtime=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) "
            + "opaque=\(getXattr(path, "trusted.overlay.opaque") ?? "-")"
        if st.st_mode & S_IFMT == S_IFREG, let data = FileManager.default.contents(atPath: path) {
            line += " sha256=\(SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined())"
        }
        result[relative.isEmpty ? "." : relative] = line
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in directoryEntries(path) { walk(relative + "/" + name) }
        }
    }
    walk("")
    return result
}
