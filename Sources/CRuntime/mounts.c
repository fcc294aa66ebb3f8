/* mounts.c: the container's mount namespace — overlay rootfs, the mount table (proc, dev, sys,
   cgroup, user binds/volumes/tmpfs, the per-container /etc files), device nodes, namespaced
   sysctls, masked and read-only paths, then pivot_root. Runs in the cloned child only. */
#include "internal.h"
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void mount_table(const struct berth_container *c, int efd) {
    char path[PATH_MAX];
    for (int i = 0; i < c->nmounts; i++) {
        const struct berth_mount *m = &c->mounts[i];
        if (berth_join_in_root(path, sizeof path, c->rootfs, m->target) < 0) berth_fail(efd, BERTH_STAGE_MOUNT, errno, i);
        if ((m->options & BERTH_MOUNT_MKDIR) && berth_mkdir_p(path, 0755) < 0)
            berth_fail(efd, BERTH_STAGE_MOUNT, errno, i);
        if ((m->options & BERTH_MOUNT_MKFILE) && berth_touch(path) < 0)
            berth_fail(efd, BERTH_STAGE_MOUNT, errno, i);
        if (mount(m->source, path, m->fstype, m->flags, m->data) < 0) {
            if ((m->options & BERTH_MOUNT_OPTIONAL) && errno == ENOENT) continue;
            berth_fail(efd, BERTH_STAGE_MOUNT, errno, i);
        }
        if (m->options & BERTH_MOUNT_BIND_RO) {
            unsigned long keep = m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
            if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
                berth_fail(efd, BERTH_STAGE_MOUNT, errno, i);
        }
    }
}

static void make_devices(const struct berth_container *c, int efd) {
    char path[PATH_MAX];
    for (int i = 0; i < c->ndevices; i++) {
        const struct berth_device *d = &c->devices[i];
        if (berth_join(path, sizeof path, c->rootfs, d->path) < 0) berth_fail(efd, BERTH_STAGE_DEVICE, errno, i);
        char *slash = strrchr(path, '/');
        if (slash && slash != path) {
            *slash = '\0';
            if (berth_mkdir_p(path, 0755) < 0) berth_fail(efd, BERTH_STAGE_DEVICE, errno, i);
            *slash = '/';
        }
        if (mknod(path, d->mode, makedev(d->major, d->minor)) < 0 && errno != EEXIST)
            berth_fail(efd, BERTH_STAGE_DEVICE, errno, i);
        if (chown(path, d->uid, d->gid) < 0) berth_fail(efd, BERTH_STAGE_DEVICE, errno, i);
    }
    for (int i = 0; i < c->nsymlinks; i++) {
        const struct berth_symlink *s = &c->symlinks[i];
        if (berth_join(path, sizeof path, c->rootfs, s->path) < 0) berth_fail(efd, BERTH_STAGE_SYMLINK, errno, i);
        if (symlink(s->target, path) < 0 && errno != EEXIST) berth_fail(efd, BERTH_STAGE_SYMLINK, errno, i);
    }
}

static void write_sysctls(const struct berth_container *c, int efd) {
    char base[PATH_MAX], path[PATH_MAX];
    if (c->nsysctls == 0) return;
    if (berth_join(base, sizeof base, c->rootfs, "/proc/sys") < 0) berth_fail(efd, BERTH_STAGE_SYSCTL, errno, 0);
    for (int i = 0; i < c->nsysctls; i++) {
        if (berth_join(path, sizeof path, base, c->sysctls[i].path) < 0) berth_fail(efd, BERTH_STAGE_SYSCTL, errno, i);
        if (berth_write_file(path, c->sysctls[i].value) < 0) berth_fail(efd, BERTH_STAGE_SYSCTL, errno, i);
    }
}

