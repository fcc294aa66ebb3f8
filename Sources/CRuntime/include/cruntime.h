#ifndef BERTH_CRUNTIME_H
#define BERTH_CRUNTIME_H
/*
 * CRuntime: the code that runs between clone() and execve().
 *
 * Swift fills the flat structs below before calling berth_spawn()/berth_exec_spawn(); every
 * pointer they hold stays valid until the call returns. The child only makes async-signal-safe
 * calls: no allocation, no locks, no Swift. A failing step is written to the error pipe as a
 * struct berth_failure (stage, errno, index into the table that failed) and the child exits;
 * a successful execve() closes the CLOEXEC error pipe, so the parent reads EOF.
 */
#include <stdint.h>
#include <sys/types.h>

/* Options of one mount table entry. */
enum {
    BERTH_MOUNT_MKDIR = 1,      /* create the target (and parents) as directories */
    BERTH_MOUNT_MKFILE = 2,     /* create the target as an empty file (parents as directories) */
    BERTH_MOUNT_BIND_RO = 4,    /* bind mount: read-only, every submount too (attached so) */
    BERTH_MOUNT_RO_LATER = 8,   /* remount read-only after every other mount is in place */
    BERTH_MOUNT_OPTIONAL = 16,  /* skip the entry when the mount fails with ENOENT */
    BERTH_MOUNT_USER = 32,      /* asked for by the user: may not land on procfs */
};

struct berth_mount {
    const char *source;  /* device, host path for binds, or a name such as "proc" */
    const char *target;  /* absolute path inside the container, resolved inside its root */
    const char *fstype;  /* NULL for a bind mount */
    unsigned long flags; /* MS_* flags; for binds MS_PRIVATE|MS_SLAVE|MS_SHARED is the
                            propagation (private when none) and MS_REC makes it recursive */
    const char *data;    /* filesystem options, may be NULL */
    int options;         /* BERTH_MOUNT_* */
};

struct berth_device {
    const char *path;    /* absolute path inside the container */
    unsigned int mode;   /* S_IFCHR/S_IFBLK | permission bits */
    unsigned int major, minor;
    uid_t uid;
    gid_t gid;
};

struct berth_symlink {
    const char *target;  /* what the link points to */
    const char *path;    /* absolute path of the link inside the container */
};

struct berth_rlimit {
    int resource;
    uint64_t soft, hard;
};

struct berth_sysctl {
    const char *path;    /* below /proc/sys, e.g. "net/ipv4/ip_forward" */
    const char *value;
};

/* What both `run` and `exec` do last: identity, capabilities, seccomp, cwd, execve. */
struct berth_process {
    const char *const *argv;   /* NULL-terminated */
    const char *const *envp;   /* NULL-terminated */
    const char *path_env;      /* PATH used to look argv[0] up, NULL for the default */
    const char *cwd;
    int create_cwd;            /* mkdir -p the cwd (as root) before changing identity */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int ngroups;
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable;
    int last_cap;              /* highest capability number the kernel knows */
    int no_new_privs;
    const void *seccomp_filter; /* struct sock_filter[], NULL for no filter */
    unsigned short seccomp_len; /* number of instructions */
    int stdin_fd, stdout_fd, stderr_fd; /* dup2'ed onto 0, 1, 2; -1 keeps what is there */
    int tty;                   /* stdin is a terminal: setsid + make it the controlling tty */
    int use_init;              /* fork: PID 1 forwards signals and reaps, the child execs */
    const struct berth_rlimit *rlimits;
    int nrlimits;
    int set_oom_score_adj;
    int oom_score_adj;
    int trampoline_fd;         /* berth_trampoline_fd(): the last exec goes through it; -1: direct */
};

struct berth_container {
    struct berth_process process;
    int new_network;           /* clone a new network namespace (and bring lo up) */
    int netns_fd;              /* >= 0: join this network namespace instead */
    const char *rootfs;        /* host directory the overlay is attached on */
    int rootfs_fd;             /* the overlay, made detached by berth_overlay_open */
    int readonly_rootfs;
    /* Propagation of the container's mounts copied from the host: MS_PRIVATE (0 means it too),
       MS_SLAVE when a bind asks for (r)slave, MS_SHARED when one asks for (r)shared; a bind
       can only stay a peer (or slave) of its host source when the copy it is cloned from is. */
    unsigned long root_propagation;
    const struct berth_mount *mounts;
    int nmounts;
    const struct berth_device *devices;
    int ndevices;
    const struct berth_symlink *symlinks;
    int nsymlinks;
    const struct berth_sysctl *sysctls;
    int nsysctls;
    const char *const *masked_paths;
    int nmasked;
    const char *const *readonly_paths;
    int nreadonly;
    const char *hostname;
    const char *domainname;
    /* Files the child writes "0" to, to move itself into its cgroup before anything else
       (v1: each hierarchy's `tasks`; v2: `cgroup.procs`). See spawn.c for why the child, not
       the parent, does it. */
    const char *const *cgroup_join;
    int ncgroup_join;
};

