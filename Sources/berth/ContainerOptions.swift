import ArgumentParser
import Compose
import FoundationEssentials
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The flags `container run` and `container create` share, as Docker's containerOptions are
/// shared by `docker run` and `docker create`, and the spec they describe: every value is checked
/// here, before anything is made under ROOT, with Docker's messages (status 125). What is only
/// `run`'s (-d, and what --rm means for a foreground run) stays with `run`.
struct ContainerOptions: ParsableArguments {
    @Option(name: .customLong("env-file"), help: "Read in a file of environment variables.")
    var envFiles: [String] = []
    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.")
    var autoRemove = false
    @Option(name: .customLong("name"), help: "Name the container.")
    var name: String?
    @Option(
        name: [.customShort("e"), .customLong("env")],
        help: "Set environment variables (KEY=VALUE, or KEY to pass berth's).")
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
    // Numbers are taken as text and read by Docker's rules (DockerFlags), so a bad value gets
    // Docker's message and status 125. `.unconditional`: the next argument is the value even when
    // it starts with "-", as Docker's flag parser takes it (`--pids-limit -1`, `--cpus -1`).
    @Option(
        name: [.customShort("m"), .customLong("memory")], parsing: .unconditional,
        help: "Memory limit (e.g. 32m; at least 6m).")
    var memory: String?
    @Option(
        name: .customLong("memory-swap"), parsing: .unconditional,
        help: "Memory plus swap limit; -1 for unlimited swap.")
    var memorySwap: String?
    @Option(name: .customLong("cpus"), parsing: .unconditional, help: "Number of CPUs (e.g. 1.5, 0.25).")
    var cpus: String?
    @Option(
        name: [.customShort("c"), .customLong("cpu-shares")], parsing: .unconditional,
        help: "CPU shares (relative weight).")
    var cpuShares: String?
    @Option(
        name: .customLong("pids-limit"), parsing: .unconditional,
        help: "Tune the container's pids limit (-1 for unlimited).")
    var pidsLimit: String?
    @Option(name: .customLong("cap-add"), help: "Add Linux capabilities.")
    var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop Linux capabilities.")
    var capDrop: [String] = []
    @Flag(name: .customLong("privileged"), help: "Give extended privileges to this container.")
    var privileged = false
    @Option(
        name: .customLong("security-opt"),
        help: "Security options (seccomp=unconfined|builtin|FILE, no-new-privileges[=true|false]).")
    var securityOpt: [String] = []
    @Flag(name: .customLong("read-only"), help: "Mount the container's root filesystem as read only.")
    var readOnly = false
    @Option(name: [.customShort("v"), .customLong("volume")], help: "Bind mount a volume (SRC:DST[:ro,rshared,...]).")
    var volumes: [String] = []
    @Option(
        name: .customLong("tmpfs"), help: "Mount a tmpfs directory (PATH[:size=64m,mode=1777,uid=0,gid=0,exec,ro]).")
    var tmpfs: [String] = []
    @Flag(
        name: .customLong("init"), help: "Run an init inside the container that forwards signals and reaps processes.")
    var initProcess = false
    @Option(
        name: .customLong("network"),
        help: "Connect to networks (bridge, NAME; repeatable), or a mode: none, host, container:NAME, ns:PATH.")
    var network: [String] = []
    @Option(name: .customLong("network-alias"), help: "Add a network-scoped alias for the container.")
    var networkAlias: [String] = []
    @Option(name: .customLong("ip"), help: "IPv4 address (e.g. 172.30.100.104).")
    var ip: String?
    @Option(name: .customLong("mac-address"), help: "Container MAC address (e.g. 92:d0:c6:0a:29:33).")
    var macAddress: String?
    @Option(
        name: [.customShort("p"), .customLong("publish")],
        help: "Publish a container's port(s) to the host ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]).")
    var publish: [String] = []
    @Option(name: .customLong("dns"), help: "Set custom DNS servers.")
    var dns: [String] = []
    @Option(name: .customLong("dns-search"), help: "Set custom DNS search domains.")
    var dnsSearch: [String] = []
    @Option(name: .customLong("dns-option"), help: "Set DNS options.")
    var dnsOption: [String] = []
    @Option(name: .customLong("expose"), help: "Expose a port or a range of ports (80, 53/udp, 8000-8010/tcp).")
    var expose: [String] = []
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
    @Option(name: .customLong("shm-size"), parsing: .unconditional, help: "Size of /dev/shm.")
    var shmSize: String?
    @Option(name: .customLong("stop-signal"), help: "Signal to stop the container.")
    var stopSignal: String?
    @Option(
        name: .customLong("stop-timeout"), parsing: .unconditional,
        help: "Seconds to wait before killing the container.")
    var stopTimeout: String?
    @Option(
        name: .customLong("oom-score-adj"), parsing: .unconditional,
        help: "Tune the host's OOM preferences (-1000 to 1000).")
    var oomScoreAdj: String?
    @Option(name: .customLong("add-host"), help: "Add a custom host-to-IP mapping (host:ip).")
    var addHost: [String] = []
    @Option(name: [.customShort("l"), .customLong("label")], help: "Set metadata on a container.")
    var labels: [String] = []
    @Option(name: .customLong("log-opt"), help: "Log options (max-size=10m, max-file=3).")
    var logOpts: [String] = []

