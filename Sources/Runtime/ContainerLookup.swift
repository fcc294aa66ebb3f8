import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension Container {
    // MARK: lookup

    /// By name, full ID or unique ID prefix. A name link whose container's record has another
    /// name is a rename's leftover (see rename(to:)) and names nothing.
    public static func lookup(_ reference: String, root: String) throws -> Container {
        if let id = NameLink.read(namesDir(root) + "/" + reference), let c = load(id: id, root: root),
            c.name == reference
        {
            return c
        }
        if reference.count == 64, let c = load(id: reference, root: root) { return c }
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        let matches = reference.isEmpty ? [] : ids.filter { $0.hasPrefix(reference) }
        if matches.count > 1 {
            throw Error(
                container: reference, stage: .lookup,
                detail: "the ID prefix is ambiguous; give more characters")
        }
        guard let only = matches.first, let c = load(id: only, root: root) else {
            throw Error(container: reference, stage: .lookup, errno: ENOENT, detail: "no such container")
        }
        return c
    }

    static func load(id: String, root: String) -> Container? {
        guard let record = JSONFiles.read(ContainerRecord.self, containersDir(root) + "/" + id + "/config.json"),
            record.id == id
        else { return nil }
        return Container(root: root, record: record)
    }

    /// Every container under the root, newest first.
    public static func list(root: String) -> [Container] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: containersDir(root))) ?? []
        return ids.compactMap { load(id: $0, root: root) }.sorted { $0.record.created > $1.record.created }
    }

    // MARK: state

    func readRawState() -> ContainerState {
        var s = JSONFiles.read(ContainerState.self, statePath) ?? ContainerState(status: .created)
        // The berth process that started it may be long gone: berth-shim's exit.json says how
        // the run ended (start() removes it before each run).
        if s.status == .running, let exit = exitRecord() { s.apply(exit) }
        return s
    }

    func exitRecord() -> ExitRecord? {
        JSONFiles.read(ExitRecord.self, dir + "/exit.json")
    }

    func writeState(_ state: ContainerState) {
        try? JSONFiles.write(state, statePath)
    }

    /// The state on disk, corrected by reality: a "running" container whose process is gone
    /// (or whose pid now names another process) is reported as exited, unless its berth-shim is
    /// still there: it is writing down the exit (it drains the output first), which then says
    /// how the run ended.
    public func state() -> ContainerState {
        var s = readRawState()
        if s.status == .running, !isAlive(s), !monitorIsAlive(s) {
            s = Container.withUnknownExit(s)
        }
        return s
    }

    /// True while container `id` runs or is being started or removed (another berth holds its
    /// lifecycle lock): what may not lose its network address to a sweep of dead holders.
    public static func isActive(id: String, root: String) -> Bool {
        let dir = containersDir(root) + "/" + id
        guard let lock = FileDescriptor(taking: open(dir + "/" + lifecycleLockName, O_RDONLY | O_CLOEXEC)) else {
            // No lock file: never started (a created container holds no address) or gone.
            return access(dir + "/config.json", F_OK) == 0 && (try? lookup(id, root: root))?.state().status == .running
        }
        if flock(lock.rawValue, LOCK_EX | LOCK_NB) != 0 { return true }
        flock(lock.rawValue, LOCK_UN)
        guard let container = try? lookup(id, root: root) else { return false }
        return container.state().status == .running
    }

    /// Waits (bounded) until the last run's berth-shim is gone, its exit command (a network's
    /// release) done; at once when it is gone already or the container runs.
    public func waitForLastRunsShim(milliseconds: Int = 5000) {
        let s = readRawState()
        guard s.status != .running || !isAlive(s) else { return }
        let shim = openMonitor(s)
        guard shim >= 0 else { return }
        _ = waitReadable(shim, milliseconds: milliseconds)
        close(shim)
    }

    /// Runs `body` under the container's lifecycle lock if the container is neither running nor
    /// being started or removed by another process (which holds the lock, and tears down what
    /// `body` would itself; waiting for it could deadlock with a removal waiting for us);
    /// false when it did not run.
    public func ifNotRunning(_ body: () throws -> Void) rethrows -> Bool {
        guard
            let lock = FileDescriptor(
                taking: open(dir + "/" + Container.lifecycleLockName, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600))
        else { return false }
        guard flock(lock.rawValue, LOCK_EX | LOCK_NB) == 0 else { return false }
        defer { flock(lock.rawValue, LOCK_UN) }
        guard state().status != .running else { return false }
        try body()
        return true
    }

    /// inspect's State.Error when the exit code is 255 because nobody saw the exit (Docker too
    /// records 255 for a container whose status it lost).
    static let unknownExit = "exit status unknown: the container's reaper (berth-shim) was gone when it ended"

    func isAlive(_ s: ContainerState) -> Bool {
        guard let pid = s.pid, let start = s.pidStartTime else { return false }
        return ProcFS.startTime(pid: pid) == start
    }

    /// The run's berth-shim is alive. It was forked before it cloned the container, so a process
    /// with its pid that started after the container has reused the pid; a zombie (a shim that
    /// was killed, or that is done) writes nothing more.
    func monitorIsAlive(_ s: ContainerState) -> Bool {
        guard let pid = s.monitorPid, let containerStart = s.pidStartTime,
            let start = ProcFS.startTime(pid: pid)
        else { return false }
        return start <= containerStart
    }

    /// A pidfd for the run's berth-shim, checked after the open (so it names the process that
    /// was checked); -1 when it is gone.
    func openMonitor(_ s: ContainerState) -> Int32 {
        guard let pid = s.monitorPid else { return -1 }
        let fd = berth_pidfd_open(pid)
        if fd >= 0 && !monitorIsAlive(s) {
            close(fd)
            return -1
        }
        return fd
    }

    public var isRunning: Bool { state().status == .running }

    // MARK: rename

    /// `docker rename`, running or not: berth-shim, the cgroup, the directory and the log know
    /// the container by ID, and its hostname defaults to the ID too, so nothing else changes.
    ///
    /// Three steps, so that a crash at any point leaves the container with a name: the new link
    /// is made with symlink() (atomic: a name in use is refused, as create() refuses it), then
    /// the record names it, then the old link goes. In between both links name the container;
    /// its record says which name is its own, lookup() ignores the other, and whoever wants that
    /// name (create, a rename, `system prune`) removes it (removeStaleNameLink). The record is
    /// rewritten under the names lock, after checking that the new link is still ours, so such
    /// a removal and this rename never cross.
    public func rename(to newName: String) throws {
        // Docker's own form, with the leading slash ("/web"), names the same.
        let wanted = newName.hasPrefix("/") ? String(newName.dropFirst()) : newName
        guard wanted != name else {
            throw Error(
                container: "", stage: .name, step: "",
                detail: "Renaming a container with the same name as its current name")
        }
        guard DockerNames.isValid(wanted) else { throw Container.invalidName(newName) }
        let conflict = { (name: String, holder: String) in Container.renameConflict(name, by: holder) }
        try Container.reserveName(wanted, id: id, root: root, conflict: conflict)
        Container.pauseForTest(at: .renameReserved)
        let names = Container.namesDir(root)
        let link = names + "/" + wanted
        var failure: Swift.Error?
        Container.withNameLinksLocked(root: root) {
            guard let holder = NameLink.read(link), holder == id else {
                failure = conflict(wanted, NameLink.read(link) ?? "?")
                return
            }
            // As it is now: another berth process may have renamed or removed the container.
            guard var current = JSONFiles.read(ContainerRecord.self, dir + "/config.json"), current.id == id else {
                unlink(link)
                failure = Error(container: name, stage: .lookup, errno: ENOENT, detail: "no such container")
                return
            }
            let old = current.name
            current.name = wanted
            do { try JSONFiles.write(current, dir + "/config.json") } catch var e as Error {
                unlink(link)
                e.container = name
                failure = e
                return
            } catch {
                unlink(link)
                failure = error
                return
            }
            record = current
            Container.pauseForTest(at: .renameRecorded)
            if old != wanted, NameLink.read(names + "/" + old) == id { unlink(names + "/" + old) }
        }
        if let failure { throw failure }
    }

    /// Docker's words for a name that breaks its rule (moby's reserveName).
    static func invalidName(_ name: String) -> Error {
        Error(
            container: "", stage: .name, step: "",
            detail: DockerNames.invalidContainerName(name))
    }

    /// Docker's words for a name another container holds (moby's nameConflictError).
    static func renameConflict(_ name: String, by holder: String) -> Error {
        Error(
            container: "", stage: .name, step: "",
            detail: "Conflict. The container name \"/\(name)\" is already in use by container \"\(holder)\". "
                + "You have to remove (or rename) that container to be able to reuse that name.")
    }
}

