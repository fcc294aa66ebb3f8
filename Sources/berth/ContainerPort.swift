import ArgumentParser
import ContainerNetworking
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `docker port`: the container's published ports as bound (an ephemeral one with the number it
/// got), "80/tcp -> 0.0.0.0:8080"; for one private port, its host addresses only.
struct ContainerPort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port", abstract: "List port mappings or a specific mapping for the container.")

    @OptionGroup var global: RootOptions
    @Argument var container: String
    @Argument(help: "PRIVATE_PORT[/PROTO]") var privatePort: String?

    func run() throws {
        let target = try Container.lookup(container, root: global.stateRoot)
        let published = target.state().status == .running ? Self.published(target) : []
        guard let privatePort else {
            for m in published { print("\(m.containerPort)/\(m.proto) -> \(Self.hostSide(m))") }
            return
        }
        let parts = privatePort.split(separator: "/", maxSplits: 1).map(String.init)
        let proto = parts.count == 2 ? parts[1] : "tcp"
        guard let number = UInt16(parts[0]) else {
            throw ContainerCommandError(description: "Error: invalid port (\(privatePort))")
        }
        let matching = published.filter { $0.containerPort == number && $0.proto == proto }
        guard !matching.isEmpty else {
            throw ContainerCommandError(
                description: "Error: No public port '\(number)/\(proto)' published for \(target.name)")
        }
        for m in matching { print(Self.hostSide(m)) }
    }

    static func published(_ container: Container) -> [PortMapping] {
        ContainerNetworking(root: container.root).publishedPorts(of: container.id)
    }

    static func hostSide(_ m: PortMapping) -> String { "\(m.hostIP?.description ?? "0.0.0.0"):\(m.hostPort)" }

    /// ps's form: "0.0.0.0:8080->80/tcp".
    static func display(_ m: PortMapping) -> String { "\(hostSide(m))->\(m.containerPort)/\(m.proto)" }
}
