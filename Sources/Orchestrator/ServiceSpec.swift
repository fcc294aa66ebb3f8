import Compose
import Crypto
import FoundationEssentials
import Images
import Runtime
import Support
import Synchronization

/// Where a compose service becomes a container spec: the one conversion, for `up`, `create` and
/// `run`. Everything a container of the service needs comes from the model here; the image's part
/// (layers, defaults) is added when the container is made (ContainerSpecs).
struct ServiceSpecBuilder {
    let project: Project
    let root: String
    /// Finds the running container a `network_mode: service:NAME` or `container:NAME` names.
    let containerID: (String) throws -> String
    let warn: (String) -> Void

    /// The real name of a project network (`name:`, else PROJECT_KEY; external ones as given).
    static func networkName(_ key: String, in project: Project) -> String {
        if let name = project.networks[key]?.name { return name }
        return project.name + "_" + key
    }

    /// The real name of a project volume, likewise.
    static func volumeName(_ key: String, in project: Project) -> String {
        if let name = project.volumes[key]?.name { return name }
        return project.name + "_" + key
    }

    /// docker compose's container name: `container_name`, else PROJECT-SERVICE-N.
    static func containerName(_ service: Service, project: String, number: Int) -> String {
        service.containerName ?? "\(project)-\(service.name)-\(number)"
    }

    /// `image`: the service's image as the store has it (its HEALTHCHECK is part of the
    /// supervision the config hash covers), looked up once by the caller for all replicas.
    func spec(for service: Service, number: Int, name: String, oneoff: Bool = false, image stored: Image?) throws
        -> ContainerSpec
    {
        guard let image = service.imageName(project: project.name) else {
            throw OrchestratorError("service \(service.name) has neither an image nor a build context specified")
        }
        var spec = ContainerSpec(image: image, layerPaths: [])
        spec.name = name
        spec.entrypoint = service.entrypoint
        spec.command = service.command
        spec.env = service.environment.keys.sorted().compactMap { key in
            // A variable without a value comes from the environment berth runs in, or is left out.
            guard let value = service.environment[key] ?? project.environment[key] else { return nil }
            return key + "=" + value
        }
        spec.workingDir = service.workingDir
        spec.user = service.user
        spec.hostname = service.hostname
        spec.domainname = service.domainname
        spec.readOnly = service.readOnly
        spec.privileged = service.privileged
        spec.capAdd = service.capAdd
        spec.capDrop = service.capDrop
        spec.initProcess = service.`init` ?? false
        spec.tty = service.tty
        spec.interactive = service.stdinOpen
        spec.stopSignal = service.stopSignal
        spec.stopTimeout = service.stopGracePeriod.map { Int(($0.seconds).rounded(.up)) }
        spec.shmSize = service.shmSize
        spec.sysctls = service.sysctls
        spec.dns = service.dns.isEmpty ? nil : service.dns
        spec.dnsSearch = service.dnsSearch.isEmpty ? nil : service.dnsSearch
        spec.dnsOptions = service.dnsOpt.isEmpty ? nil : service.dnsOpt
        spec.extraHosts = service.extraHosts.keys.sorted().flatMap { host in
            (service.extraHosts[host] ?? []).map { host + ":" + $0 }
        }
        spec.ulimits = service.ulimits.keys.sorted().map { key in
            let limit = service.ulimits[key]!
            return Runtime.Ulimit(
                name: key, soft: UInt64(clamping: limit.effectiveSoft), hard: UInt64(clamping: limit.effectiveHard))
        }
        let limits = service.deploy?.resources.limits
        spec.resources = CgroupLimits(
            memory: service.memLimit ?? limits?.memory, memorySwap: service.memswapLimit,
            cpus: service.cpus ?? limits?.cpus, cpuShares: service.cpuShares.map { Int(clamping: $0) },
            pids: (service.pidsLimit ?? limits?.pids).map { Int(clamping: $0) })
        try applySecurityOptions(service, to: &spec)
        try applyLogging(service, to: &spec)
        spec.mounts = try mounts(of: service)
        try applyNetwork(service, to: &spec)
        spec.exposedPorts = service.expose.isEmpty ? nil : service.expose.map { $0.contains("/") ? $0 : $0 + "/tcp" }
        // What berth's runtime cannot do yet is refused, not ignored: a container that quietly
        // lacks the host's PID namespace or a device would behave otherwise than asked.
        for (key, given) in [("pid", service.pid), ("ipc", service.ipc)] {
            if let given, given != "private" {
                throw OrchestratorError("service \(service.name): \(key): \(given) is not supported by berth")
            }
        }
        if !service.devices.isEmpty {
            throw OrchestratorError("service \(service.name): devices are not supported by berth")
        }
        if !service.volumesFrom.isEmpty {
            throw OrchestratorError("service \(service.name): volumes_from is not supported by berth")
        }

        var labels = service.labels
        labels[ComposeLabel.project] = project.name
        labels[ComposeLabel.service] = service.name
        labels[ComposeLabel.containerNumber] = String(number)
        labels[ComposeLabel.oneoff] = oneoff ? "True" : "False"
        labels[ComposeLabel.workingDir] = project.workingDir
        labels[ComposeLabel.configFiles] = project.composeFiles.joined(separator: ",")
        labels[ComposeLabel.image] = image
        labels[ComposeLabel.version] = ComposeLabel.versionValue
        labels[ComposeLabel.dependsOn] = service.dependsOn.keys.sorted().map { key in
            let dependency = service.dependsOn[key]!
            return "\(key):\(dependency.condition):\(dependency.restart)"
        }.joined(separator: ",")
        spec.labels = labels
        labels[ComposeLabel.configHash] = Self.configHash(
            spec, supervision: try Orchestrator.serviceRecord(service, image: stored?.config.healthcheck))
        spec.labels = labels
        return spec
    }

