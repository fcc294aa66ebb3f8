import CRuntime
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension Container {
    // MARK: create

    /// Validates the spec, resolves the process (Docker's rules, user in the image's files),
    /// reserves the name and writes ROOT/containers/ID. On any error nothing is left behind.
    /// `startingNow`: the caller calls start() next, in this process (`docker run`); the record
    /// is then written by start() while the child builds its root filesystem on the other core.
    /// `completingSpec`: fills in what is slow to find (the image's layers and defaults) while
    /// the cgroup and network namespace are being made; it must not change the name, resources,
    /// privileges or network. Its errors come out as they are.
    /// `networkNamespace`: one the caller made beforehand (`NetworkNamespace.make`) for a
    /// container with a namespace of its own (`none`, `default`) that starts now; any other
    /// container closes it unused.
    public static func create(
        spec: ContainerSpec, root: String, startingNow: Bool = false,
        networkNamespace: consuming FileDescriptor? = nil,
        completingSpec: ((inout ContainerSpec) throws -> Void)? = nil
    ) throws -> Container {
        var givenNetns: FileDescriptor? = nil
        if startingNow && spec.network.hasOwnNamespace { givenNetns = networkNamespace }
        let makesNetns = startingNow && spec.network.hasOwnNamespace && givenNetns.rawValue < 0
        let id = randomID()
        let name = spec.name ?? generatedName(id)
        guard DockerNames.isValid(name) else {
            throw Error(container: name, stage: .create, detail: DockerNames.invalidContainerName(name))
        }
        // Numbers first, as Docker's daemon checks them: nothing is made for a spec it refuses
        // (an unchecked cpus once trapped after the name was taken).
        do { try spec.resources.validate() } catch {
            throw Error(container: name, stage: .create, detail: "\(error)")
        }
        if let adj = spec.oomScoreAdj, !(-1000...1000).contains(adj) {
            throw Error(
                container: name, stage: .create,
                detail: "Invalid value \(adj), range for oom score adj is [-1000, 1000]")
        }
        // `container:ID` takes that container's host name and /etc files, as Docker does.
        var networkPeer: Container?
        if case .container(let other) = spec.network {
            guard let peer = load(id: other, root: root) else {
                throw Error(container: name, stage: .create, detail: "No such container: \(other)")
            }
            networkPeer = peer
        }
        if access(namesDir(root), F_OK) != 0 || access(containersDir(root), F_OK) != 0 {
            // ext4's "T" attribute on ROOT and ROOT/containers: the directories made under them
            // (the names dir, each container's) are placed like top-level ones, in the block
            // group with the fewest directories, rather than beside a parent whose group other
            // programs' deletions may crowd (ContainerPool.take says why that matters). Other
            // file systems ignore it.
            try FileTree.mkdirs(root)
            // Root's alone, as Docker's /var/lib/docker: image layers and volumes hold setuid
            // files and device nodes that images and containers made (CVE-2021-41091).
            chmod(root, 0o700)
            _ = berth_mark_top_directory(root)
            try FileTree.mkdirs(namesDir(root))
            try FileTree.mkdirs(containersDir(root))
            _ = berth_mark_top_directory(containersDir(root))
        }
        // A name in use by a container is refused before anything is made (a link whose
        // container has another name is a rename's leftover: reserveName reclaims it).
        if let other = NameLink.read(namesDir(root) + "/" + name), load(id: other, root: root)?.name == name {
            throw nameInUse(name, by: other)
        }
        // The directory first, locked, then the name pointing at it: from the moment the name
        // is taken until the record is written, a reclaimer (`rm -f`, `system prune`) that finds
        // the name or the directory without a record sees the lock and knows the container is
        // being made, not left behind by a berth process that was killed (writePendingRecord
        // lets go of it). The cgroup is made only once the directory exists, so a reclaimer
        // that finds no directory has no cgroup to look for either.
        let dir = containersDir(root) + "/" + id
        var creationLock: CreationLock? = try makeLockedDirectory(dir, root: root, container: name)
        let nameLink = namesDir(root) + "/" + name
        do {
            try reserveName(name, id: id, root: root)
        } catch {
            // Back to the pool, as fresh as it came: a name in use is a common refusal
            // (compose recreating), and deleting the directory costs the inodes the pool saves.
            if !ContainerPool.give(root: root, dir: dir, id: id) { FileTree.removeTree(dir) }
            throw error
        }
        pauseForTest(at: .nameReserved)
        // The cgroup (a directory and limit files per hierarchy) and the network namespace are
        // made on the second core while this one resolves the process and writes the
        // container's files; start() uses them.
        let cgroupWork = BackgroundWork { () throws -> Prepared in
            // A container started later (by the -d monitor) gets its cgroup then.
            guard startingNow else { return Prepared() }
            let cgroup = try makeCgroup(id: id, name: name, spec: spec)
            guard makesNetns else { return Prepared(cgroup: cgroup) }
            let netns = berth_netns_open()
            guard let namespace = FileDescriptor(taking: netns) else {
                try? cgroup.remove()
                throw Error(container: name, stage: .networkNamespace, step: "create network namespace", errno: -netns)
            }
            return Prepared(cgroup: cgroup, networkNamespace: namespace)
        }
        var rootfsWork: BackgroundWork<FileDescriptor>?
        var spec = spec
        var completing = false
        do {
            if let completingSpec {
                completing = true
                try completingSpec(&spec)
                completing = false
            }
            // The overlay too, on a third thread: mostly inode work in the upper dir's file system.
            if startingNow {
                let layerPaths = spec.layerPaths
                rootfsWork = BackgroundWork {
                    try SpawnConfig.openOverlay(root: root, containerDir: dir, layerPaths: layerPaths, container: name)
                }
            }
            let process = try resolveProcess(spec: spec, id: id, name: name, networkPeer: networkPeer)
            // Validate mounts now (missing bind sources) so create fails, not start.
            _ = try MountPlan.make(spec: spec, containerDir: dir, volumes: VolumeStore(root: root))
            // A new or empty volume gets the image's content at its target, as Docker fills it
            // on create (never on start).
            do { try VolumeCopyUp.populate(spec: spec, root: root) } catch let error as VolumeCopyUp.Error {
                throw Error(
                    container: name, stage: .files, step: "volume \(error.volume)", errno: error.errno,
                    detail: error.reason)
            }
            try writeEtcFiles(spec: spec, hostname: process.hostname, dir: dir, networkPeer: networkPeer)
            let record = ContainerRecord(id: id, name: name, created: Timestamp.now(), spec: spec, process: process)
            // No state.json yet: a missing one reads as "created" (readRawState). Each file here
            // costs a data block, and replacing or deleting it frees that block, which on this
            // host's ext4 (no journal, `discard`) waits for the device.
            let container = Container(root: root, record: record)
            container.recordPending = true
            // Both jobs first: the container owns what they made only once neither failed (the
            // catch below cleans up after either).
            var prepared = try cgroupWork.wait()
            do { container.preparedRootfs = try rootfsWork?.wait() } catch {
                try? prepared.cgroup?.remove()
                throw error
            }
            container.preparedCgroup = prepared.cgroup
            if let given = givenNetns.take() {
                container.preparedNetns = consume given
            } else {
                container.preparedNetns = prepared.networkNamespace.take()
            }
            // The container holds the lock from here; writePendingRecord() releases it. Last, so
            // that nothing fails once the record is out and the lock gone: a failure then would
            // remove a container that others could already see.
            container.creationLock = creationLock.take()
            if !startingNow { try container.writePendingRecord() }
            pauseForTest(at: .created)
            return container
        } catch {
            // A job not waited for above: what it made goes (its descriptors close with it).
            if let prepared = cgroupWork.leftover() { try? prepared.cgroup?.remove() }
            _ = rootfsWork?.leftover()
            FileTree.removeTree(dir)
            // Still ours: while the directory is locked no reclaimer takes the name.
            if NameLink.read(nameLink) == id { unlink(nameLink) }
            creationLock = nil
            if completing { throw error }
            guard var failure = error as? Error else {
                throw Error(container: name, stage: .create, detail: "\(error)")
            }
            if failure.container.isEmpty { failure.container = name }
            throw failure
        }
    }

    /// What create() makes on its second thread for a container that starts now.
    struct Prepared: ~Copyable {
        var cgroup: Cgroup?
        var networkNamespace: FileDescriptor?
    }

    // MARK: the name, the directory and the lock that tells them from leftovers

    /// Makes ROOT/containers/ID (a pooled directory when there is one, else a new one with its
    /// upper and work dirs) and returns it open with an exclusive flock held. A reclaimer
    /// (`system prune`) may find the directory, without a record and not yet locked, in the
    /// moment between its making and the flock, and remove it or give it to the pool: the lock
    /// then waits for the reclaimer, finds another inode (or none) at the path, and starts over.
    static func makeLockedDirectory(_ dir: String, root: String, container: String) throws -> CreationLock {
        for _ in 0..<8 {
            let fresh = !ContainerPool.take(root: root, into: dir)
            if fresh, mkdir(dir, 0o710) != 0, errno != EEXIST {
                throw Error(container: container, stage: .files, step: "mkdir \(dir)", errno: errno)
            }
            let opened = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard let directory = FileDescriptor(taking: opened) else {
                if errno == ENOENT { continue }
                throw Error(container: container, stage: .files, step: "open \(dir)", errno: errno)
            }
            while flock(directory.rawValue, LOCK_EX) != 0 && errno == EINTR {}
            let lock = CreationLock(directory: directory)
            var locked = stat()
            var atPath = stat()
            if fstat(lock.directory.rawValue, &locked) == 0, lstat(dir, &atPath) == 0,
                locked.st_ino == atPath.st_ino, locked.st_dev == atPath.st_dev
            {
                do {
                    if fresh { for sub in ["upper", "work"] { try FileTree.mkdir(dir + "/" + sub) } }
                } catch {
                    FileTree.removeTree(dir)
                    throw error
                }
                return lock
            }
        }
        throw Error(
            container: container, stage: .files, step: "mkdir \(dir)",
            detail: "the directory kept being removed by another berth process (system prune)")
    }

    /// Makes the name link. One left by a berth process that was killed before it wrote its
    /// container's record (reclaimable: its directory is not locked) is reclaimed and the name
    /// taken over, and so is one a killed rename left (its container's record has another name);
    /// one whose container exists or is still being made keeps the name. `conflict` words the
    /// refusal (the name, the holder's ID).
    static func reserveName(
        _ name: String, id: String, root: String,
        conflict: (String, String) -> Error = nameInUse
    ) throws {
        let link = namesDir(root) + "/" + name
        for _ in 0..<8 {
            if symlink(NameLink.target(forID: id), link) == 0 { return }
            guard errno == EEXIST else { throw Error(container: name, stage: .name, errno: errno) }
            guard let other = NameLink.read(link) else {
                // Removed meanwhile: try again. Not a link berth made: `system prune` removes it.
                var st = stat()
                if lstat(link, &st) != 0 { continue }
                throw conflict(name, "?")
            }
            // Ours already: a rename of this container to this name was killed half-way.
            if other == id { return }
            if let holder = load(id: other, root: root) {
                if holder.name != name, removeStaleNameLink(link, name: name, root: root) { continue }
                throw conflict(name, other)
            }
            guard try reclaimLeftover(id: other, root: root) != .leftAlone else { throw conflict(name, other) }
        }
        throw Error(container: name, stage: .name, detail: "the name kept being taken by other berth processes")
    }

    static func nameInUse(_ name: String, by other: String) -> Error {
        Error(
            container: name, stage: .name, step: "",
            detail: "the name is already in use by container \(other.prefix(12)); remove it or pick another name")
    }

    /// A container's directory, open and flock()ed while the container is being made. The lock
    /// is let go of explicitly before the close (the descriptor may be shared with a child cloned
    /// meanwhile, whose copy would otherwise keep it), both when this value ends.
    struct CreationLock: ~Copyable {
        let directory: FileDescriptor

        deinit {
            flock(directory.rawValue, LOCK_UN)
        }
    }

    /// Where a test can stop `berth container run` or `rename` (BERTH_TEST_PAUSE_AT=STEP: the
    /// process stops itself with SIGSTOP there) and SIGKILL it, to see that nothing is lost or
    /// left behind.
    enum PausePoint: String {
        /// The name link and the locked directory exist; nothing else yet.
        case nameReserved = "name-reserved"
        /// create() is done (cgroup, overlay, files), the record not written, no child cloned.
        case created
        /// In start(): the child is cloned and building its root, the record written, the lock
        /// released, the state not yet "running".
        case recordWritten = "record-written"
        /// In rename(to:) (`berth container rename`): the new name's link is made, the record
        /// still has the old name.
        case renameReserved = "rename-reserved"
        /// In rename(to:): the record has the new name, the old link is still there (and the
        /// names lock held).
        case renameRecorded = "rename-recorded"
    }

    static func pauseForTest(at point: PausePoint) {
        guard let wanted = getenv("BERTH_TEST_PAUSE_AT"), String(cString: wanted) == point.rawValue else { return }
        raise(SIGSTOP)
    }

    /// `networkPeer`: the container whose network a `container:ID` mode joins.
    static func resolveProcess(
        spec: ContainerSpec, id: String, name: String,
        networkPeer: Container? = nil
    ) throws -> ResolvedProcess {
        let argv = ProcessResolution.argv(image: spec.imageDefaults, entrypoint: spec.entrypoint, command: spec.command)
        guard !argv.isEmpty else {
            throw Error(
                container: name, stage: .create,
                detail: "no command specified: the image has no Entrypoint or Cmd and none was given")
        }
        let user: ProcessResolution.User
        do {
            user = try ProcessResolution.user(spec.user ?? spec.imageDefaults.user, extraGroups: spec.groupAdd) {
                path in
                try RootFiles.read(path, layers: spec.layerPaths)
            }
        } catch {
            throw Error(container: name, stage: .user, detail: "\(error)")
        }
        let caps: UInt64
        do {
            caps = try Capabilities.effectiveSet(privileged: spec.privileged, add: spec.capAdd, drop: spec.capDrop)
        } catch {
            throw Error(container: name, stage: .capabilities, detail: "\(error)")
        }
        for limit in spec.ulimits {
            _ = try makeRlimit(limit, container: name)
        }
        for (key, _) in spec.sysctls {
            do { _ = try MountPlan.sysctlPath(key, hostNetwork: spec.network == .host) } catch var e as Error {
                e.container = name
                throw e
            }
        }
        var stopSignal = SIGTERM
        if let s = spec.stopSignal ?? spec.imageDefaults.stopSignal, !s.isEmpty {
            guard let n = Signals.number(s) else {
                throw Error(container: name, stage: .create, detail: "unknown stop signal \(s)")
            }
            stopSignal = n
        }
        let hostname =
            spec.hostname ?? networkPeer?.record.process.hostname
            ?? (spec.network == .host ? hostHostname() : String(id.prefix(12)))
        let env = ProcessResolution.environment(
            image: spec.imageDefaults.env, given: spec.env, hostname: hostname,
            home: user.home, tty: spec.tty)
        var cwd = spec.workingDir ?? spec.imageDefaults.workingDir ?? "/"
        if cwd.isEmpty { cwd = "/" }
        guard cwd.hasPrefix("/") else {
            throw Error(container: name, stage: .create, detail: "working directory \(cwd) is not an absolute path")
        }
        return ResolvedProcess(
            argv: argv, env: env, workingDir: cwd, user: user, capabilities: caps,
            hostname: hostname, stopSignal: stopSignal, stopTimeout: spec.stopTimeout ?? 10)
    }

    static let rlimitNames: [String: Int32] = [
        "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12, "nice": 13,
        "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15, "sigpending": 11, "stack": 3, "as": 9,
    ]

    /// A ulimit as the child sets it; never above the host's hard limit (raising it would need
    /// CAP_SYS_RESOURCE, which berth may not have, and Docker would fail the same way).
    static func makeRlimit(_ u: Ulimit, container: String) throws -> berth_rlimit {
        guard let resource = rlimitNames[u.name] else {
            let known = rlimitNames.keys.sorted().joined(separator: ", ")
            throw Error(container: container, stage: .ulimit, detail: "unknown ulimit \"\(u.name)\" (known: \(known))")
        }
        guard u.soft <= u.hard else {
            throw Error(
                container: container, stage: .ulimit,
                detail: "ulimit \(u.name): soft limit \(u.soft) is above the hard limit \(u.hard)")
        }
        var host = rlimit()
        getrlimit(__rlimit_resource_t(UInt32(resource)), &host)
        if host.rlim_max != rlim_t.max && u.hard > host.rlim_max {
            throw Error(
                container: container, stage: .ulimit,
                detail: "ulimit \(u.name): hard limit \(u.hard) is above the host's hard limit \(host.rlim_max)")
        }
        return berth_rlimit(resource: resource, soft: u.soft, hard: u.hard)
    }

    static func hostHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// /etc/hosts, /etc/hostname and /etc/resolv.conf for the container's bind mounts: the
    /// host's for the host's network, a copy of the peer's for `container:ID` (as Docker shares
    /// them), else made here.
    static func writeEtcFiles(
        spec: ContainerSpec, hostname: String, dir: String,
        networkPeer: Container? = nil
    ) throws {
        if let networkPeer {
            for file in ["hosts", "resolv.conf"] {
                try FileTree.write(Files.readText(networkPeer.dir + "/" + file) ?? "", to: dir + "/" + file)
            }
            try FileTree.write(hostname + "\n", to: dir + "/hostname")
            return
        }
        let hosts = hostsFile(spec)
        var resolv = Files.readText("/etc/resolv.conf") ?? ""
        if spec.network != .host {
            // A host-local resolver (127.0.0.53) is unreachable from another network namespace.
            let lines = resolv.split(separator: "\n", omittingEmptySubsequences: false).filter {
                !($0.hasPrefix("nameserver") && ($0.contains(" 127.") || $0.contains(" ::1")))
            }
            resolv = lines.joined(separator: "\n")
            if !resolv.contains("nameserver") { resolv += "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n" }
        }
        resolv = Self.resolvConf(resolv, nameservers: spec.dns ?? [], spec: spec)
        for (file, text) in [("hosts", hosts), ("hostname", hostname + "\n"), ("resolv.conf", resolv)] {
            try FileTree.write(text, to: dir + "/" + file)
        }
    }

    /// /etc/hosts as the container starts with it: the host's for the host's network, else
    /// localhost and IPv6's names; then `extraHosts` ("host-gateway" left for the network
    /// setup to replace). The network setup adds the container's own addresses to this.
    public static func hostsFile(_ spec: ContainerSpec) -> String {
        var hosts: String
        if spec.network == .host, let host = Files.readText("/etc/hosts") {
            hosts = host
        } else {
            hosts =
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                + "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        }
        for entry in spec.extraHosts {
            let parts = entry.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { hosts += "\(parts[1])\t\(parts[0])\n" }
        }
        return hosts
    }

    /// resolv.conf from `base` with what the spec sets: `nameservers` (when any) replace its
    /// nameserver lines, `dnsSearch` its search line, `dnsOptions` its options line, as Docker
    /// writes them.
    public static func resolvConf(_ base: String, nameservers: [String], spec: ContainerSpec) -> String {
        var lines = base.split(separator: "\n").map(String.init)
        func replace(_ key: String, _ new: [String]) {
            lines.removeAll { $0.hasPrefix(key + " ") || $0.hasPrefix(key + "\t") }
            lines += new
        }
        if !nameservers.isEmpty { replace("nameserver", nameservers.map { "nameserver " + $0 }) }
        if let search = spec.dnsSearch, !search.isEmpty {
            replace("search", search == ["."] ? [] : ["search " + search.joined(separator: " ")])
        }
        if let options = spec.dnsOptions, !options.isEmpty {
            replace("options", ["options " + options.joined(separator: " ")])
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func randomID() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return bytes.hexString
    }

    static let adjectives = [
        "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zen",
    ]
    static let nouns = [
        "albatross", "beacon", "cutter", "dinghy", "ferry", "galleon", "harbor", "jetty", "keel",
        "lighthouse", "mooring", "pier", "quay", "schooner", "tug", "wharf",
    ]

    static func generatedName(_ id: String) -> String {
        let bytes = Array(id.utf8)
        let a = Int(bytes[0]) % adjectives.count
        let n = Int(bytes[1]) % nouns.count
        return "\(adjectives[a])_\(nouns[n])_\(id.prefix(4))"
    }
}