    @Option(
        name: .customLong("pull"),
        help: "Pull image before running (\"always\", \"missing\", \"never\").")
    var pull: PullPolicy = .missing

    @Argument(help: "The image to make the container from.")
    var image: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    /// The spec from the flags, every value checked; the image's part comes from ContainerSpecs'
    /// builder (`complete(image:root:)`). `root`: where `--network container:NAME` is looked up.
    func makeSpec(root: String) throws -> ContainerSpec {
        var spec = ContainerSpec(image: image, layerPaths: [])
        if let name {
            // The daemon's check (Docker's rule, DockerNames), which drops a leading "/".
            guard let valid = DockerNames.containerName(name) else {
                throw ContainerCommandError(description: DockerNames.invalidContainerName(name))
            }
            spec.name = valid
        }
        if let entrypoint { spec.entrypoint = entrypoint.isEmpty ? [] : [entrypoint] }
        spec.command = command.isEmpty ? nil : command
        spec.env = try environment()
        spec.workingDir = workdir
        spec.user = user
        spec.groupAdd = groupAdd
        if let hostname {
            // It goes into /etc/hosts and the DNS server's names: RFC 1123 labels only (Docker
            // checks the same in its API's container config validation).
            let labels = hostname.split(separator: ".", omittingEmptySubsequences: false)
            guard hostname.utf8.count <= 253,
                labels.allSatisfy({ label in
                    !label.isEmpty && label.utf8.count <= 63 && label.first != "-"
                        && label.unicodeScalars.allSatisfy {
                            $0.isASCII
                                && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
                        }
                })
            else { throw ContainerCommandError(description: "invalid hostname format: \(hostname)") }
        }
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
        if let stopTimeout { spec.stopTimeout = Int(try DockerFlags.integer(stopTimeout, flag: "--stop-timeout")) }
        if let oomScoreAdj {
            let adj = try DockerFlags.integer(oomScoreAdj, flag: "--oom-score-adj")
            // moby's verifyPlatformContainerSettings.
            guard (-1000...1000).contains(adj) else {
                throw ContainerCommandError(
                    description: "Invalid value \(adj), range for oom score adj is [-1000, 1000]")
            }
            spec.oomScoreAdj = Int(adj)
        }
        spec.extraHosts = addHost
        try applyNetworkOptions(to: &spec, root: root)
        let exposed = try Self.exposedPorts(expose)
        spec.exposedPorts = exposed.isEmpty ? nil : exposed
        if case .container = spec.network {
            // moby's validateNetContainerMode: what the other container's network decides.
            if hostname != nil {
                throw ContainerCommandError(description: "conflicting options: hostname and the network mode")
            }
            if !addHost.isEmpty {
                throw ContainerCommandError(
                    description: "conflicting options: custom host-to-IP mapping and the network mode")
            }
            if !exposed.isEmpty || !publish.isEmpty {
                throw ContainerCommandError(
                    description: "conflicting options: port exposing and the container type network mode")
            }
            if !dns.isEmpty || !dnsSearch.isEmpty || !dnsOption.isEmpty {
                throw ContainerCommandError(description: "conflicting options: dns and the network mode")
            }
        }
        try Self.applySecurityOptions(securityOpt, to: &spec)
        var resources = CgroupLimits()
        if let memory { resources.memory = try DockerFlags.size(memory, flag: "-m, --memory") }
        // Docker's MemSwapBytes: "-1" is unlimited, anything else a size.
        if let memorySwap {
            resources.memorySwap = memorySwap == "-1" ? -1 : try DockerFlags.size(memorySwap, flag: "--memory-swap")
        }
        if let cpus { resources.nanoCPUs = try DockerFlags.nanoCPUs(cpus) }
        if let cpuShares { resources.cpuShares = Int(try DockerFlags.integer(cpuShares, flag: "-c, --cpu-shares")) }
        if let pidsLimit { resources.pids = Int(try DockerFlags.integer(pidsLimit, flag: "--pids-limit")) }
        // The daemon's checks (the same rules Container.create applies), before anything is made.
        try resources.validate()
        spec.resources = resources
        if let shmSize {
            let size = try DockerFlags.size(shmSize, flag: "--shm-size", allowNegative: true)
            guard size >= 0 else { throw ContainerCommandError(description: "SHM size can not be less than 0") }
            spec.shmSize = size
        }
        var targets = Set<String>()
        for v in volumes {
            let mount = try Self.parseVolume(v)
            // moby's registerMountPoints: one -v per destination.
            guard targets.insert(mount.target).inserted else {
                throw ContainerCommandError(description: "Duplicate mount point: \(DockerFlags.escaped(mount.target))")
            }
            spec.mounts.append(mount)
        }
        for t in tmpfs { spec.mounts.append(try Self.parseTmpfs(t)) }
        for u in ulimits { spec.ulimits.append(try Self.parseUlimit(u)) }
        for s in sysctls {
            let kv = s.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else {
                throw ContainerCommandError(description: "invalid sysctl \"\(s)\": use key=value")
            }
            spec.sysctls[kv[0]] = kv[1]
        }
        for l in labels {
            // Docker's ValidateLabel: a label needs a name before its "=".
            let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard !kv[0].isEmpty else { throw ContainerCommandError(description: "invalid label '\(l)': empty name") }
            spec.labels[kv[0]] = kv.count == 2 ? kv[1] : ""
        }
        try Self.applyLogOptions(logOpts, to: &spec)
        return spec
    }

