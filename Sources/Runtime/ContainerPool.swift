import CRuntime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Removed containers' directories, emptied and kept for the next container:
///
///     ROOT/cache/container-pool/ID/{upper,work,hosts,hostname,resolv.conf,config.json}
///
/// Why: creating and deleting inodes and blocks is most of a short container's cost on an ext4
/// without a journal (this host's). There, every new inode is placed only after skipping each
/// inode of its block group deleted in the last minutes (`recently_deleted`), so a run that makes
/// and drops 17 inodes slows every later one, and each freed block waits for a synchronous
/// discard. A recycled directory brings its three dirs, four files and their blocks along: only
/// state.json, the name link and overlayfs's own scratch inodes are made per run.
///
/// An entry is taken by renaming it to ROOT/containers/ID, which one taker wins; its files are
/// then rewritten in place. Until config.json is, the stale record there names another ID, which
/// `Container.load` refuses, so no one sees a half-made container.
enum ContainerPool {
    /// Enough for the containers a project starts and stops together; the rest are deleted.
    static let capacity = 8

    static func directory(root: String) -> String { root + "/cache/container-pool" }

    /// Moves the longest-kept pooled directory to `dir` (which must not exist); false while the
    /// pool is not full yet (the caller makes a new directory, which joins the pool later).
    ///
    /// Taking in turn rather than the same one again spreads the work over `capacity` directories
    /// in as many block groups (ROOT/containers is marked a top directory, see create): the
    /// inodes overlayfs makes and drops at every mount then pile up in each group's
    /// `recently_deleted` list `capacity` times slower.
    static func take(root: String, into dir: String) -> Bool {
        let pool = directory(root: root)
        let entries = Files.names(in: pool)
        guard entries.count >= capacity else { return false }
        // Entry names start with the time they were given back, zero-padded: oldest first.
        for entry in entries.sorted() where rename(pool + "/" + entry, dir) == 0 {
            // What a slow waiter of the last container wrote after the removal (state, log)
            // must not describe this one.
            removeUnkept(dir)
            return true
        }
        return false
    }

    /// Empties a removed container's directory and keeps it, or deletes it when the pool is full
    /// or its upper dir cannot be made as new. True when `dir` is gone from where it was.
    static func give(root: String, dir: String, id: String) -> Bool {
        let pool = directory(root: root)
        guard canRecycle(dir), Files.names(in: pool).count < capacity,
            access(pool, F_OK) == 0 || mkdir(pool, 0o700) == 0
        else {
            return FileTree.removeTree(dir)
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let stamp = String(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))
        let entry = String(repeating: "0", count: max(0, 20 - stamp.count)) + stamp + "-" + id.prefix(12)
        return rename(dir, pool + "/" + entry) == 0 || FileTree.removeTree(dir)
    }

    /// Drops everything the container made (its writes in upper, its state and logs) and keeps
    /// the skeleton. An upper dir whose owner, mode or extended attributes the container changed
    /// (a chmod of / is copied up onto it) is not reused: the next container would inherit them.
    /// overlayfs's own attributes (trusted.overlay.uuid on the upper root) may stay.
    private static func canRecycle(_ dir: String) -> Bool {
        let upper = dir + "/upper"
        try? FileTree.removeContents(of: upper)
        // Anything the delete could not remove (an immutable file, a tree deeper than the open
        // file limit) would appear in the next container's /.
        var st = stat()
        guard Files.names(in: upper).isEmpty, lstat(upper, &st) == 0, st.st_mode == S_IFDIR | 0o755,
            st.st_uid == 0, st.st_gid == 0, berth_only_overlay_xattrs(upper) == 1,
            access(dir + "/work", F_OK) == 0
        else { return false }
        removeUnkept(dir)
        // The /etc files are bind-mounted read-write: one the container chmod'ed, chown'ed or
        // tagged goes, and the next container gets a new one.
        for file in ["hosts", "hostname", "resolv.conf"] {
            let path = dir + "/" + file
            guard lstat(path, &st) == 0 else { continue }
            if st.st_mode != S_IFREG | 0o644 || st.st_uid != 0 || st.st_gid != 0 || st.st_nlink != 1
                || berth_only_overlay_xattrs(path) != 1
            {
                if unlink(path) != 0 { return false }
            }
        }
        return true
    }

    private static func removeUnkept(_ dir: String) {
        for entry in Files.names(in: dir) where !kept.contains(entry) {
            FileTree.removeTree(dir + "/" + entry)
        }
    }

    private static let kept: Set<String> = ["upper", "work", "hosts", "hostname", "resolv.conf", "config.json"]
}
