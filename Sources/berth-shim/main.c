/* berth-shim: what stays with a container once the berth process that started it is gone (the
   role conmon plays for podman). It is the container's parent: it reaps it, writes its output to
   the json-file log (rotated by size, Docker's format), records the exit code in DIR/exit.json,
   removes the container's cgroup and may run an exit command (`--rm`'s removal).

   berth forks a process that clones the container (so the container is that process's child)
   and then execs this program in place: what stays resident per container is this small binary
   rather than a copy of berth, and a SIGKILL of any berth process (a CLI call, a supervisor)
   neither takes the container down nor loses its exit code.

   berth-shim --dir DIR [--log PATH [--max-size BYTES] [--max-files N]]
              [--stdout FD] [--stderr FD] [--tee-stdout FD] [--tee-stderr FD] [--hold FD]
              [--notify FD] [--cgroup PATH]... [-- EXIT COMMAND...]

   The exit command (`run --rm`'s removal) is the caller's to do while one is attached: the shim
   runs it once nobody holds `notify` any more, and only if the container is still there then (a
   detached run, or a caller that died before it removed the container).

   The container is this process's only child (it was cloned before the exec).

   --stdout/--stderr: the read ends of the container's output (one fd for both with a pty).
   --tee-*: where a foreground caller wants the raw output too; dropped when the caller goes.
   --hold: a descriptor kept open until the container exits (the write end of `-i`'s stdin).
   --notify gets one byte once exit.json is written, and the tee descriptors are closed only then:
   a caller that reads them finds the exit code on disk. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_LINE = 16 * 1024, MAX_CGROUPS = 16 };

struct stream {
    int fd;          /* -1 once at EOF */
    int tee;         /* -1 when none, or once the reader is gone */
    const char *name;
    char line[MAX_LINE];
    size_t len;
};

static struct {
    const char *path;
    long long max_size;
    int max_files;
    int fd;
    long long size;
} log_file = { NULL, 0, 1, -1, 0 };

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf += n;
        len -= (size_t)n;
    }
}

/* RFC 3339 with nanoseconds, UTC, as Docker's json-file log writes it. The date is computed
   here (Howard Hinnant's civil_from_days) rather than by gmtime_r, whose first call loads the
   time zone file: the shim runs with an empty environment, and that load was about a fifth of a
   millisecond of every container's exit. */
static void timestamp(char *out, size_t size) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long days = now.tv_sec / 86400, secs = now.tv_sec % 86400;
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1;
    long long month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    snprintf(out, size, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09ldZ", year, month, day, secs / 3600,
             secs / 60 % 60, secs % 60, now.tv_nsec);
}

/* The length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_length(const unsigned char *s, size_t left) {
    unsigned char c = s[0];
    size_t n;
    uint32_t min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
    else return 0;
    if (n > left) return 0;
    uint32_t v = c & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return n;
}

/* JSON string content: quotes, backslashes and control characters escaped, and invalid UTF-8
   replaced by U+FFFD (as berth's reader, and Docker's encoder, would see it). */
static size_t escape(char *out, const char *in, size_t len) {
    size_t at = 0;
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') { out[at++] = '\\'; out[at++] = (char)c; i++; continue; }
        if (c == '\n') { out[at++] = '\\'; out[at++] = 'n'; i++; continue; }
        if (c == '\r') { out[at++] = '\\'; out[at++] = 'r'; i++; continue; }
        if (c == '\t') { out[at++] = '\\'; out[at++] = 't'; i++; continue; }
        if (c < 0x20) { at += (size_t)sprintf(out + at, "\\u%04x", c); i++; continue; }
        size_t n = utf8_length(s + i, len - i);
        if (n == 0) {
            memcpy(out + at, "\xEF\xBF\xBD", 3);
            at += 3;
            i++;
            continue;
        }
        memcpy(out + at, in + i, n);
        at += n;
        i += n;
    }
    return at;
}

