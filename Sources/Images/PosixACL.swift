import CArchive

#if canImport(Glibc)
    import Glibc
#endif

/// POSIX ACLs of a tar entry (GNU tar's and bsdtar's `SCHILY.acl.*` records, which libarchive
/// parses into entries) in the binary form of the `system.posix_acl_access` and
/// `system.posix_acl_default` extended attributes, so they can be set on a descriptor like any
/// other attribute. Docker's own tars carry these attributes as plain xattrs, which need nothing.
enum PosixACL {
    /// The kernel's tag values (<linux/posix_acl.h>); the binary form must list entries in this
    /// order, named users and groups by ID, or the kernel refuses it.
    private static let userObject: UInt16 = 0x01
    private static let user: UInt16 = 0x02
    private static let groupObject: UInt16 = 0x04
    private static let group: UInt16 = 0x08
    private static let mask: UInt16 = 0x10
    private static let other: UInt16 = 0x20
    private static let undefinedID = UInt32.max
    private static let version: UInt32 = 2

    /// The attribute value for the entry's ACL of `type` (ARCHIVE_ENTRY_ACL_TYPE_ACCESS or
    /// _DEFAULT), or nil when it has none beyond what the mode bits say.
    static func xattrValue(_ entry: OpaquePointer, type: Int32) -> [UInt8]? {
        let count = archive_entry_acl_reset(entry, type)
        // An access ACL always reports the three entries the mode bits make; only more is an ACL.
        guard count > (type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? 3 : 0) else { return nil }
        var entries: [(tag: UInt16, perm: UInt16, id: UInt32)] = []
        var entryType: Int32 = 0
        var permset: Int32 = 0
        var tag: Int32 = 0
        var qualifier: Int32 = 0
        var name: UnsafePointer<CChar>?
        while archive_entry_acl_next(entry, type, &entryType, &permset, &tag, &qualifier, &name) == ARCHIVE_OK {
            let kernelTag: UInt16
            switch tag {
            case ARCHIVE_ENTRY_ACL_USER_OBJ: kernelTag = userObject
            case ARCHIVE_ENTRY_ACL_USER: kernelTag = user
            case ARCHIVE_ENTRY_ACL_GROUP_OBJ: kernelTag = groupObject
            case ARCHIVE_ENTRY_ACL_GROUP: kernelTag = group
            case ARCHIVE_ENTRY_ACL_MASK: kernelTag = mask
            case ARCHIVE_ENTRY_ACL_OTHER: kernelTag = other
            default: continue  // NFSv4 entries have no POSIX form
            }
            let named = kernelTag == user || kernelTag == group
            entries.append((kernelTag, UInt16(permset & 0o7), named ? UInt32(bitPattern: qualifier) : undefinedID))
        }
        guard !entries.isEmpty else { return nil }
        // Named entries need a mask; tar writers always store one, but the kernel insists.
        let hasNamed = entries.contains { $0.tag == user || $0.tag == group }
        if hasNamed && !entries.contains(where: { $0.tag == mask }) {
            let groupClass = entries.filter { $0.tag == user || $0.tag == group || $0.tag == groupObject }
            entries.append((mask, groupClass.reduce(0) { $0 | $1.perm }, undefinedID))
        }
        entries.sort { ($0.tag, $0.id) < ($1.tag, $1.id) }
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        append(version)
        for e in entries {
            append(e.tag)
            append(e.perm)
            append(e.id)
        }
        return bytes
    }
}
