/* supervise.c: a container started under berth-shim, its reaper, so that no berth process has to
   outlive it.

   Caller (any berth process)          S (forked twice: not the caller's child; its own session)
   pipe2(sync), pipe2(error), socketpair(report)
   fork F -> fork S, F exits        -> berth_spawn_with_pipes(config): the container C is S's child
   waitpid(F)                       <- {rc, C's pid, S's pid}
                                       exec berth-shim at once, which reaps C, pumps its output
                                       into the json-file log and records its exit (berth-shim/main.c)
   (hooks, state.json "running")
   berth_supervised_release: write(sync) lets C go on; read(error) says how its exec went

   The caller, not S, holds C's sync and error pipes: S needs nothing more of C once it has cloned
   it, so it becomes berth-shim while C builds its root filesystem and the caller writes its
   records, and the exec (which drops S's copy of the caller's memory) is off the path to the
   container's start and end. If the caller dies before the release, C reads EOF on sync and exits
   without running anything; after it, C goes on under the shim. Everything in S before the exec
   is async-signal-safe C, as in the child (the caller may be multi-threaded). */
#include "internal.h"
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct report {
    int rc;
    pid_t pid;
    pid_t shim;
};

static int read_full(int fd, void *buf, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static void write_full(int fd, const void *buf, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, (const char *)buf + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += (size_t)n;
    }
}

__attribute__((noreturn)) static void shim_side(const struct berth_container *c, int report_fd, int sync_pipe[2],
                                                int error_pipe[2], const char *shim_path,
                                                const char *const *shim_argv, const int *keep, int nkeep) {
    /* A session of its own: the caller's terminal, its Ctrl-C and its process group's signals
       are not the container's reaper's. SIGPIPE: the caller may be gone when S writes to it.
       An inherited SIG_IGN for SIGCHLD would have the kernel reap C itself (its status lost). */
    setsid();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    struct berth_child child;
    struct report report = { berth_spawn_with_pipes(c, sync_pipe, error_pipe, &child), 0, getpid() };
    if (report.rc == 0) report.pid = child.pid;
    write_full(report_fd, &report, sizeof report);
    if (report.rc != 0) _exit(1);
    /* The caller's ends: only the caller may release C (and its death must read as EOF there). */
    close(child.sync_fd);
    close(child.error_fd);
    if (child.pidfd >= 0) close(child.pidfd);
    /* The caller's stdio is not the shim's to hold: a test runner or a shell pipeline reading
       the caller's output to its end would otherwise wait for the container too. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; null >= 0 && fd < 3; fd++) dup2(null, fd);
    if (null > 2) close(null);
    /* Only what berth-shim is told about crosses the exec. */
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < nkeep; i++)
        if (keep[i] >= 0) fcntl(keep[i], F_SETFD, 0);
    /* SIGCHLD stays blocked across the exec: a container that exits before berth-shim has set
       up its signalfd leaves the signal pending (unblocked and at its default, it would be
       discarded and the shim would wait forever). Nothing else is. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_SETMASK, &chld, NULL);
    static char *const empty_env[] = { NULL };
    execve(shim_path, (char *const *)shim_argv, empty_env);
    /* No shim: C is killed rather than left unreaped (the caller's release then fails). */
    kill(child.pid, SIGKILL);
    _exit(127);
}

int berth_spawn_supervised(const struct berth_container *c, const char *shim_path, const char *const *shim_argv,
                           const int *keep, int nkeep, struct berth_supervised *out) {
    int sync_pipe[2], error_pipe[2], sv[2];
    if (pipe2(sync_pipe, O_CLOEXEC) < 0) return -errno;
    if (pipe2(error_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(sync_pipe[0]); close(sync_pipe[1]);
        return -e;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        int e = errno;
        close(sync_pipe[0]); close(sync_pipe[1]); close(error_pipe[0]); close(error_pipe[1]);
        return -e;
    }
    long first = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (first == 0) {
        close(sv[0]);
        long second = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (second == 0)
            shim_side(c, sv[1], sync_pipe, error_pipe, shim_path, shim_argv, keep, nkeep);
        _exit(second < 0 ? 1 : 0);
    }
    int e = errno;
    /* The child's ends live on in S and C only. */
    close(sv[1]);
    close(sync_pipe[0]);
    close(error_pipe[1]);
    if (first < 0) {
        close(sv[0]); close(sync_pipe[1]); close(error_pipe[0]);
        return -e;
    }
    while (waitpid((pid_t)first, NULL, 0) < 0 && errno == EINTR) {}
    struct report report;
    int got = read_full(sv[0], &report, sizeof report);
    close(sv[0]);
    if (got < 0 || report.rc != 0) {
        close(sync_pipe[1]); close(error_pipe[0]);
        return got < 0 ? -EPROTO : report.rc;
    }
    out->pid = report.pid;
    out->shim = report.shim;
    out->sync_fd = sync_pipe[1];
    out->error_fd = error_pipe[0];
    return 0;
}

int berth_supervised_release(struct berth_supervised *s, struct berth_failure *failure) {
    struct berth_child child = { s->pid, -1, s->sync_fd, s->error_fd };
    int rc = berth_resume(&child, failure);
    s->sync_fd = -1;
    s->error_fd = -1;
    return rc;
}

void berth_supervised_abort(struct berth_supervised *s) {
    if (s->sync_fd >= 0) close(s->sync_fd);
    if (s->error_fd >= 0) close(s->error_fd);
    s->sync_fd = -1;
    s->error_fd = -1;
}
