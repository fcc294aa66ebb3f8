/* mounts.c: the container's mount namespace — overlay rootfs, the mount table (proc, dev, sys,
   cgroup, user binds/volumes/tmpfs, the per-container /etc files), device nodes, namespaced
   sysctls, masked and read-only paths, then pivot_root. Runs in the cloned child only (but for
   berth_overlay_open). Every path inside the root goes through inroot.c and is used by fd. */
#include "internal.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The state of one rootfs build: the overlay's root (the "/" every path resolves in) and what
   later steps need to know about earlier ones. */
struct build {
    const struct berth_container *c;
    int efd;
    int root;
    struct stat root_st;
    dev_t dev_tmpfs;   /* st_dev of the tmpfs mounted on /dev; 0 until then */
};

static void fd_target(char *buf, size_t size, int fd, const struct build *b, int stage, int i) {
    if (berth_fd_path(buf, size, fd) < 0) berth_fail(b->efd, stage, errno, i);
}

/* A mount table entry's target, resolved (and created as asked) inside the root. Returns an
   O_PATH fd, or -1 when an optional target is missing. */
static int open_target(const struct build *b, const struct berth_mount *m, int i) {
    int create = (m->options & BERTH_MOUNT_MKDIR) ? BERTH_IN_ROOT_MKDIR : (m->options & BERTH_MOUNT_MKFILE) ? BERTH_IN_ROOT_MKFILE : 0;
    int fd = berth_in_root(b->root, m->target, create, 0755);
    if (fd < 0) {
        if ((m->options & BERTH_MOUNT_OPTIONAL) && errno == ENOENT) return -1;
        berth_fail(b->efd, BERTH_STAGE_MOUNT, errno, i);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) berth_fail(b->efd, BERTH_STAGE_MOUNT, errno, i);
    /* A link that resolves to "/" would put the mount over the whole root filesystem: every
       later step would then write into the mount's source (a host folder, for a bind). */
    if (st.st_dev == b->root_st.st_dev && st.st_ino == b->root_st.st_ino) berth_fail(b->efd, BERTH_STAGE_MOUNT_TARGET, EBUSY, i);
    if ((m->options & BERTH_MOUNT_MKDIR) && !S_ISDIR(st.st_mode)) berth_fail(b->efd, BERTH_STAGE_MOUNT, ENOTDIR, i);
    if ((m->options & BERTH_MOUNT_MKFILE) && S_ISDIR(st.st_mode)) berth_fail(b->efd, BERTH_STAGE_MOUNT, EISDIR, i);
    /* Nothing of the user's may cover what procfs shows (runc refuses the same): masked and
       read-only /proc paths would be undone. */
    struct statfs fs;
    if ((m->options & BERTH_MOUNT_USER) && fstatfs(fd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC)
        berth_fail(b->efd, BERTH_STAGE_MOUNT_TARGET, EXDEV, i);
    return fd;
}

/* Bind `source_fd` (a path's O_PATH fd, its whole mount tree) onto `target_fd`: the tree is
   cloned detached, given its attributes (read-only on every submount too, as Docker 25+ does for
   `:ro`) and propagation, and only then attached, so there is no moment where it is writable or
   shares mount events it should not. */
static int bind_tree(int source_fd, int target_fd, uint64_t attr_set, unsigned long propagation, int recursive_propagation) {
    int tree = open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) return -1;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = attr_set;
    int rc = 0;
    if (attr_set && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) rc = -1;
    if (rc == 0 && propagation) {
        memset(&attr, 0, sizeof attr);
        attr.propagation = propagation;
        if (mount_setattr(tree, "", AT_EMPTY_PATH | (recursive_propagation ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) rc = -1;
    }
    if (rc == 0 && move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) rc = -1;
    int e = errno;
    close(tree);
    errno = e;
    return rc;
}

static uint64_t mount_attrs(unsigned long flags) {
    uint64_t attrs = 0;
    if (flags & MS_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
    if (flags & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
    if (flags & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
    if (flags & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
    return attrs;
}

static void mount_table(struct build *b) {
    const struct berth_container *c = b->c;
    char target[32];
    for (int i = 0; i < c->nmounts; i++) {
        const struct berth_mount *m = &c->mounts[i];
        int fd = open_target(b, m, i);
        if (fd < 0) continue;
        int rc;
        if (m->fstype == NULL) {
            /* Binds: the source is a host path of the user's (or a volume's directory). */
            int source = open(m->source, O_PATH | O_CLOEXEC);
            if (source < 0) berth_fail(b->efd, BERTH_STAGE_MOUNT, errno, i);
            uint64_t attrs = mount_attrs(m->flags) | ((m->options & BERTH_MOUNT_BIND_RO) ? MOUNT_ATTR_RDONLY : 0);
            unsigned long propagation = m->flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED);
            rc = bind_tree(source, fd, attrs, propagation ? propagation : MS_PRIVATE, (m->flags & MS_REC) != 0);
            close(source);
        } else {
            fd_target(target, sizeof target, fd, b, BERTH_STAGE_MOUNT, i);
            rc = mount(m->source, target, m->fstype, m->flags, m->data);
        }
        if (rc < 0) {
            if ((m->options & BERTH_MOUNT_OPTIONAL) && errno == ENOENT) { close(fd); continue; }
            berth_fail(b->efd, BERTH_STAGE_MOUNT, errno, i);
        }
        close(fd);
        if (m->fstype && strcmp(m->target, "/dev") == 0 && strcmp(m->fstype, "tmpfs") == 0) {
            struct stat st;
            int dev = berth_in_root_open(b->root, "/dev", O_PATH | O_DIRECTORY);
            if (dev < 0 || fstat(dev, &st) < 0) berth_fail(b->efd, BERTH_STAGE_MOUNT, errno, i);
            close(dev);
            b->dev_tmpfs = st.st_dev;
        }
    }
}

/* Makes `name` in `dir` a device node as asked: an existing node of the same kind is kept, and
   anything else there (a file or a link that a volume brought along) is replaced, never followed. */
static int make_node(int dir, const char *name, const struct berth_device *d) {
    dev_t want = makedev(d->major, d->minor);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (mknodat(dir, name, d->mode, want) == 0) break;
        if (errno != EEXIST) return -1;
        struct stat st;
        if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return -1;
        if ((st.st_mode & S_IFMT) == (d->mode & S_IFMT) && st.st_rdev == want) break;
        if (S_ISDIR(st.st_mode)) { errno = EISDIR; return -1; }
        if (unlinkat(dir, name, 0) < 0 || attempt == 1) return -1;
    }
    return fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW);
}

static void make_devices(const struct build *b) {
    const struct berth_container *c = b->c;
    /* When a mount of the user's covers /dev, its contents are the user's: runc makes no device
       nodes then, and neither does berth. */
    int devdir = berth_in_root_open(b->root, "/dev", O_PATH | O_DIRECTORY);
    struct stat st;
    int ours = devdir >= 0 && fstat(devdir, &st) == 0 && b->dev_tmpfs != 0 && st.st_dev == b->dev_tmpfs;
    if (devdir >= 0) close(devdir);
    if (!ours) return;
    char name[NAME_MAX + 1];
    for (int i = 0; i < c->ndevices; i++) {
        const struct berth_device *d = &c->devices[i];
        int dir = berth_in_root_parent(b->root, d->path, name, sizeof name);
        if (dir < 0) berth_fail(b->efd, BERTH_STAGE_DEVICE, errno, i);
        if (make_node(dir, name, d) < 0) berth_fail(b->efd, BERTH_STAGE_DEVICE, errno, i);
        close(dir);
    }
    for (int i = 0; i < c->nsymlinks; i++) {
        const struct berth_symlink *s = &c->symlinks[i];
        int dir = berth_in_root_parent(b->root, s->path, name, sizeof name);
        if (dir < 0) berth_fail(b->efd, BERTH_STAGE_SYMLINK, errno, i);
        if (symlinkat(s->target, dir, name) < 0 && errno != EEXIST) berth_fail(b->efd, BERTH_STAGE_SYMLINK, errno, i);
        close(dir);
    }
}

static void write_sysctls(const struct build *b) {
    const struct berth_container *c = b->c;
    char path[PATH_MAX];
    for (int i = 0; i < c->nsysctls; i++) {
        if (berth_join(path, sizeof path, "/proc/sys", c->sysctls[i].path) < 0) berth_fail(b->efd, BERTH_STAGE_SYSCTL, errno, i);
        int fd = berth_in_root_open(b->root, path, O_WRONLY);
        if (fd < 0 || berth_write_fd(fd, c->sysctls[i].value) < 0) berth_fail(b->efd, BERTH_STAGE_SYSCTL, errno, i);
        close(fd);
    }
}

/* Docker hides these: directories under a read-only empty tmpfs, files under /dev/null (the
   host's node, opened by berth itself: whatever the container's /dev holds plays no part). */
static void mask_paths(const struct build *b) {
    const struct berth_container *c = b->c;
    char target[32];
    int devnull = -1;
    for (int i = 0; i < c->nmasked; i++) {
        int fd = berth_in_root_open(b->root, c->masked_paths[i], O_PATH);
        if (fd < 0) {
            if (errno == ENOENT) continue;
            berth_fail(b->efd, BERTH_STAGE_MASK, errno, i);
        }
        struct stat st;
        if (fstat(fd, &st) < 0) berth_fail(b->efd, BERTH_STAGE_MASK, errno, i);
        int rc;
        if (S_ISDIR(st.st_mode)) {
            fd_target(target, sizeof target, fd, b, BERTH_STAGE_MASK, i);
            rc = mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
        } else {
            if (devnull < 0 && (devnull = open("/dev/null", O_PATH | O_CLOEXEC)) < 0) berth_fail(b->efd, BERTH_STAGE_MASK, errno, i);
            rc = bind_tree(devnull, fd, 0, MS_PRIVATE, 0);
        }
        if (rc < 0) berth_fail(b->efd, BERTH_STAGE_MASK, errno, i);
        close(fd);
    }
    if (devnull >= 0) close(devnull);
    for (int i = 0; i < c->nreadonly; i++) {
        int fd = berth_in_root_open(b->root, c->readonly_paths[i], O_PATH);
        if (fd < 0) {
            if (errno == ENOENT) continue;
            berth_fail(b->efd, BERTH_STAGE_READONLY_PATH, errno, i);
        }
        uint64_t attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if (bind_tree(fd, fd, attrs, MS_PRIVATE, 1) < 0) berth_fail(b->efd, BERTH_STAGE_READONLY_PATH, errno, i);
        close(fd);
    }
}

/* Entries that must stay writable until the others are mounted below them (v1's cgroup tmpfs). */
static void remount_read_only(const struct build *b) {
    const struct berth_container *c = b->c;
    for (int i = 0; i < c->nmounts; i++) {
        const struct berth_mount *m = &c->mounts[i];
        if (!(m->options & BERTH_MOUNT_RO_LATER)) continue;
        int fd = berth_in_root_open(b->root, m->target, O_PATH | O_DIRECTORY);
        if (fd < 0) berth_fail(b->efd, BERTH_STAGE_REMOUNT_RO, errno, i);
        struct mount_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.attr_set = MOUNT_ATTR_RDONLY;
        if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) berth_fail(b->efd, BERTH_STAGE_REMOUNT_RO, errno, i);
        close(fd);
    }
}

/* Parent side (any thread): the kernel's message log of a failed fs context ("e overlayfs: ..."). */
static void read_fs_message(int fs, char *message, size_t size) {
    if (size == 0) return;
    message[0] = '\0';
    ssize_t n = read(fs, message, size - 1);
    if (n <= 0) return;
    message[n] = '\0';
    if (message[n - 1] == '\n') message[n - 1] = '\0';
    /* Each log line starts with its level: "e " for an error. */
    if (n > 2 && message[1] == ' ') memmove(message, message + 2, strlen(message + 2) + 1);
}

/* fsconfig copies at most 256 bytes of a string value (strndup_user in fs/fsopen.c) and fails
   longer ones with EINVAL, so two or three layers under a long root do not fit in one
   "lowerdir". A long list is given as /proc/self/fd/N paths of O_PATH descriptors instead (about
   16 bytes a layer, any kernel with the new mount API; `fds` keeps them open until the overlay
   is created, which may be when older kernels resolve them). A list that does not fit even so
   goes one layer per call with "lowerdir+" (Linux 6.8 and later). Returns -1 with errno set. */
#define MAX_LOWER_FDS 128
static int set_lowerdirs(int fs, const char *lowerdir, int *fds, int *nfds) {
    *nfds = 0;
    if (strlen(lowerdir) < 256) return fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lowerdir, 0);
    char one[PATH_MAX];
    char short_list[256];
    size_t used = 0;
    int fits = 1;
    const char *p = lowerdir;
    while (*p && fits) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= sizeof one || *nfds == MAX_LOWER_FDS) {
            fits = 0;
            break;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        int fd = open(one, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return -1;
        fds[(*nfds)++] = fd;
        int w = snprintf(short_list + used, sizeof short_list - used, "%s/proc/self/fd/%d", used ? ":" : "", fd);
        if (w < 0 || (size_t)w >= sizeof short_list - used) fits = 0;
        else used += (size_t)w;
        p += n;
        if (*p == ':') p++;
    }
    if (fits) return fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", short_list, 0);
    p = lowerdir;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= sizeof one) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", one, 0) < 0) return -1;
        p += n;
        if (*p == ':') p++;
    }
    return 0;
}