    /// `--log-opt KEY=VALUE` for the json-file driver, with moby's checks and messages: every key
    /// is checked first (ValidateLogOpt), then the values (the driver's New). A KEY without "="
    /// has an empty value, as docker/cli's ConvertKVStringsToMap makes it. berth's log writer
    /// (berth-shim) rotates by size and count; the driver's other options are refused rather
    /// than dropped.
    static func applyLogOptions(_ options: [String], to spec: inout ContainerSpec) throws {
        var values: [(key: String, value: String)] = []
        for option in options {
            let kv = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            values.append((kv[0], kv.count == 2 ? kv[1] : ""))
        }
        for (key, _) in values {
            switch key {
            case "max-size", "max-file": continue
            case "compress", "labels", "labels-regex", "env", "env-regex", "tag":
                throw ContainerCommandError(
                    description: "berth does not support the log opt '\(key)' of the json-file log driver")
            default:
                throw ContainerCommandError(description: "unknown log opt '\(key)' for json-file log driver")
            }
        }
        for (key, value) in values {
            if key == "max-size" {
                // moby's json-file driver reads it with go-units' FromHumanSize: decimal units,
                // 10m is 10,000,000 bytes.
                guard let size = ByteSize.parse(value.trimmingWhitespace(), decimal: true) else {
                    throw ContainerCommandError(description: "invalid size: '\(value)'")
                }
                guard size > 0 else { throw ContainerCommandError(description: "max-size must be a positive number") }
                spec.logMaxSize = size
            } else {
                // strconv.Atoi's error, as moby returns it.
                guard let count = Int(value) else {
                    throw ContainerCommandError(
                        description: "strconv.Atoi: parsing \(DockerFlags.quoted(value)): invalid syntax")
                }
                guard count >= 1 else { throw ContainerCommandError(description: "max-file cannot be less than 1") }
                spec.logMaxFiles = count
            }
        }
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
                // docker/cli's pkg/kvfile.
                if name.isEmpty {
                    throw ContainerCommandError(
                        description:
                            "\(file):\(number + 1): no variable name on line '\(DockerFlags.escaped(String(trimmed)))'")
                }
                if name.contains(where: \.isWhitespace) {
                    throw ContainerCommandError(
                        description: "\(file):\(number + 1): variable '\(name)' contains whitespaces")
                }
                result.append(contentsOf: try Self.envEntry(String(trimmed)))
            }
        }
        for e in env { result.append(contentsOf: try Self.envEntry(e)) }
        return result
    }

    /// "KEY=VALUE" as is; "KEY" takes berth's own value, or is dropped when unset (Docker's rule).
    /// An empty name ("=x", "") is refused, as docker/cli's opts.ValidateEnv does.
    static func envEntry(_ text: String) throws -> [String] {
        let name = text.prefix(while: { $0 != "=" })
        guard !name.isEmpty else {
            throw ContainerCommandError(description: "invalid environment variable: \(DockerFlags.escaped(text))")
        }
        if text.contains("=") { return [text] }
        if let value = ProcessInfo.processInfo.environment[text] { return ["\(text)=\(value)"] }
        return []
    }
}

