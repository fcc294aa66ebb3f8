import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A named volume as `docker volume inspect` shows it, and as berth keeps it on disk:
/// ROOT/volumes/NAME/volume.json (the keys are Docker's). The content is ROOT/volumes/NAME/_data.
public struct VolumeRecord: Codable, Equatable, Sendable {
    public var name: String
    /// Always "local": berth has Docker's local driver only.
    public var driver: String
    /// ROOT/volumes/NAME/_data.
    public var mountpoint: String
    public var labels: [String: String]
    /// RFC 3339 in UTC, whole seconds, as Docker prints a volume's creation time.
    public var createdAt: String
    /// Always "local".
    public var scope: String
    /// The driver options it was created with (none are supported yet: see VolumeStore.create).
    public var options: [String: String]

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case driver = "Driver"
        case mountpoint = "Mountpoint"
        case labels = "Labels"
        case createdAt = "CreatedAt"
        case scope = "Scope"
        case options = "Options"
    }

    public init(
        name: String, mountpoint: String, labels: [String: String] = [:], createdAt: String,
        options: [String: String] = [:]
    ) {
        self.name = name
        driver = "local"
        self.mountpoint = mountpoint
        self.labels = labels
        self.createdAt = createdAt
        scope = "local"
        self.options = options
    }
}

/// The named volumes under one root, as Docker's local driver keeps them:
///
///     ROOT/volumes/.lock              flock: creations, removals and prunes take turns
///     ROOT/volumes/NAME/volume.json   VolumeRecord, written to a temporary file and renamed
///     ROOT/volumes/NAME/_data         what containers mount
///
/// A container's mount of a volume that does not exist makes it (MountPlan, through
/// `ensure`), as `docker run -v NAME:/dst` does, so every volume has its record. A volume's
/// first content comes from the image at the mount's target when a container is created with it
/// while it is empty (VolumeCopyUp).
public struct VolumeStore: Sendable {
    /// What a volume operation refused or could not do; `description` is Docker's text where
    /// Docker has one (`get NAME: no such volume`, `remove NAME: volume is in use - [IDs]`).
    public struct Error: Swift.Error, CustomStringConvertible, Equatable, Sendable {
        public enum Kind: Equatable, Sendable {
            case notFound
            /// The full IDs of the containers whose mounts name the volume.
            case inUse([String])
            case invalidName
            case invalidOption
            /// A system call failed with this errno.
            case system(Int32)
        }
        public var kind: Kind
        public var description: String
    }

    public let root: String

    public init(root: String) { self.root = root }

    public var directory: String { root + "/volumes" }

    /// ROOT/volumes/NAME; only for a name DockerNames accepts (no "/", not dots only).
    func directory(of name: String) -> String { directory + "/" + name }

    /// Where a volume's content lives (its Mountpoint).
    public func dataPath(of name: String) -> String { directory(of: name) + "/_data" }

    // MARK: create, read, list

    /// `docker volume create [NAME]`: a new volume, or the existing one of that name unchanged
    /// (Docker returns it as is, labels and all). No name: 64 random hex digits, as Docker names
    /// anonymous volumes. Driver options are refused for now: the local driver's type/device/o
    /// mount something other than _data, which berth does not do yet, and a volume silently
    /// without them would put data where the user did not ask.
    @discardableResult
    public func create(
        _ name: String? = nil, labels: [String: String] = [:], driverOptions: [String: String]? = nil
    ) throws -> VolumeRecord {
        let name = name ?? Self.randomName()
        try Self.checkName(name, operation: "create")
        if let options = driverOptions, let key = options.keys.sorted().first {
            throw Error(
                kind: .invalidOption,
                description:
                    "create \(name): driver option \(key) is not supported (berth's local volumes are plain directories)"
            )
        }
        if let existing = read(name) { return existing }
        let lock = try takeLock()
        defer { lock.keep() }
        if let existing = read(name) { return existing }
        return try make(name, labels: labels)
    }

