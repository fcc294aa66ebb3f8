/* spawn.c: clone the container's first process and the parent/child handshake.

   Parent                              Child (new mnt, pid, uts, ipc, [net] namespaces)
   pipe2(sync), pipe2(error) CLOEXEC
   clone(CLONE_NEW* | CLONE_PIDFD)  -> reset signals, dup stdio, setsid,
                                       join its cgroup (write "0" to each join file),
   (Swift, on the other core: network  unshare(CLONE_NEWCGROUP) (now rooted at its cgroup),
    hooks, state.json "running")       lo up, hostname, rootfs + mounts + pivot_root,
                                       read(sync) ... blocks
   berth_release: write(sync, 1)    -> rlimits, caps, seccomp, uid/gid, cwd, execve
   berth_wait_exec: read(error):    <- or struct berth_failure {stage, errno, index}; _exit
                EOF = exec'ed, record = failure

   The child builds its root filesystem while the parent does its own bookkeeping, and waits
   only before the steps that start the container's program: nothing of the container runs
   before the parent has recorded it and plumbed its network. The network hooks work on the
   namespace from outside (netlink, a veth moved in), which the child's mounts do not touch.

   Why the child joins its cgroup itself: on cgroup v1, writing a pid to cgroup.procs takes the
   global cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period (~10-20 ms
   here, measured; most of a container start). Writing "0" to a v1 `tasks` file moves only the
   calling thread, and the kernel skips that lock for it. The child is single-threaded (a fork of
   one thread), so moving that thread moves the whole process, before it has done anything. */
#include "internal.h"
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/xattr.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* The child starts with the parent's dispositions and mask; a Swift process may ignore or
   block signals that the container's process must see with their defaults. */
static void reset_signals(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Brings up `lo` in the caller's network namespace; 0 or -errno. */
static int set_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq req;
    memset(&req, 0, sizeof req);
    memcpy(req.ifr_name, "lo", 3);
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &req) < 0) rc = -errno;
    req.ifr_flags |= IFF_UP;
    if (rc == 0 && ioctl(s, SIOCSIFFLAGS, &req) < 0) rc = -errno;
    close(s);
    return rc;
}

static void loopback_up(int efd) {
    int rc = set_loopback_up();
    if (rc < 0) berth_fail(efd, BERTH_STAGE_LOOPBACK, -rc, -1);
}

int berth_netns_open(void) {
    int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original < 0) return -errno;
    int rc = 0, made = -1;
    if (unshare(CLONE_NEWNET) < 0) rc = -errno;
    if (rc == 0 && (rc = set_loopback_up()) == 0) {
        made = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (made < 0) rc = -errno;
    }
    /* Back home, so a caller that is not a throwaway thread keeps the host's network. */
    if (setns(original, CLONE_NEWNET) < 0 && rc == 0) rc = -errno;
    close(original);
    if (rc < 0) {
        if (made >= 0) close(made);
        return rc;
    }
    return made;
}

__attribute__((noreturn)) static void child_main(const struct berth_container *c, int sync_fd, int efd) {
    /* Until execve this process is a copy of berth, PID 1 of the container's namespace (and for
       `init: true`, for good): non-dumpable, so no process of the container can open the host's
       berth binary through /proc/1/exe or touch its memory (CVE-2019-5736). execve resets it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    reset_signals();
    umask(0);
    berth_setup_stdio(&c->process, efd);
    for (int i = 0; i < c->ncgroup_join; i++)
        if (berth_write_file(c->cgroup_join[i], "0") < 0) berth_fail(efd, BERTH_STAGE_CGROUP_JOIN, errno, i);

    /* We are in our cgroup: a namespace created now is rooted there. */
    if (unshare(CLONE_NEWCGROUP) < 0) berth_fail(efd, BERTH_STAGE_CGROUP_NS, errno, -1);
    if (c->netns_fd >= 0 && setns(c->netns_fd, CLONE_NEWNET) < 0) berth_fail(efd, BERTH_STAGE_JOIN_NETNS, errno, -1);
    if (c->new_network) loopback_up(efd);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        berth_fail(efd, BERTH_STAGE_HOSTNAME, errno, -1);
    if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
        berth_fail(efd, BERTH_STAGE_DOMAINNAME, errno, -1);
    berth_setup_rootfs(c, efd);

    char go;
    ssize_t n;
    do { n = read(sync_fd, &go, 1); } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(126); /* the parent gave up before letting us run */
    close(sync_fd);
    berth_finish_process(&c->process, efd);
}

