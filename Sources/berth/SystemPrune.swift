import ArgumentParser
import ContainerNetworking
import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth system ...`, named like `docker system ...`.
struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Manage berth's state.",
        subcommands: [SystemPrune.self, SystemDiskUsage.self])
}

/// `docker system prune`: removes every container that is not running, what berth processes
/// that were killed while making a container left of it (a name and a directory without a
/// record, a cgroup: see Container.reclaimLeftovers) except what a live berth process is still
/// making, what removed containers left on networks, and the networks no container uses (the
/// root's default network too once it has no container: it is made again on first use). Images
/// stay (they are shared by the projects on this host).
struct SystemPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove stopped containers and what interrupted berth processes left.")

    @OptionGroup var global: RootOptions
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        guard
            force
                || Self.confirmed(
                    "WARNING! This will remove:\n  - all stopped containers\n"
                        + "  - what interrupted berth processes left of containers they were making\n"
                        + "  - all networks not used by at least one container\n")
        else { return }
        let root = global.stateRoot
        var deleted: [String] = []
        var failed = false
        let networking = ContainerNetworking(root: root)
        for container in Container.list(root: root) where !container.isRunning {
            do {
                try networking.remove(container, force: false)
                deleted.append(container.id)
            } catch {
                StandardStreams.writeError("berth: \(error)\n")
                failed = true
            }
        }
        do {
            deleted += try Container.reclaimLeftovers(root: root)
            try networking.pruneLeftovers()
            // Docker's system prune removes unused networks too; berth's default one as well,
            // since it belongs to this root and is made again on first use.
            let networks = try NetworkPrune.prune(root: root, includingDefault: true)
            if !networks.isEmpty { print("Deleted Networks:\n" + networks.joined(separator: "\n") + "\n") }
        } catch {
            StandardStreams.writeError("berth: \(error)\n")
            failed = true
        }
        if !deleted.isEmpty { print("Deleted Containers:\n" + deleted.joined(separator: "\n") + "\n") }
        if failed { throw CommandFailure(status: 1) }
    }
}

extension ParsableCommand {
    /// Docker's prompt before a prune: the warning, then "Are you sure...?"; anything but y or
    /// yes (or no answer) leaves everything as it was.
    static func confirmed(_ warning: String) -> Bool {
        print(warning)
        StandardStreams.write("Are you sure you want to continue? [y/N] ", to: 1)
        let answer = (readLine() ?? "").trimmingWhitespace().lowercased()
        return answer == "y" || answer == "yes"
    }
}