    /// A digest of everything the container is made from but the image's content: a changed
    /// compose file changes it, and `up` recreates the container. Computed over the spec itself
    /// (sorted keys), so whatever reaches the container counts, and over what the supervisor
    /// applies to it (health check, restart policy), which a new container starts it with.
    static func configHash(_ spec: ContainerSpec, supervision: ServiceRecord) -> String {
        var spec = spec
        spec.labels[ComposeLabel.configHash] = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = (try? encoder.encode(spec)) ?? Data()
        var applied = supervision
        applied.dependsOn = [:]  // the order of starting, not the container
        data += (try? encoder.encode(applied)) ?? Data()
        return Array(SHA256.hash(data: data)).hexString
    }

    private func applySecurityOptions(_ service: Service, to spec: inout ContainerSpec) throws {
        for option in service.securityOpt {
            let parts = option.split(separator: option.contains("=") ? "=" : ":", maxSplits: 1).map(String.init)
            switch (parts.first ?? "", parts.count > 1 ? parts[1] : nil) {
            case ("no-new-privileges", let value):
                spec.noNewPrivileges = value == nil || value == "true"
            case ("seccomp", let value?):
                spec.seccomp = value == "unconfined" ? .unconfined : .profile(path: value)
            case ("label", _), ("apparmor", _):
                warn("service \(service.name): security_opt \(option) has no effect on this host")
            default:
                throw OrchestratorError("service \(service.name): invalid security_opt \"\(option)\"")
            }
        }
    }

    private func applyLogging(_ service: Service, to spec: inout ContainerSpec) throws {
        guard let logging = service.logging else { return }
        switch logging.driver ?? "json-file" {
        case "json-file", "local":
            if let size = logging.options["max-size"] {
                guard let bytes = ByteSize.parse(size, decimal: true), bytes > 0 else {
                    throw OrchestratorError("service \(service.name): invalid logging max-size \"\(size)\"")
                }
                spec.logMaxSize = bytes
            }
            if let files = logging.options["max-file"] {
                guard let count = Int(files), count > 0 else {
                    throw OrchestratorError("service \(service.name): invalid logging max-file \"\(files)\"")
                }
                spec.logMaxFiles = count
            }
        case "none":
            spec.logDriver = "none"
        case let driver:
            warn("service \(service.name): logging driver \(driver) is not supported; its output goes to json-file")
        }
    }