static void open_log(int truncate) {
    log_file.fd = open(log_file.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
    struct stat st;
    log_file.size = log_file.fd >= 0 && fstat(log_file.fd, &st) == 0 ? st.st_size : 0;
}

/* container.log -> .1 -> .2 ... (the oldest dropped), then a new container.log. */
static void rotate(void) {
    close(log_file.fd);
    char from[4096], to[4096];
    for (int i = log_file.max_files - 1; i >= 1; i--) {
        if (i == 1) snprintf(from, sizeof from, "%s", log_file.path);
        else snprintf(from, sizeof from, "%s.%d", log_file.path, i - 1);
        snprintf(to, sizeof to, "%s.%d", log_file.path, i);
        rename(from, to);
    }
    open_log(1);
}

static void log_entry(const char *text, size_t len, const char *stream) {
    if (log_file.fd < 0) return;
    static char entry[MAX_LINE * 6 + 128];
    char ts[40];
    timestamp(ts, sizeof ts);
    size_t at = (size_t)sprintf(entry, "{\"log\":\"");
    at += escape(entry + at, text, len);
    at += (size_t)sprintf(entry + at, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, ts);
    if (log_file.max_size > 0 && log_file.size > 0 && log_file.size + (long long)at > log_file.max_size) rotate();
    write_all(log_file.fd, entry, at);
    log_file.size += (long long)at;
}

/* One read from a stream: whole lines (or 16 KiB pieces, as Docker splits) go to the log. */
static void pump(struct stream *s) {
    char buf[65536];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) { /* EOF, or EIO from a pty whose last slave closed */
        close(s->fd);
        s->fd = -1;
        return;
    }
    if (s->tee >= 0) {
        ssize_t done = 0;
        while (done < n) {
            ssize_t w = write(s->tee, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) { close(s->tee); s->tee = -1; break; }
            done += w;
        }
    }
    for (ssize_t i = 0; i < n; i++) {
        s->line[s->len++] = buf[i];
        if (buf[i] == '\n' || s->len == MAX_LINE) {
            log_entry(s->line, s->len, s->name);
            s->len = 0;
        }
    }
}

/* Whether the kernel's OOM killer killed a process of the container: the "oom_kill" count of
   its memory group (v2: memory.events of the one group; v1: memory.oom_control, kernel 4.13 and
   later, of the path in the memory hierarchy), read before the group goes. */
static int oom_killed(const char *const *cgroups, int ncgroups) {
    for (int i = 0; i < ncgroups; i++) {
        const char *file = ncgroups == 1 ? "memory.events" : strstr(cgroups[i], "/memory/") ? "memory.oom_control" : NULL;
        if (!file) continue;
        char path[4096], text[1024];
        snprintf(path, sizeof path, "%s/%s", cgroups[i], file);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n <= 0) continue;
        text[n] = '\0';
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (strncmp(line, "oom_kill ", 9) == 0 && atoll(line + 9) > 0) return 1;
    }
    return 0;
}

static void write_exit(const char *dir, int code, int oom) {
    char path[4096], temp[4096], text[192], ts[40];
    timestamp(ts, sizeof ts);
    snprintf(path, sizeof path, "%s/exit.json", dir);
    snprintf(temp, sizeof temp, "%s/exit.json.tmp", dir);
    int len = snprintf(text, sizeof text, "{\"exitCode\":%d,\"finishedAt\":\"%s\"%s}\n", code, ts,
                       oom ? ",\"oomKilled\":true" : "");
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    write_all(fd, text, (size_t)len);
    close(fd);
    rename(temp, path);
}