/* Steps the child reports in struct berth_failure.stage. Keep in step with Swift's names. */
enum berth_stage {
    BERTH_STAGE_NONE = 0,
    BERTH_STAGE_WAIT_PARENT,
    BERTH_STAGE_STDIO,
    BERTH_STAGE_SETSID,
    BERTH_STAGE_CGROUP_NS,
    BERTH_STAGE_JOIN_NETNS,
    BERTH_STAGE_LOOPBACK,
    BERTH_STAGE_PROPAGATION,
    BERTH_STAGE_ROOTFS,
    BERTH_STAGE_MOUNT,
    BERTH_STAGE_DEVICE,
    BERTH_STAGE_SYMLINK,
    BERTH_STAGE_SYSCTL,
    BERTH_STAGE_MASK,
    BERTH_STAGE_READONLY_PATH,
    BERTH_STAGE_REMOUNT_RO,
    BERTH_STAGE_PIVOT_ROOT,
    BERTH_STAGE_HOSTNAME,
    BERTH_STAGE_DOMAINNAME,
    BERTH_STAGE_RLIMIT,
    BERTH_STAGE_OOM_SCORE,
    BERTH_STAGE_BOUNDING,
    BERTH_STAGE_SETGROUPS,
    BERTH_STAGE_SETGID,
    BERTH_STAGE_SETUID,
    BERTH_STAGE_CAPSET,
    BERTH_STAGE_NO_NEW_PRIVS,
    BERTH_STAGE_SECCOMP,
    BERTH_STAGE_CWD,
    BERTH_STAGE_EXEC,
    BERTH_STAGE_INIT,
    BERTH_STAGE_CGROUP_JOIN,
    BERTH_STAGE_SETNS,
    BERTH_STAGE_FORK,
    BERTH_STAGE_MOUNT_TARGET,  /* err EBUSY: resolves to the root; EXDEV: lands in /proc */
    BERTH_STAGE_COUNT
};

struct berth_failure {
    int stage;
    int err;    /* errno */
    int index;  /* entry of the mount/device/... table, or -1 */
};

/* A started (but still waiting) container child. */
struct berth_child {
    pid_t pid;
    int pidfd;      /* pollable; readable once the process exits */
    int sync_fd;    /* parent writes one byte here to let the child go on */
    int error_fd;   /* parent reads struct berth_failure or EOF (exec happened) */
};

/* Clone the container's first process into new namespaces. It builds its root filesystem, then
   blocks until berth_release() before the steps that start the program. Returns 0 or -errno
   (from pipe/clone in the parent). */
int berth_spawn(const struct berth_container *config, struct berth_child *child);

/* Let the child go on (after network setup); closes sync_fd. Returns 1 when the byte got
   through, 0 when the child was already gone. */
int berth_release(struct berth_child *child);

/* Wait for the released child's execve: returns 0 when it happened, 1 when *failure was filled
   in, -errno on a read error. Closes error_fd. `released` is berth_release's result. */
int berth_wait_exec(struct berth_child *child, int released, struct berth_failure *failure);

/* berth_release, then berth_wait_exec. */
int berth_resume(struct berth_child *child, struct berth_failure *failure);

/* exec into a running container. ns_fds: open /proc/PID/ns/{ipc,uts,net,pid,cgroup,mnt} in that
   order (mnt last); cgroup_procs: cgroup.procs files to join first. The process ends up a child of
   the caller (CLONE_PARENT), so waitpid() works. Returns 0 (child filled in, already running
   past the setns step) or 1 with *failure, or -errno. */
int berth_exec_spawn(const struct berth_process *process, const int *ns_fds, int nns,
                     const char *const *cgroup_procs, int ncgroup_procs,
                     struct berth_child *child, struct berth_failure *failure);

/* A container started under its reaper, berth-shim (supervise.c). */
struct berth_supervised {
    pid_t pid;      /* the container's first process */
    pid_t shim;     /* its parent, berth-shim */
    int sync_fd;    /* the caller writes one byte here to let the container go on */
    int error_fd;   /* the caller reads struct berth_failure or EOF (the program was exec'ed) */
};

/* Forks (twice: not the caller's child) a process that clones the container as berth_spawn does
   and then execs `shim_path` with `shim_argv`, keeping only the descriptors in `keep` open across
   that exec. Returns 0 with *out filled in (the container waits, as after berth_spawn, for
   berth_supervised_release), or -errno. */
int berth_spawn_supervised(const struct berth_container *config, const char *shim_path, const char *const *shim_argv,
                           const int *keep, int nkeep, struct berth_supervised *out);

/* Lets the container go on (after network hooks and the record), as berth_resume: 0 when its
   program was exec'ed, 1 with *failure filled in. Closes sync_fd and error_fd. */
