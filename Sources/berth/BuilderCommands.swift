import ArgumentParser
import FoundationEssentials
import Images

/// `berth builder ...`, as `docker builder ...`.
struct BuilderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder", abstract: "Manage builds.", subcommands: [BuilderPrune.self])
}

/// `docker builder prune`: removes the build cache (the results of build steps that no image
/// needs, and the cache mounts of RUN --mount=type=cache).
struct BuilderPrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove build cache.")

    @OptionGroup var global: RootOptions

    @Flag(
        name: [.customShort("a"), .customLong("all")],
        help: "Remove all build cache, not just the entries of steps no tagged image ends on.")
    var all = false

    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not prompt for confirmation.")
    var force = false

    func run() throws {
        let warning =
            all
            ? "WARNING! This will remove all build cache."
            : "WARNING! This will remove all dangling build cache."
        guard force || SystemPrune.confirmed(warning) else { return }
        let reclaimed = try ImageStore(root: global.stateRoot).pruneBuildCache(all: all)
        print("Total reclaimed space: \(HumanFormat.size(reclaimed, precision: 4))")
    }
}
