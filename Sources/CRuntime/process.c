/* process.c: the last steps before execve, shared by `run` and `exec`: stdio, rlimits, the
   capability bounding set, seccomp, groups/gid/uid, the final capability sets, no_new_privs,
   working directory, berth's init, and the PATH lookup of argv[0]. */
#include "internal.h"
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>


void berth_setup_stdio(const struct berth_process *p, int efd) {
    int fds[3] = { p->stdin_fd, p->stdout_fd, p->stderr_fd };
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0) continue;
        if (fds[i] == i) {
            /* Already in place: only make sure it survives execve. */
            if (fcntl(i, F_SETFD, 0) < 0) berth_fail(efd, BERTH_STAGE_STDIO, errno, i);
            continue;
        }
        if (dup2(fds[i], i) < 0) berth_fail(efd, BERTH_STAGE_STDIO, errno, i);
    }
    if (setsid() < 0) berth_fail(efd, BERTH_STAGE_SETSID, errno, -1);
    if (p->tty && ioctl(0, TIOCSCTTY, 0) < 0) berth_fail(efd, BERTH_STAGE_SETSID, errno, -1);
}

static void install_seccomp(const struct berth_process *p, int efd) {
    struct sock_fprog prog = { p->seccomp_len, (struct sock_filter *)p->seccomp_filter };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        berth_fail(efd, BERTH_STAGE_SECCOMP, errno, -1);
}

static void set_capabilities(const struct berth_process *p, int efd) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t)(p->cap_effective >> (32 * i));
        data[i].permitted = (uint32_t)(p->cap_permitted >> (32 * i));
        data[i].inheritable = (uint32_t)(p->cap_inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &header, data) < 0) berth_fail(efd, BERTH_STAGE_CAPSET, errno, -1);
}

/* execve(path), through the trampoline when there is one (see trampoline.c): it gets the
   resolved path first and the program's argv after it, and the error pipe as fd 3, where it
   reports a failed execve as the child would. */
static void exec_path(const struct berth_process *p, const char *path, int efd) {
    char *const *argv = (char *const *)p->argv;
    char *const *envp = (char *const *)p->envp;
    if (p->trampoline_fd < 0) {
        execve(path, argv, envp);
        return;
    }
    size_t argc = 0;
    while (argv[argc]) argc++;
    if (argc > 1 << 16) { errno = E2BIG; return; }
    const char *args[argc + 2];
    args[0] = path;
    for (size_t i = 0; i <= argc; i++) args[i + 1] = argv[i];
    int trampoline = p->trampoline_fd;
    if (trampoline == 3 && (trampoline = fcntl(3, F_DUPFD_CLOEXEC, 4)) < 0) return;
    if (efd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(efd, 3) < 0) return;
    syscall(SYS_execveat, trampoline, "", args, envp, AT_EMPTY_PATH);
}

__attribute__((noreturn)) static void exec_argv(const struct berth_process *p, int efd) {
    const char *file = p->argv[0];
    if (strchr(file, '/')) {
        exec_path(p, file, efd);
        berth_fail(efd, BERTH_STAGE_EXEC, errno, -1);
    }
    const char *search = p->path_env ? p->path_env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t flen = strlen(file);
    int last = ENOENT;
    char buf[PATH_MAX];
    for (const char *s = search;;) {
        const char *end = strchr(s, ':');
        size_t dlen = end ? (size_t)(end - s) : strlen(s);
        if (dlen + flen + 2 <= sizeof buf) {
            size_t at = 0;
            if (dlen == 0) buf[at++] = '.'; else { memcpy(buf, s, dlen); at = dlen; }
            buf[at++] = '/';
            memcpy(buf + at, file, flen + 1);
            /* A failed execve sets up a new mm before it finds nothing; access() is a path walk. */
            if (access(buf, F_OK) == 0 || (errno != ENOENT && errno != ENOTDIR)) exec_path(p, buf, efd);
            /* Keep looking on "not here"; remember "here but not runnable". */
            if (errno != ENOENT && errno != ENOTDIR) last = errno;
        }
        if (!end) break;
        s = end + 1;
    }
    berth_fail(efd, BERTH_STAGE_EXEC, last, -1);
}

void berth_finish_process(const struct berth_process *p, int efd) {
    for (int i = 0; i < p->nrlimits; i++) {
        struct rlimit rl = { (rlim_t)p->rlimits[i].soft, (rlim_t)p->rlimits[i].hard };
        if (setrlimit(p->rlimits[i].resource, &rl) < 0) berth_fail(efd, BERTH_STAGE_RLIMIT, errno, i);
    }
    if (p->set_oom_score_adj) {
        char value[16];
        int v = p->oom_score_adj, at = 15;
        int negative = v < 0;
        unsigned int u = negative ? (unsigned int)(-v) : (unsigned int)v;
        value[at] = '\0';
        do { value[--at] = (char)('0' + u % 10); u /= 10; } while (u);
        if (negative) value[--at] = '-';
        if (berth_write_file("/proc/self/oom_score_adj", value + at) < 0) berth_fail(efd, BERTH_STAGE_OOM_SCORE, errno, -1);
    }
    if (p->cwd && p->create_cwd) {
        /* After pivot_root (or setns) "/" is the container's root already; resolving in it
           anyway keeps every path of the container's on one code path (inroot.c). */
        int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int dir = root < 0 ? -1 : berth_in_root(root, p->cwd, BERTH_IN_ROOT_MKDIR, 0755);
        if (dir < 0) berth_fail(efd, BERTH_STAGE_CWD, errno, -1);
        close(dir);
        close(root);
    }

    /* Nothing but the error pipe (CLOEXEC already) and stdio may cross execve. */
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);

    for (int cap = 0; cap <= p->last_cap; cap++) {
        if (p->cap_bounding & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            berth_fail(efd, BERTH_STAGE_BOUNDING, errno, cap);
    }
    /* Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we hold it. */
    if (p->seccomp_filter && !p->no_new_privs) install_seccomp(p, efd);

    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) berth_fail(efd, BERTH_STAGE_CAPSET, errno, -1);
    /* Raw syscalls: glibc's wrappers broadcast to all threads (__nptl_setxid) when the process
       was multi-threaded, and this raw-clone child inherited that state and perhaps held locks. */
    if (syscall(SYS_setgroups, (size_t)p->ngroups, p->groups) < 0) berth_fail(efd, BERTH_STAGE_SETGROUPS, errno, -1);
    if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0) berth_fail(efd, BERTH_STAGE_SETGID, errno, -1);
    if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0) berth_fail(efd, BERTH_STAGE_SETUID, errno, -1);
    set_capabilities(p, efd);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) berth_fail(efd, BERTH_STAGE_CAPSET, errno, -1);

    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        berth_fail(efd, BERTH_STAGE_NO_NEW_PRIVS, errno, -1);
    if (p->seccomp_filter && p->no_new_privs) install_seccomp(p, efd);

    if (p->cwd && chdir(p->cwd) < 0) berth_fail(efd, BERTH_STAGE_CWD, errno, -1);
    umask(022);
    if (p->use_init) berth_run_init(efd);
    exec_argv(p, efd);
}