int berth_supervised_release(struct berth_supervised *s, struct berth_failure *failure);

/* Gives up before the release: the container reads EOF and exits without running anything. */
void berth_supervised_abort(struct berth_supervised *s);

/* The container's overlay as a detached mount (fsopen/fsconfig/fsmount), made in the parent so
   that overlayfs's setup (its work dir and feature probes, a dozen inode creations) runs on
   another core before the clone; the child attaches it with move_mount. `lowerdir` lists layers
   topmost first, ':'-separated. Returns a CLOEXEC mount fd, or -errno with the kernel's reason
   (if it gave one) in `message`. */
int berth_overlay_open(const char *lowerdir, const char *upperdir, const char *workdir, char *message, size_t size);

/* The layers only (topmost first, ':'-separated, two at least), read-only, as a detached
   mount: a volume's copy-up reads the image through it. A CLOEXEC mount fd, or -errno. */
int berth_overlay_open_readonly(const char *lowerdir, char *message, size_t size);

/* A new network namespace with `lo` up, made by the calling thread (which returns to its own
   namespace) so that its setup, most of a clone with CLONE_NEWNET, runs on another core before
   the clone; the child joins it with setns. Returns a CLOEXEC fd or -errno. */
int berth_netns_open(void);

/* Paths inside a container's root (inroot.c): resolved by openat2(RESOLVE_IN_ROOT |
   RESOLVE_NO_MAGICLINKS) relative to root_fd, so that no symlink or ".." leads outside it. */
enum {
    BERTH_IN_ROOT_MKDIR = 1,   /* create what is missing as directories, the last one too */
    BERTH_IN_ROOT_MKFILE = 2,  /* create missing parents as directories, the last as an empty file */
};
/* O_PATH, which Swift's Glibc module does not export (it is a _GNU_SOURCE name). */
enum { BERTH_O_PATH = 010000000 };
/* openat2 in root with `flags` (O_CLOEXEC added); fd or -1 with errno. */
int berth_in_root_open(int root_fd, const char *path, int flags);
/* An O_PATH fd of `path`, creating what is missing as `create` says (0: nothing). A dangling
   link on the way is followed inside the root and what it names is created. fd or -1/errno. */
int berth_in_root(int root_fd, const char *path, int create, unsigned int mode);
/* The O_PATH fd of the directory holding `path`'s last component (made when missing), whose
   name goes to `name`: for mknodat/symlinkat/fchownat by name. fd or -1 with errno. */
int berth_in_root_parent(int root_fd, const char *path, char *name, size_t size);

/* A volume's copy-up (copyup.c). Copies `from_fd`'s extended attributes (file capabilities,
   ACLs) to `to_fd`, but overlayfs's own: the number that could not be set (best effort, as the
   volume's file system may not take them), or -errno when the list cannot be read. */
int berth_copy_xattrs(int from_fd, int to_fd);
/* The extended attributes berth_copy_xattrs would copy, as text ("name=hexvalue;" each) in
   `out`: its length, or -errno (-E2BIG when they do not fit). For a build's source digest. */
ssize_t berth_xattrs_text(int fd, char *out, size_t size);
/* chmod of the node `name` in `dir_fd` (a device, FIFO or socket just made) without following
   a link: refused (EEXIST) when it is not of `type` (S_IFCHR, ...). 0, or -1 with errno. */
int berth_chmod_node(int dir_fd, const char *name, unsigned int mode, unsigned int type);

/* The sealed memfd holding the tiny program the container's program is exec'ed from, so that no
   container ever reaches berth's binary through /proc/self/exe (trampoline.c). Made once per
   process; -1 where it cannot be (another architecture, no memfd). */
int berth_trampoline_fd(void);

/* Small wrappers Swift cannot call directly. */
int berth_pidfd_open(pid_t pid);
int berth_pidfd_send_signal(int pidfd, int sig);
int berth_ioctl_winsize(int fd, unsigned short rows, unsigned short cols);
int berth_ioctl_get_winsize(int fd, unsigned short *rows, unsigned short *cols);
int berth_wait_status_exit(int status);            /* exit code, or 128+signal */
int berth_pipe_cloexec(int fds[2], int nonblock);   /* pipe2(O_CLOEXEC[|O_NONBLOCK]) */
int berth_open_pty(int *master, int *slave);        /* a pty pair, both CLOEXEC; 0 or -errno */
int berth_memfd(const char *name);                  /* memfd_create(MFD_CLOEXEC) */
int berth_only_overlay_xattrs(const char *path);    /* 1 when every xattr is trusted.overlay.* */
int berth_overlay_opaque(const char *path);         /* 1 when trusted.overlay.opaque is "y" (no follow) */
int berth_mark_top_directory(const char *path);     /* FS_TOPDIR_FL (chattr +T); 0 or -errno */

#endif
