import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What is on disk for each container, so any berth process can see it:
///
///     ROOT/containers/ID/config.json     ContainerRecord (spec + resolved process), written once
///     ROOT/containers/ID/state.json      ContainerState, rewritten atomically on every change
///     ROOT/containers/ID/container.log   json-file log (+ .1, .2 ... when rotated)
///     ROOT/containers/ID/{hosts,hostname,resolv.conf}   bind-mounted into /etc
///     ROOT/containers/ID/{upper,work}    the overlay's upper and work dirs (mounted volatile;
///                                        the mount point and init layer are shared, see FileTree.swift)
///     ROOT/container-names/NAME -> ID    symlink; creating it is what reserves the name (the ID
///                                        as base64url, so it fits in the inode: see NameLink)
///     ROOT/cache/container-pool/         removed containers' directories, kept (ContainerPool)

/// The process as resolved at create time (Docker's rules applied, user looked up).
public struct ResolvedProcess: Codable, Equatable, Sendable {
    public var argv: [String]
    public var env: [String]
    public var workingDir: String
    public var user: ProcessResolution.User
    public var capabilities: UInt64
    public var hostname: String
    public var stopSignal: Int32
    public var stopTimeout: Int
}

public struct ContainerRecord: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var created: String
    public var spec: ContainerSpec
    public var process: ResolvedProcess
}

/// ROOT/containers/ID/exit.json, written by berth-shim once the container's main process has
/// exited and its output is in the log: the truth about an exit whatever became of the berth
/// process that started the container.
public struct ExitRecord: Codable, Equatable, Sendable {
    public var exitCode: Int32
    public var finishedAt: String
    /// The OOM killer killed a process of the container (the memory group's oom_kill count).
    public var oomKilled: Bool?
}

public struct ContainerState: Codable, Equatable, Sendable {
    /// Docker's names for a container's states (`inspect`'s State.Status). Docker has three more
    /// that berth never reaches: "paused" (berth has no `pause` yet: nothing freezes a cgroup),
    /// "restarting" (no restart policies yet: a restart is a stop and a start, each its own state)
    /// and "removing" (a removal is one berth call; if it fails half-way the container is "dead",
    /// and a killed one leaves it as it was, which a second `rm` finishes).
    public enum Status: String, Codable, Sendable {
        /// Made, never started.
        case created
        /// Its first process is alive, or has just ended and berth-shim is writing down its exit.
        case running
        /// Its first process has ended (or never got to run: a failed start, with `error`).
        case exited
        /// A removal failed after it had begun to take the container apart (its upper dir may be
        /// partly emptied): as in Docker, it cannot be started again, only removed (`rm` again).
        case dead
    }
    public var status: Status
    public var pid: Int32?
    /// /proc/PID/stat start time of `pid`, to tell the container from a process that reused its pid.
    public var pidStartTime: UInt64?
    /// berth-shim, the process that reaps the container and records its exit (exit.json).
    public var monitorPid: Int32?
    public var exitCode: Int32?
    public var startedAt: String?
    /// When the last run ended; kept while the container runs again, as Docker keeps it.
    public var finishedAt: String?
    /// Why the start or the removal failed, or why the exit code is unknown, when one did or is.
    public var error: String?
    /// The last run lost a process to the OOM killer (berth-shim's exit record says so).
    public var oomKilled: Bool?

    public init(status: Status) {
        self.status = status
    }

    /// The run is over as berth-shim recorded it.
    mutating func apply(_ exit: ExitRecord) {
        status = .exited
        exitCode = exit.exitCode
        finishedAt = exit.finishedAt
        oomKilled = exit.oomKilled
    }
}

enum JSONFiles {
    static func read<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
        guard let bytes = Files.readAll(path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(bytes))
    }

    /// Write to a temp file and rename, so readers never see half a file.
    static func write<T: Encodable>(_ value: T, _ path: String, pretty: Bool = false) throws {
        let encoder = JSONEncoder()
        if pretty { encoder.outputFormatting = [.prettyPrinted, .sortedKeys] }
        let data = try encoder.encode(value)
        try write(data, path)
    }

    /// In place, for a file no reader trusts yet (see ContainerPool).
    static func overwrite<T: Encodable>(_ value: T, _ path: String) throws {
        let data = try JSONEncoder().encode(value)
        try data.withUnsafeBytes { try FileTree.write($0, to: path) }
    }

    private static func write(_ data: Data, _ path: String) throws {
        let temp = path + ".tmp\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw Container.Error(container: "", step: "write \(path)", detail: ProcFS.errnoText(errno))
        }
        let ok = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
        close(fd)
        guard ok, rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw Container.Error(container: "", step: "write \(path)", detail: ProcFS.errnoText(e))
        }
    }
}
