import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Runtime
import Support
#if canImport(Glibc)
import Glibc
#endif

/// `berth container ...`, named and flagged like `docker container ...`.
struct ContainerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container", abstract: "Manage containers.",
        subcommands: [ContainerRun.self, ContainerList.self, ContainerLogs.self, ContainerExec.self, ContainerStop.self,
                      ContainerKill.self, ContainerRemove.self, ContainerInspect.self, ContainerMonitor.self])
}

/// Docker's rule for commands over several containers: act on every one, print each name that
/// worked and each error on its own line, and exit 1 at the end if any failed.
func forEachContainer(_ names: [String], _ body: (String) throws -> Void) throws {
    var failed = false
    for name in names {
        do {
            try body(name)
            print(name)
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            failed = true
        }
    }
    if failed { throw CommandFailure(status: 1) }
}

/// Errors of the container commands that are about the command line, not the runtime.
struct ContainerCommandError: Error, CustomStringConvertible {
    var description: String
}

/// "64m", "1g", "512k", "1024" -> bytes: Docker's RAMInBytes, the same parser compose sizes use.
func parseBytes(_ text: String, what: String) throws -> Int64 {
    if let value = ByteSize.parse(text.trimmingWhitespace()), value >= -1 { return value }
    throw ContainerCommandError(description: "invalid size \"\(text)\" for \(what) (e.g. 64m, 1g)")
}

struct ContainerRun: ParsableCommand {
    // The super-command name matters only when `run` is parsed as the root (Berth.main's fast
    // path): help then reads `berth container run`, and ArgumentParser skips its check for
    // `--generate-completion-script`, which re-parses every argument twice.
    static let configuration = CommandConfiguration(commandName: "run", _superCommandName: "berth container",
                                                    abstract: "Create and run a new container from an image.")

    @OptionGroup var global: RootOptions