/// A berth process killed (SIGKILL, a crash, the OOM killer) while it made a container leaves
/// what it had made so far: the name link, ROOT/containers/ID without a record (config.json is
/// written last, by start() for `run`), perhaps the cgroup. `ps` cannot show it (no record) and
/// `rm` finds nothing by the name, which would stay "in use" for good. These are reclaimed by
/// `rm` of the name or ID, by a create that wants the name, and by `system prune`.
///
/// What tells a leftover from a container being made right now is the creation lock: an flock
/// that create() holds on the directory from before the name points at it until the record is
/// written (Container.creationLock). A reclaimer takes that lock without waiting, and leaves
/// alone what it cannot lock; it holds it while it removes the cgroup and the directory, so a
/// creator that meets the lock waits and then finds its directory gone (makeLockedDirectory).
/// Name links are removed under an flock on ROOT/container-names, and only while they still
/// name the ID reclaimed; a creator's symlink() cannot replace a link that is there, so no
/// reclaimer removes a name that another container took meanwhile.
extension Container {
    // MARK: leftovers

    /// `rm` of a reference that lookup() does not find: reclaims the leftover that the name,
    /// full ID or unique ID prefix names (directory, cgroup, name link). False when there is
    /// none; an error when it is still being made.
    public static func removeLeftover(_ reference: String, root: String) throws -> Bool {
        let link = namesDir(root) + "/" + reference
        var id = NameLink.read(link)
        if id == nil {
            guard isContainerIDPrefix(reference) else { return false }
            let matches = Files.names(in: containersDir(root)).filter {
                isContainerIDPrefix($0) && $0.hasPrefix(reference)
            }
            guard matches.count == 1, matches[0].utf8.count == 64 else { return false }
            id = matches[0]
        }
        guard let id, load(id: id, root: root) == nil else { return false }
        guard try reclaimLeftover(id: id, root: root) != .leftAlone else {
            throw Error(
                container: reference, stage: .remove,
                detail: "the container is still being made by a berth process; try again when it is done")
        }
        return true
    }

