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
