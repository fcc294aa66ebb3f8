import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The dockerd the parity tests compare with: the host's when one answers on
/// /var/run/docker.sock, else one of the test's own when dockerd is installed (Debian's docker.io,
/// which scripts/setup installs): its own data root and socket in a temporary folder, no bridge,
/// no iptables rules, no forwarding, so it changes nothing on the host; stopped and removed when
/// the test ends.
final class DockerDaemon {
    static let systemSocket = "/var/run/docker.sock"
    let socket: String
    /// The private daemon's process and folder.
    private var process: Process?
    private var directory: String?

    var isPrivate: Bool { process != nil }
    var environment: [String: String] { ["DOCKER_HOST": "unix://" + socket] }

    static var dockerd: String? {
        ["/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    static var available: Bool { answers(systemSocket) || dockerd != nil }

    init() throws {
        if Self.answers(Self.systemSocket) {
            socket = Self.systemSocket
            return
        }
        guard let dockerd = Self.dockerd else { throw FixtureError("neither a dockerd answers nor is one installed") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "berth-dockerd-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        directory = dir
        socket = dir + "/docker.sock"
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: dockerd)
        daemon.arguments = [
            "--data-root", dir + "/data", "--exec-root", dir + "/exec", "--host", "unix://" + socket, "--pidfile",
            dir + "/docker.pid", "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
            "--ip-masq=false",
        ]
        daemon.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        daemon.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: Self.touch(dir + "/dockerd.log")))
        try daemon.run()
        process = daemon
        guard eventually(60, { Self.answers(self.socket) }) else {
            let log = (try? String(contentsOfFile: dir + "/dockerd.log", encoding: .utf8)) ?? ""
            throw FixtureError("the test's dockerd did not answer: \(log.suffix(2000))")
        }
    }

    private static func touch(_ path: String) -> String {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return path
    }