static void close_all(int *fds, int n) {
    for (int i = 0; i < n; i++) close(fds[i]);
}

int berth_overlay_open(const char *lowerdir, const char *upperdir, const char *workdir, char *message, size_t size) {
    if (size) message[0] = '\0';
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    int mnt = -1;
    int lower_fds[MAX_LOWER_FDS];
    int nlower = 0;
    /* volatile: the upper dir is the container's scratch space; without it every unmount
       (each container exit) syncs the whole host file system that holds ROOT (10-30 ms). */
    if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
        set_lowerdirs(fs, lowerdir, lower_fds, &nlower) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upperdir, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "workdir", workdir, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0 ||
        /* Whatever the kernel's default: an index would tie a (recycled) upper dir to one set
           of lower layers. */
        fsconfig(fs, FSCONFIG_SET_STRING, "index", "off", 0) < 0 ||
        /* Plain copies up, whatever the kernel's default: a build captures an upper dir as a
           layer, and a redirect or metacopy entry has no tar form. A kernel without the options
           (EINVAL) has neither. */
        (fsconfig(fs, FSCONFIG_SET_STRING, "redirect_dir", "off", 0) < 0 && errno != EINVAL) ||
        (fsconfig(fs, FSCONFIG_SET_STRING, "metacopy", "off", 0) < 0 && errno != EINVAL) ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0)) < 0) {
        int e = errno;
        read_fs_message(fs, message, size);
        close_all(lower_fds, nlower);
        close(fs);
        return -e;
    }
    close_all(lower_fds, nlower);
    close(fs);
    return mnt;
}

