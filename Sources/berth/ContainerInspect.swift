import ArgumentParser
import Compose
import FoundationEssentials
import Images
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct ContainerInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on containers.")

    @OptionGroup var global: RootOptions
    @Argument var containers: [String]

    // Docker's field names, which its users' scripts and templates read.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    struct Output: Encodable {
        /// Docker's State object, its fields in its order. berth never pauses a container or
        /// restarts one by policy (see ContainerState.Status), so Paused and Restarting are false.
        struct State: Encodable {
            var Status: String
            var Running: Bool
            var Paused = false
            var Restarting = false
            var OOMKilled: Bool
            var Dead: Bool
            var Pid: Int32
            var ExitCode: Int32
            var Error: String
            var StartedAt: String
            var FinishedAt: String

            init(_ s: ContainerState) {
                Status = s.status.rawValue
                Running = s.status == .running
                OOMKilled = s.oomKilled ?? false
                Dead = s.status == .dead
                Pid = s.status == .running ? s.pid ?? 0 : 0
                ExitCode = s.exitCode ?? 0
                Error = s.error ?? ""
                // Go's zero time, as Docker shows a time that never was (or is not known).
                StartedAt = s.startedAt ?? "0001-01-01T00:00:00Z"
                FinishedAt = s.finishedAt ?? "0001-01-01T00:00:00Z"
            }
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
            /// Docker's set form, {"80/tcp": {}}; left out when there are none, as Docker does.
            var ExposedPorts: [String: Empty]?
        }
        struct Empty: Encodable {}
        /// Docker's NetworkSettings: the container's endpoint on each network it is on now.
        struct NetworkSettings: Encodable {
            struct Endpoint: Encodable {
                var NetworkID: String
                var EndpointID: String
                var Gateway: String
                var IPAddress: String
                var IPPrefixLen: UInt8
                var MacAddress: String
                var Aliases: [String]?
                var DNSNames: [String]
            }
            struct PortBinding: Encodable {
                var HostIp: String
                var HostPort: String
            }
            var SandboxKey: String
            /// Docker's form: "80/tcp" -> the host sides it is published on.
            var Ports: [String: [PortBinding]]
            var IPAddress: String
            var Gateway: String
            var MacAddress: String
            var Networks: [String: Endpoint]

            init(_ container: Container) {
                let store = NetworkStore(root: container.root)
                var networks: [String: Endpoint] = [:]
                var first: (NetworkRecord, EndpointRecord)?
                for network in store.networks() {
                    guard let e = store.endpoints(of: network.name).first(where: { $0.containerID == container.id })
                    else { continue }
                    if first == nil || e.interface < first!.1.interface { first = (network, e) }
                    networks[network.name] = Endpoint(
                        NetworkID: network.id, EndpointID: e.hostInterface, Gateway: network.gateway.description,
                        IPAddress: e.address.description, IPPrefixLen: network.subnet.prefixLength,
                        MacAddress: e.macAddress, Aliases: e.aliases.isEmpty ? nil : e.aliases,
                        DNSNames: network.embeddedDNS ? e.names : [])
                }
                SandboxKey = networks.isEmpty ? "" : container.root + "/netns/" + container.id
                Ports = Dictionary(
                    ContainerPort.published(container).map {
                        (
                            "\($0.containerPort)/\($0.proto)",
                            [PortBinding(HostIp: $0.hostIP?.description ?? "0.0.0.0", HostPort: String($0.hostPort))]
                        )
                    }, uniquingKeysWith: +)
                IPAddress = first?.1.address.description ?? ""
                Gateway = first?.0.gateway.description ?? ""
                MacAddress = first?.1.macAddress ?? ""
                Networks = networks
            }
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
        var NetworkSettings: NetworkSettings
        var LogPath: String
        var EffectiveCapabilities: [String]
    }

    func run() throws {
        var outputs: [Output] = []
        for name in containers {
            let c = try Container.lookup(name, root: global.stateRoot)
            let s = c.state()
            let r = c.record
            let spec = r.spec
            let network = spec.network.name
            let exposed = spec.allExposedPorts
            var security: [String] = []
            switch spec.seccomp {
            case .default: break
            case .unconfined: security.append("seccomp=unconfined")
            case .profile(let path): security.append("seccomp=" + path)
            }
            if spec.noNewPrivileges { security.append("no-new-privileges") }
            outputs.append(
                Output(
                    Id: c.id, Created: r.created, Path: r.process.argv.first ?? "",
                    Args: Array(r.process.argv.dropFirst()),
                    State: .init(s),
                    Image: spec.imageID, Name: "/" + c.name,
                    Config: .init(
                        Hostname: r.process.hostname, User: spec.user ?? spec.imageDefaults.user ?? "",
                        Env: r.process.env,
                        Cmd: spec.command ?? (spec.entrypoint == nil ? spec.imageDefaults.cmd : nil),
                        Entrypoint: spec.entrypoint ?? spec.imageDefaults.entrypoint, WorkingDir: r.process.workingDir,
                        Image: spec.image, Tty: spec.tty, OpenStdin: spec.interactive, Labels: spec.labels,
                        StopSignal: spec.stopSignal ?? spec.imageDefaults.stopSignal ?? "SIGTERM",
                        ExposedPorts: exposed.isEmpty
                            ? nil
                            : Dictionary(
                                exposed.map { ($0, Output.Empty()) },
                                uniquingKeysWith: { a, _ in a })),
                    HostConfig: .init(
                        Privileged: spec.privileged, ReadonlyRootfs: spec.readOnly, CapAdd: spec.capAdd,
                        CapDrop: spec.capDrop,
                        SecurityOpt: security, NetworkMode: network, AutoRemove: spec.autoRemove,
                        Memory: spec.resources.memory ?? 0, NanoCpus: spec.resources.nanoCPUs ?? 0,
                        PidsLimit: spec.resources.pids, Init: spec.initProcess),
                    Mounts: spec.mounts, NetworkSettings: .init(c), LogPath: c.logPath,
                    EffectiveCapabilities: Capabilities.names(of: r.process.capabilities)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(outputs), as: UTF8.self))
    }
}
