import Foundation
import TestSupport
import Testing

/// `image load`, `image save`, and the image housekeeping commands (ls filters, history, prune,
/// rm with containers, system df), end to end as a user types them (root; own BERTH_ROOT).
@Suite(.serialized) struct ImageArchiveCLITests {
    /// A BERTH_ROOT with busybox imported, a second root left empty (where bad archives must
    /// leave nothing), and a work folder; all removed when the test ends, pass or fail.
    final class World {
        let dir: TemporaryDirectory
        var root: String { dir.path + "/root" }
        var emptyRoot: String { dir.path + "/empty" }
        var busyboxTar: String { dir.path + "/busybox.tar" }

        init() throws {
            dir = try TemporaryDirectory("berth-cli-archive")
            try sh("\"$REPO/scripts/busybox-image\" \"$W/busybox.tar\"")
            let imported = try berth(["image", "import", busyboxTar, "busybox"])
            guard imported.status == 0 else { throw CocoaError(.fileReadCorruptFile) }
        }

        func berth(_ arguments: [String], root: String? = nil, stdin: String? = nil) throws -> BerthProcess.Result {
            try BerthProcess.run(arguments, root: root ?? self.root, stdin: stdin)
        }

        /// Runs a shell script with $W (the work folder), $REPO, $BERTH and $ROOT set; throws when
        /// it fails, with its error output.
        @discardableResult
        func sh(_ script: String) throws -> String {
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-ec", script]
            var env = ProcessInfo.processInfo.environment
            env["W"] = dir.path
            env["REPO"] = repo
            env["BERTH"] = BerthProcess.executable
            env["ROOT"] = root
            env["BERTH_TEST_PAUSE_AT"] = ""
            process.environment = env
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let output = out.fileHandleForReading.readDataToEndOfFile()
            let errors = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ScriptFailure(description: "script failed: \(String(decoding: errors, as: UTF8.self))")
            }
            return String(decoding: output, as: UTF8.self)
        }

        func inspect(_ image: String, root: String? = nil) throws -> [String: Any] {
            let result = try berth(["image", "inspect", image], root: root)
            let all = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
            return try #require(all?.first, "\(result.stderr)")
        }

        /// Whether a root's store holds no image, blob or unpacked layer.
        func storeIsEmpty(_ root: String) throws -> Bool {
            let blobs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/images/blobs/sha256")) ?? []
            let layers = (try? FileManager.default.contentsOfDirectory(atPath: root + "/images/layers/sha256")) ?? []
            let ids = try berth(["image", "ls", "-q"], root: root).stdout
            return blobs.isEmpty && layers.isEmpty && ids.isEmpty
        }