int berth_spawn(const struct berth_container *c, struct berth_child *child) {
    int sync_pipe[2], error_pipe[2];
    if (pipe2(sync_pipe, O_CLOEXEC) < 0) return -errno;
    if (pipe2(error_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(sync_pipe[0]); close(sync_pipe[1]);
        return -e;
    }
    return berth_spawn_with_pipes(c, sync_pipe, error_pipe, child);
}

int berth_spawn_with_pipes(const struct berth_container *c, int sync_pipe[2], int error_pipe[2],
                           struct berth_child *child) {
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD | SIGCHLD;
    if (c->new_network) flags |= CLONE_NEWNET;
    int pidfd = -1;
    /* A raw clone without CLONE_VM is a fork: the child runs on a copy of this stack. */
    long pid = syscall(SYS_clone, flags, 0, &pidfd, 0, 0);
    if (pid == 0) {
        close(sync_pipe[1]);
        close(error_pipe[0]);
        child_main(c, sync_pipe[0], error_pipe[1]);
    }
    int e = errno;
    close(sync_pipe[0]);
    close(error_pipe[1]);
    if (pid < 0) {
        close(sync_pipe[1]);
        close(error_pipe[0]);
        return -e;
    }
    child->pid = (pid_t)pid;
    child->pidfd = pidfd;
    child->sync_fd = sync_pipe[1];
    child->error_fd = error_pipe[0];
    return 0;
}

static int read_failure(int fd, struct berth_failure *failure) {
    size_t got = 0;
    char *buf = (char *)failure;
    while (got < sizeof *failure) {
        ssize_t n = read(fd, buf + got, sizeof *failure - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got == 0) return 0;
    if (got < sizeof *failure) {
        failure->stage = BERTH_STAGE_NONE;
        failure->err = EPROTO;
        failure->index = -1;
    }
    return 1;
}

int berth_release(struct berth_child *child) {
    /* A child that failed early (stdio, cgroup join) has closed its end: the write then raises
       SIGPIPE, which must not kill berth. Block it for this thread and drop a pending one. */
    sigset_t pipe_only, saved;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &saved);
    char go = 1;
    ssize_t n;
    do { n = write(child->sync_fd, &go, 1); } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EPIPE) {
        struct timespec zero = { 0, 0 };
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) && !sigismember(&saved, SIGPIPE)) sigtimedwait(&pipe_only, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(child->sync_fd);
    child->sync_fd = -1;
    return n == 1;
}

int berth_wait_exec(struct berth_child *child, int released, struct berth_failure *failure) {
    int rc = read_failure(child->error_fd, failure);
    close(child->error_fd);
    child->error_fd = -1;
    if (rc == 0 && !released) {
        failure->stage = BERTH_STAGE_WAIT_PARENT;
        failure->err = EPIPE;
        failure->index = -1;
        return 1;
    }
    return rc;
}

int berth_resume(struct berth_child *child, struct berth_failure *failure) {
    int released = berth_release(child);
    return berth_wait_exec(child, released, failure);
}

int berth_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int berth_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int berth_ioctl_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { rows, cols, 0, 0 };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int berth_ioctl_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

int berth_pipe_cloexec(int fds[2], int nonblock) {
    return pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}

int berth_open_pty(int *master, int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -errno;
    char name[64];
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0) {
        int e = errno;
        close(m);
        return -e;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int e = errno;
        close(m);
        return -e;
    }
    *master = m;
    *slave = s;
    return 0;
}

int berth_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int berth_mark_top_directory(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int flags = 0, rc = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) rc = -errno;
    flags |= FS_TOPDIR_FL;
    if (rc == 0 && ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) rc = -errno;
    close(fd);
    return rc;
}

int berth_only_overlay_xattrs(const char *path) {
    char names[4096];
    ssize_t n = llistxattr(path, names, sizeof names);
    if (n < 0) return 0;
    static const char prefix[] = "trusted.overlay.";
    for (ssize_t at = 0; at < n; at += (ssize_t)strlen(names + at) + 1)
        if (strncmp(names + at, prefix, sizeof prefix - 1) != 0) return 0;
    return 1;
}

int berth_overlay_opaque(const char *path) {
    char value = 0;
    return lgetxattr(path, "trusted.overlay.opaque", &value, 1) == 1 && value == 'y';
}
