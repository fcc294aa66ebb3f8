import ArgumentParser
import FoundationEssentials
import Images
import Support

#if canImport(Glibc)
    import Glibc
#endif

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
        // A running build holds ROOT/builder/lock shared, and its steps' images are named by
        // nothing but their cache entries until it ends: pruning them under it deletes the layers
        // its next step (or its RUN container's overlay) stands on. Builds that start meanwhile
        // wait for the prune.
        let builder = global.stateRoot + "/builder"
        try? Files.makeDirectories(builder, mode: 0o700)
        let lock = open(builder + "/lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        defer { if lock >= 0 { close(lock) } }
        if lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0 {
            throw ImageCommandError(
                description: "a build is running on this root: prune the build cache once it is over")
        }
        let reclaimed = try ImageStore(root: global.stateRoot).pruneBuildCache(all: all)
        print("Total reclaimed space: \(HumanFormat.size(reclaimed, precision: 4))")
    }
}