    @Option(name: .customLong("env-file"), help: "Read in a file of environment variables.")
    var envFiles: [String] = []
    @Flag(name: [.customShort("d"), .customLong("detach")], help: "Run in the background and print the container ID.")
    var detach = false
    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.")
    var autoRemove = false
    @Option(name: .customLong("name"), help: "Name the container.")
    var name: String?
    @Option(name: [.customShort("e"), .customLong("env")], help: "Set environment variables (KEY=VALUE, or KEY to pass berth's).")
    var env: [String] = []
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "Working directory inside the container.")
    var workdir: String?
    @Option(name: [.customShort("u"), .customLong("user")], help: "Username or UID (name|uid[:group|gid]).")
    var user: String?
    @Option(name: .customLong("group-add"), help: "Additional groups to join.")
    var groupAdd: [String] = []
    @Option(name: [.customShort("h"), .customLong("hostname")], help: "Container host name.")
    var hostname: String?
    @Option(name: .customLong("domainname"), help: "Container NIS domain name.")
    var domainname: String?
    @Option(name: [.customShort("m"), .customLong("memory")], help: "Memory limit (e.g. 32m).")
    var memory: String?
    @Option(name: .customLong("memory-swap"), help: "Memory plus swap limit; -1 for unlimited swap.")
    var memorySwap: String?
    @Option(name: .customLong("cpus"), help: "Number of CPUs.")
    var cpus: Double?
    @Option(name: [.customShort("c"), .customLong("cpu-shares")], help: "CPU shares (relative weight).")
    var cpuShares: Int?
    @Option(name: .customLong("pids-limit"), help: "Tune the container's pids limit (-1 for unlimited).")
    var pidsLimit: Int?
    @Option(name: .customLong("cap-add"), help: "Add Linux capabilities.")
    var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop Linux capabilities.")
    var capDrop: [String] = []
    @Flag(name: .customLong("privileged"), help: "Give extended privileges to this container.")
    var privileged = false
    @Option(name: .customLong("security-opt"), help: "Security options (seccomp=unconfined|FILE, no-new-privileges).")
    var securityOpt: [String] = []
    @Flag(name: .customLong("read-only"), help: "Mount the container's root filesystem as read only.")
    var readOnly = false
    @Option(name: [.customShort("v"), .customLong("volume")], help: "Bind mount a volume (SRC:DST[:ro]).")
    var volumes: [String] = []
    @Option(name: .customLong("tmpfs"), help: "Mount a tmpfs directory (PATH[:size=64m,mode=1777]).")
    var tmpfs: [String] = []
    @Flag(name: .customLong("init"), help: "Run an init inside the container that forwards signals and reaps processes.")
    var initProcess = false
    @Option(name: .customLong("network"), help: "Network mode: none (default, loopback only) or host.")
    var network: String = "none"
    @Flag(name: [.customShort("t"), .customLong("tty")], help: "Allocate a pseudo-TTY.")
    var tty = false
    @Flag(name: [.customShort("i"), .customLong("interactive")], help: "Keep STDIN open.")
    var interactive = false
    @Option(name: .customLong("ulimit"), help: "Ulimit options (name=soft[:hard]).")
    var ulimits: [String] = []
    @Option(name: .customLong("sysctl"), help: "Namespaced kernel parameters (key=value).")
    var sysctls: [String] = []
    @Option(name: .customLong("entrypoint"), help: "Overwrite the default ENTRYPOINT of the image.")
    var entrypoint: String?
    @Option(name: .customLong("shm-size"), help: "Size of /dev/shm.")
    var shmSize: String?
    @Option(name: .customLong("stop-signal"), help: "Signal to stop the container.")
    var stopSignal: String?
    @Option(name: .customLong("stop-timeout"), help: "Seconds to wait before killing the container.")
    var stopTimeout: Int?
    @Option(name: .customLong("oom-score-adj"), help: "Tune the host's OOM preferences (-1000 to 1000).")
    var oomScoreAdj: Int?
    @Option(name: .customLong("add-host"), help: "Add a custom host-to-IP mapping (host:ip).")
    var addHost: [String] = []
    @Option(name: [.customShort("l"), .customLong("label")], help: "Set metadata on a container.")
    var labels: [String] = []
    @Option(name: .customLong("log-opt"), help: "Log options (max-size=10m, max-file=3).")
    var logOpts: [String] = []

    @Argument(help: "The image to run.")
    var image: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    /// Made by Berth.parse while the arguments were parsed (see there).
    static var earlyNetworkNamespace: BackgroundWork<Int32>?

    func run() throws {
        do {
            try runContainer()
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            throw CommandFailure(status: Self.startFailureStatus(error))
        }
    }

    /// Docker's statuses for a container that never ran its command: 127 when the command is not
    /// found, 126 when it cannot be executed, 125 for every other problem (image, flags, mounts).
    static func startFailureStatus(_ error: Error) -> Int32 {
        guard let failure = error as? Container.Error, failure.step.hasPrefix("exec") else { return 125 }
        if failure.detail == String(cString: strerror(ENOENT)) { return 127 }
        if failure.detail == String(cString: strerror(EACCES)) || failure.detail == String(cString: strerror(ENOEXEC)) { return 126 }
        return 125
    }

    private func runContainer() throws {
        let root = global.stateRoot
        let netns = (try? Self.earlyNetworkNamespace?.wait()) ?? -1
        Self.earlyNetworkNamespace = nil
        // The image is read while the runtime makes the cgroup (and the network namespace,
        // unless Berth.parse made it already).
        let container = try Container.create(spec: try makeSpec(), root: root, startingNow: !detach,
                                             networkNamespace: netns) { spec in
            try Self.complete(&spec, image: image, root: root)
        }
        if detach {
            try ContainerMonitor.launch(container: container, root: root)
            print(container.id)
            return
        }
        let process: ContainerProcess
        do {
            process = try container.start(stdio: tty ? .tty : .pipes(stdin: interactive))
        } catch {
            if autoRemove { try? container.remove(force: true) }
            throw error
        }
        let code = process.wait(echo: true, forwardStdin: interactive, proxySignals: true, removing: autoRemove)
        if autoRemove { try container.remove(force: true) }
        if code != 0 { throw CommandFailure(status: code) }
    }

    /// The image's part of a spec: its ID, layers and defaults.
    static func complete(_ spec: inout ContainerSpec, image: String, root: String) throws {
        let resolved = try ImageStore(root: root).image(image)
        let c = resolved.config
        spec.imageID = resolved.id
        spec.layerPaths = resolved.layerPaths
        spec.imageDefaults = ImageDefaults(entrypoint: c.entrypoint, cmd: c.cmd, env: c.env,
                                           workingDir: c.workingDir, user: c.user, stopSignal: c.stopSignal)
    }

    /// The spec from the flags; the image's part comes from `complete`.
    func makeSpec() throws -> ContainerSpec {
        var spec = ContainerSpec(image: image, layerPaths: [])
        spec.name = name
        if let entrypoint { spec.entrypoint = entrypoint.isEmpty ? [] : [entrypoint] }
        spec.command = command.isEmpty ? nil : command
        spec.env = try environment()
        spec.workingDir = workdir
        spec.user = user
        spec.groupAdd = groupAdd
        spec.hostname = hostname
        spec.domainname = domainname
        spec.readOnly = readOnly
        spec.capAdd = capAdd
        spec.capDrop = capDrop
        spec.privileged = privileged
        spec.tty = tty
        spec.interactive = interactive
        spec.initProcess = initProcess
        spec.autoRemove = autoRemove
        spec.stopSignal = stopSignal
        spec.stopTimeout = stopTimeout
        spec.oomScoreAdj = oomScoreAdj
        spec.extraHosts = addHost
        switch network {
        case "none", "default", "": spec.network = .none
        case "host": spec.network = .host
        default:
            if network.hasPrefix("ns:") { spec.network = .namespace(path: String(network.dropFirst(3))) } else {
                throw ContainerCommandError(description: "network \"\(network)\" is not supported by `container run` (use none or host)")
            }
        }
        for opt in securityOpt {
            let parts = opt.split(separator: opt.contains("=") ? "=" : ":", maxSplits: 1).map(String.init)
            switch parts[0] {
            case "seccomp":
                guard parts.count == 2 else { throw ContainerCommandError(description: "security-opt seccomp needs a value: seccomp=unconfined or seccomp=FILE.json") }
                spec.seccomp = parts[1] == "unconfined" ? .unconfined : .profile(path: parts[1])
            case "no-new-privileges":
                spec.noNewPrivileges = parts.count == 1 || parts[1] == "true"
            case "apparmor", "label":
                continue // No LSM support: accepted and ignored, as on hosts without AppArmor/SELinux.
            default:
                throw ContainerCommandError(description: "unknown security-opt \"\(opt)\"")
            }
        }
        var resources = CgroupLimits()
        if let memory { resources.memory = try parseBytes(memory, what: "--memory") }
        if let memorySwap { resources.memorySwap = memorySwap == "-1" ? -1 : try parseBytes(memorySwap, what: "--memory-swap") }
        resources.cpus = cpus
        resources.cpuShares = cpuShares
        resources.pids = pidsLimit
        spec.resources = resources
        if let shmSize { spec.shmSize = try parseBytes(shmSize, what: "--shm-size") }
        for v in volumes { spec.mounts.append(try Self.parseVolume(v)) }
        for t in tmpfs { spec.mounts.append(try Self.parseTmpfs(t)) }
        for u in ulimits { spec.ulimits.append(try Self.parseUlimit(u)) }
        for s in sysctls {
            let kv = s.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ContainerCommandError(description: "invalid sysctl \"\(s)\": use key=value") }
            spec.sysctls[kv[0]] = kv[1]
        }
        for l in labels {
            let kv = l.split(separator: "=", maxSplits: 1).map(String.init)
            spec.labels[kv[0]] = kv.count == 2 ? kv[1] : ""
        }
        for opt in logOpts {
            let kv = opt.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ContainerCommandError(description: "invalid log-opt \"\(opt)\"") }
            switch kv[0] {
            case "max-size": spec.logMaxSize = try parseBytes(kv[1], what: "log-opt max-size")
            case "max-file":
                guard let n = Int(kv[1]), n > 0 else { throw ContainerCommandError(description: "invalid log-opt max-file \"\(kv[1])\"") }
                spec.logMaxFiles = n
            default: throw ContainerCommandError(description: "unknown log-opt \"\(kv[0])\" (known: max-size, max-file)")
            }
        }
        return spec
    }

    /// --env-file first, then -e, as Docker applies them. Docker's env files are literal (no
    /// quotes, no `export`, no interpolation: that is compose's .env), and a name holding white
    /// space is an error.
    func environment() throws -> [String] {
        var result: [String] = []
        for file in envFiles {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ContainerCommandError(description: "cannot read env file \(file)")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let name = trimmed.prefix(while: { $0 != "=" })
                if name.contains(where: \.isWhitespace) {
                    throw ContainerCommandError(description: "\(file):\(number + 1): variable '\(name)' contains whitespaces")
                }
                result.append(contentsOf: Self.envEntry(String(trimmed)))
            }
        }
        for e in env { result.append(contentsOf: Self.envEntry(e)) }
        return result
    }

    /// "KEY=VALUE" as is; "KEY" takes berth's own value, or is dropped when unset (Docker's rule).
    static func envEntry(_ text: String) -> [String] {
        if text.contains("=") { return [text] }
        if let value = ProcessInfo.processInfo.environment[text] { return ["\(text)=\(value)"] }
        return []
    }

    /// `-v SRC:DST[:ro|rw]`: SRC starting with / or . is a host path (created when missing, as
    /// Docker's -v does), anything else a named volume; `-v /DST` an anonymous volume.
    static func parseVolume(_ text: String) throws -> MountSpec {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        var fields = parts
        if fields.count == 3 || (fields.count == 2 && ["ro", "rw"].contains(fields[1]) && fields[0].hasPrefix("/")) {
            for opt in fields.removeLast().split(separator: ",") {
                switch opt {
                case "ro": readOnly = true
                case "rw", "z", "Z", "rprivate", "private", "rslave", "slave": continue
                default: throw ContainerCommandError(description: "invalid volume option \"\(opt)\" in -v \(text)")
                }
            }
        }
        if fields.count == 1 {
            guard fields[0].hasPrefix("/") else { throw ContainerCommandError(description: "invalid volume \"\(text)\": the target must be an absolute path") }
            let anonymous = (0..<32).map { _ in UInt8.random(in: 0...255) }.hexString
            return MountSpec(kind: .volume, source: anonymous, target: fields[0], readOnly: readOnly)
        }
        guard fields.count == 2, !fields[0].isEmpty, fields[1].hasPrefix("/") else {
            throw ContainerCommandError(description: "invalid volume \"\(text)\": use SRC:DST[:ro]")
        }
        if fields[0].hasPrefix("/") || fields[0].hasPrefix(".") {
            let source = URL(fileURLWithPath: fields[0]).standardizedFileURL.path
            return MountSpec(kind: .bind, source: source, target: fields[1], readOnly: readOnly, createHostPath: true)
        }
        return MountSpec(kind: .volume, source: fields[0], target: fields[1], readOnly: readOnly)
    }

    static func parseTmpfs(_ text: String) throws -> MountSpec {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let target = parts.first, target.hasPrefix("/") else {
            throw ContainerCommandError(description: "invalid tmpfs \"\(text)\": the path must be absolute")
        }
        var m = MountSpec(kind: .tmpfs, target: target)
        if parts.count == 2 {
            for opt in parts[1].split(separator: ",") {
                let kv = opt.split(separator: "=", maxSplits: 1).map(String.init)
                switch kv[0] {
                case "size": m.tmpfsSize = try parseBytes(kv.count == 2 ? kv[1] : "", what: "tmpfs size")
                case "mode":
                    guard kv.count == 2, let mode = UInt32(kv[1], radix: 8) else { throw ContainerCommandError(description: "invalid tmpfs mode in \"\(text)\"") }
                    m.tmpfsMode = mode
                case "ro": m.readOnly = true
                case "rw", "noexec", "nosuid", "nodev", "exec": continue
                default: throw ContainerCommandError(description: "unknown tmpfs option \"\(kv[0])\" in \"\(text)\"")
                }
            }
        }
        return m
    }

    /// "nofile=1024:2048" or "nofile=1024" (soft = hard); -1 is unlimited.
    static func parseUlimit(_ text: String) throws -> Runtime.Ulimit {
        let kv = text.split(separator: "=", maxSplits: 1).map(String.init)
        let bad = ContainerCommandError(description: "invalid ulimit \"\(text)\": use name=soft[:hard]")
        guard kv.count == 2 else { throw bad }
        let values = kv[1].split(separator: ":").map { $0 == "-1" ? UInt64.max : UInt64($0) }
        guard (1...2).contains(values.count), let soft = values[0], let hard = values.count == 2 ? values[1] : values[0] else { throw bad }
        return Runtime.Ulimit(name: kv[0], soft: soft, hard: hard)
    }
}