extension ContainerOptions {
    /// `--security-opt`, as docker/cli (parseSecurityOpts) and moby (parseSecurityOpt) read it:
    /// `KEY=VALUE` (or the old `KEY:VALUE`), and `no-new-privileges` alone. An option berth cannot
    /// honour is an error, never silently dropped.
    static func applySecurityOptions(_ options: [String], to spec: inout ContainerSpec) throws {
        for opt in options {
            if opt == "no-new-privileges" {
                spec.noNewPrivileges = true
                continue
            }
            let separator = opt.firstIndex(of: "=") ?? opt.firstIndex(of: ":")
            guard let separator, separator != opt.index(before: opt.endIndex) else {
                throw ContainerCommandError(description: "invalid --security-opt: \(DockerFlags.quoted(opt))")
            }
            let key = String(opt[..<separator])
            let value = String(opt[opt.index(after: separator)...])
            func cannot(_ reason: String) -> ContainerCommandError {
                ContainerCommandError(description: "--security-opt \(DockerFlags.escaped(opt)): \(reason)")
            }
            switch key {
            case "seccomp":
                switch value {
                case "unconfined": spec.seccomp = .unconfined
                case "builtin": spec.seccomp = .default  // docker/cli's name for the default profile
                default:
                    // Read now, as Docker's CLI does, so a bad file fails before anything is made;
                    // the runtime reads it again (by absolute path) when the container starts.
                    let path = value.hasPrefix("/") ? value : FileManager.default.currentDirectoryPath + "/" + value
                    try Self.checkSeccompProfile(try Seccomp.loadProfile(path: path), path: path)
                    spec.seccomp = .profile(path: path)
                }
            case "no-new-privileges":
                // Go's strconv.ParseBool, as moby reads the value.
                switch value {
                case "1", "t", "T", "true", "TRUE", "True": spec.noNewPrivileges = true
                case "0", "f", "F", "false", "FALSE", "False": spec.noNewPrivileges = false
                default:
                    throw ContainerCommandError(
                        description:
                            "invalid --security-opt \(DockerFlags.quoted(opt)): no-new-privileges is true or false")
                }
            case "apparmor":
                // `unconfined` asks for no AppArmor profile, which is what every berth container
                // runs under: it is honoured by doing nothing, so it stays accepted.
                if value == "unconfined" { continue }
                throw cannot(
                    Self.hostHasAppArmor
                        ? "berth does not load AppArmor profiles" : "AppArmor is not available on this host")
            case "label":
                // `disable` turns SELinux labelling off, and berth labels nothing: honoured by
                // doing nothing, so it stays accepted. Any other label asks for confinement.
                if value == "disable" { continue }
                throw cannot(
                    Self.hostHasSELinux
                        ? "berth does not apply SELinux labels" : "SELinux is not available on this host")
            case "systempaths":
                throw cannot(
                    "berth always masks and write-protects Docker's /proc and /sys paths; it cannot unmask them")
            case "writable-cgroups":
                throw cannot("berth always mounts /sys/fs/cgroup read-only")
            default:
                throw ContainerCommandError(
                    description:
                        "invalid --security-opt \(DockerFlags.quoted(opt)): unknown option \(DockerFlags.quoted(key))")
            }
        }
    }

