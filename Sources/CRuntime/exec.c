/* exec.c: a new process in a running container. A single-threaded intermediate child joins the
   container's cgroups and namespaces (setns needs a single-threaded caller for mnt), then clones
   the real process with CLONE_PARENT so it is berth's own child (waitpid works) and sits inside
   the container's PID namespace. The intermediate sends the pid back and exits. */
#include "internal.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noreturn)) static void intermediate(const struct berth_process *p, const int *ns_fds, int nns,
                                                   const char *const *procs, int nprocs, int pid_fd, int efd) {
    /* Non-dumpable before joining anything: this process and the one it clones into the
       container's PID namespace are copies of the host's berth binary until execve, and a
       process of the container must not open it through /proc/PID/exe (CVE-2019-5736). The flag
       is inherited by the clone and reset by its execve. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) berth_fail(efd, BERTH_STAGE_SETNS, errno, -1);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    for (int i = 0; i < nprocs; i++)
        if (berth_write_file(procs[i], "0") < 0) berth_fail(efd, BERTH_STAGE_CGROUP_JOIN, errno, i);
    for (int i = 0; i < nns; i++)
        if (setns(ns_fds[i], 0) < 0) berth_fail(efd, BERTH_STAGE_SETNS, errno, i);
    long pid = syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
    if (pid < 0) berth_fail(efd, BERTH_STAGE_FORK, errno, -1);
    if (pid == 0) {
        close(pid_fd);
        berth_setup_stdio(p, efd);
        berth_finish_process(p, efd);
    }
    pid_t value = (pid_t)pid;
    ssize_t n;
    do { n = write(pid_fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    _exit(0);
}

int berth_exec_spawn(const struct berth_process *p, const int *ns_fds, int nns,
                     const char *const *procs, int nprocs,
                     struct berth_child *child, struct berth_failure *failure) {
    int error_pipe[2], pid_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) < 0) return -errno;
    if (pipe2(pid_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(error_pipe[0]); close(error_pipe[1]);
        return -e;
    }
    long mid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (mid == 0) {
        close(error_pipe[0]);
        close(pid_pipe[0]);
        intermediate(p, ns_fds, nns, procs, nprocs, pid_pipe[1], error_pipe[1]);
    }
    int e = errno;
    close(error_pipe[1]);
    close(pid_pipe[1]);
    if (mid < 0) {
        close(error_pipe[0]); close(pid_pipe[0]);
        return -e;
    }
    pid_t pid = -1;
    ssize_t n;
    do { n = read(pid_pipe[0], &pid, sizeof pid); } while (n < 0 && errno == EINTR);
    close(pid_pipe[0]);
    int status;
    while (waitpid((pid_t)mid, &status, 0) < 0 && errno == EINTR) {}

    /* EOF on the error pipe: the intermediate is gone and the process exec'ed. */
    size_t got = 0;
    while (got < sizeof *failure) {
        ssize_t r = read(error_pipe[0], (char *)failure + got, sizeof *failure - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(error_pipe[0]);
    if (got > 0) {
        if (n == (ssize_t)sizeof pid && pid > 0) while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return 1;
    }
    if (n != (ssize_t)sizeof pid || pid <= 0) {
        failure->stage = BERTH_STAGE_FORK;
        failure->err = EPROTO;
        failure->index = -1;
        return 1;
    }
    child->pid = pid;
    child->pidfd = berth_pidfd_open(pid);
    child->sync_fd = -1;
    child->error_fd = -1;
    return 0;
}