/// The process that stays with a detached container: it is the container's parent, reaps it,
/// writes its output to the json-file log and records the exit code (and removes it for --rm).
/// `run -d` starts it with setsid and waits on a pipe until the container started or failed.
struct ContainerMonitor: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "monitor", abstract: "Supervise a detached container (internal).",
                                                    shouldDisplay: false)

    @OptionGroup var global: RootOptions
    @Option(name: .customLong("report-fd"), help: "Where to report that the container started.")
    var reportFD: Int32 = -1
    @Argument var container: String

    func run() throws {
        let c = try Container.lookup(container, root: global.stateRoot)
        let process: ContainerProcess
        do {
            let spec = c.record.spec
            process = try c.start(stdio: spec.tty ? .tty : .pipes(stdin: spec.interactive))
        } catch {
            report("\(error)")
            if c.record.spec.autoRemove { try? c.remove(force: true) }
            throw CommandFailure(status: 1)
        }
        report("")
        _ = process.wait(holdStdin: c.record.spec.interactive, removing: c.record.spec.autoRemove)
        if c.record.spec.autoRemove { try? c.remove(force: true) }
    }

    func report(_ message: String) {
        guard reportFD >= 0 else { return }
        let bytes = Array(message.utf8)
        _ = bytes.withUnsafeBytes { write(reportFD, $0.baseAddress, $0.count) }
        close(reportFD)
    }

    /// Sets FD_CLOEXEC on every descriptor above stderr but `kept`; this process exits soon anyway.
    static func markInheritedDescriptorsCloseOnExec(keeping kept: Int32) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2, fd != kept else { continue }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    /// Starts `berth container monitor ID` detached from this process and waits until it reports.
    static func launch(container: Container, root: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ContainerCommandError(description: "pipe: \(String(cString: strerror(errno)))") }
        // Only the dup2'ed fd 3 may reach the monitor, or the read below never sees EOF.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // dup2 clears close-on-exec on fd 3 only; the read end (CLOEXEC) closes itself at exec.
        // (No addclose of fds[0] here: it may be 3 itself, which the dup2 just reused.)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        // The monitor outlives this command: it must hold none of the caller's descriptors (a
        // pipe or socket it kept open would make the caller wait for the container to exit).
        markInheritedDescriptorsCloseOnExec(keeping: fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(0x80)) // POSIX_SPAWN_SETSID: outlive the terminal
        let args = [exe, "container", "monitor", "--root", root, "--report-fd", "3", container.id]
        var cargs = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, &cargs, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            try? container.remove(force: true)
            throw ContainerCommandError(description: "container \(container.name): cannot start its monitor: \(String(cString: strerror(rc)))")
        }
        var message: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            message += buf[0..<n]
        }
        close(fds[0])
        if !message.isEmpty { throw ContainerCommandError(description: String(decoding: message, as: UTF8.self)) }
        var st = stat()
        if stat(container.logPath, &st) != 0, !container.isRunning, container.state().error != nil {
            throw ContainerCommandError(description: container.state().error ?? "container \(container.name) did not start")
        }
    }
}

