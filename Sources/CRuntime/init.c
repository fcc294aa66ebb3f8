/* init.c: `init: true` — a minimal PID 1. It forks the real process, forwards every signal it
   receives to it, reaps every zombie the namespace hands it, and exits with the real process's
   status (128+n for signal n). It runs after capabilities and seccomp are in place. */
#include "internal.h"
#include <signal.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* PID 1 is a fork of berth that never execs: its argument area is still berth's command line
   (`berth up -d -e ...`), which /proc/1/cmdline would show the container's processes. Blank it
   (its bounds are fields 48 and 49 of /proc/self/stat) and name the process "init". No
   allocation: this runs between clone and exec's world. */
static void hide_berth_arguments(void) {
    prctl(PR_SET_NAME, "init", 0, 0, 0);
    char stat[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0) return;
    stat[n] = 0;
    char *p = strrchr(stat, ')');
    if (!p) return;
    int field = 2; /* the ")" ends field 2 (comm) */
    unsigned long long start = 0, end = 0;
    for (char *q = p + 1; *q; q++) {
        if (*q != ' ') continue;
        field++;
        if (field == 48) start = strtoull(q + 1, NULL, 10);
        if (field == 49) {
            end = strtoull(q + 1, NULL, 10);
            break;
        }
    }
    if (start == 0 || end <= start + 5) return;
    memset((void *)start, 0, end - start);
    memcpy((void *)start, "init", 5);
}

void berth_run_init(int efd) {
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    /* Before the fork: it reads /proc/self/stat through a descriptor of its own, which the
       container's process would otherwise see in /proc/1/fd for that moment. The child execs,
       so the blanked argument area and the name "init" end with it. */
    hide_berth_arguments();
    pid_t child = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (child < 0) berth_fail(efd, BERTH_STAGE_INIT, errno, -1);
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        return; /* the caller goes on to execve */
    }
    /* Only the exec'ing child may hold the error pipe, so its execve is what closes it. PID 1
       never execs, so close-on-exec protects nothing here: drop every descriptor above stdio, or
       berth's pipes (a monitor's report pipe, the stdin writer) would stay open for the
       container's life and be reachable through /proc/1/fd. */
    close(efd);
    syscall(SYS_close_range, 3, ~0U, 0);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done <= 0) break;
            if (done == child) _exit(berth_wait_status_exit(status));
        }
    }
}

int berth_wait_status_exit(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}