    /// `system prune`: every directory without a record and every name link whose container
    /// does not exist, except those being made. Returns the IDs of the directories reclaimed.
    public static func reclaimLeftovers(root: String) throws -> [String] {
        var reclaimed: [String] = []
        for id in Files.names(in: containersDir(root)) where id.utf8.count == 64 && isContainerIDPrefix(id) {
            if load(id: id, root: root) == nil, try reclaimLeftover(id: id, root: root) == .reclaimed {
                reclaimed.append(id)
            }
        }
        for name in Files.names(in: namesDir(root)) {
            let link = namesDir(root) + "/" + name
            guard let id = NameLink.read(link) else {
                // Not a link berth made (a name is always a symlink to an ID): it only blocks the name.
                removeJunkNameLink(link, root: root)
                continue
            }
            guard let holder = load(id: id, root: root) else {
                if try reclaimLeftover(id: id, root: root) == .reclaimed { reclaimed.append(id) }
                continue
            }
            if holder.name != name { _ = removeStaleNameLink(link, name: name, root: root) }
        }
        return reclaimed
    }

    enum LeftoverOutcome {
        /// It has a record, or is being made (its directory is locked).
        case leftAlone
        /// Its directory (and cgroup and name) went.
        case reclaimed
        /// There was no directory (any more); the name links naming it went.
        case namesOnly
    }

