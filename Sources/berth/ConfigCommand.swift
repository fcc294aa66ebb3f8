import ArgumentParser
import Compose
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `berth config`: parse, resolve and render the compose model in canonical form, like
/// `docker compose config`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Parse, resolve and render the compose file in canonical format.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("format"), help: "Format the output. Values: [yaml | json]")
    var format: String = "yaml"

    @Flag(name: .customLong("services"), help: "Print the service names, one per line.")
    var services = false

    @Flag(name: .customLong("volumes"), help: "Print the volume names, one per line.")
    var volumes = false

    @Flag(name: .customLong("networks"), help: "Print the network names, one per line.")
    var networks = false

    @Flag(name: .customLong("profiles"), help: "Print the profile names, one per line.")
    var profiles = false

    @Flag(name: .customLong("images"), help: "Print the image names, one per line.")
    var images = false

    @Flag(
        name: [.customShort("q"), .customLong("quiet")], help: "Only validate the configuration, don't print anything.")
    var quiet = false

    @Flag(name: .customLong("no-interpolate"), help: "Don't interpolate environment variables.")
    var noInterpolate = false

    @Option(name: [.customShort("o"), .customLong("output")], help: "Save to file (default to stdout).")
    var output: String?

    @Argument(help: "Services to render (and what they depend on).")
    var serviceNames: [String] = []

    func validate() throws {
        guard format == "yaml" || format == "json" else {
            throw ValidationError("unsupported format \"\(format)\": use yaml or json")
        }
    }

    func run() throws {
        var options = ProjectOptions(
            files: global.files,
            projectName: global.projectName,
            profiles: global.profiles,
            envFiles: global.envFiles,
            projectDirectory: global.projectDirectory,
            interpolate: !noInterpolate,
            warn: { StandardStreams.writeError("WARN[0000] \($0)\n") })
        // The process ends right after printing: skip freeing the loader's trees.
        options.fastExit = true
        // --profiles lists every profile; --services and friends list the whole model.
        if !services && !volumes && !networks && !profiles && !images {
            options.services = serviceNames
        } else if profiles {
            options.profiles = ["*"]
        }
        let project = try ComposeLoader.load(options)
        if quiet { return }

        let text: String
        if services {
            text = lines(project.services.map(\.name))
        } else if volumes {
            text = lines(project.volumes.keys.sorted())
        } else if networks {
            text = lines(project.networks.keys.sorted())
        } else if profiles {
            let all = Set((project.services + project.disabledServices).flatMap(\.profiles))
            text = lines(all.sorted())
        } else if images {
            text = lines(project.services.map { $0.image ?? "\(project.name)-\($0.name)" })
        } else if format == "json" {
            text = project.canonicalJSON() + "\n"
        } else {
            // The YAML document is written as the bytes it was built in (it is the large one).
            try finish(project, try project.canonicalYAMLBytes())
        }
        try finish(project, Array(text.utf8))
    }

    /// Writes the output and exits: nothing is left to do, and freeing the project would only
    /// cost time (it is kept alive until the process ends).
    private func finish(_ project: Project, _ bytes: [UInt8]) throws -> Never {
        try withExtendedLifetime(project) {
            try emit(bytes)
            Glibc.exit(0)
        }
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            let data =
                raw.baseAddress.map {
                    Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: $0), count: raw.count, deallocator: .none)
                } ?? Data()
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: data) else {
                    throw ComposeError("cannot write \(output)")
                }
            } else {
                StandardStreams.write(raw, to: 1)
            }
        }
    }

    private func lines(_ items: [String]) -> String {
        items.map { $0 + "\n" }.joined()
    }
}