/* Docker hides these: directories under a read-only empty tmpfs, files under /dev/null. */
static void mask_paths(const struct berth_container *c, int efd) {
    char path[PATH_MAX], devnull[PATH_MAX];
    if (berth_join(devnull, sizeof devnull, c->rootfs, "/dev/null") < 0) berth_fail(efd, BERTH_STAGE_MASK, errno, 0);
    for (int i = 0; i < c->nmasked; i++) {
        struct stat st;
        if (berth_join(path, sizeof path, c->rootfs, c->masked_paths[i]) < 0) berth_fail(efd, BERTH_STAGE_MASK, errno, i);
        if (stat(path, &st) < 0) {
            if (errno == ENOENT) continue;
            berth_fail(efd, BERTH_STAGE_MASK, errno, i);
        }
        int rc = S_ISDIR(st.st_mode)
            ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
            : mount(devnull, path, NULL, MS_BIND, NULL);
        if (rc < 0) berth_fail(efd, BERTH_STAGE_MASK, errno, i);
    }
    for (int i = 0; i < c->nreadonly; i++) {
        if (berth_join(path, sizeof path, c->rootfs, c->readonly_paths[i]) < 0)
            berth_fail(efd, BERTH_STAGE_READONLY_PATH, errno, i);
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) continue;
            berth_fail(efd, BERTH_STAGE_READONLY_PATH, errno, i);
        }
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            berth_fail(efd, BERTH_STAGE_READONLY_PATH, errno, i);
    }
}

static void remount_read_only(const struct berth_container *c, int efd) {
    char path[PATH_MAX];
    for (int i = 0; i < c->nmounts; i++) {
        const struct berth_mount *m = &c->mounts[i];
        if (!(m->options & BERTH_MOUNT_RO_LATER)) continue;
        if (berth_join_in_root(path, sizeof path, c->rootfs, m->target) < 0) berth_fail(efd, BERTH_STAGE_REMOUNT_RO, errno, i);
        unsigned long flags = (m->flags & ~(MS_REC | MS_BIND)) | MS_REMOUNT | MS_RDONLY;
        if (m->fstype == NULL) flags |= MS_BIND;
        if (mount(NULL, path, NULL, flags, m->fstype ? m->data : NULL) < 0)
            berth_fail(efd, BERTH_STAGE_REMOUNT_RO, errno, i);
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

int berth_overlay_open(const char *lowerdir, const char *upperdir, const char *workdir, char *message, size_t size) {
    if (size) message[0] = '\0';
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    int mnt = -1;
    /* volatile: the upper dir is the container's scratch space; without it every unmount
       (each container exit) syncs the whole host file system that holds ROOT (10-30 ms). */
    if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lowerdir, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upperdir, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "workdir", workdir, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0 ||
        /* Whatever the kernel's default: an index would tie a (recycled) upper dir to one set
           of lower layers. */
        fsconfig(fs, FSCONFIG_SET_STRING, "index", "off", 0) < 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0)) < 0) {
        int e = errno;
        read_fs_message(fs, message, size);
        close(fs);
        return -e;
    }
    close(fs);
    return mnt;
}

void berth_setup_rootfs(const struct berth_container *c, int efd) {
    /* Nothing we mount may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) berth_fail(efd, BERTH_STAGE_PROPAGATION, errno, -1);
    if (move_mount(c->rootfs_fd, "", AT_FDCWD, c->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        berth_fail(efd, BERTH_STAGE_ROOTFS, errno, -1);
    mount_table(c, efd);
    make_devices(c, efd);
    write_sysctls(c, efd);
    mask_paths(c, efd);
    remount_read_only(c, efd);

    /* pivot_root(".", "."): the old root ends up stacked on the new one; detach it. */
    if (chdir(c->rootfs) < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (syscall(SYS_pivot_root, ".", ".") < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (umount2(".", MNT_DETACH) < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (chdir("/") < 0) berth_fail(efd, BERTH_STAGE_PIVOT_ROOT, errno, -1);
    if (c->readonly_rootfs && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        berth_fail(efd, BERTH_STAGE_REMOUNT_RO, errno, -1);
}
