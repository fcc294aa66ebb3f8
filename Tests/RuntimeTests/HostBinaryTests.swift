import Foundation
import Testing

@testable import Runtime

/// No process of a container can open the host's binary that starts it (CVE-2019-5736): the
/// copies of it that enter a container's namespaces (the container's first process before its
/// execve, `init: true`'s PID 1 for good, every `exec`) are non-dumpable, so /proc/PID/exe is
/// closed to the container.
@Suite(.serialized) struct HostBinaryTests {
    /// Opens /proc/N/exe of every process it sees, over and over until /tmp/stop appears, and
    /// prints the device:inode of each distinct file it managed to open.
    static let scanner = #"""
        #include <ctype.h>
        #include <dirent.h>
        #include <fcntl.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/stat.h>
        #include <unistd.h>
        int main(void) {
            static char seen[256][48];
            int count = 0;
            printf("ready\n");
            fflush(stdout);
            while (access("/tmp/stop", F_OK) != 0) {
                DIR *d = opendir("/proc");
                struct dirent *e;
                while (d && (e = readdir(d))) {
                    if (!isdigit((unsigned char)e->d_name[0])) continue;
                    char path[64], id[48];
                    snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
                    int fd = open(path, O_RDONLY);
                    if (fd < 0) continue;
                    struct stat st;
                    if (fstat(fd, &st) == 0) {
                        snprintf(id, sizeof id, "%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
                        int known = 0;
                        for (int i = 0; i < count; i++) known |= strcmp(seen[i], id) == 0;
                        if (!known && count < 256) strcpy(seen[count++], id);
                    }
                    close(fd);
                }
                if (d) closedir(d);
            }
            for (int i = 0; i < count; i++) printf("seen %s\n", seen[i]);
            return 0;
        }
        """#

    static func hostBinaryID() -> String {
        var st = stat()
        stat("/proc/self/exe", &st)
        return "\(st.st_dev):\(st.st_ino)"
    }

    @Test func aProcessScanningProcDuringExecsNeverOpensTheHostBinary() throws {
        let fixture = try RuntimeFixture(probes: ["scanner": Self.scanner])
        defer { fixture.cleanup() }
        let bg = try fixture.start(fixture.spec(["/bin/scanner"]))
        #expect(fixture.waitForLog(bg.container, containing: "ready"))
        for _ in 0..<200 {
            let p = try bg.container.exec(ExecSpec(argv: ["true"]))
            #expect(p.wait() == 0)
        }
        #expect(try bg.container.exec(ExecSpec(argv: ["touch", "/tmp/stop"])).wait() == 0)
        #expect(bg.finish() == 0)
        let seen = ContainerLogReader.entries(path: bg.container.logPath).map(\.log).joined()
            .split(separator: "\n").filter { $0.hasPrefix("seen ") }.map { String($0.dropFirst(5)) }
        #expect(!seen.isEmpty, "the scanner opened at least its own binary")
        #expect(!seen.contains(Self.hostBinaryID()), "the host binary was opened from inside: \(seen)")
    }

    /// A "dynamic loader" of the image's own (/lib64/ld-linux-x86-64.so.2): the kernel runs it for
    /// any dynamically linked program, and, without the trampoline, for an entrypoint of
    /// /proc/self/exe, which was the host's binary in the process that exec'ed it. It prints the
    /// device:inode of whatever /proc/self/exe it can open.
    static let loader = #"""
        static long sc(long n, long a, long b, long c) {
            long r;
            __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
            return r;
        }
        struct kstat { unsigned long dev, ino, nlink; unsigned int mode, uid, gid, pad; unsigned long rdev; long size, blksize, blocks, t[6], unused[3]; };
        static void put(unsigned long v) {
            char b[24]; int i = 23; b[i] = 0;
            do { b[--i] = '0' + v % 10; v /= 10; } while (v);
            sc(1, 1, (long)(b + i), 23 - i);
        }
        void entry(long *sp) {
            long fd = sc(2, (long)"/proc/self/exe", 0, 0);
            struct kstat st;
            if (fd >= 0 && sc(5, fd, (long)&st, 0) == 0) {
                sc(1, 1, (long)"exe ", 4); put(st.dev); sc(1, 1, (long)":", 1); put(st.ino); sc(1, 1, (long)"\n", 1);
            }
            sc(60, 0, 0, 0);
        }
        __asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call entry\n hlt\n");
        """#

    @Test func anEntrypointOfProcSelfExeNeverReachesTheHostBinary() throws {
        let fixture = try RuntimeFixture(prepare: { root in
            let source = root + "/../loader.c"
            try Self.loader.write(toFile: source, atomically: false, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: root + "/lib64", withIntermediateDirectories: true)
            try RuntimeFixture.capture([
                "/usr/bin/cc", "-nostdlib", "-static-pie", "-fno-stack-protector", "-O1", "-o",
                root + "/lib64/ld-linux-x86-64.so.2", source,
            ])
            try "#!/proc/self/exe\n".write(toFile: root + "/bin/selfexe", atomically: false, encoding: .utf8)
            chmod(root + "/bin/selfexe", 0o755)
        })
        defer { fixture.cleanup() }
        let host = Self.hostBinaryID()
        var direct = fixture.spec(["/proc/self/exe"])
        let run = try fixture.run(direct)
        #expect(!run.stdout.contains(host), "the image's loader opened the host binary: \(run.stdout)")
        direct.initProcess = true
        #expect(!(try fixture.run(direct)).stdout.contains(host))
        #expect(!(try fixture.run(["/bin/selfexe"])).stdout.contains(host))
        // The probe itself works: run directly, it opens its own binary.
        #expect(try fixture.run(["/lib64/ld-linux-x86-64.so.2"]).stdout.hasPrefix("exe "))
    }

    @Test func initsBinaryIsClosedToTheContainer() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.cleanup() }
        var spec = fixture.spec(["sleep", "30"])
        spec.initProcess = true
        let bg = try fixture.start(spec)
        // 3: PID 1's binary could be read; 4: its path could be read. PID 1 here is berth's init.
        let probe = "cat /proc/1/exe >/dev/null 2>&1 && exit 3; readlink /proc/1/exe >/dev/null 2>&1 && exit 4; exit 0"
        #expect(try bg.container.exec(ExecSpec(argv: ["sh", "-c", probe])).wait() == 0)
        // The same container's own processes stay readable to it (execve made them dumpable again).
        #expect(try bg.container.exec(ExecSpec(argv: ["sh", "-c", "cat /proc/self/exe >/dev/null"])).wait() == 0)
        try bg.container.kill()
        _ = bg.finish()
    }
}