struct ContainerList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.", aliases: ["ls", "list"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("a"), .customLong("all")], help: "Show all containers (default shows just running).")
    var all = false
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display container IDs.")
    var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false

    func run() throws {
        let containers = Container.list(root: global.stateRoot)
        var rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
        for c in containers {
            let s = c.state()
            if !all && s.status != .running { continue }
            if quiet {
                print(noTrunc ? c.id : c.shortID)
                continue
            }
            var command = c.record.process.argv.joined(separator: " ")
            if !noTrunc && command.count > 20 { command = String(command.prefix(19)) + "…" }
            rows.append([noTrunc ? c.id : c.shortID, c.record.spec.image, "\"\(command)\"",
                         ago(c.record.created) + " ago", status(s), "", c.name])
        }
        if quiet { return }
        print(HumanFormat.table(rows), terminator: "")
    }

    func status(_ s: ContainerState) -> String {
        switch s.status {
        case .created: return "Created"
        case .running: return "Up " + ago(s.startedAt ?? "")
        case .exited: return "Exited (\(s.exitCode ?? 0)) " + ago(s.finishedAt ?? "") + " ago"
        }
    }
}

/// "2 minutes", "About an hour", ... from an RFC 3339 timestamp, as docker prints.
func ago(_ timestamp: String) -> String {
    guard let date = Timestamp.parse(timestamp) else { return "N/A" }
    let seconds = Int(Date().timeIntervalSince(date))
    switch seconds {
    case ..<1: return "Less than a second"
    case ..<60: return "\(seconds) seconds"
    case ..<120: return "About a minute"
    case ..<3600: return "\(seconds / 60) minutes"
    case ..<7200: return "About an hour"
    case ..<172800: return "\(seconds / 3600) hours"
    default: return "\(seconds / 86400) days"
    }
}