    /// Reclaims the container `id` unless it has a record or is being made (its directory is
    /// locked): cgroup, directory (into the pool, as `rm` does) and the name links naming it.
    static func reclaimLeftover(id: String, root: String) throws -> LeftoverOutcome {
        let dir = containersDir(root) + "/" + id
        var outcome = LeftoverOutcome.namesOnly
        let opened = FileDescriptor(taking: open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
        if opened.rawValue < 0 && errno != ENOENT { return .leftAlone }
        if let directory = opened {
            guard flock(directory.rawValue, LOCK_EX | LOCK_NB) == 0 else { return .leftAlone }
            // Let go of (as create's) when this scope ends.
            let lock = CreationLock(directory: directory)
            // Judged again under the lock: the creator may have finished (record written, lock
            // released) between the caller's look and ours.
            var locked = stat()
            var atPath = stat()
            let stillThere =
                fstat(lock.directory.rawValue, &locked) == 0 && lstat(dir, &atPath) == 0
                && locked.st_ino == atPath.st_ino && locked.st_dev == atPath.st_dev
            if stillThere {
                guard load(id: id, root: root) == nil else { return .leftAlone }
                do { try Cgroup.destroy(name: id) } catch {
                    throw Error(container: id, stage: .cgroup, detail: "\(error)")
                }
                guard ContainerPool.give(root: root, dir: dir, id: id) else {
                    throw Error(container: id, stage: .remove, detail: "cannot remove \(dir)")
                }
                outcome = .reclaimed
            }
            // Another directory is at the path now: its maker's, names and all.
            guard stillThere else { return .leftAlone }
            // Still under the lock: a creator that met it retries this ID only after, so the
            // name it then reserves is never one of the links removed here.
            removeNameLinks(naming: id, root: root)
            return outcome
        }
        removeNameLinks(naming: id, root: root)
        return outcome
    }

    /// Every name link that names `id`, under the names lock (see above). A container has one
    /// name; a leftover may share its ID with no other, so a scan finds at most that one.
    static func removeNameLinks(naming id: String, root: String) {
        withNameLinksLocked(root: root) {
            for name in Files.names(in: namesDir(root)) {
                let link = namesDir(root) + "/" + name
                if NameLink.read(link) == id { unlink(link) }
            }
        }
    }

    /// Removes `link` if it still names `id`; under the names lock, so that a name another
    /// container took meanwhile is never removed (remove() and the reclaimers).
    static func removeNameLink(_ link: String, ifItNames id: String, root: String) {
        withNameLinksLocked(root: root) {
            if NameLink.read(link) == id { unlink(link) }
        }
    }

    /// Removes `link` (ROOT/container-names/`name`) if it names a container whose record has
    /// another name: what a rename killed between its steps leaves (see rename(to:)). Judged
    /// under the names lock, under which a rename checks that its new link is still there and
    /// rewrites the record: a rename that has not got there yet loses the name and says so,
    /// one that has is never undone. True when the link went.
    static func removeStaleNameLink(_ link: String, name: String, root: String) -> Bool {
        var removed = false
        withNameLinksLocked(root: root) {
            guard let id = NameLink.read(link), let holder = load(id: id, root: root), holder.name != name else {
                return
            }
            removed = unlink(link) == 0
        }
        return removed
    }

    private static func removeJunkNameLink(_ link: String, root: String) {
        withNameLinksLocked(root: root) {
            var st = stat()
            if NameLink.read(link) == nil, lstat(link, &st) == 0, st.st_mode & S_IFMT == S_IFLNK { unlink(link) }
        }
    }

    static func withNameLinksLocked(root: String, _ body: () -> Void) {
        let names = FileDescriptor(taking: open(namesDir(root), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
        if names.rawValue >= 0 { while flock(names.rawValue, LOCK_EX) != 0 && errno == EINTR {} }
        body()
    }

    /// Lowercase hex, 1 to 64 digits: what an ID or its prefix looks like (and nothing that
    /// could climb out of ROOT/containers).
    static func isContainerIDPrefix(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// ROOT/container-names/NAME is a symlink whose target is the container's ID, written as 43
/// base64url characters rather than 64 hex digits: ext4 keeps a symlink target shorter than 60
/// bytes inside the inode, a longer one takes a data block, and freeing a block on a host whose
/// ext4 has no journal and mounts with `discard` waits for a synchronous discard (1-4 ms each,
/// measured, on every `rm`). Links holding the 64 hex digits read back as well.
enum NameLink {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func target(forID id: String) -> String {
        guard let bytes = hexBytes(id) else { return id }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var chunk = UInt32(bytes[i]) << 16
            if n > 1 { chunk |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { chunk |= UInt32(bytes[i + 2]) }
            for k in 0...n { out.append(alphabet[Int((chunk >> (18 - 6 * UInt32(k))) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func id(fromTarget target: String) -> String? {
        if target.utf8.count == 64 { return hexBytes(target) == nil ? nil : target }
        var bits: UInt32 = 0
        var count = 0
        var bytes: [UInt8] = []
        for c in target.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            bits = (bits << 6) | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                bytes.append(UInt8((bits >> UInt32(count)) & 0xff))
            }
        }
        guard bytes.count == 32 else { return nil }
        var hex: [UInt8] = []
        for b in bytes {
            hex.append(hexDigits[Int(b >> 4)])
            hex.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The ID a name link points at, or nil when there is no such (valid) link.
    static func read(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return id(fromTarget: target)
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let hi = hexDigits.firstIndex(of: u[i]), let lo = hexDigits.firstIndex(of: u[i + 1]) else {
                return nil
            }
            out.append(UInt8(hi << 4 | lo))
            i += 2
        }
        return out
    }
}
