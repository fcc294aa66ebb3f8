/* copyup.c: the system calls a volume's copy-up needs that Swift's Glibc module lacks
   (VolumeCopyUp.swift does the walk). Both act on descriptors and names inside a directory
   descriptor, never on a path, so nothing they do follows a link out of the volume. */
#include "internal.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

int berth_copy_xattrs(int from_fd, int to_fd) {
    char names[8192];
    ssize_t len = flistxattr(from_fd, names, sizeof names);
    if (len < 0) return (errno == ENOTSUP || errno == EOPNOTSUPP) ? 0 : -errno;
    int failed = 0;
    char value[16384];
    for (ssize_t at = 0; at < len; at += (ssize_t)strlen(names + at) + 1) {
        const char *name = names + at;
        /* overlayfs's own never show through its mount; never copy them if they did. */
        if (strncmp(name, "trusted.overlay.", 16) == 0) continue;
        ssize_t n = fgetxattr(from_fd, name, value, sizeof value);
        if (n < 0 || fsetxattr(to_fd, name, value, (size_t)n, 0) < 0) failed++;
    }
    return failed;
}

ssize_t berth_xattrs_text(int fd, char *out, size_t size) {
    char names[8192];
    ssize_t len = flistxattr(fd, names, sizeof names);
    if (len < 0) return (errno == ENOTSUP || errno == EOPNOTSUPP) ? 0 : -errno;
    /* Names in the kernel's order, which is stable for one file system; what berth_copy_xattrs
       copies, each as "name=hex(value);". */
    size_t used = 0;
    unsigned char value[16384];
    static const char digits[] = "0123456789abcdef";
    for (ssize_t at = 0; at < len; at += (ssize_t)strlen(names + at) + 1) {
        const char *name = names + at;
        if (strncmp(name, "trusted.overlay.", 16) == 0) continue;
        ssize_t n = fgetxattr(fd, name, value, sizeof value);
        if (n < 0) return -errno;
        size_t need = strlen(name) + 2 + 2 * (size_t)n;
        if (used + need >= size) return -E2BIG;
        used += (size_t)snprintf(out + used, size - used, "%s=", name);
        for (ssize_t i = 0; i < n; i++) {
            out[used++] = digits[value[i] >> 4];
            out[used++] = digits[value[i] & 15];
        }
        out[used++] = ';';
    }
    out[used] = 0;
    return (ssize_t)used;
}

int berth_chmod_node(int dir_fd, const char *name, unsigned int mode, unsigned int type) {
    int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != type) {
        close(fd);
        errno = EEXIST;  /* not the node just made: something replaced it */
        return -1;
    }
    /* chmod has no "this descriptor" form for an O_PATH fd but the /proc link, which names
       exactly the inode opened above (fchmodat's AT_SYMLINK_NOFOLLOW is not in every libc). */
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = chmod(path, mode);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}