struct ContainerLogs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a container.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Follow log output.")
    var follow = false
    @Flag(name: [.customShort("t"), .customLong("timestamps")], help: "Show timestamps.")
    var timestamps = false
    @Option(name: [.customShort("n"), .customLong("tail")], help: "Number of lines to show from the end of the logs.")
    var tail: String = "all"
    @Argument var container: String

    func run() throws {
        let c = try Container.lookup(container, root: global.stateRoot)
        let emit: (ContainerLogEntry) -> Void = { e in
            let text = (timestamps ? e.time + " " : "") + e.log
            StandardStreams.write(text, to: e.stream == "stderr" ? 2 : 1)
        }
        if follow {
            ContainerLogReader.follow(path: c.logPath, isRunning: { c.isRunning }, emit: emit)
            return
        }
        var entries = ContainerLogReader.entries(path: c.logPath)
        if let n = Int(tail), n >= 0 { entries = Array(entries.suffix(n)) }
        entries.forEach(emit)
    }
}

struct ContainerExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Execute a command in a running container.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("t"), .customLong("tty")], help: "Allocate a pseudo-TTY.")
    var tty = false
    @Flag(name: [.customShort("i"), .customLong("interactive")], help: "Keep STDIN open.")
    var interactive = false
    @Option(name: [.customShort("u"), .customLong("user")], help: "Username or UID (name|uid[:group|gid]).")
    var user: String?
    @Option(name: [.customShort("e"), .customLong("env")], help: "Set environment variables.")
    var env: [String] = []
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "Working directory inside the container.")
    var workdir: String?
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ContainerCommandError(description: "exec needs a command to run") }
        let c = try Container.lookup(container, root: global.stateRoot)
        let process = try c.exec(ExecSpec(argv: command, env: env.flatMap { ContainerRun.envEntry($0) }, user: user,
                                          workingDir: workdir, tty: tty, interactive: interactive))
        let code = process.wait(echo: true, forwardStdin: interactive, proxySignals: true)
        if code != 0 { throw CommandFailure(status: code) }
    }
}