    /// The volume a container's mount names, made if missing (without labels), as Docker's
    /// `-v NAME:/dst` makes one: MountPlan's way in, on every create and start, so the common
    /// case (it exists) costs one stat. A volume directory without a record (one an older berth
    /// made) gets its record here too.
    func ensure(_ name: String) throws {
        try Self.checkName(name, operation: "create")
        if access(directory(of: name) + "/volume.json", F_OK) == 0 && access(dataPath(of: name), F_OK) == 0 { return }
        let lock = try takeLock()
        defer { lock.keep() }
        if read(name) == nil {
            _ = try make(name, labels: [:])
        } else {
            do { try Files.makeDirectories(dataPath(of: name)) } catch let error as FileError {
                throw Error(kind: .system(error.errno), description: "create \(name): \(error)")
            }
        }
    }

    /// `docker volume inspect NAME`.
    public func volume(_ name: String) throws -> VolumeRecord {
        // An invalid name is not found, never a path: "../x" must not reach a file.
        guard DockerNames.isValid(name), let record = read(name) else {
            throw Error(kind: .notFound, description: "get \(name): no such volume")
        }
        return record
    }

    /// `docker volume ls`: every volume, by name. Directories without a record (made by an
    /// older berth's mounts) are listed too, with a record written for them now.
    public func list() -> [VolumeRecord] {
        Files.names(in: directory).sorted().compactMap { name in
            guard DockerNames.isValid(name) else { return nil }  // .lock, a removal's leftovers
            if let record = read(name) { return record }
            guard Files.exists(dataPath(of: name)), (try? ensure(name)) != nil else { return nil }
            return read(name)
        }
    }

    /// The full IDs of the containers (any state) whose mounts name the volume, newest first.
    public func users(of name: String) -> [String] {
        Container.list(root: root).filter { container in
            container.record.spec.mounts.contains { $0.kind == .volume && $0.source == name }
        }.map(\.id)
    }

    // MARK: remove, prune

