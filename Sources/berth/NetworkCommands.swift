import ArgumentParser
import ContainerNetworking
import FoundationEssentials
import Network
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth network ...`, named and flagged like `docker network ...`: bridge networks of this
/// root (Sources/Network/BridgeNetworks.swift).
struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage networks.",
        subcommands: [
            NetworkList.self, NetworkCreate.self, NetworkInspect.self, NetworkRemove.self, NetworkPrune.self,
            NetworkConnect.self, NetworkDisconnect.self,
        ])
}

struct NetworkList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Only display network IDs.")
    var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate the output.")
    var noTrunc = false

    func run() throws {
        let networks = NetworkStore(root: global.stateRoot).networks()
        let id = { (n: NetworkRecord) in noTrunc ? n.id : String(n.id.prefix(12)) }
        if quiet {
            for network in networks { print(id(network)) }
            return
        }
        let rows =
            [["NETWORK ID", "NAME", "DRIVER", "SCOPE"]] + networks.map { [id($0), $0.name, $0.driver, "local"] }
        StandardStreams.write(HumanFormat.table(rows), to: STDOUT_FILENO)
    }
}

struct NetworkCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a network.")

    @OptionGroup var global: RootOptions
    @Option(name: [.customShort("d"), .customLong("driver")], help: "Driver to manage the network (bridge).")
    var driver = "bridge"
    @Option(name: .customLong("subnet"), help: "Subnet in CIDR format.")
    var subnet: String?
    @Option(name: .customLong("gateway"), help: "IPv4 gateway for the subnet.")
    var gateway: String?
    @Option(name: .customLong("ip-range"), help: "Allocate container addresses from a sub-range.")
    var ipRange: String?
    @Flag(name: .customLong("internal"), help: "Restrict external access to the network.")
    var `internal` = false
    @Option(name: [.customShort("o"), .customLong("opt")], help: "Driver options (com.docker.network.driver.mtu=N).")
    var options: [String] = []
    @Option(name: .customLong("label"), help: "Set metadata on a network.")
    var labels: [String] = []
    @Argument var name: String

    func run() throws {
        guard driver == "bridge" else { throw ContainerCommandError(description: "plugin \"\(driver)\" not found") }
        var wanted = BridgeNetworks.Options()
        wanted.internal = `internal`
        if let subnet {
            guard let parsed = IPv4Subnet(subnet) else {
                throw ContainerCommandError(description: "invalid subnet \(subnet): it is not an IPv4 CIDR network")
            }
            wanted.subnet = parsed
        }
        if let gateway {
            guard wanted.subnet != nil else {
                throw ContainerCommandError(description: "every ip-range or gateway must have a corresponding subnet")
            }
            guard let parsed = IPv4Address(gateway) else {
                throw ContainerCommandError(description: "invalid gateway address \(gateway)")
            }
            wanted.gateway = parsed
        }
        if let ipRange {
            guard let subnet = wanted.subnet else {
                throw ContainerCommandError(description: "every ip-range or gateway must have a corresponding subnet")
            }
            guard let parsed = IPv4Subnet(ipRange), subnet.contains(parsed.network),
                parsed.prefixLength >= subnet.prefixLength
            else { throw ContainerCommandError(description: "invalid ip-range \(ipRange) for subnet \(subnet)") }
            wanted.ipRange = parsed
        }
        for option in options {
            let (key, value) = Self.keyValue(option)
            switch key {
            case "com.docker.network.driver.mtu":
                guard let mtu = UInt32(value), (68...65535).contains(mtu) else {
                    throw ContainerCommandError(description: "invalid MTU \(value): 68 to 65535")
                }
                wanted.mtu = mtu
            case "com.docker.network.bridge.name":
                throw ContainerCommandError(description: "berth names bridges itself: \(key) is not supported")
            default:
                break  // Docker too keeps options it does not know without acting on them.
            }
        }
        for label in labels {
            let (key, value) = Self.keyValue(label)
            wanted.labels[key] = value
        }
        let record = try BridgeNetworks(root: global.stateRoot).create(name, wanted)
        print(record.id)
    }

    static func keyValue(_ text: String) -> (String, String) {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }
}

struct NetworkInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on one or more networks.")

    @OptionGroup var global: RootOptions
    @Argument var networks: [String]

    /// Docker's shape (`docker network inspect`), for what berth has: its field names, which
    /// users' scripts and templates read.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    struct Output: Encodable {
        struct IPAMConfig: Encodable {
            var Subnet: String
            var Gateway: String
            var IPRange: String?
        }
        struct IPAM: Encodable {
            var Driver = "default"
            var Options: [String: String] = [:]
            var Config: [IPAMConfig]
        }
        struct Endpoint: Encodable {
            var Name: String
            var EndpointID: String
            var MacAddress: String
            var IPv4Address: String
            var IPv6Address = ""
        }
        var Name: String
        var Id: String
        var Created: String
        var Scope = "local"
        var Driver: String
        var EnableIPv6 = false
        var IPAM: IPAM
        var Internal: Bool
        var Attachable = false
        var Ingress = false
        var Containers: [String: Endpoint]
        var Options: [String: String]
        var Labels: [String: String]
    }

    func run() throws {
        let store = NetworkStore(root: global.stateRoot)
        var outputs: [Output] = []
        var failed = false
        for name in networks {
            guard
                let n = ((try? BridgeNetworks.validateName(name)) != nil ? store.network(name) : nil)
                    ?? store.networks().first(where: { $0.id.hasPrefix(name) })
            else {
                StandardStreams.writeError("berth: network \(name) not found\n")
                failed = true
                continue
            }
            var options = ["com.docker.network.bridge.name": n.bridge]
            if let mtu = n.mtu { options["com.docker.network.driver.mtu"] = String(mtu) }
            let endpoints = store.endpoints(of: n.name).map { e in
                (
                    e.containerID,
                    Output.Endpoint(
                        Name: e.containerName, EndpointID: e.hostInterface, MacAddress: e.macAddress,
                        IPv4Address: "\(e.address)/\(n.subnet.prefixLength)")
                )
            }
            outputs.append(
                Output(
                    Name: n.name, Id: n.id, Created: n.created, Driver: n.driver,
                    IPAM: .init(
                        Config: [
                            .init(
                                Subnet: n.subnet.description, Gateway: n.gateway.description,
                                IPRange: n.ipRange?.description)
                        ]),
                    Internal: n.internal, Containers: Dictionary(endpoints, uniquingKeysWith: { a, _ in a }),
                    Options: options, Labels: n.labels))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(outputs), as: UTF8.self))
        if failed { throw CommandFailure(status: 1) }
    }
}

struct NetworkRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one or more networks.", aliases: ["remove"])

    @OptionGroup var global: RootOptions
    @Argument var networks: [String]

    func run() throws {
        let bridges = BridgeNetworks(root: global.stateRoot)
        try forEachArgument(networks) { name in
            guard name != BridgeNetworks.defaultNetwork else {
                throw ContainerCommandError(
                    description:
                        "bridge is a pre-defined network and cannot be removed (system prune removes it when unused)")
            }
            try bridges.remove(name)
            return name + "\n"
        }
    }
}

struct NetworkPrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove all unused networks.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        guard
            force || Self.confirmed("WARNING! This will remove all custom networks not used by at least one container.")
        else { return }
        let removed = try Self.prune(root: global.stateRoot, includingDefault: false)
        if !removed.isEmpty { print("Deleted Networks:\n" + removed.joined(separator: "\n") + "\n") }
    }

    /// Removes every network without endpoints; the default one too with `includingDefault`
    /// (`system prune`: it is made again on first use) when the root has no container at all,
    /// not even one being made (which may be about to join it). Returns their names.
    static func prune(root: String, includingDefault: Bool) throws -> [String] {
        let bridges = BridgeNetworks(root: root)
        let pruneDefault = includingDefault && Files.names(in: root + "/containers").isEmpty
        var removed: [String] = []
        for network in bridges.store.networks()
        where (pruneDefault || network.name != BridgeNetworks.defaultNetwork)
            && bridges.store.endpoints(of: network.name).isEmpty
        {
            try bridges.remove(network.name)
            removed.append(network.name)
        }
        return removed
    }
}

struct NetworkConnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Connect a running container to a network.")

    @OptionGroup var global: RootOptions
    @Option(name: .customLong("alias"), help: "Add a network-scoped alias for the container.")
    var aliases: [String] = []
    @Option(name: .customLong("ip"), help: "IPv4 address (e.g. 172.30.100.104).")
    var ip: String?
    @Argument var network: String
    @Argument var container: String

    func run() throws {
        let root = global.stateRoot
        let target = try Container.lookup(container, root: root)
        guard target.state().status == .running else {
            throw ContainerCommandError(description: "container \(target.name) is not running")
        }
        var attachment = NetworkAttachmentSpec(name: network, aliases: aliases, ipv4Address: ip)
        if let ip, IPv4Address(ip) == nil { throw ContainerCommandError(description: "invalid IPv4 address: \(ip)") }
        attachment.macAddress = nil
        try ContainerNetworking(root: root).connect(target, to: attachment)
    }
}

struct NetworkDisconnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disconnect", abstract: "Disconnect a container from a network.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Force the container to disconnect.")
    var force = false
    @Argument var network: String
    @Argument var container: String

    func run() throws {
        let root = global.stateRoot
        let target = try Container.lookup(container, root: root)
        try ContainerNetworking(root: root).disconnect(target, from: network)
    }
}
