/* supervise.c: a container started under berth-shim, its reaper, so that no berth process has to
   outlive it.

   Caller (any berth process)        S (forked twice: not the caller's child; its own session)
   socketpair(control)
   fork F -> fork S, F exits      -> berth_spawn(config): the container C is S's child
   waitpid(F)                     <- {rc, C's pid, S's pid}
   (hooks, state.json "running")     read(control) ... blocks
   berth_supervised_release       -> berth_release(C), berth_wait_exec(C)
                                  <- {result, failure}
                                     on success: exec berth-shim, which reaps C, pumps its output
                                     into the json-file log and records its exit (berth-shim/main.c)

   The caller keeps the container's other ends (stdin writer, tee readers) and a pidfd of C; when
   it dies at any step after the report, C goes on under S. Everything in S before the exec is
   async-signal-safe C, as in the child (the caller may be multi-threaded). */
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

struct outcome {
    int result;
    struct berth_failure failure;
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

__attribute__((noreturn)) static void shim_side(const struct berth_container *c, int control, const char *shim_path,
                                                const char *const *shim_argv, const int *keep, int nkeep) {
    /* A session of its own: the caller's terminal, its Ctrl-C and its process group's signals
       are not the container's reaper's. SIGPIPE: the caller may be gone when S writes to it. */
    setsid();
    signal(SIGPIPE, SIG_IGN);
    /* An inherited SIG_IGN would have the kernel reap the container itself (its status lost). */
    signal(SIGCHLD, SIG_DFL);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    struct berth_child child;
    struct report report = { berth_spawn(c, &child), 0, getpid() };
    if (report.rc == 0) report.pid = child.pid;
    write_full(control, &report, sizeof report);
    if (report.rc != 0) _exit(1);

    char go;
    if (read_full(control, &go, 1) < 0) {
        /* The caller gave up (or died) before the start: nothing of the container may run. */
        kill(child.pid, SIGKILL);
        while (waitpid(child.pid, NULL, 0) < 0 && errno == EINTR) {}
        _exit(1);
    }
    struct outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.result = berth_resume(&child, &outcome.failure);
    write_full(control, &outcome, sizeof outcome);
    if (outcome.result != 0) {
        while (waitpid(child.pid, NULL, 0) < 0 && errno == EINTR) {}
        _exit(1);
    }
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
    /* No shim: the container runs unreaped until it exits; say so on the way out. */
    _exit(127);
}

int berth_spawn_supervised(const struct berth_container *c, const char *shim_path, const char *const *shim_argv,
                           const int *keep, int nkeep, struct berth_supervised *out) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    long first = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (first == 0) {
        close(sv[0]);
        long second = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (second == 0) shim_side(c, sv[1], shim_path, shim_argv, keep, nkeep);
        _exit(second < 0 ? 1 : 0);
    }
    int e = errno;
    close(sv[1]);
    if (first < 0) {
        close(sv[0]);
        return -e;
    }
    while (waitpid((pid_t)first, NULL, 0) < 0 && errno == EINTR) {}
    struct report report;
    if (read_full(sv[0], &report, sizeof report) < 0) {
        close(sv[0]);
        return -EPROTO;
    }
    if (report.rc != 0) {
        close(sv[0]);
        return report.rc;
    }
    out->pid = report.pid;
    out->shim = report.shim;
    out->control = sv[0];
    return 0;
}

int berth_supervised_release(struct berth_supervised *s, struct berth_failure *failure) {
    char go = 1;
    struct outcome outcome;
    int rc;
    write_full(s->control, &go, 1);
    if (read_full(s->control, &outcome, sizeof outcome) < 0) {
        failure->stage = BERTH_STAGE_WAIT_PARENT;
        failure->err = EPIPE;
        failure->index = -1;
        rc = 1;
    } else {
        *failure = outcome.failure;
        rc = outcome.result;
    }
    close(s->control);
    s->control = -1;
    return rc;
}

void berth_supervised_abort(struct berth_supervised *s) {
    if (s->control >= 0) close(s->control);
    s->control = -1;
}