    /// `docker volume rm [-f] NAME`. A volume any container mounts (running or not) is refused,
    /// force or not, as Docker does; `force` only makes a missing volume no error. The directory
    /// is first renamed out of the way under the lock (so the name is free at once and no
    /// container can mount a half-removed volume), then deleted.
    public func remove(_ name: String, force: Bool = false) throws {
        guard DockerNames.isValid(name) else {
            if force { return }
            throw Error(kind: .notFound, description: "get \(name): no such volume")
        }
        let lock = try takeLock()
        guard Files.exists(directory(of: name)) else {
            if force { return }
            throw Error(kind: .notFound, description: "get \(name): no such volume")
        }
        let users = users(of: name)
        guard users.isEmpty else {
            throw Error(
                kind: .inUse(users),
                description: "remove \(name): volume is in use - [\(users.joined(separator: ", "))]")
        }
        let trash = directory + "/.removing-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(directory(of: name), trash) == 0 else {
            throw Error(kind: .system(errno), description: "remove \(name): \(String(cString: strerror(errno)))")
        }
        lock.keep()
        do { try TreeRemoval.remove(path: trash) } catch {
            throw Error(kind: .system((error as? FileError)?.errno ?? EIO), description: "remove \(name): \(error)")
        }
    }

    /// What `prune` removed.
    public struct PruneReport: Equatable, Sendable {
        public var removed: [String] = []
        /// The sizes of the removed volumes' regular files (Docker's "Total reclaimed space").
        public var reclaimedBytes: UInt64 = 0
    }

    /// The label Docker gives the volumes it makes without a name (`-v /dst`, a compose
    /// service's anonymous volume); `docker volume prune` removes only those unless `--all`.
    public static let anonymousLabel = "com.docker.volume.anonymous"

    /// `docker volume prune [-a]`: the volumes no container mounts; only anonymous ones (those
    /// with `anonymousLabel`) unless `all`, as Docker 23+ does.
    public func prune(all: Bool = false) throws -> PruneReport {
        var report = PruneReport()
        let used = Set(
            Container.list(root: root).flatMap { c in c.record.spec.mounts.filter { $0.kind == .volume }.map(\.source) }
        )
        for volume in list() where !used.contains(volume.name) {
            guard all || volume.labels[Self.anonymousLabel] != nil else { continue }
            let size = Self.size(of: dataPath(of: volume.name))
            do { try remove(volume.name) } catch let error as Error {
                if case .inUse = error.kind { continue }  // mounted by a container made meanwhile
                throw error
            }
            report.removed.append(volume.name)
            report.reclaimedBytes += size
        }
        return report
    }

    // MARK: on disk

    static func checkName(_ name: String, operation: String) throws {
        if name.unicodeScalars.count == 1 {
            throw Error(
                kind: .invalidName,
                description:
                    "\(operation) \(name): volume name is too short, names should be at least two alphanumeric characters"
            )
        }
        guard DockerNames.isValid(name) else {
            throw Error(
                kind: .invalidName,
                description:
                    "\(operation) \(name): \"\(name)\" includes invalid characters for a local volume name, only "
                    + "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )
        }
    }

    static func randomName() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
    }

    private func read(_ name: String) -> VolumeRecord? {
        guard let bytes = Files.readAll(directory(of: name) + "/volume.json") else { return nil }
        return try? JSONDecoder().decode(VolumeRecord.self, from: Data(bytes))
    }

    /// Directories, then the record renamed into place: a volume is listed once it is whole.
    /// Called with the lock held. ROOT/volumes is 0701, as Docker's: containers' users may reach
    /// a _data by its path (for binds of a volume path), nobody may list the volumes.
    private func make(_ name: String, labels: [String: String]) throws -> VolumeRecord {
        do {
            try Files.makeDirectories(dataPath(of: name))
            let record = VolumeRecord(
                name: name, mountpoint: dataPath(of: name), labels: labels, createdAt: Self.now())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(record)
            try data.withUnsafeBytes { try Files.replace(directory(of: name) + "/volume.json", with: $0, mode: 0o600) }
            return record
        } catch let error as FileError {
            throw Error(kind: .system(error.errno), description: "create \(name): \(error)")
        }
    }

    /// ROOT/volumes/.lock, held exclusively until the value ends.
    private func takeLock() throws -> HeldLock {
        do { try Files.makeDirectories(directory, mode: 0o701) } catch let error as FileError {
            throw Error(kind: .system(error.errno), description: "\(error)")
        }
        guard let lock = HeldLock(path: directory + "/.lock", exclusive: true) else {
            throw Error(
                kind: .system(errno), description: "cannot open \(directory)/.lock: \(String(cString: strerror(errno)))"
            )
        }
        return lock
    }

    /// Now as Docker's local driver prints CreatedAt, in UTC: "2024-01-02T03:04:05Z".
    static func now() -> String {
        let stamp = Timestamp.now()
        guard let dot = stamp.firstIndex(of: ".") else { return stamp }
        return String(stamp[..<dot]) + "Z"
    }

    /// The bytes of the regular files under `path` (links not followed, each hard-linked inode
    /// once), as Docker's directory.Size counts a volume.
    static func size(of path: String) -> UInt64 {
        var seen = Set<UInt64>()
        var total: UInt64 = 0
        var pending = [path]
        while let dir = pending.popLast() {
            for name in Files.names(in: dir) {
                let full = dir + "/" + name
                var st = stat()
                guard lstat(full, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: pending.append(full)
                case S_IFREG:
                    if st.st_nlink > 1 && !seen.insert(UInt64(st.st_ino)).inserted { continue }
                    total += UInt64(st.st_size)
                default: break
                }
            }
        }
        return total
    }
}