struct ContainerStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop one or more running containers.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before killing the container.")
    var time: Int?
    @Argument var containers: [String]

    func run() throws {
        try forEachContainer(containers) { name in
            try Container.lookup(name, root: global.stateRoot).stop(timeout: time)
        }
    }
}

struct ContainerKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Kill one or more running containers.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("s"), .customLong("signal")], help: "Signal to send to the container.")
    var signal: String = "KILL"
    @Argument var containers: [String]

    func run() throws {
        guard let number = Signals.number(signal) else { throw ContainerCommandError(description: "unknown signal \"\(signal)\"") }
        try forEachContainer(containers) { name in
            try Container.lookup(name, root: global.stateRoot).kill(signal: number)
        }
    }
}

struct ContainerRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more containers.", aliases: ["remove"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Force the removal of a running container.")
    var force = false
    @Argument var containers: [String]

    func run() throws {
        try forEachContainer(containers) { name in
            try Container.lookup(name, root: global.stateRoot).remove(force: force)
        }
    }
}

struct ContainerInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on containers.")

    @OptionGroup var global: RootOptions
    @Argument var containers: [String]

    struct Output: Encodable {
        struct State: Encodable {
            var Status: String
            var Running: Bool
            var Pid: Int32
            var ExitCode: Int32
            var Error: String
            var StartedAt: String
            var FinishedAt: String
        }
        struct Config: Encodable {
            var Hostname: String
            var User: String
            var Env: [String]
            var Cmd: [String]?
            var Entrypoint: [String]?
            var WorkingDir: String
            var Image: String
            var Tty: Bool
            var OpenStdin: Bool
            var Labels: [String: String]
            var StopSignal: String
        }
        struct HostConfig: Encodable {
            var Privileged: Bool
            var ReadonlyRootfs: Bool
            var CapAdd: [String]
            var CapDrop: [String]
            var SecurityOpt: [String]
            var NetworkMode: String
            var AutoRemove: Bool
            var Memory: Int64
            var NanoCpus: Int64
            var PidsLimit: Int?
            var Init: Bool
        }
        var Id: String
        var Created: String
        var Path: String
        var Args: [String]
        var State: State
        var Image: String
        var Name: String
        var Config: Config
        var HostConfig: HostConfig
        var Mounts: [MountSpec]
        var LogPath: String
        var EffectiveCapabilities: [String]
    }

    func run() throws {
        var outputs: [Output] = []
        for name in containers {
            let c = try Container.lookup(name, root: global.stateRoot)
            let s = c.state(), r = c.record, spec = r.spec
            let network: String
            switch spec.network {
            case .none: network = "none"
            case .host: network = "host"
            case .namespace(let path): network = "ns:" + path
            }
            var security: [String] = []
            switch spec.seccomp {
            case .default: break
            case .unconfined: security.append("seccomp=unconfined")
            case .profile(let path): security.append("seccomp=" + path)
            }
            if spec.noNewPrivileges { security.append("no-new-privileges") }
            outputs.append(Output(
                Id: c.id, Created: r.created, Path: r.process.argv.first ?? "", Args: Array(r.process.argv.dropFirst()),
                State: .init(Status: s.status.rawValue, Running: s.status == .running, Pid: s.status == .running ? s.pid ?? 0 : 0,
                             ExitCode: s.exitCode ?? 0, Error: s.error ?? "", StartedAt: s.startedAt ?? "", FinishedAt: s.finishedAt ?? ""),
                Image: spec.imageID, Name: "/" + c.name,
                Config: .init(Hostname: r.process.hostname, User: spec.user ?? spec.imageDefaults.user ?? "", Env: r.process.env,
                              Cmd: spec.command ?? (spec.entrypoint == nil ? spec.imageDefaults.cmd : nil),
                              Entrypoint: spec.entrypoint ?? spec.imageDefaults.entrypoint, WorkingDir: r.process.workingDir,
                              Image: spec.image, Tty: spec.tty, OpenStdin: spec.interactive, Labels: spec.labels,
                              StopSignal: spec.stopSignal ?? spec.imageDefaults.stopSignal ?? "SIGTERM"),
                HostConfig: .init(Privileged: spec.privileged, ReadonlyRootfs: spec.readOnly, CapAdd: spec.capAdd, CapDrop: spec.capDrop,
                                  SecurityOpt: security, NetworkMode: network, AutoRemove: spec.autoRemove,
                                  Memory: spec.resources.memory ?? 0, NanoCpus: Int64((spec.resources.cpus ?? 0) * 1e9),
                                  PidsLimit: spec.resources.pids, Init: spec.initProcess),
                Mounts: spec.mounts, LogPath: c.logPath,
                EffectiveCapabilities: Capabilities.names(of: r.process.capabilities)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(outputs), as: UTF8.self))
    }
}
