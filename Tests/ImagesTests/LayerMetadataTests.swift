import Foundation
import Testing

@testable import Images

/// What the unpacker restores besides content: it writes entries itself (relative to directory
/// descriptors) instead of through libarchive's disk writer, and must restore what that did.
@Suite struct LayerMetadataTests {
    @Test func modesOwnersTimesAndSpecialFilesAreRestored() throws {
        let s = try Scratch()
        var setuid = TarEntry.file("bin/su", "binary", mode: 0o4755)
        setuid.uid = 0
        setuid.gid = 42
        var owned = TarEntry.file("home/u/notes", "n", mode: 0o600)
        owned.uid = 1000
        owned.gid = 1000
        owned.mtime = 1_234_567_890
        var fifo = TarEntry(name: "run/fifo", type: "fifo", mode: 0o620)
        fifo.uid = 7
        var device = TarEntry(name: "dev/null", type: "chr", mode: 0o666)
        device.mtime = 1_000_000_000
        var link = TarEntry.symlink("bin/sh", to: "busybox")
        link.uid = 5
        link.mtime = 1_111_111_111
        let tar = try s.makeTar(
            "meta.tar",
            [
                .dir("bin/", mode: 0o755), setuid, link,
                .dir("home/"), .dir("home/u/", mode: 0o700), owned,
                .dir("ro/", mode: 0o555), .file("ro/inside", "written before the mode"),
                .dir("run/"), fifo, .dir("dev/"), device,
                .dir("ro/", mode: 0o551),  // listed twice: the last mode wins
            ])
        let diff = try ImageStore(root: s.root).importRootfs(tarPath: tar, reference: "meta").layerPaths[0]

        let su = try #require(lstatOf(diff + "/bin/su"))
        #expect(su.st_mode & 0o7777 == 0o4755 && su.st_gid == 42)
        let notes = try #require(lstatOf(diff + "/home/u/notes"))
        #expect(notes.st_uid == 1000 && notes.st_gid == 1000 && notes.st_mtim.tv_sec == 1_234_567_890)
        #expect(lstatOf(diff + "/home/u").map { $0.st_mode & 0o7777 } == 0o700)
        let ro = try #require(lstatOf(diff + "/ro"))
        #expect(ro.st_mode & 0o7777 == 0o551 && ro.st_mtim.tv_sec == 1_700_000_000)
        #expect(try String(contentsOfFile: diff + "/ro/inside", encoding: .utf8) == "written before the mode")
        let pipe = try #require(lstatOf(diff + "/run/fifo"))
        #expect(pipe.st_mode & S_IFMT == S_IFIFO && pipe.st_mode & 0o7777 == 0o620 && pipe.st_uid == 7)
        let sh = try #require(lstatOf(diff + "/bin/sh"))
        #expect(sh.st_mode & S_IFMT == S_IFLNK && sh.st_uid == 5 && sh.st_mtim.tv_sec == 1_111_111_111)
        // Device numbers need a tar field tarfile leaves at 0/0 here; the type and mode must hold.
        let null = try #require(lstatOf(diff + "/dev/null"))
        #expect(null.st_mode & S_IFMT == S_IFCHR && null.st_mode & 0o7777 == 0o666)
    }