/* The image's layers alone, read-only, as a detached mount: what a volume's copy-up reads the
   image's files from (VolumeCopyUp.swift). No upper or work dir, so nothing is ever written and
   nothing needs removing; the mount ends with the last descriptor of it. overlayfs wants two
   lower layers at least without an upper one: the caller adds an empty one at the bottom.
   nosuid, nodev and noexec: nothing is run or opened as a device from it, only read and
   stat()ed. Returns a CLOEXEC mount fd, or -errno with the kernel's reason in `message`. */
int berth_overlay_open_readonly(const char *lowerdir, char *message, size_t size) {
    if (size) message[0] = '\0';
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    int mnt = -1;
    int lower_fds[MAX_LOWER_FDS];
    int nlower = 0;
    if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
        set_lowerdirs(fs, lowerdir, lower_fds, &nlower) < 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0) {
        int e = errno;
        read_fs_message(fs, message, size);
        close_all(lower_fds, nlower);
        close(fs);
        return -e;
    }
    close_all(lower_fds, nlower);
    close(fs);
    return mnt;
}

static int mount_id(const char *path, uint64_t *id) {
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return -1;
    *id = stx.stx_mnt_id;
    return 0;
}

/* Makes private the mount that holds `path` (berth's own rootfs mount point): the deepest
   ancestor whose parent lies on another mount is that mount's root. */
