import Foundation
import Testing

@testable import Runtime

/// Docker's default confinement: capabilities, seccomp, masked and read-only paths, minimal /dev.
@Suite(.serialized) struct SecurityTests {
    /// Calls each syscall Docker's profile refuses, then does ordinary work; prints "name errno".
    static let probe = #"""
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <sched.h>
        #include <stdio.h>
        #include <sys/syscall.h>
        #include <sys/wait.h>
        #include <unistd.h>
        int main(void) {
            struct { const char *name; long nr; long a, b, c; } calls[] = {
                {"unshare", SYS_unshare, CLONE_NEWUTS, 0, 0},
                {"mount", SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs"},
                {"keyctl", SYS_keyctl, 0, 0, 0},
                {"add_key", SYS_add_key, (long)"user", (long)"probe", 0},
                {"bpf", SYS_bpf, 0, 0, 0},
                {"perf_event_open", SYS_perf_event_open, 0, 0, 0},
                {"swapon", SYS_swapon, (long)"/nonexistent", 0, 0},
                {"reboot", SYS_reboot, 0, 0, 0},
                {"pivot_root", SYS_pivot_root, (long)"/", (long)"/"},
                {"kexec_load", SYS_kexec_load, 0, 0, 0},
            };
            for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++) {
                errno = 0;
                long r = syscall(calls[i].nr, calls[i].a, calls[i].b, calls[i].c, 0, 0);
                printf("%s %d\n", calls[i].name, r < 0 ? errno : 0);
            }
            int fd = open("/tmp/probe-file", O_CREAT | O_WRONLY, 0600);
            int ok = fd >= 0 && write(fd, "x", 1) == 1;
            pid_t child = fork();
            if (child == 0) _exit(7);
            int status = 0;
            waitpid(child, &status, 0);
            printf("work %s\n", ok && WEXITSTATUS(status) == 7 && getpid() == 1 ? "ok" : "failed");
            return 0;
        }
        """#

    static let refused = [
        "unshare", "mount", "keyctl", "add_key", "bpf", "perf_event_open", "swapon", "reboot",
        "pivot_root", "kexec_load",
    ]

    static func results(_ output: String) -> [String: String] {
        var map: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { map[String(parts[0])] = String(parts[1]) }
        }
        return map
    }

    static func status(_ output: String, _ key: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(key + ":") }.map {
            $0.split(separator: "\t").last.map(String.init) ?? ""
        }
    }

    @Test func defaultCapabilitiesAndSeccomp() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let r = try f.run(["cat", "/proc/self/status"])
        #expect(Self.status(r.stdout, "CapEff") == "00000000a80425fb")
        #expect(Self.status(r.stdout, "CapPrm") == "00000000a80425fb")
        #expect(Self.status(r.stdout, "CapBnd") == "00000000a80425fb")
        #expect(Self.status(r.stdout, "CapInh") == "0000000000000000")
        #expect(Self.status(r.stdout, "Seccomp") == "2")
        #expect(Self.status(r.stdout, "NoNewPrivs") == "0")
    }

    @Test func capDropAddAndPrivileged() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        var none = f.spec(["cat", "/proc/self/status"])
        none.capDrop = ["ALL"]
        #expect(Self.status(try f.run(none).stdout, "CapEff") == "0000000000000000")
        var added = f.spec(["cat", "/proc/self/status"])
        added.capAdd = ["NET_ADMIN", "CAP_SYS_PTRACE"]
        #expect(
            Self.status(try f.run(added).stdout, "CapEff")
                == String(format: "%016llx", 0xa804_25fb | (1 << 12) | (1 << 19)))
        var privileged = f.spec(["sh", "-c", "cat /proc/self/status; ls /dev | wc -l"])
        privileged.privileged = true
        let p = try f.run(privileged)
        #expect(Self.status(p.stdout, "CapEff") == String(format: "%016llx", Capabilities.hostBounding))
        #expect(Self.status(p.stdout, "Seccomp") == "0")
        #expect(Int(p.stdout.split(separator: "\n").last ?? "") ?? 0 > 15)
        var nnp = f.spec(["cat", "/proc/self/status"])
        nnp.noNewPrivileges = true
        #expect(Self.status(try f.run(nnp).stdout, "NoNewPrivs") == "1")
    }

    @Test func seccompRefusesWhatDockerRefuses() throws {
        let f = try RuntimeFixture(probes: ["probe": Self.probe])
        defer { f.cleanup() }
        let r = try f.run(["probe"])
        #expect(r.code == 0, "\(r.stderr)")
        let map = Self.results(r.stdout)
        for name in Self.refused { #expect(map[name] == String(EPERM), "\(name): \(map[name] ?? "missing")") }
        #expect(map["work"] == "ok")
        // Compiled once: the cache holds the BPF for this profile and capability set.
        let cached = try FileManager.default.contentsOfDirectory(atPath: f.root + "/cache/seccomp")
        #expect(cached.count == 1 && cached[0].hasSuffix(".bpf"))
    }

    @Test func seccompUnconfinedAndProfileFile() throws {
        let f = try RuntimeFixture(probes: ["probe": Self.probe])
        defer { f.cleanup() }
        var unconfined = f.spec(["sh", "-c", "grep Seccomp: /proc/self/status; probe"])
        unconfined.seccomp = .unconfined
        let u = try f.run(unconfined)
        #expect(u.stdout.contains("Seccomp:\t0"))
        // Without the filter, keyctl reaches the kernel and fails for its own reasons, not EPERM.
        #expect(Self.results(u.stdout)["keyctl"] != String(EPERM))

        let profile = f.base + "/deny-mkdir.json"
        try
            #"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#
            .write(toFile: profile, atomically: false, encoding: .utf8)
        var custom = f.spec(["sh", "-c", "mkdir /tmp/x; echo mkdir=$?; probe"])
        custom.seccomp = .profile(path: profile)
        let c = try f.run(custom)
        #expect(c.stderr.contains("Permission denied"))
        #expect(c.stdout.contains("mkdir=1"))
        #expect(Self.results(c.stdout)["keyctl"] != String(EPERM))
    }

    @Test func maskedReadOnlyPathsAndDev() throws {
        let f = try RuntimeFixture()
        defer { f.cleanup() }
        let r = try f.run([
            "sh", "-c",
            """
            for p in /proc/keys /proc/timer_list /proc/kcore; do [ -e $p ] && echo "$p $(cat $p | wc -c)"; done
            for d in /proc/acpi /sys/firmware; do [ -d $d ] && echo "$d $(ls -A $d | wc -l)"; done
            echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable
            echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable
            touch /sys/x 2>/dev/null && echo sysfs-writable
            mount -t tmpfs none /mnt 2>/dev/null && echo mount-worked
            ls /dev | tr '\\n' ' '
            """,
        ])
        #expect(r.code == 0, "\(r.stderr)")
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("/") {
            #expect(line.hasSuffix(" 0"), "masked path not empty: \(line)")
        }
        #expect(r.stdout.contains("/proc/keys 0"))
        #expect(r.stdout.contains("/sys/firmware 0"))
        for word in ["sys-writable", "sysrq-writable", "sysfs-writable", "mount-worked"] {
            #expect(!r.stdout.contains(word))
        }
        let dev = r.stdout.split(separator: "\n").last.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        #expect(
            dev == [
                "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
                "tty", "urandom", "zero",
            ])
    }
}