    private func mounts(of service: Service) throws -> [MountSpec] {
        var mounts: [MountSpec] = []
        for volume in service.volumes {
            switch volume.type {
            case "bind":
                var mount = MountSpec(
                    kind: .bind, source: volume.source ?? "", target: volume.target, readOnly: volume.readOnly,
                    createHostPath: volume.bind?.createHostPath ?? false)
                if let propagation = volume.bind?.propagation {
                    guard let mode = MountSpec.Propagation(rawValue: propagation) else {
                        throw OrchestratorError("service \(service.name): invalid propagation \"\(propagation)\"")
                    }
                    mount.propagation = mode
                }
                mounts.append(mount)
            case "volume":
                // An anonymous volume's name is left empty here (the config hash must not change with
                // it): the orchestrator names it when it makes the container (Orchestrator.create).
                let name = volume.source.map { Self.volumeName($0, in: project) } ?? ""
                mounts.append(
                    MountSpec(
                        kind: .volume, source: name, target: volume.target, readOnly: volume.readOnly,
                        noCopy: volume.volume?.nocopy == true ? true : nil))
            case "tmpfs":
                mounts.append(
                    MountSpec(
                        kind: .tmpfs, target: volume.target, readOnly: volume.readOnly, tmpfsSize: volume.tmpfs?.size,
                        tmpfsMode: volume.tmpfs?.mode))
            default:
                throw OrchestratorError("service \(service.name): volumes of type \(volume.type) are not supported")
            }
        }
        for entry in service.tmpfs where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            var mount = MountSpec(kind: .tmpfs, target: parts[0])
            for option in (parts.count > 1 ? parts[1] : "").split(separator: ",") {
                let pair = option.split(separator: "=", maxSplits: 1).map(String.init)
                if pair[0] == "size", pair.count == 2 { mount.tmpfsSize = ByteSize.parse(pair[1]) }
                if pair[0] == "mode", pair.count == 2 { mount.tmpfsMode = UInt32(pair[1], radix: 8) }
            }
            mounts.append(mount)
        }
        for (reference, isSecret) in service.secrets.map({ ($0, true) }) + service.configs.map({ ($0, false) }) {
            mounts.append(try fileMount(reference, secret: isSecret, service: service))
        }
        return mounts
    }

    /// A secret (at /run/secrets/NAME) or config (at /NAME) as a read-only bind of its file; one
    /// given as `content` or `environment` is written under the project's directory first.
    private func fileMount(_ reference: FileReference, secret: Bool, service: Service) throws -> MountSpec {
        let kind = secret ? "secret" : "config"
        guard let object = (secret ? project.secrets : project.configs)[reference.source] else {
            throw OrchestratorError("service \(service.name) refers to undefined \(kind) \(reference.source)")
        }
        var target = reference.target ?? (secret ? "/run/secrets/" + reference.source : "/" + reference.source)
        if secret && !target.hasPrefix("/") { target = "/run/secrets/" + target }
        if let file = object.file {
            return MountSpec(kind: .bind, source: file, target: target, readOnly: true)
        }
        let text: String
        if let content = object.content {
            text = content
        } else if let variable = object.environment, let value = project.environment[variable] {
            text = value
        } else {
            throw OrchestratorError(
                "\(kind) \(reference.source) has no file, content or environment value berth can use")
        }
        // The name becomes a file name under the project's directory: one component, never a path.
        let name = reference.source
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw OrchestratorError("\(kind) name \"\(name)\" is not a valid file name")
        }
        let path = ProjectStore(root: root, name: project.name).directory + "/\(kind)s/" + name
        // Replicas and services of a level are made on threads of their own, and Files.replace's
        // temporary name is per process: one writer at a time.
        try Self.fileWrites.withLock { _ in
            try Files.makeDirectories(Files.parentDirectory(path), mode: 0o700)
            let bytes = Array(text.utf8)
            try bytes.withUnsafeBytes { try Files.replace(path, with: $0, mode: 0o444) }
        }
        return MountSpec(kind: .bind, source: path, target: target, readOnly: true)
    }

    private static let fileWrites = Mutex(())

    private func applyNetwork(_ service: Service, to spec: inout ContainerSpec) throws {
        switch service.networkMode {
        case "none"?: spec.network = .none
        case "host"?: spec.network = .host
        case "bridge"?, "default"?: spec.network = .default
        case let mode? where mode.hasPrefix("service:"):
            spec.network = .container(id: try containerID(mode))
        case let mode? where mode.hasPrefix("container:"):
            spec.network = .container(id: try containerID(mode))
        case let mode?:
            throw OrchestratorError("service \(service.name): network_mode \(mode) is not supported")
        case nil:
            spec.network = .default
            let keys = service.networks.isEmpty ? ["default"] : Array(service.networks.keys)
            // Docker compose connects the networks by priority (highest first), then by name.
            let ordered = keys.sorted { a, b in
                let (pa, pb) = (service.networks[a]??.priority ?? 0, service.networks[b]??.priority ?? 0)
                return pa != pb ? pa > pb : a < b
            }
            spec.networks = ordered.map { key in
                let options = service.networks[key] ?? nil
                return NetworkAttachmentSpec(
                    name: Self.networkName(key, in: project), aliases: [service.name] + (options?.aliases ?? []),
                    ipv4Address: options?.ipv4Address, macAddress: options?.macAddress)
            }
            spec.publish = service.ports.map(Self.publishing)
        }
    }

    /// A port of the compose model as `-p` writes it.
    static func publishing(_ port: ServicePort) -> String {
        var text = ""
        if let ip = port.hostIP, !ip.isEmpty { text += (ip.contains(":") ? "[\(ip)]" : ip) + ":" }
        if let published = port.published, !published.isEmpty {
            text += published + ":"
        } else if !text.isEmpty {
            text += ":"
        }
        return text + String(port.target) + "/" + (port.protocol ?? "tcp")
    }

    static func randomHex(_ bytes: Int) -> String {
        // Docker's random IDs: from the system's generator.
        (0..<bytes).map { _ in UInt8.random(in: 0...255) }.hexString
    }
}