    static var hostHasAppArmor: Bool {
        (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?.hasPrefix("Y")
            == true
    }

    static var hostHasSELinux: Bool { access("/sys/fs/selinux/enforce", F_OK) == 0 }

    /// The JSON check docker/cli makes of a profile file before sending it (the runtime compiles
    /// it later; a syscall or action it rejects fails the start).
    static func checkSeccompProfile(_ json: String, path: String) throws {
        struct Shape: Decodable { var defaultAction: String }
        do {
            _ = try JSONDecoder().decode(Shape.self, from: Data(json.utf8))
        } catch DecodingError.dataCorrupted {
            throw ContainerCommandError(description: "seccomp profile (\(DockerFlags.escaped(path))) is not valid JSON")
        } catch {
            throw ContainerCommandError(
                description:
                    "seccomp profile (\(DockerFlags.escaped(path))) is not a profile in Docker's format (it needs a \"defaultAction\" string)"
            )
        }
    }

    /// Go's path.Clean for the paths a mount names.
    static func cleanPath(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." {
                if let last = parts.last, last != ".." { parts.removeLast() } else if !absolute { parts.append(part) }
            } else {
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// `--network` and the flags that go with it, as Docker reads them: a mode (`none`, `host`,
    /// `container:NAME`, `ns:PATH`: alone), or networks to join, the first one first (`bridge`
    /// and `default` name berth's default network; without the flag, that one). `--ip`,
    /// `--mac-address` and `--network-alias` apply to the first network; an address and aliases
    /// only on a user-defined one, as Docker requires. A named network must exist.
    func applyNetworkOptions(to spec: inout ContainerSpec, root: String) throws {
        let names = network.isEmpty ? ["default"] : network
        let mode = try Self.networkMode(names[0], root: root)
        guard mode == .default else {
            guard names.count == 1 else {
                throw ContainerCommandError(
                    description:
                        "conflicting options: cannot attach both user-defined and non-user-defined network-modes")
            }
            if !publish.isEmpty, mode == .none || mode == .host {
                // Docker ignores ports for host and refuses nothing for none; berth says why.
                throw ContainerCommandError(
                    description: "conflicting options: port publishing and the \(mode.name) network mode")
            }
            spec.network = mode
            return
        }
        var attachments: [NetworkAttachmentSpec] = []
        for (index, given) in names.enumerated() {
            let name = given == "default" ? BridgeNetworks.defaultNetwork : given
            guard try Self.networkMode(given, root: root) == .default else {
                throw ContainerCommandError(
                    description:
                        "conflicting options: cannot attach both user-defined and non-user-defined network-modes")
            }
            // A name that is no network name (a path, say) is no network: never a file looked up.
            do { try BridgeNetworks.validateName(name) } catch {
                throw ContainerCommandError(description: "network \(name) not found")
            }
            // The default network is made on first use: no file to read for it on `run`'s path.
            guard name == BridgeNetworks.defaultNetwork || NetworkStore(root: root).network(name) != nil else {
                throw ContainerCommandError(description: "network \(name) not found")
            }
            guard !attachments.contains(where: { $0.name == name }) else {
                throw ContainerCommandError(description: "network \(name) is given twice")
            }
            var attachment = NetworkAttachmentSpec(name: name)
            if index == 0 {
                attachment.aliases = networkAlias
                attachment.ipv4Address = ip
                attachment.macAddress = macAddress
            }
            attachments.append(attachment)
        }
        let first = attachments[0]
        if first.name == BridgeNetworks.defaultNetwork {
            if !networkAlias.isEmpty {
                throw ContainerCommandError(
                    description: "network-scoped alias is supported only for containers in user defined networks")
            }
            if ip != nil {
                throw ContainerCommandError(
                    description: "user specified IP address is supported on user defined networks only")
            }
        }
        if let ip, IPv4Address(ip) == nil {
            throw ContainerCommandError(description: "invalid IPv4 address: \(ip)")
        }
        if let macAddress, Attachment.parseMAC(macAddress) == nil {
            throw ContainerCommandError(description: "invalid MAC address: \(macAddress)")
        }
        for server in dns where IPv4Address(server) == nil {
            throw ContainerCommandError(description: "\(server) is not an ip address")
        }
        spec.network = .default
        spec.networks = attachments
        spec.publish = publish.isEmpty ? nil : publish
        spec.dns = dns.isEmpty ? nil : dns
        spec.dnsSearch = dnsSearch.isEmpty ? nil : dnsSearch
        spec.dnsOptions = dnsOption.isEmpty ? nil : dnsOption
        // Checked now, before anything is made (Docker's 125 for a bad -p).
        for value in publish { _ = try PortMapping.parse(value) }
    }

    /// One `--network` value as a mode: `default` and `bridge` and any other name (a network to
    /// join) are `.default`; `none` a namespace with loopback only; `host` the host's;
    /// `container:NAME` another container's (looked up now, so a missing one is refused before
    /// anything is made); `ns:PATH` a namespace file (podman's spelling).
    static func networkMode(_ text: String, root: String) throws -> NetworkMode {
        switch text {
        case "none": return .none
        case "host": return .host
        default: break
        }
        if text.hasPrefix("container:") {
            let other = String(text.dropFirst("container:".count))
            guard !other.isEmpty else {
                throw ContainerCommandError(
                    description: "Invalid network mode: invalid container format container:<name|id>")
            }
            let container: Container
            do { container = try Container.lookup(other, root: root) } catch {
                throw ContainerCommandError(description: "No such container: \(other)")
            }
            return .container(id: container.id)
        }
        if text.hasPrefix("ns:"), text.count > 3 { return .namespace(path: String(text.dropFirst(3))) }
        return .default
    }

    /// `--expose`, as docker/cli reads it: `PORT[/PROTO]` or `START-END[/PROTO]` (tcp when no
    /// protocol is given), each port of a range its own entry; a colon (a published port's
    /// syntax) is refused. Returned once each, as "80/tcp".
    static func exposedPorts(_ values: [String]) throws -> [String] {
        var ports: [String] = []
        var seen = Set<String>()
        for value in values {
            guard !value.contains(":") else {
                throw ContainerCommandError(description: "invalid port format for --expose: \(value)")
            }
            // nat.SplitProtoPort
            let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let number = parts[0]
            let proto = parts.count == 1 || parts[1].isEmpty ? "tcp" : parts[1]
            guard ["tcp", "udp", "sctp"].contains(proto) else {
                throw ContainerCommandError(
                    description: "invalid proto \(DockerFlags.quoted(proto)) for --expose: \(value) "
                        + "(tcp, udp or sctp)")
            }
            // nat.ParsePortRange: strconv.ParseUint(..., 10, 16) of each end.
            func port(_ text: String) throws -> UInt16 {
                let digits = !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
                guard digits, let n = UInt16(text) else {
                    throw ContainerCommandError(
                        description: "invalid range format for --expose: \(value), error: "
                            + "strconv.ParseUint: parsing \(DockerFlags.quoted(text)): "
                            + (digits ? "value out of range" : "invalid syntax"))
                }
                return n
            }
            guard !number.isEmpty else {
                throw ContainerCommandError(
                    description: "invalid range format for --expose: \(value), error: "
                        + "empty string specified for ports")
            }
            let ends = number.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let start = try port(ends[0])
            let end = ends.count == 2 ? try port(ends[1]) : start
            guard start <= end else {
                throw ContainerCommandError(
                    description: "invalid range format for --expose: \(value), error: "
                        + "invalid range specified for port: \(number)")
            }
            for n in start...end where seen.insert("\(n)/\(proto)").inserted { ports.append("\(n)/\(proto)") }
        }
        return ports
    }

    /// `-v`, as moby reads it (ParseMountRaw in daemon/volume/mounts/linux_parser.go), with its
    /// messages: `SRC:DST[:MODES]`, or `DST` alone for an anonymous volume (`/DST:ro` is refused:
    /// a volume cannot carry a mode). SRC starting with "/" is a host path, with "." one relative
    /// to the working directory (made absolute, as Docker's CLI does); anything else names a
    /// volume, which must match Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so no name climbs out of
    /// the volumes folder. MODES, comma-separated, at most one of each kind: rw|ro; z|Z
    /// (relabelling, a no-op without SELinux); a propagation (bind mounts only); nocopy (volumes
    /// only: an empty volume is not filled with the image's content at DST); consistent|cached|delegated
    /// (no-ops on Linux). DST is stored cleaned, and may not be "/".
    static func parseVolume(_ text: String) throws -> MountSpec {
        let invalidSpec = "invalid volume specification: '\(DockerFlags.escaped(text))'"
        // The short syntax's one parser (Compose's), with the engine's rules.
        let fields: VolumeShortSyntax
        do { fields = try VolumeShortSyntax.parse(text, dialect: .engine) } catch {
            throw ContainerCommandError(description: invalidSpec)
        }
        let source = fields.source ?? ""
        let target = fields.target
        let mode = fields.mode ?? ""
        let modes = VolumeModes(mode)
        guard modes.isValidForEngine else {
            throw ContainerCommandError(description: "invalid mode: \(DockerFlags.escaped(mode))")
        }
        let propagation = modes.propagation.flatMap { MountSpec.Propagation(rawValue: $0) }
        let isBind = source.hasPrefix("/") || source.hasPrefix(".")
        func invalidConfig(_ reason: String) -> ContainerCommandError {
            ContainerCommandError(
                description:
                    "\(invalidSpec): invalid mount config for type \"\(isBind ? "bind" : "volume")\": \(reason)")
        }
        if !isBind && propagation != nil { throw invalidConfig("field BindOptions must not be specified") }
        if isBind && modes.noCopy { throw invalidConfig("field VolumeOptions must not be specified") }
        guard !target.isEmpty else { throw invalidConfig("field Target must not be empty") }
        if cleanPath(target) == "/" { throw invalidConfig("invalid specification: destination can't be '/'") }
        guard target.hasPrefix("/") else {
            throw invalidConfig("invalid mount path: '\(DockerFlags.escaped(target))' mount path must be absolute")
        }
        if isBind {
            let hostPath = source.hasPrefix("/") ? source : FileManager.default.currentDirectoryPath + "/" + source
            return MountSpec(
                kind: .bind, source: cleanPath(hostPath), target: cleanPath(target),
                readOnly: modes.readOnly ?? false, createHostPath: true, propagation: propagation)
        }
        if source.isEmpty {
            let anonymous = (0..<32).map { _ in UInt8.random(in: 0...255) }.hexString
            return MountSpec(
                kind: .volume, source: anonymous, target: cleanPath(target),
                readOnly: modes.readOnly ?? false)
        }
        try Self.checkVolumeName(source)
        return MountSpec(
            kind: .volume, source: source, target: cleanPath(target), readOnly: modes.readOnly ?? false,
            noCopy: modes.noCopy ? true : nil)
    }

    /// moby's local volume driver (validateName in daemon/volume/local/local.go), its messages;
    /// the rule itself is Support's (DockerNames), which Runtime applies again.
    static func checkVolumeName(_ name: String) throws {
        if name.unicodeScalars.count == 1 {
            throw ContainerCommandError(
                description: "volume name is too short, names should be at least two alphanumeric characters")
        }
        guard DockerNames.isValid(name) else {
            throw ContainerCommandError(
                description: "\(DockerFlags.quoted(name)) includes invalid characters for a local volume name, "
                    + "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )
        }
    }

    /// `--tmpfs PATH[:OPTIONS]`. PATH as moby checks it (ValidateTmpfsMountDestination): absolute
    /// and not "/". OPTIONS are those Docker passes to mount(2) (moby/sys/mount's
    /// MergeTmpfsOptions: flags and size/mode/uid/gid/nr_inodes/nr_blocks/mpol; the last of a
    /// kind wins); anything else is `invalid tmpfs option`. berth keeps size, mode, uid, gid,
    /// exec|noexec and ro|rw; a Docker option it cannot honour (suid, dev, nr_inodes, ...) is an
    /// error rather than dropped. nosuid and nodev are always set, and noexec unless `exec`.
    static func parseTmpfs(_ text: String) throws -> MountSpec {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let target = parts[0]
        if cleanPath(target) == "/" {
            throw ContainerCommandError(description: "invalid specification: destination can't be '/'")
        }
        guard target.hasPrefix("/") else {
            throw ContainerCommandError(
                description: "invalid mount path: '\(DockerFlags.escaped(target))' mount path must be absolute")
        }
        var m = MountSpec(kind: .tmpfs, target: cleanPath(target))
        guard parts.count == 2, !parts[1].isEmpty else { return m }
        let shown = DockerFlags.escaped(text)
        func invalidValue(_ what: String, _ value: String, _ hint: String) -> ContainerCommandError {
            ContainerCommandError(
                description: "--tmpfs \(shown): invalid \(what) \(DockerFlags.quoted(value)) (\(hint))")
        }
        func id(_ value: String, _ what: String) throws -> UInt32 {
            // The kernel reads a decimal u32; 4294967295 is the invalid ID.
            guard !value.isEmpty, value.allSatisfy(\.isASCII), value.allSatisfy(\.isNumber),
                let id = UInt32(value), id != UInt32.max
            else { throw invalidValue(what, value, "a number") }
            return id
        }
        for option in parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let key = option.prefix(while: { $0 != "=" })
            let hasValue = option.contains("=")
            let value = hasValue ? String(option[option.index(after: option.firstIndex(of: "=")!)...]) : ""
            if hasValue {
                switch key {
                case "size":
                    if value.hasSuffix("%"), let percent = Int64(value.dropLast()), percent >= 0,
                        case (let size, let overflow) =
                            (Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))) / 100)
                            .multipliedReportingOverflow(by: percent), !overflow
                    {
                        // The kernel's size=N%: of the physical memory.
                        m.tmpfsSize = size
                    } else if let size = ByteSize.parse(value.trimmingWhitespace()), size >= 0 {
                        m.tmpfsSize = size
                    } else {
                        throw invalidValue("size", value, "e.g. 64m, 1g, 50%")
                    }
                case "mode":
                    guard !value.isEmpty, let mode = UInt32(value, radix: 8), mode <= 0o7777 else {
                        throw invalidValue("mode", value, "octal, e.g. 1777")
                    }
                    m.tmpfsMode = mode
                case "uid": m.tmpfsUID = try id(value, "uid")
                case "gid": m.tmpfsGID = try id(value, "gid")
                case "nr_inodes", "nr_blocks", "mpol":
                    throw ContainerCommandError(
                        description: "--tmpfs \(shown): berth does not support the tmpfs option \"\(key)\"")
                default:
                    throw ContainerCommandError(description: "invalid tmpfs option \(DockerFlags.quoted(option))")
                }
                continue
            }
            switch option {
            case "ro": m.readOnly = true
            case "rw": m.readOnly = false
            case "exec": m.tmpfsExec = true
            case "noexec": m.tmpfsExec = false
            // What berth does anyway: nosuid, nodev, the kernel's defaults, private propagation.
            case "defaults", "nosuid", "nodev", "async", "relatime", "atime", "diratime", "nomand", "private",
                "rprivate":
                continue
            case "suid", "dev", "sync", "dirsync", "remount", "mand", "noatime", "nodiratime", "norelatime",
                "strictatime", "nostrictatime", "bind", "rbind", "unbindable", "runbindable",
                "shared", "rshared", "slave", "rslave":
                throw ContainerCommandError(
                    description: "--tmpfs \(shown): berth does not support the tmpfs option \"\(option)\"")
            default:
                throw ContainerCommandError(description: "invalid tmpfs option \(DockerFlags.quoted(option))")
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
        guard (1...2).contains(values.count), let soft = values[0], let hard = values.count == 2 ? values[1] : values[0]
        else { throw bad }
        return Runtime.Ulimit(name: kv[0], soft: soft, hard: hard)
    }
}

/// `--pull`: Docker's policies for a container's image.
enum PullPolicy: String, ExpressibleByArgument {
    case always, missing, never
}