    deinit {
        guard let process, let directory else { return }
        process.terminate()
        if !eventually(30, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        // What a dockerd killed half-way may leave mounted under its root.
        _ = try? Command.run("/bin/umount", ["-R", "-l", directory + "/data"])
        _ = try? Command.run("/bin/umount", ["-R", "-l", directory + "/exec"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Whether something accepts a connection on `path`.
    static func answers(_ path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.utf8.enumerated() where i < buffer.count - 1 { buffer[i] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0
    }
}

/// berth's builds against Docker's (the host's dockerd, or the test's own): an image
/// berth built runs in Docker (`berth image save`, `docker load`), and the same Dockerfile built
/// by both gives the same files (path, type, mode, owner, size, link target) in the final root
/// filesystem. Everything made in Docker (images, containers, the build's cache records) and in
/// berth is removed at the end, pass or fail.
@Suite(.serialized, .enabled(if: DockerDaemon.available, "no dockerd answers, and none is installed"))
struct BuildDockerParityTests {
    typealias World = ContainerCLITests.World

    /// What the test made in Docker, removed when it goes: images by name, the images its builds
    /// labelled, and the build cache records that were not there before.
    final class Docker {
        let id = String(UUID().uuidString.prefix(8)).lowercased()
        var label: String { "berth-parity=\(id)" }
        var base: String { "berth-parity-busybox-\(id)" }
        var images: [String] = []
        let daemon: DockerDaemon
        var cacheBefore: Set<String> = []
        /// The client and environment of a BuildKit build (buildx, or DOCKER_BUILDKIT=1 with a
        /// client that has it built in); nil when none works: the classic builder then.
        var buildKit: (client: String, environment: [String: String])?

        init(tar: String, contextDirectory: String) throws {
            daemon = try DockerDaemon()
            cacheBefore = buildCache()
            try check(["import", tar, base])
            images.append(base)
            // A one-line build tells which builder works.
            let probe = contextDirectory + "/probe"
            try FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
            try "FROM \(base)\nLABEL \(label)\n".write(toFile: probe + "/Dockerfile", atomically: true, encoding: .utf8)
            for client in ["docker", "/usr/bin/docker"] {
                let result = try run(
                    ["build", "-q", "--label", label] + networkArguments + [probe], client: client,
                    environment: ["DOCKER_BUILDKIT": "1"])
                if result.status == 0 {
                    buildKit = (client, ["DOCKER_BUILDKIT": "1"])
                    break
                }
            }
        }

        /// A build's network: the test's own dockerd has no bridge.
        var networkArguments: [String] { daemon.isPrivate ? ["--network", "none"] : [] }

        func run(_ arguments: [String], client: String = "docker", environment: [String: String] = [:]) throws
            -> BerthProcess.Result
        {
            try Command.run(client, arguments, environment: environment.merging(daemon.environment) { a, _ in a })
        }

        @discardableResult
        func check(_ arguments: [String]) throws -> BerthProcess.Result {
            let result = try run(arguments)
            guard result.status == 0 else {
                throw FixtureError(
                    "docker \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
            }
            return result
        }

        /// `docker build` of `context` as `tag`, with BuildKit when it works.
        func build(_ context: String, tag: String) throws -> BerthProcess.Result {
            images.append(tag)
            let arguments = ["build", "--label", label, "-t", tag] + networkArguments + [context]
            if let buildKit {
                return try run(arguments, client: buildKit.client, environment: buildKit.environment)
            }
            return try run(arguments, environment: ["DOCKER_BUILDKIT": "0"])
        }

        /// The IDs of dockerd's build cache records (GET /system/df).
        func buildCache() -> Set<String> {
            guard
                let result = try? Command.run(
                    "curl", ["-sf", "--unix-socket", daemon.socket, "http://localhost/system/df?type=build-cache"]),
                result.status == 0,
                let json = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                let records = json["BuildCache"] as? [[String: Any]]
            else { return [] }
            return Set(records.compactMap { $0["ID"] as? String })
        }

        deinit {
            for image in images.reversed() { _ = try? run(["rmi", "-f", image]) }
            _ = try? run(["image", "prune", "-f", "--filter", "label=\(label)"])
            // A record goes only once nothing is built on it: the leaves first, pass by pass.
            for _ in 0..<20 {
                let left = buildCache().subtracting(cacheBefore)
                if left.isEmpty { break }
                for record in left { _ = try? run(["builder", "prune", "-a", "-f", "--filter", "id=\(record)"]) }
            }
        }
    }

    /// A listing of the root filesystem of `image` as root in a container of it: one line per
    /// path, "path|type|mode|uid|gid|size|target", with neither /proc, /sys and /dev nor the files
    /// a runtime puts in each container.
    static let listing = """
        find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -exec stat -c '%n|%F|%a|%u|%g|%s|%N' {} +
        """
    static let runtimeFiles: Set<String> = [
        "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/.dockerenv", "/etc/mtab", "/proc", "/sys", "/dev",
    ]

    /// Lines of `listing` as path -> [type, mode, uid, gid, size, target]: a directory's size is
    /// left out (it depends on the file system underneath), a link's target is what %N shows.
    static func parse(_ output: String) -> [String: [String]] {
        var files: [String: [String]] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: "|", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 7, !runtimeFiles.contains(fields[0]) else { continue }
            var target = ""
            if let arrow = fields[6].range(of: "' -> '") {
                target = String(fields[6][arrow.upperBound...].dropLast())
            }
            let size = fields[1] == "directory" ? "-" : fields[5]
            files[fields[0]] = [fields[1], fields[2], fields[3], fields[4], size, target]
        }
        return files
    }

    static let fieldNames = ["type", "mode", "uid", "gid", "size", "link target"]

    /// Where the two listings differ, one line each: "PATH: FIELD docker=X berth=Y", or a path
    /// only one side has.
    static func differences(docker: [String: [String]], berth: [String: [String]]) -> [String] {
        var out: [String] = []
        for path in Set(docker.keys).union(berth.keys).sorted() {
            switch (docker[path], berth[path]) {
            case (let d?, let b?):
                for i in d.indices where d[i] != b[i] {
                    out.append("\(path): \(fieldNames[i]) docker=\(d[i]) berth=\(b[i])")
                }
            case (let d?, nil): out.append("\(path): only in docker's (\(d.joined(separator: " ")))")
            case (nil, let b?): out.append("\(path): only in berth's (\(b.joined(separator: " ")))")
            default: break
            }
        }
        return out
    }

    static func write(_ files: [String: String], modes: [String: Int] = [:], in directory: String) throws {
        for (name, text) in files {
            let url = URL(fileURLWithPath: directory + "/" + name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes(
                [.posixPermissions: modes[name] ?? 0o644], ofItemAtPath: url.path)
        }
    }

    @Test func anImageBerthBuiltRunsInDockerAfterSaveAndLoad() throws {
        let world = try World()
        let docker = try Docker(tar: world.dir.path + "/busybox.tar", contextDirectory: world.dir.path)
        let tag = "berth-parity-saved-\(docker.id)"
        let context = world.dir.path + "/saved"
        try Self.write(
            [
                "Dockerfile": """
                FROM busybox
                WORKDIR /app
                COPY message.txt ./
                RUN echo "built by berth" >> message.txt && ln -s message.txt link
                ENV GREETING=loaded
                CMD ["sh", "-c", "cat /app/link; echo $GREETING in $(pwd)"]
                """,
                "message.txt": "hello from the context\n",
            ], in: context)
        let built = try world.berth(["build", "--progress", "plain", "-t", tag, context])
        #expect(built.status == 0, "\(built.stderr)")
        let expected = "hello from the context\nbuilt by berth\nloaded in /app\n"
        #expect(try world.berth(["container", "run", "--rm", tag]).stdout == expected)

        let archive = world.dir.path + "/saved.tar"
        let saved = try world.berth(["image", "save", "-o", archive, tag])
        #expect(saved.status == 0, "\(saved.stderr)")
        docker.images.append(tag)
        let loaded = try docker.run(["load", "-i", archive])
        #expect(loaded.status == 0, "\(loaded.stderr)")
        #expect(loaded.stdout.contains(tag), "\(loaded.stdout)")
        let ran = try docker.run(["run", "--rm", tag])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout == expected)
        try BuildCLITests.expectNothingLeft(world)
    }

    @Test func theSameDockerfileGivesTheSameFilesAsDockerBuild() throws {
        let world = try World()
        let docker = try Docker(tar: world.dir.path + "/busybox.tar", contextDirectory: world.dir.path)
        // Both sides build FROM the same busybox, by the same name.
        #expect(try world.berth(["image", "tag", "busybox", docker.base]).status == 0)
        // COPY --chmod needs BuildKit; the classic builder gets a RUN chmod instead.
        let chmod = docker.buildKit != nil ? "--chmod=640 " : ""
        let runChmod = docker.buildKit != nil ? "" : "RUN chmod 640 etc/settings.conf\n"
        let dockerfile = """
            FROM \(docker.base) AS build
            WORKDIR /src
            COPY app/ ./app/
            RUN mkdir -p /out/bin /out/share \\
             && cp app/hello.sh /out/bin/hello && chmod 750 /out/bin/hello \\
             && echo data > /out/share/data.txt \\
             && ln -s ../share/data.txt /out/bin/data-link \\
             && touch /out/share/gone && rm /out/share/gone

            FROM \(docker.base)
            ENV APP_HOME=/opt/app GREETING=parity
            WORKDIR /opt/app
            COPY --from=build /out/ ./
            COPY --chown=app:app \(chmod)config/settings.conf ./etc/settings.conf
            \(runChmod)COPY --chown=1000:50 app/ ./src/
            RUN mkdir -p scratch && echo x > scratch/a && rm -rf scratch \\
             && echo keep > kept.txt && ln -s /opt/app/kept.txt kept-link \\
             && rm /bin/vi && rm -rf /var/www
            USER app
            WORKDIR /home/app/work
            RUN echo "made by $(id -un)" > note.txt
            CMD ["sh", "-c", "echo $GREETING from $(id -un) in $(pwd); cat /opt/app/bin/data-link note.txt"]
            """
        let context = world.dir.path + "/parity"
        try Self.write(
            [
                "Dockerfile": dockerfile, "app/hello.sh": "#!/bin/sh\necho hello\n", "app/lib/util.sh": "util=1\n",
                "app/empty.txt": "", "app/NOTES.md": "left out by .dockerignore\n",
                "config/settings.conf": "setting = 1\n", ".dockerignore": "**/*.md\n",
            ], modes: ["app/hello.sh": 0o755, "app/empty.txt": 0o600], in: context)

        let tag = "berth-parity-files-\(docker.id)"
        let dockerBuilt = try docker.build(context, tag: tag)
        try #require(dockerBuilt.status == 0, "docker build: \(dockerBuilt.stderr)")
        let berthBuilt = try world.berth(["build", "--progress", "plain", "-t", tag, context])
        try #require(berthBuilt.status == 0, "berth build: \(berthBuilt.stderr)")
        print("docker's builder: \(docker.buildKit.map { "BuildKit (\($0.client))" } ?? "classic")")

        // The default command: the same output on both.
        let dockerSays = try docker.run(["run", "--rm", tag])
        let berthSays = try world.berth(["container", "run", "--rm", tag])
        #expect(dockerSays.stdout == "parity from app in /home/app/work\ndata\nmade by app\n", "\(dockerSays.stderr)")
        #expect(berthSays.stdout == dockerSays.stdout, "\(berthSays.stderr)")

        // The root filesystems, listed as root from inside a container of each.
        let dockerList = try docker.run(["run", "--rm", "-u", "0", tag, "sh", "-c", Self.listing])
        let berthList = try world.berth(["container", "run", "--rm", "-u", "0", tag, "sh", "-c", Self.listing])
        #expect(dockerList.status == 0, "\(dockerList.stderr)")
        #expect(berthList.status == 0, "\(berthList.stderr)")
        let dockerFiles = Self.parse(dockerList.stdout)
        let berthFiles = Self.parse(berthList.stdout)
        #expect(dockerFiles["/opt/app/etc/settings.conf"]?.prefix(4) == ["regular file", "640", "1000", "1000"])
        #expect(dockerFiles["/bin/vi"] == nil && dockerFiles["/var/www"] == nil)
        #expect(dockerFiles.count > 200, "\(dockerList.stdout.prefix(2000))")
        let differences = Self.differences(docker: dockerFiles, berth: berthFiles)
        #expect(
            differences.isEmpty,
            "berth's root filesystem differs from docker's:\n\(differences.joined(separator: "\n"))")
        try BuildCLITests.expectNothingLeft(world)
    }
}
