import Foundation
import TestSupport
import Testing

/// `container run` checks numbers and options as Docker does, with Docker's messages, before it
/// makes anything: every refusal is one `berth: ` line on stderr, status 125 (Docker's for a
/// container that never started), and no container, name link or volume directory under ROOT.
/// (Root; each test has its own BERTH_ROOT with busybox, removed even when the test fails.)
@Suite(.serialized) struct RunValidationTests {
    typealias World = ContainerCLITests.World

    /// The host's CPUs as Docker's range message counts them (sysconf _SC_NPROCESSORS_ONLN).
    static let cpus = max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1)
    static let cpuRange = "range of CPUs is from 0.01 to \(cpus).00, as there are only \(cpus) CPUs available"

    /// Runs `container run --name victim FLAGS busybox true`, expects exactly `message` as the
    /// refusal, and that nothing was made.
    func expectRefused(
        _ world: World, _ flags: [String], _ message: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try world.berth(["container", "run", "--name", "victim"] + flags + ["busybox", "true"])
        #expect(
            result.status == 125, "\(flags): status \(result.status), \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "berth: \(message)\n", "\(flags)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(flags)", sourceLocation: sourceLocation)
        expectNothingMade(world, flags, sourceLocation: sourceLocation)
    }

    func expectNothingMade(_ world: World, _ context: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let fm = FileManager.default
        for sub in ["containers", "container-names", "volumes"] {
            let entries = (try? fm.contentsOfDirectory(atPath: world.root + "/" + sub)) ?? []
            #expect(entries.isEmpty, "\(context): left in ROOT/\(sub): \(entries)", sourceLocation: sourceLocation)
        }
        let ps = (try? world.berth(["container", "ps", "-a", "-q"]))?.stdout ?? "?"
        #expect(ps.isEmpty, "\(context): a container is listed: \(ps)", sourceLocation: sourceLocation)
    }

    // MARK: resources

    @Test func cpusAsDockerParsesAndRangesThem() throws {
        let world = try World()
        // opts.ParseCPUs (docker/cli): a rational number with at most 9 decimals, as Docker does.
        try expectRefused(
            world, ["--cpus", "inf"],
            "invalid argument \"inf\" for \"--cpus\" flag: failed to parse inf as a rational number")
        try expectRefused(
            world, ["--cpus", "nan"],
            "invalid argument \"nan\" for \"--cpus\" flag: failed to parse nan as a rational number")
        try expectRefused(
            world, ["--cpus", "1.5x"],
            "invalid argument \"1.5x\" for \"--cpus\" flag: failed to parse 1.5x as a rational number")
        try expectRefused(
            world, ["--cpus", ""], "invalid argument \"\" for \"--cpus\" flag: failed to parse  as a rational number")
        try expectRefused(
            world, ["--cpus", "1/0"],
            "invalid argument \"1/0\" for \"--cpus\" flag: failed to parse 1/0 as a rational number")
        try expectRefused(
            world, ["--cpus", "0.0000000001"],
            "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise")
        try expectRefused(
            world, ["--cpus", "1/3"], "invalid argument \"1/3\" for \"--cpus\" flag: value is too precise")
        // The daemon's range (moby's verifyPlatformContainerResources), and berth's floor of
        // 0.01 (a 1 ms quota, the kernel's minimum, which Docker leaves to the kernel's EINVAL).
        // 1e300 once overflowed an integer conversion (SIGILL) and left a container holding its name.
        for value in [
            "1e300", "-1", "-0.5", "0.0001", "0.009999999", "\(Self.cpus + 1)", "\(Self.cpus).000000001",
            "9223372036854775807", "-9223372036854775809", "1e1000000",
        ] {
            try expectRefused(world, ["--cpus", value], Self.cpuRange)
        }
        try expectRefused(world, ["--cpus=-1"], Self.cpuRange)
        // Go refuses exponents beyond a million rather than compute them.
        try expectRefused(
            world, ["--cpus", "1e1000001"],
            "invalid argument \"1e1000001\" for \"--cpus\" flag: failed to parse 1e1000001 as a rational number")
    }

    @Test func memoryAndSwapAsTheDaemonChecksThem() throws {
        let world = try World()
        // `--memory 1k` used to start and be OOM-killed at once (137) without a word.
        try expectRefused(world, ["--memory", "1k"], "Minimum memory limit allowed is 6MB")
        try expectRefused(world, ["-m", "6291455"], "Minimum memory limit allowed is 6MB")
        try expectRefused(
            world, ["--memory", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage")
        try expectRefused(
            world, ["--memory-swap", "64m"],
            "You should always set the Memory limit when using Memoryswap limit, see usage")
        try expectRefused(
            world, ["--memory", "12x"], "invalid argument \"12x\" for \"-m, --memory\" flag: invalid size: '12x'")
        try expectRefused(
            world, ["--memory", "-1"], "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'")
        try expectRefused(
            world, ["--memory-swap", "lots"],
            "invalid argument \"lots\" for \"--memory-swap\" flag: invalid size: 'lots'")
        try expectRefused(world, ["--shm-size", "-1"], "SHM size can not be less than 0")
    }

    @Test func integerFlagsAsDockersFlagParserReadsThem() throws {
        let world = try World()
        try expectRefused(
            world, ["--pids-limit", "abc"],
            "invalid argument \"abc\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax")
        try expectRefused(
            world, ["--pids-limit", "99999999999999999999"],
            "invalid argument \"99999999999999999999\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        )
        try expectRefused(
            world, ["--oom-score-adj", "5000"], "Invalid value 5000, range for oom score adj is [-1000, 1000]")
        // Was an Int32 conversion that trapped.
        try expectRefused(
            world, ["--oom-score-adj", "99999999999"],
            "Invalid value 99999999999, range for oom score adj is [-1000, 1000]")
        try expectRefused(
            world, ["-c", "1.5"],
            "invalid argument \"1.5\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"1.5\": invalid syntax")
    }

    @Test func validLimitsRunAndLandInTheCgroup() throws {
        let world = try World()
        let show =
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max 2>/dev/null"
            + " || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max"
        // 6m is Docker's minimum; -1 (given as a separate argument, as Docker's flag parser takes
        // it) is unlimited pids.
        let run = try world.berth([
            "container", "run", "--rm", "--memory", "6m", "--cpus", "0.5", "--pids-limit", "-1",
            "--memory-swap", "-1", "busybox", "sh", "-c", show,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "6291456\n50000\nmax\n" || run.stdout == "6291456\n50000 100000\nmax\n", "\(run.stdout)")
        // Fractions and exponents are rational numbers too; 0 pids is unlimited as well.
        for cpus in ["1/4", "2.5e-1", ".25"] {
            let quarter = try world.berth([
                "container", "run", "--rm", "--cpus", cpus, "--pids-limit=0", "busybox", "sh", "-c", show,
            ])
            #expect(quarter.status == 0, "\(cpus): \(quarter.stderr)")
            let lines = quarter.stdout.split(separator: "\n")
            #expect(lines.count == 3 && lines[1].hasPrefix("25000") && lines[2] == "max", "\(cpus): \(quarter.stdout)")
        }
        // inspect shows Docker's NanoCpus.
        #expect(
            try world.berth(["container", "run", "--name", "limited", "--cpus", "1.5", "busybox", "true"]).status == 0)
        let inspect = try world.berth(["container", "inspect", "limited"])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let host = try #require(all.first?["HostConfig"] as? [String: Any])
        #expect((host["NanoCpus"] as? NSNumber)?.int64Value == 1_500_000_000)
        #expect(try world.berth(["container", "rm", "limited"]).status == 0)
    }

    // MARK: environment

    @Test func environmentNamesMustNotBeEmpty() throws {
        let world = try World()
        // docker/cli's opts.ValidateEnv, as Docker does.
        try expectRefused(world, ["-e", "=x"], "invalid environment variable: =x")
        try expectRefused(world, ["-e", ""], "invalid environment variable: ")
        try expectRefused(world, ["--env", "="], "invalid environment variable: =")
        // docker/cli's pkg/kvfile.
        try world.dir.write("blank.env", "A=1\n=blank\n")
        try expectRefused(
            world, ["--env-file", world.dir.path + "/blank.env"],
            "\(world.dir.path)/blank.env:2: no variable name on line '=blank'")
        let ok = try world.berth([
            "container", "run", "--rm", "-e", "A=", "-e", "B==b", "busybox", "sh", "-c", "echo \"[$A][$B]\"",
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "[][=b]\n")
    }

    // MARK: security options

    @Test func seccompProfileMustBeAReadableRegularFile() throws {
        let world = try World()
        let dir = world.dir.path
        try expectRefused(
            world, ["--security-opt", "seccomp=/dev/zero"],
            "opening seccomp profile (/dev/zero) failed: it is a character device, not a regular file")
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)/missing.json"],
            "opening seccomp profile (\(dir)/missing.json) failed: No such file or directory")
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)"],
            "opening seccomp profile (\(dir)) failed: it is a directory, not a regular file")
        // A FIFO would block an open or a read forever.
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)/fifo"],
            "opening seccomp profile (\(dir)/fifo) failed: it is a FIFO, not a regular file")
        try world.dir.write("huge.json", String(repeating: " ", count: (1 << 20) + 1))
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)/huge.json"],
            "opening seccomp profile (\(dir)/huge.json) failed: larger than 1 MiB")
        try world.dir.write("broken.json", "{\"defaultAction\": ")
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)/broken.json"],
            "seccomp profile (\(dir)/broken.json) is not valid JSON")
        try world.dir.write("array.json", "[]")
        try expectRefused(
            world, ["--security-opt", "seccomp=\(dir)/array.json"],
            "seccomp profile (\(dir)/array.json) is not a profile in Docker's format (it needs a \"defaultAction\" string)"
        )
        try expectRefused(world, ["--security-opt", "seccomp"], "invalid --security-opt: \"seccomp\"")
        try expectRefused(world, ["--security-opt", "seccomp="], "invalid --security-opt: \"seccomp=\"")
        // A good profile, given relative to the working directory, is used.
        try world.dir.write("allow.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}")
        let run = try BerthProcess.run(
            ["container", "run", "--rm", "--security-opt", "seccomp=allow.json", "busybox", "echo", "ok"],
            in: dir, environment: ["BERTH_ROOT": world.root])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "ok\n")
    }

    @Test func securityOptionsBerthCannotHonourAreErrors() throws {
        let world = try World()
        let appArmor =
            (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?.hasPrefix("Y")
            == true
        let selinux = FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce")
        let noAppArmor = appArmor ? "berth does not load AppArmor profiles" : "AppArmor is not available on this host"
        let noSELinux = selinux ? "berth does not apply SELinux labels" : "SELinux is not available on this host"
        try expectRefused(world, ["--security-opt", "apparmor=foo"], "--security-opt apparmor=foo: \(noAppArmor)")
        try expectRefused(
            world, ["--security-opt", "apparmor:docker-default"],
            "--security-opt apparmor:docker-default: \(noAppArmor)")
        try expectRefused(world, ["--security-opt", "label=user:USER"], "--security-opt label=user:USER: \(noSELinux)")
        try expectRefused(
            world, ["--security-opt", "label:level:s0:c100,c200"],
            "--security-opt label:level:s0:c100,c200: \(noSELinux)")
        try expectRefused(
            world, ["--security-opt", "systempaths=unconfined"],
            "--security-opt systempaths=unconfined: berth always masks and write-protects Docker's /proc and /sys paths; it cannot unmask them"
        )
        try expectRefused(
            world, ["--security-opt", "no-new-privileges=maybe"],
            "invalid --security-opt \"no-new-privileges=maybe\": no-new-privileges is true or false")
        try expectRefused(
            world, ["--security-opt", "foo=bar"], "invalid --security-opt \"foo=bar\": unknown option \"foo\"")
        try expectRefused(world, ["--security-opt", "nonsense"], "invalid --security-opt: \"nonsense\"")
    }

    @Test func harmlessAndHonouredSecurityOptionsRun() throws {
        let world = try World()
        let status = ["busybox", "grep", "NoNewPrivs", "/proc/self/status"]
        for (options, flag) in [
            (["no-new-privileges"], "1"), (["no-new-privileges=true"], "1"), (["no-new-privileges:true"], "1"),
            (["no-new-privileges", "no-new-privileges=false"], "0"), (["apparmor=unconfined"], "0"),
            (["label=disable"], "0"), (["label:disable"], "0"), (["seccomp=builtin"], "0"),
            (["seccomp=unconfined", "no-new-privileges=1"], "1"),
        ] {
            let run = try world.berth(
                ["container", "run", "--rm"] + options.flatMap { ["--security-opt", $0] } + status)
            #expect(run.status == 0, "\(options): \(run.stderr)")
            #expect(run.stdout == "NoNewPrivs:\t\(flag)\n", "\(options): \(run.stdout)")
        }
    }

    // MARK: mounts

    @Test func volumeNamesCannotLeaveTheVolumesFolder() throws {
        let world = try World()
        let escape = "berth-escape-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: "/tmp/" + escape) }
        // moby's local volume driver (validateName), as Docker does.
        let source = "x/../../../../../../../../tmp/\(escape)"
        try expectRefused(
            world, ["-v", "\(source):/m"],
            "\"\(source)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. "
                + "If you intended to pass a host directory, use absolute path")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/" + escape), "the volume name made a host folder")
        try expectRefused(
            world, ["-v", "x:/m"], "volume name is too short, names should be at least two alphanumeric characters")
        try expectRefused(
            world, ["-v", "_data:/m"],
            "\"_data\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. "
                + "If you intended to pass a host directory, use absolute path")
        try expectRefused(
            world, ["-v", "~/x:/m"],
            "\"~/x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. "
                + "If you intended to pass a host directory, use absolute path")
    }

    @Test func volumeSpecificationsAsDockerParsesThem() throws {
        let world = try World()
        let dir = world.dir.path
        // moby's ParseMountRaw and validateMountConfig, as Docker does.
        try expectRefused(
            world, ["-v", "\(dir):/"],
            "invalid volume specification: '\(dir):/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )
        try expectRefused(
            world, ["-v", "\(dir):/m/.."],
            "invalid volume specification: '\(dir):/m/..': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )
        try expectRefused(
            world, ["-v", "data:/"],
            "invalid volume specification: 'data:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        )
        try expectRefused(
            world, ["-v", "/"],
            "invalid volume specification: '/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        )
        try expectRefused(
            world, ["-v", "data:rel"],
            "invalid volume specification: 'data:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        )
        try expectRefused(world, ["-v", "\(dir):/m:rshared,rslave"], "invalid mode: rshared,rslave")
        try expectRefused(world, ["-v", "\(dir):/m:ro,rw"], "invalid mode: ro,rw")
        try expectRefused(world, ["-v", "\(dir):/m:exec"], "invalid mode: exec")
        try expectRefused(
            world, ["-v", "data:/m:rshared"],
            "invalid volume specification: 'data:/m:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified"
        )
        try expectRefused(
            world, ["-v", "\(dir):/m:nocopy"],
            "invalid volume specification: '\(dir):/m:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified"
        )
        // A volume cannot carry a mode.
        try expectRefused(world, ["-v", "/data:ro"], "invalid volume specification: '/data:ro'")
        try expectRefused(world, ["-v", ":/m"], "invalid volume specification: ':/m'")
        try expectRefused(world, ["-v", "a:b:c:d"], "invalid volume specification: 'a:b:c:d'")
        try expectRefused(world, ["-v", "\(dir):/m", "-v", "data:/m/"], "Duplicate mount point: /m")
    }

    @Test func tmpfsOptionsAsDockerTakesThem() throws {
        let world = try World()
        // moby's ValidateTmpfsMountDestination and MergeTmpfsOptions, as Docker does.
        try expectRefused(world, ["--tmpfs", "/"], "invalid specification: destination can't be '/'")
        try expectRefused(world, ["--tmpfs", "/t/..:size=1m"], "invalid specification: destination can't be '/'")
        try expectRefused(world, ["--tmpfs", "rel"], "invalid mount path: 'rel' mount path must be absolute")
        try expectRefused(world, ["--tmpfs", "/t:foo"], "invalid tmpfs option \"foo\"")
        try expectRefused(world, ["--tmpfs", "/t:size=1m,,mode=700"], "invalid tmpfs option \"\"")
        try expectRefused(world, ["--tmpfs", "/t:bogus=1"], "invalid tmpfs option \"bogus=1\"")
        // Docker takes these; berth cannot honour them, so it says so instead of dropping them.
        try expectRefused(
            world, ["--tmpfs", "/t:suid"], "--tmpfs /t:suid: berth does not support the tmpfs option \"suid\"")
        try expectRefused(
            world, ["--tmpfs", "/t:nr_inodes=10"],
            "--tmpfs /t:nr_inodes=10: berth does not support the tmpfs option \"nr_inodes\"")
        try expectRefused(
            world, ["--tmpfs", "/t:mode=999"], "--tmpfs /t:mode=999: invalid mode \"999\" (octal, e.g. 1777)")
        try expectRefused(world, ["--tmpfs", "/t:uid=app"], "--tmpfs /t:uid=app: invalid uid \"app\" (a number)")
        try expectRefused(world, ["--tmpfs", "/t:gid=-1"], "--tmpfs /t:gid=-1: invalid gid \"-1\" (a number)")
        try expectRefused(
            world, ["--tmpfs", "/t:size=lots"], "--tmpfs /t:size=lots: invalid size \"lots\" (e.g. 64m, 1g, 50%)")
        try expectRefused(
            world, ["--tmpfs", "/t:size=99999999999999999%"],
            "--tmpfs /t:size=99999999999999999%: invalid size \"99999999999999999%\" (e.g. 64m, 1g, 50%)")
    }

    @Test func mountOptionsAreRecorded() throws {
        let world = try World()
        let host = world.dir.path + "/shared"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        // The runtime applies these fields; here: the CLI fills them in (seen through inspect).
        // `noexec,exec`: the last wins, as in Docker's MergeTmpfsOptions.
        let run = try world.berth([
            "container", "run", "--name", "mounts", "--tmpfs",
            "/t:noexec,exec,uid=1000,gid=50,mode=750,size=1m,nosuid,nodev",
            "--tmpfs", "/u:exec,noexec,ro", "-v", "\(host):/m/../m2:rslave,ro,z", "-v", "named-vol:/v:nocopy",
            "busybox", "true",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let inspect = try world.berth(["container", "inspect", "mounts"])
        let all = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])
        let mounts = try #require(all.first?["Mounts"] as? [[String: Any]])
        func mount(_ target: String) -> [String: Any] { mounts.first { $0["target"] as? String == target } ?? [:] }
        let t = mount("/t")
        let u = mount("/u")
        let m = mount("/m2")
        let v = mount("/v")
        #expect(t["tmpfsExec"] as? Bool == true)
        #expect(t["tmpfsUID"] as? Int == 1000 && t["tmpfsGID"] as? Int == 50)
        #expect(t["tmpfsMode"] as? Int == 0o750 && t["tmpfsSize"] as? Int == 1 << 20)
        #expect(t["readOnly"] as? Bool == false)
        #expect(u["tmpfsExec"] as? Bool == false && u["readOnly"] as? Bool == true)
        #expect(m["kind"] as? String == "bind" && m["source"] as? String == host)
        #expect(m["propagation"] as? String == "rslave" && m["readOnly"] as? Bool == true)
        #expect(v["kind"] as? String == "volume" && v["source"] as? String == "named-vol" && v["propagation"] == nil)
        #expect(try world.berth(["container", "rm", "mounts"]).status == 0)
        // size=N% is the kernel's share of the physical memory, recorded in bytes.
        #expect(
            try world.berth(["container", "run", "--name", "half", "--tmpfs", "/h:size=50%", "busybox", "true"]).status
                == 0)
        let half = try world.berth(["container", "inspect", "half"])
        let halfMounts = try #require(
            (try JSONSerialization.jsonObject(with: Data(half.stdout.utf8)) as? [[String: Any]])?.first?["Mounts"]
                as? [[String: Any]])
        let ram = Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE)))
        #expect((halfMounts.first?["tmpfsSize"] as? NSNumber)?.int64Value == ram / 100 * 50)
        #expect(try world.berth(["container", "rm", "half"]).status == 0)
    }

    /// Found by attacking the CLI: these crashed berth (an index out of range) or ran as root.
    @Test func labelsUidsAndTimeoutsThatOnceCrashedOrEscalated() throws {
        let world = try World()
        // Docker's ValidateLabel: a label needs a name.
        try expectRefused(world, ["--label", "="], "invalid label '=': empty name")
        try expectRefused(world, ["--label", "=x"], "invalid label '=x': empty name")
        // (uid_t)-1 means "unchanged" to setresuid: the process would have stayed root (runc's range).
        let minusOne = try world.berth(["container", "run", "--rm", "-u", "4294967295", "busybox", "id", "-u"])
        #expect(
            minusOne.status == 125 && minusOne.stderr.contains("uids and gids must be in range 0-2147483647"),
            "\(minusOne.stderr)")
        let group = try world.berth(["container", "run", "--rm", "-u", "1000:4294967295", "busybox", "id", "-u"])
        #expect(
            group.status == 125 && group.stderr.contains("uids and gids must be in range 0-2147483647"),
            "\(group.stderr)")
        expectNothingMade(world, ["-u"])
        // A stop timeout beyond any clock: stop still returns (it once overflowed milliseconds).
        let started = try world.berth([
            "container", "run", "-d", "--name", "patient", "--stop-timeout", "9223372036854775807",
            "--stop-signal", "USR1", "busybox", "sh", "-c", "trap 'exit 3' USR1; while :; do sleep 1; done",
        ])
        #expect(started.status == 0, "\(started.stderr)")
        let stop = try world.berth(["container", "stop", "patient"])
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(try world.berth(["container", "rm", "-f", "patient"]).status == 0)
    }
}