        deinit {
            for r in [root, emptyRoot] {
                if let ps = try? berth(["container", "ps", "-a", "-q"], root: r) {
                    for id in ps.stdout.split(separator: "\n") {
                        _ = try? berth(["container", "rm", "-f", String(id)], root: r)
                    }
                }
                _ = try? berth(["system", "prune", "-f"], root: r)
            }
        }
    }

    struct ScriptFailure: Error, CustomStringConvertible {
        var description: String
    }

    static var hostArchitecture: String {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return machine == "x86_64" ? "amd64" : machine == "aarch64" ? "arm64" : machine
    }

    // MARK: save and load

    @Test func saveThenLoadGivesTheSameImage() throws {
        let world = try World()
        #expect(try world.berth(["image", "tag", "busybox", "busybox:v2"]).status == 0)
        let before = try world.inspect("busybox")
        let save = try world.berth([
            "image", "save", "-o", world.dir.path + "/saved.tar", "busybox:latest", "busybox:v2",
        ])
        #expect(save.status == 0, "\(save.stderr)")
        // Nothing but the archive is left beside it.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: world.dir.path).filter { $0.hasPrefix(".") }.isEmpty)

        let load = try world.berth(["image", "load", "-i", world.dir.path + "/saved.tar"], root: world.emptyRoot)
        #expect(load.status == 0, "\(load.stderr)")
        #expect(load.stdout == "Loaded image: busybox:latest\nLoaded image: busybox:v2\n")
        let after = try world.inspect("busybox", root: world.emptyRoot)
        #expect(after["Id"] as? String == before["Id"] as? String)
        #expect(after["RepoTags"] as? [String] == ["busybox:latest", "busybox:v2"])
        #expect(
            (after["RootFS"] as? [String: Any])?["Layers"] as? [String]
                == (before["RootFS"] as? [String: Any])?["Layers"] as? [String])
        #expect(after["RepoDigests"] as? [String] == before["RepoDigests"] as? [String])
        #expect(after["Config"] as? NSDictionary == before["Config"] as? NSDictionary)

        // Loading again changes nothing; -q says nothing.
        let again = try world.berth(["load", "-q", "--input", world.dir.path + "/saved.tar"], root: world.emptyRoot)
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again.stderr)")
        #expect(try world.berth(["image", "ls", "-q"], root: world.emptyRoot).stdout.split(separator: "\n").count == 1)

        let run = try world.berth(
            ["container", "run", "--rm", "--network", "none", "busybox:v2", "sh", "-c", "echo loaded"],
            root: world.emptyRoot)
        #expect(run.status == 0 && run.stdout == "loaded\n", "\(run.stderr)")
    }

    @Test func saveToStandardOutputLoadsFromStandardInput() throws {
        let world = try World()
        let out = try world.sh(
            "BERTH_ROOT=\"$ROOT\" \"$BERTH\" save busybox | BERTH_ROOT=\"$W/empty\" \"$BERTH\" load")
        #expect(out == "Loaded image: busybox:latest\n")
        // By ID: the image without names.
        let id = try world.berth(["image", "ls", "-q", "--no-trunc"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        try world.sh("\"$BERTH\" --root \"$ROOT\" save \(id) | gzip > \"$W/byid.tar.gz\"")
        try world.sh("rm -rf \"$W/empty\"")
        let load = try world.berth(["image", "load", "-i", world.dir.path + "/byid.tar.gz"], root: world.emptyRoot)
        #expect(load.stdout == "Loaded image ID: \(id)\n", "\(load.stderr)")
        // A terminal is refused, as Docker does (here: stdout is a pipe, so only the flag check).
        let missing = try world.berth(["image", "save", "-o", world.dir.path + "/x.tar", "nope"])
        #expect(missing.status == 1 && missing.stderr == "berth: image not found: nope\n")
        #expect(!FileManager.default.fileExists(atPath: world.dir.path + "/x.tar"))
    }

    @Test func skopeoReadsTheSavedArchive() throws {
        let world = try World()
        #expect(try world.berth(["image", "save", "-o", world.dir.path + "/saved.tar", "busybox"]).status == 0)
        try world.sh("skopeo --insecure-policy copy -q docker-archive:\"$W/saved.tar\" oci:\"$W/oci\":busybox")
        let index = try String(contentsOfFile: world.dir.path + "/oci/index.json", encoding: .utf8)
        #expect(index.contains("busybox"))
        // And skopeo's OCI archive of it loads back.
        try world.sh(
            "skopeo --insecure-policy copy -q oci:\"$W/oci\":busybox oci-archive:\"$W/oci.tar\":busybox:skopeo")
        let load = try world.berth(["image", "load", "-i", world.dir.path + "/oci.tar"], root: world.emptyRoot)
        #expect(load.status == 0, "\(load.stderr)")
    }

    /// A docker-save archive in the legacy layout (`<id>/layer.tar`), two layers, the second with
    /// a whiteout and an opaque directory, and a history with an empty layer.
    static let legacyArchive = """
        cd "$W"; rm -rf legacy l1 l2; mkdir -p legacy l1 l2/dir
        tar -C l1 -xf busybox.tar
        echo one > l1/file; echo keep > l1/keep; mkdir -p l1/dir; echo old > l1/dir/old
        tar -C l1 --numeric-owner -cf layer1.tar .
        touch l2/.wh.file l2/dir/.wh..wh..opq; echo new > l2/dir/new
        tar -C l2 --numeric-owner -cf layer2.tar .
        d1=$(sha256sum layer1.tar | cut -d' ' -f1); d2=$(sha256sum layer2.tar | cut -d' ' -f1)
        D2=${D2:-$d2}
        for i in 1 2; do id=$(echo $i | sha256sum | cut -d' ' -f1); mkdir legacy/$id
          mv layer$i.tar legacy/$id/layer.tar; echo 1.0 > legacy/$id/VERSION; eval l$i=$id; done
        printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"created":"2024-01-03T00:00:00Z",\
        "rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[\
        {"created":"2024-01-01T00:00:00Z","created_by":"ADD busybox /"},\
        {"created":"2024-01-02T00:00:00Z","created_by":"/bin/sh -c #(nop)  CMD [\\"sh\\"]","empty_layer":true},\
        {"created":"2024-01-03T00:00:00Z","created_by":"RUN rm /file","comment":"second"}]}' \
          "$ARCH" "$d1" "$D2" > config.json
        c=$(sha256sum config.json | cut -d' ' -f1); mv config.json legacy/$c.json
        printf '[{"Config":"%s.json","RepoTags":["legacy:1.0"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' \
          $c $l1 $l2 > legacy/manifest.json
        printf '{"legacy":{"1.0":"%s"}}' $l2 > legacy/repositories
        tar -C legacy -cf legacy.tar .
        """

    /// docker save up to Docker 24 writes a layer that repeats an earlier one as a symbolic link
    /// to that one's layer.tar; the link is followed inside the archive, never out of it.
    @Test func legacyArchiveWithARepeatedLayerLink() throws {
        let world = try World()
        try world.sh(
            """
            cd "$W"; rm -rf rep t; mkdir -p rep/a rep/b t; tar -C t -xf busybox.tar
            tar -C t --numeric-owner -cf rep/a/layer.tar .; ln -s ../a/layer.tar rep/b/layer.tar
            d=$(sha256sum rep/a/layer.tar | cut -d' ' -f1)
            printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},\
            "rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' "\(Self.hostArchitecture)" $d $d > rep/c.json
            printf '[{"Config":"c.json","RepoTags":["repeat:1"],"Layers":["a/layer.tar","b/layer.tar"]}]' \
              > rep/manifest.json
            tar -C rep -cf repeat.tar .
            rm rep/b/layer.tar; ln -s ../../../etc/passwd rep/b/layer.tar; tar -C rep -cf outside.tar .
            rm rep/b/layer.tar; ln -s ../a rep/b/layer.tar; tar -C rep -cf todir.tar .
            """)
        let load = try world.berth(["load", "-i", world.dir.path + "/repeat.tar"], root: world.root)
        #expect(load.status == 0 && load.stdout == "Loaded image: repeat:1\n", "\(load.stderr)")
        let run = try world.berth(
            ["container", "run", "--rm", "--network", "none", "repeat:1", "true"], root: world.root)
        #expect(run.status == 0, "\(run.stderr)")
        try expectRefused(world, "outside.tar", "is a symbolic link out of the archive")
        try expectRefused(world, "todir.tar", "which is not a regular file of the archive")
    }

    @Test func legacyDockerArchiveWithWhiteouts() throws {
        let world = try World()
        try world.sh("ARCH=\(Self.hostArchitecture)\n" + Self.legacyArchive)
        let load = try world.berth(["load", "-i", world.dir.path + "/legacy.tar"], root: world.emptyRoot)
        #expect(load.status == 0 && load.stdout == "Loaded image: legacy:1.0\n", "\(load.stderr)")
        let run = try world.berth(
            [
                "container", "run", "--rm", "--network", "none", "legacy:1.0", "sh", "-c",
                "test ! -e /file && cat /keep && ls /dir",
            ], root: world.emptyRoot)
        #expect(run.status == 0 && run.stdout == "keep\nnew\n", "\(run.stderr)")

        // history: newest first, the image's ID on top, the CMD step with 0B.
        let history = try world.berth(["image", "history", "legacy:1.0"], root: world.emptyRoot)
        let lines = history.stdout.split(separator: "\n")
        #expect(lines.count == 4, "\(history.stdout)\(history.stderr)")
        #expect(lines.first?.hasPrefix("IMAGE") == true && lines.first?.contains("CREATED BY") == true)
        let id = try #require(try world.inspect("legacy:1.0", root: world.emptyRoot)["Id"] as? String)
        #expect(lines[1].hasPrefix(String(id.dropFirst(7).prefix(12))) && lines[1].hasSuffix("second"))
        #expect(lines[2].hasPrefix("<missing>") && lines[2].contains("0B") && lines[2].contains("CMD"))
        #expect(lines[3].contains("ADD busybox /"))
        // -q: a line per step, as Docker's.
        #expect(
            try world.berth(["history", "-q", "legacy:1.0"], root: world.emptyRoot).stdout
                == String(id.dropFirst(7).prefix(12)) + "\n<missing>\n<missing>\n")
        #expect(try world.berth(["history", "-H", "legacy:1.0"], root: world.emptyRoot).status == 0)
        let full = try world.berth(
            ["image", "history", "--no-trunc", "--no-human", "legacy:1.0"], root: world.emptyRoot)
        #expect(full.stdout.contains(id) && full.stdout.contains("2024-01-02T00:00:00.000Z"), "\(full.stderr)")
    }

    @Test func ociArchiveWithANestedIndexLoadsTheHostPlatform() throws {
        let world = try World()
        let host = Self.hostArchitecture
        let other = host == "amd64" ? "arm64" : "amd64"
        try world.sh(
            """
            cd "$W"; mkdir -p oci/blobs/sha256 other
            blob() { h=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" oci/blobs/sha256/$h; echo $h; }
            size() { stat -c %s oci/blobs/sha256/$1; }
            gzip -c busybox.tar > host.tar.gz; dh=$(sha256sum busybox.tar | cut -d' ' -f1); lh=$(blob host.tar.gz)
            echo other > other/marker; tar -C other -cf other.tar .; do=$(sha256sum other.tar | cut -d' ' -f1)
            lo=$(blob other.tar)
            manifest() {  # ARCH DIFFID LAYER MEDIATYPE: prints the manifest's digest
              printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' $1 $2 > c.json
              c=$(blob c.json)
              printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' $c $(size $c) $4 $3 $(size $3) > m.json
              blob m.json
            }
            m_host=$(manifest $HOST $dh $lh application/vnd.oci.image.layer.v1.tar+gzip)
            m_other=$(manifest $OTHER $do $lo application/vnd.oci.image.layer.v1.tar)
            printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}]}' $m_other $(size $m_other) $OTHER $m_host $(size $m_host) $HOST > i.json
            i=$(blob i.json)
            printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/multi:1","org.opencontainers.image.ref.name":"1"}}]}' $i $(size $i) > oci/index.json
            echo '{"imageLayoutVersion":"1.0.0"}' > oci/oci-layout
            tar -C oci -czf multi.tar.gz .
            """.replacingOccurrences(of: "$HOST", with: host).replacingOccurrences(of: "$OTHER", with: other))
        let load = try world.berth(["image", "load", "-i", world.dir.path + "/multi.tar.gz"], root: world.emptyRoot)
        #expect(load.status == 0 && load.stdout == "Loaded image: multi:1\n", "\(load.stderr)")
        #expect(try world.inspect("multi:1", root: world.emptyRoot)["Architecture"] as? String == host)
        let run = try world.berth(
            ["container", "run", "--rm", "--network", "none", "multi:1", "sh", "-c", "test ! -e /marker && echo host"],
            root: world.emptyRoot)
        #expect(run.stdout == "host\n", "\(run.stderr)")
    }

    // MARK: bad archives leave nothing

    /// Loads `file` into the empty root and expects one `berth:` line containing `words`, a
    /// failure, and a store with nothing in it.
    func expectRefused(
        _ world: World, _ file: String, _ words: String, sourceLocation: SourceLocation = #_sourceLocation
    )
        throws
    {
        let load = try world.berth(["image", "load", "-i", world.dir.path + "/" + file], root: world.emptyRoot)
        #expect(load.status != 0, sourceLocation: sourceLocation)
        #expect(
            load.stderr.hasPrefix("berth: ") && load.stderr.filter { $0 == "\n" }.count == 1,
            "\(load.stderr)", sourceLocation: sourceLocation)
        #expect(load.stderr.contains(words), "\(load.stderr)", sourceLocation: sourceLocation)
        #expect(try world.storeIsEmpty(world.emptyRoot), sourceLocation: sourceLocation)
        let tmp = (try? FileManager.default.contentsOfDirectory(atPath: world.emptyRoot + "/images/tmp")) ?? []
        #expect(tmp.isEmpty, "\(tmp)", sourceLocation: sourceLocation)
    }

    @Test func damagedArchivesAreRefusedWhole() throws {
        let world = try World()
        #expect(try world.berth(["image", "save", "-o", world.dir.path + "/saved.tar", "busybox"]).status == 0)
        try world.sh(
            """
            cd "$W"; head -c 5000 /dev/urandom > random.bin
            gzip -c saved.tar > s.tar.gz; head -c $(( $(stat -c %s s.tar.gz) / 2 )) s.tar.gz > truncated.tar.gz
            mkdir x; tar -C x -xf saved.tar
            m=$(tr ',' '\\n' < x/manifest.json | grep -o 'blobs/sha256/[0-9a-f]*' | tail -1)
            printf 'tampered' >> x/$m; tar -C x -cf tampered.tar .
            """)
        try expectRefused(world, "random.bin", "is not a tar archive")
        try expectRefused(world, "truncated.tar.gz", "truncated gzip input")
        try expectRefused(world, "tampered.tar", "the content is damaged")

        try world.sh("ARCH=\(Self.hostArchitecture) D2=\(String(repeating: "ab", count: 32))\n" + Self.legacyArchive)
        try expectRefused(world, "legacy.tar", "sha256:" + String(repeating: "ab", count: 32))

        try world.sh(
            """
            cd "$W"; mkdir -p h; cd h; echo '[]' > manifest.json; echo x > evil
            tar -P -cf ../dotdot.tar --transform 's,^evil,../evil,' manifest.json evil
            tar -P -cf ../absolute.tar --transform 's,^evil,/tmp/evil,' manifest.json evil
            ln -s /etc/passwd link; tar -cf ../symlink.tar manifest.json link
            printf '[{"Config":"../../etc/passwd","Layers":[]}]' > manifest.json; tar -cf ../escape.tar manifest.json
            head -c 9000000 /dev/zero > manifest.json; tar -cf ../huge.tar manifest.json
            """)
        try expectRefused(world, "dotdot.tar", "leaves the archive with '..'")
        try expectRefused(world, "absolute.tar", "is an absolute path")
        try expectRefused(world, "symlink.tar", "is a symbolic link")
        try expectRefused(world, "escape.tar", "leaves the archive with '..'")
        try expectRefused(world, "huge.tar", "larger than 8 MiB")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/evil"))
    }

    // MARK: ls, prune, rm, df

    @Test func listDigestsAndFilters() throws {
        let world = try World()
        #expect(try world.berth(["image", "tag", "busybox", "busybox:1.36"]).status == 0)
        #expect(try world.berth(["image", "tag", "busybox", "other/box:2"]).status == 0)
        #expect(try world.berth(["image", "import", world.busyboxTar]).status == 0)

        func rows(_ filters: [String]) throws -> [String] {
            let ls = try world.berth(["image", "ls"] + filters.flatMap { ["-f", $0] })
            #expect(ls.status == 0, "\(ls.stderr)")
            return ls.stdout.split(separator: "\n").dropFirst().map {
                $0.split(separator: " ", omittingEmptySubsequences: true).prefix(2).joined(separator: ":")
            }
        }
        #expect(try rows(["reference=busy*"]).sorted() == ["busybox:1.36", "busybox:latest"])
        #expect(try rows(["reference=busybox:1*"]) == ["busybox:1.36"])
        #expect(try rows(["reference=*/box"]) == ["other/box:2"])
        #expect(try rows(["reference=box"]).isEmpty)
        #expect(try rows(["dangling=true"]) == ["<none>:<none>"])
        #expect(try rows(["dangling=false"]).count == 3)
        #expect(try rows(["dangling=false", "reference=other/*"]) == ["other/box:2"])
        #expect(try world.berth(["image", "ls", "-q", "--filter", "dangling=true"]).stdout.count == 13)
        #expect(try world.berth(["image", "ls", "-f", "colour=red"]).status != 0)

        let digests = try world.berth(["image", "ls", "--digests", "-f", "reference=busybox:latest"])
        let inspect = try world.inspect("busybox")
        let repoDigest = try #require((inspect["RepoDigests"] as? [String])?.first)
        #expect(digests.stdout.split(separator: "\n").first?.contains("DIGEST") == true)
        #expect(digests.stdout.contains(String(repoDigest.split(separator: "@")[1])), "\(digests.stdout)")
    }

    @Test func pruneKeepsWhatContainersUse() throws {
        let world = try World()
        #expect(try world.berth(["image", "import", world.busyboxTar]).status == 0)
        #expect(try world.berth(["image", "import", world.busyboxTar, "spare"]).status == 0)
        #expect(try world.berth(["image", "ls", "-q"]).stdout.split(separator: "\n").count == 3)

        // Without -f, only "y" goes ahead.
        let declined = try world.berth(["image", "prune"], stdin: "n\n")
        #expect(declined.stdout.contains("WARNING! This will remove all dangling images."))
        #expect(declined.stdout.contains("Are you sure you want to continue? [y/N]"))
        #expect(try world.berth(["image", "ls", "-q"]).stdout.split(separator: "\n").count == 3)

        let dangling = try world.berth(["image", "prune"], stdin: "y\n")
        #expect(dangling.status == 0, "\(dangling.stderr)")
        #expect(dangling.stdout.contains("Deleted Images:\ndeleted: sha256:"))
        #expect(dangling.stdout.contains("Total reclaimed space: "))
        #expect(try world.berth(["image", "ls", "-f", "dangling=true", "-q"]).stdout.isEmpty)

        let create = try world.berth(["container", "create", "--network", "none", "busybox", "true"])
        #expect(create.status == 0, "\(create.stderr)")
        let all = try world.berth(["image", "prune", "-a", "-f"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("untagged: spare:latest\ndeleted: sha256:"), "\(all.stdout)")
        #expect(!all.stdout.contains("busybox"))
        let left = try world.berth(["image", "ls"]).stdout
        #expect(left.contains("busybox") && !left.contains("spare"))
        // Nothing left to prune.
        #expect(try world.berth(["image", "prune", "-a", "-f"]).stdout == "Total reclaimed space: 0B\n")
    }

    @Test func removeIsRefusedWhileAContainerUsesTheImage() throws {
        let world = try World()
        let create = try world.berth(["container", "create", "--network", "none", "--name", "user", "busybox", "true"])
        #expect(create.status == 0, "\(create.stderr)")
        let container = String(create.stdout.trimmingCharacters(in: .whitespacesAndNewlines).prefix(12))
        let id = try #require(try world.inspect("busybox")["Id"] as? String)
        let short = String(id.dropFirst(7).prefix(12))

        let refused = try world.berth(["image", "rm", "busybox"])
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains(
                "Error response from daemon: conflict: unable to remove repository reference \"busybox\" "
                    + "(must force) - container \(container) is using its referenced image \(short)"),
            "\(refused.stderr)")
        let byID = try world.berth(["rmi", short])
        #expect(byID.status == 1 && byID.stderr.contains("unable to delete \(short) (must be forced)"))
        #expect(try world.berth(["image", "ls", "-q"]).stdout == short + "\n")

        // A second reference goes without -f: the image stays named.
        #expect(try world.berth(["image", "tag", "busybox", "copy"]).status == 0)
        #expect(try world.berth(["image", "rm", "copy"]).stdout == "Untagged: copy:latest\n")

        let forced = try world.berth(["image", "rm", "-f", "busybox"])
        #expect(forced.status == 0 && forced.stdout == "Untagged: busybox:latest\n", "\(forced.stderr)")
        // The image stays, untagged, while the container is there; the container still starts.
        #expect(try world.berth(["image", "ls", "-q", "-f", "dangling=true"]).stdout == short + "\n")
        #expect(try world.berth(["container", "start", "user"]).status == 0)
        #expect(try world.berth(["container", "wait", "user"]).stdout == "0\n")
        #expect(try world.berth(["container", "rm", "user"]).status == 0)
        #expect(try world.berth(["image", "prune", "-f"]).stdout.contains("deleted: \(id)"))
        #expect(try world.storeIsEmpty(world.root))
    }

    /// By ID, an image a running container uses is not removed, even with -f (Docker's "cannot be
    /// forced"); a tag moved to another image leaves the old one untagged, and its container runs.
    @Test func runningContainersKeepTheirImage() throws {
        let world = try World()
        let run = try world.berth([
            "container", "run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "60",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let id = try #require(try world.inspect("busybox")["Id"] as? String)
        let short = String(id.dropFirst(7).prefix(12))
        let forced = try world.berth(["rmi", "-f", short])
        #expect(
            forced.status == 1 && forced.stderr.contains("unable to delete \(short) (cannot be forced)"),
            "\(forced.stderr)")
        #expect(try world.berth(["image", "ls", "-q"]).stdout == short + "\n")
        #expect(try world.berth(["container", "rm", "-f", "up"]).status == 0)

        // A new busybox under the same name: the old image stays, untagged, for its container.
        let create = try world.berth(["container", "create", "--network", "none", "--name", "old", "busybox", "true"])
        #expect(create.status == 0, "\(create.stderr)")
        try world.sh(
            "cd \"$W\"; mkdir -p extra; echo new > extra/new; cp busybox.tar newer.tar; tar -rf newer.tar -C extra new")
        #expect(try world.berth(["image", "import", world.dir.path + "/newer.tar", "busybox"]).status == 0)
        #expect(try world.berth(["image", "ls", "-q", "-f", "dangling=true"]).stdout == short + "\n")
        #expect(try world.berth(["image", "prune", "-f"]).status == 0)
        #expect(try world.berth(["container", "start", "old"]).status == 0)
        #expect(try world.berth(["container", "wait", "old"]).stdout == "0\n")
    }

    /// `save -o` with a relative path writes beside it (not into /), onto a non-regular file
    /// writes into it (never replacing /dev/null), and a bare repository saves all its tags.
    @Test func saveTargetsAndAllTagsOfARepository() throws {
        let world = try World()
        for tag in ["bb:1", "bb:2", "bb:latest"] {
            #expect(try world.berth(["image", "tag", "busybox", tag]).status == 0)
        }
        let relative = try BerthProcess.run(
            ["image", "save", "-o", "rel.tar", "bb"], in: world.dir.path,
            environment: ["BERTH_ROOT": world.root, "BERTH_TEST_PAUSE_AT": ""])
        #expect(relative.status == 0, "\(relative.stderr)")
        let load = try world.berth(["image", "load", "-i", world.dir.path + "/rel.tar"], root: world.emptyRoot)
        #expect(load.status == 0, "\(load.stderr)")
        #expect(
            load.stdout.split(separator: "\n").sorted() == [
                "Loaded image: bb:1", "Loaded image: bb:2", "Loaded image: bb:latest",
            ])

        let null = try world.berth(["image", "save", "-o", "/dev/null", "busybox"])
        #expect(null.status == 0, "\(null.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }

    /// A blob name that is a link to another file of the archive: the content decides, and a
    /// manifest naming it by the other digest is refused.
    @Test func aLinkedBlobMustHashToItsName() throws {
        let world = try World()
        #expect(try world.berth(["image", "save", "-o", world.dir.path + "/good.tar", "busybox"]).status == 0)
        try world.sh(
            """
            cd "$W"; rm -rf x; mkdir x; tar -C x -xf good.tar
            layer=$(tr ',' '\\n' < x/manifest.json | grep -o 'blobs/sha256/[0-9a-f]*' | tail -1)
            cfg=$(tr ',' '\\n' < x/manifest.json | grep -o 'blobs/sha256/[0-9a-f]*' | head -1)
            cp x/$layer x/blobs/sha256/evil; rm x/$layer; ln -s evil x/$layer
            printf 'not the layer' > x/blobs/sha256/evil; tar -C x -cf linked.tar .
            """)
        try expectRefused(world, "linked.tar", "the content is damaged")
    }

    /// `rmi -f ID` of an image with several tags says each tag it removes, then the deletion.
    @Test func forcedRemovalByIDUntagsEveryReference() throws {
        let world = try World()
        #expect(try world.berth(["image", "tag", "busybox", "other:1"]).status == 0)
        let id = try #require(try world.inspect("busybox")["Id"] as? String)
        let removed = try world.berth(["rmi", "-f", String(id.dropFirst(7).prefix(12))])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(
            removed.stdout.split(separator: "\n").sorted()
                == ["Deleted: \(id)", "Untagged: busybox:latest", "Untagged: other:1"], "\(removed.stdout)")
        #expect(try world.storeIsEmpty(world.root))
    }

    @Test func systemDiskUsage() throws {
        let world = try World()
        #expect(try world.berth(["image", "import", world.busyboxTar, "spare"]).status == 0)
        let run = try world.berth([
            "container", "run", "--network", "none", "--name", "writer", "busybox", "sh", "-c",
            "head -c 5000 /dev/zero > /data",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let df = try world.berth(["system", "df"])
        #expect(df.status == 0, "\(df.stderr)")
        let lines = df.stdout.split(separator: "\n").map {
            $0.replacingOccurrences(of: "Local Volumes", with: "Local-Volumes")
                .replacingOccurrences(of: "Build Cache", with: "Build-Cache")
                .split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        #expect(lines.count == 5, "\(df.stdout)")
        #expect(lines.first == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"])
        #expect(lines.dropFirst().first?.prefix(3) == ["Images", "2", "1"], "\(df.stdout)")
        #expect(lines.dropFirst(2).first == ["Containers", "1", "0", "5kB", "5kB", "(100%)"], "\(df.stdout)")
        #expect(lines.dropFirst(3).first == ["Local-Volumes", "0", "0", "0B", "0B"])
        #expect(lines.dropFirst(4).first == ["Build-Cache", "0", "0", "0B", "0B"])

        let verbose = try world.berth(["system", "df", "-v"])
        #expect(verbose.stdout.hasPrefix("Images space usage:\n\nREPOSITORY"), "\(verbose.stdout)")
        #expect(verbose.stdout.contains("SHARED SIZE   UNIQUE SIZE   CONTAINERS"))
        #expect(verbose.stdout.contains("Containers space usage:\n\nCONTAINER ID"))
        #expect(verbose.stdout.contains("writer"))
        #expect(verbose.stdout.contains("Local Volumes space usage:"))
        #expect(verbose.stdout.contains("Build cache usage: 0B"))
    }

    /// The build cache's row in `system df`, and `builder prune` emptying it. (The images a build
    /// commits are the store's tests; here, a cache mount stands for the cache.)
    @Test func builderPruneEmptiesTheBuildCache() throws {
        let world = try World()
        try world.sh(
            "mkdir -p \"$ROOT/builder/cache-mounts/go\"; head -c 3000 /dev/zero > \"$ROOT/builder/cache-mounts/go/f\"")
        let df = try world.berth(["system", "df"])
        let row = df.stdout.split(separator: "\n").first { $0.hasPrefix("Build Cache") }
        #expect(
            row?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2) == ["1", "0", "3kB", "3kB"],
            "\(df.stdout)")
        let prune = try world.berth(["builder", "prune", "-f"])
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stdout == "Total reclaimed space: 3kB\n")
        #expect(try world.berth(["builder", "prune", "-a", "-f"]).stdout == "Total reclaimed space: 0B\n")
        #expect(try world.berth(["image", "ls", "-q"]).stdout.split(separator: "\n").count == 1)
    }
}