    @Test func extendedAttributesAndACLsAreRestored() throws {
        let s = try Scratch()
        var tagged = TarEntry.file("tagged", "x")
        tagged.pax = ["SCHILY.xattr.user.origin": "test", "SCHILY.xattr.trusted.note": "kept"]
        var acl = TarEntry.file("acl", "x", mode: 0o640)
        acl.pax = ["SCHILY.acl.access": "user::rw-,user:1000:r--,group::r--,mask::r--,other::---"]
        var inherit = TarEntry.dir("shared/", mode: 0o750)
        inherit.pax = ["SCHILY.acl.default": "user::rwx,group::r-x,group:2000:rwx,mask::rwx,other::---"]
        let tar = try s.makeTar("xattrs.tar", [tagged, acl, inherit])
        let diff = try ImageStore(root: s.root).importRootfs(tarPath: tar, reference: "x").layerPaths[0]

        #expect(getXattr(diff + "/tagged", "user.origin") == "test")
        #expect(getXattr(diff + "/tagged", "trusted.note") == "kept")
        // The binary form: version 2, then (tag, perm, id) sorted by tag, named entries by ID.
        let access = try #require(getXattrBytes(diff + "/acl", "system.posix_acl_access"))
        #expect(access == aclBytes([(0x01, 6, nil), (0x02, 4, 1000), (0x04, 4, nil), (0x10, 4, nil), (0x20, 0, nil)]))
        #expect(lstatOf(diff + "/acl").map { $0.st_mode & 0o7777 } == 0o640)
        let defaults = try #require(getXattrBytes(diff + "/shared", "system.posix_acl_default"))
        #expect(
            defaults == aclBytes([(0x01, 7, nil), (0x04, 5, nil), (0x08, 7, 2000), (0x10, 7, nil), (0x20, 0, nil)]))
    }

    @Test func sparseFilesKeepTheirHolesAndSize() throws {
        let s = try Scratch()
        let rootfs = try s.staging("rootfs")
        let sparse = rootfs + "/sparse"
        #expect(FileManager.default.createFile(atPath: sparse, contents: nil))
        let fd = open(sparse, O_WRONLY)
        _ = "middle".withCString { pwrite(fd, $0, 6, 1 << 20) }
        ftruncate(fd, 4 << 20)  // and a trailing hole
        close(fd)
        let tar = s.dir + "/sparse.tar"
        try s.run("/bin/tar", ["--sparse", "--numeric-owner", "-cf", tar, "-C", rootfs, "sparse"])

        let diff = try ImageStore(root: s.root).importRootfs(tarPath: tar, reference: "sparse").layerPaths[0]
        let st = try #require(lstatOf(diff + "/sparse"))
        #expect(st.st_size == 4 << 20)
        #expect(st.st_blocks * 512 < 1 << 20, "the holes were written out")
        let data = try Data(contentsOf: URL(fileURLWithPath: diff + "/sparse"))
        #expect(data[(1 << 20)..<((1 << 20) + 6)] == Data("middle".utf8))
        #expect(data[0..<(1 << 20)].allSatisfy { $0 == 0 })
    }

    /// A later entry replaces an earlier one of the same name, as tar does: a file becomes a
    /// directory, a directory with contents becomes a file, a directory listed again stays.
    @Test func laterEntriesReplaceEarlierOnes() throws {
        let s = try Scratch()
        let tar = try s.makeTar(
            "replace.tar",
            [
                .file("x", "file first"), .dir("x/"), .file("x/inside", "now a directory"),
                .dir("d/"), .dir("d/deeper/"), .file("d/deeper/f", "gone"), .file("d", "now a file"),
                .dir("keep/"), .file("keep/f", "stays"), .dir("keep/", mode: 0o700),
                .file("h-target", "old"), .hardlink("h", to: "h-target"), .file("h-target", "new inode"),
            ])
        let diff = try ImageStore(root: s.root).importRootfs(tarPath: tar, reference: "r").layerPaths[0]
        #expect(try String(contentsOfFile: diff + "/x/inside", encoding: .utf8) == "now a directory")
        #expect(try String(contentsOfFile: diff + "/d", encoding: .utf8) == "now a file")
        #expect(try String(contentsOfFile: diff + "/keep/f", encoding: .utf8) == "stays")
        #expect(lstatOf(diff + "/keep").map { $0.st_mode & 0o7777 } == 0o700)
        // Replacing a name unlinks it: the other name of the old inode keeps the old content.
        #expect(try String(contentsOfFile: diff + "/h", encoding: .utf8) == "old")
        #expect(try String(contentsOfFile: diff + "/h-target", encoding: .utf8) == "new inode")
    }
}

/// lgetxattr(2) as bytes.
func getXattrBytes(_ path: String, _ name: String) -> [UInt8]? {
    typealias Fn = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "lgetxattr") else { return nil }
    let fn = unsafeBitCast(sym, to: Fn.self)
    var buffer = [UInt8](repeating: 0, count: 1024)
    let n = buffer.withUnsafeMutableBytes { fn(path, name, $0.baseAddress, $0.count) }
    return n < 0 ? nil : Array(buffer.prefix(n))
}

/// The kernel's POSIX ACL xattr for (tag, permissions, ID or nil) entries.
func aclBytes(_ entries: [(UInt16, UInt16, UInt32?)]) -> [UInt8] {
    var bytes: [UInt8] = [2, 0, 0, 0]
    for (tag, perm, id) in entries {
        withUnsafeBytes(of: tag.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: perm.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: (id ?? UInt32.max).littleEndian) { bytes += $0 }
    }
    return bytes
}