static int make_holder_private(const char *path) {
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, len + 1);
    uint64_t id, parent;
    if (mount_id(buf, &id) < 0) return -1;
    while (len > 1) {
        char *slash = strrchr(buf, '/');
        size_t cut = slash == buf ? 1 : (size_t)(slash - buf);
        char saved = buf[cut];
        buf[cut] = '\0';
        if (mount_id(buf, &parent) < 0) return -1;
        if (parent != id) {
            buf[cut] = saved;
            break;
        }
        len = cut;
    }
    return mount(NULL, buf, NULL, MS_PRIVATE, NULL);
}

void berth_setup_rootfs(const struct berth_container *c, int efd) {
    /* Nothing we mount may propagate back to the host: every mount copied from it becomes
       private, or a slave of the host's when a bind asks for (r)slave. For (r)shared the copies
       stay peers of the host's, so the mount that holds the rootfs mount point is made private
       alone, and the overlay with all that is mounted on it stays out of the host's sight. */
    unsigned long propagation = c->root_propagation ? c->root_propagation : MS_PRIVATE;
    if (mount(NULL, "/", NULL, MS_REC | propagation, NULL) < 0) berth_fail(efd, BERTH_STAGE_PROPAGATION, errno, -1);
    if (propagation == MS_SHARED && make_holder_private(c->rootfs) < 0) berth_fail(efd, BERTH_STAGE_PROPAGATION, errno, -1);
    if (move_mount(c->rootfs_fd, "", AT_FDCWD, c->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        berth_fail(efd, BERTH_STAGE_ROOTFS, errno, -1);
    /* The overlay's mount fd is its root from here on: every path below resolves in it. */
    struct build b = { .c = c, .efd = efd, .root = c->rootfs_fd, .dev_tmpfs = 0 };
    if (fstat(b.root, &b.root_st) < 0) berth_fail(efd, BERTH_STAGE_ROOTFS, errno, -1);
    mount_table(&b);
    make_devices(&b);
    write_sysctls(&b);
    mask_paths(&b);
    remount_read_only(&b);

    /* pivot_root(".", "."): the old root ends up stacked on the new one; detach it. */
    int old_root = propagation == MS_SHARED ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fchdir(b.root) < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (syscall(SYS_pivot_root, ".", ".") < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    /* With shared copies, detaching the old root would propagate its unmounts to their peers:
       the host's mounts, and the container's own shared binds of them. As slaves (the old
       root's tree only, which no longer holds the new root) they do not. */
    if (old_root >= 0) {
        struct mount_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.propagation = MS_SLAVE;
        if (mount_setattr(old_root, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
            berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
        close(old_root);
    }
    if (umount2(".", MNT_DETACH) < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (chdir("/") < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (c->readonly_rootfs && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        berth_fail(efd, BERTH_STAGE_REMOUNT_RO, errno, -1);
}