static int int_arg(const char *text) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0') {
        fprintf(stderr, "berth-shim: not a number: %s\n", text);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    const char *cgroups[MAX_CGROUPS];
    int ncgroups = 0, hold = -1, notify = -1;
    struct stream out = { -1, -1, "stdout", {0}, 0 }, err = { -1, -1, "stderr", {0}, 0 };
    char **exit_command = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { exit_command = argv + i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "berth-shim: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (strcmp(a, "--dir") == 0) dir = v;
        else if (strcmp(a, "--log") == 0) log_file.path = v;
        else if (strcmp(a, "--max-size") == 0) log_file.max_size = atoll(v);
        else if (strcmp(a, "--max-files") == 0) log_file.max_files = int_arg(v) < 1 ? 1 : int_arg(v);
        else if (strcmp(a, "--stdout") == 0) out.fd = int_arg(v);
        else if (strcmp(a, "--stderr") == 0) err.fd = int_arg(v);
        else if (strcmp(a, "--tee-stdout") == 0) out.tee = int_arg(v);
        else if (strcmp(a, "--tee-stderr") == 0) err.tee = int_arg(v);
        else if (strcmp(a, "--hold") == 0) hold = int_arg(v);
        else if (strcmp(a, "--notify") == 0) notify = int_arg(v);
        else if (strcmp(a, "--cgroup") == 0) {
            if (ncgroups < MAX_CGROUPS) cgroups[ncgroups++] = v; /* more hierarchies than that: left to berth */
        }
        else { fprintf(stderr, "berth-shim: unknown option %s\n", a); return 2; }
    }
    if (!dir) { fprintf(stderr, "berth-shim: --dir is required\n"); return 2; }
    /* The terminal or session of whoever started the container is not ours: neither a closed
       terminal nor a Ctrl-C meant for a CLI call may end the container's reaper. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL); /* SIG_IGN (inherited) would have the kernel reap the container */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    if (log_file.path) open_log(0);
    /* SIGCHLD through a signalfd: one that came before this point is pending and shows there. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

    int status = 0, exited = 0;
    /* berth blocks SIGCHLD before the exec, so an early exit is pending; check once anyway. */
    if (waitpid(-1, &status, WNOHANG) > 0) exited = 1;
    while (!exited || out.fd >= 0 || err.fd >= 0) {
        struct pollfd fds[3];
        int n = 0, sig_at = -1;
        struct stream *streams[2];
        int ns = 0;
        if (out.fd >= 0) { fds[n] = (struct pollfd){ out.fd, POLLIN, 0 }; streams[ns++] = &out; n++; }
        if (err.fd >= 0) { fds[n] = (struct pollfd){ err.fd, POLLIN, 0 }; streams[ns++] = &err; n++; }
        if (!exited && sigfd >= 0) { sig_at = n; fds[n++] = (struct pollfd){ sigfd, POLLIN, 0 }; }
        /* After the exit, what is left in the pipes is drained; a process that escaped the
           container's PID namespace with the pipe open cannot hold the exit record forever. */
        int timeout = exited ? 2000 : (sigfd >= 0 ? -1 : 200);
        int rc = poll(fds, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR) {
            if (!exited) status = 255 << 8; /* never reaped: unknown, as Docker records it */
            break;
        }
        if (rc == 0 && exited) break;
        for (int i = 0; i < ns; i++)
            if (rc > 0 && fds[i].revents) pump(streams[i]);
        if (!exited && (sigfd < 0 || (sig_at >= 0 && rc > 0 && fds[sig_at].revents))) {
            struct signalfd_siginfo info;
            while (sigfd >= 0 && read(sigfd, &info, sizeof info) > 0) {}
            /* The container is the only child: whatever its PID 1 leaves is reaped by its namespace. */
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done > 0) exited = 1;
            if (done < 0 && errno == ECHILD) {
                exited = 1;
                status = 255 << 8;  /* no child to ask: unknown, as Docker records it */
            }
        }
    }
    for (struct stream *s = &out; s; s = s == &out ? &err : NULL)
        if (s->len > 0) log_entry(s->line, s->len, s->name);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
    write_exit(dir, code, oom_killed(cgroups, ncgroups));
    /* The exit is on disk: one byte tells an attached caller (EPIPE: there is none). */
    int attached = 0;
    if (notify >= 0) {
        char byte = 0;
        attached = write(notify, &byte, 1) == 1;
    }
    if (out.tee >= 0) close(out.tee);
    if (err.tee >= 0) close(err.tee);
    if (hold >= 0) close(hold);
    if (log_file.fd >= 0) close(log_file.fd);
    /* The group empties once the namespace's last process is reaped by the kernel. */
    for (int i = 0; i < ncgroups; i++)
        for (int tries = 0; tries < 100 && rmdir(cgroups[i]) < 0 && errno == EBUSY; tries++) usleep(10000);
    if (exit_command && exit_command[0]) {
        if (attached) {
            /* The caller removes the container itself and lets go of `notify` after (POLLERR on
               this end then); if it died first, the container is still there. */
            struct pollfd gone = { notify, 0, 0 };
            while (poll(&gone, 1, -1) < 0 && errno == EINTR) {}
            if (access(dir, F_OK) != 0) return 0;
        }
        execv(exit_command[0], exit_command);
        return 127;
    }
    if (notify >= 0) close(notify);
    return 0;
}

/* The package manager links every executable through the Swift driver, which adds an object
   that registers the program's Swift metadata with the Swift runtime. This program has none:
   answering its two calls here leaves the runtime unreferenced, so the static link (Package.swift)
   pulls none of it in: about 0.8 MB resident per container instead of 5. */
void swift_addNewDSOImage(const void *header);
void swift_addNewDSOImage(const void *header) { (void)header; }
int _swift_backtrace_isThunkFunction(const char *name);
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }
