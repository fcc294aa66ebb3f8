/* inroot.c: paths inside a container's root, resolved by the kernel and used through fds.

   Every path the runtime touches on a container's behalf (mount targets and their parents,
   device nodes, masked and read-only paths, sysctl files, the /etc files, the working
   directory) names something in a tree the image wrote, or a volume that an earlier container
   wrote, or that another container sharing the volume may change while this one starts. Any
   component may be a symlink. Joined to the rootfs path and handed to the host's syscalls, such
   a path follows those links on the host: that is how an image reached host files before.

   So nothing here builds a host path. Resolution is openat2(root_fd, path, RESOLVE_IN_ROOT |
   RESOLVE_NO_MAGICLINKS): the kernel treats root_fd as "/" for absolute links and "..", in one
   atomic walk, and refuses /proc's magic links. What is created is created by name inside a
   parent directory resolved that way (mkdirat, mknodat, O_CREAT|O_EXCL|O_NOFOLLOW), which never
   follows a final symlink; what is then used is used through the resulting fd (mounts attached
   to it, fchownat with AT_EMPTY_PATH, writes), never by path again, so a link swapped in between
   check and use redirects nothing. Async-signal-safe: fixed buffers, no allocation. */
#include "internal.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int berth_in_root_open(int root_fd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    /* EAGAIN: a rename raced the walk and the kernel would not vouch for the result. Retry, but
       boundedly: a container renaming in a shared volume in a loop must not stall a start. */
    int fd = -1;
    for (int attempt = 0; attempt < 64; attempt++) {
        fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN) break;
    }
    return fd;
}

/* Splits `path` at its last component: `parent` gets everything before it ("/" at least),
   `name` the component. Trailing slashes are ignored. -1 with ENAMETOOLONG or EINVAL (no name). */
static int split_last(const char *path, char *parent, size_t psize, char *name, size_t nsize) {
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t nlen = len - start;
    if (nlen == 0) { errno = EINVAL; return -1; }
    if (nlen >= nsize || start + 2 > psize) { errno = ENAMETOOLONG; return -1; }
    memcpy(name, path + start, nlen);
    name[nlen] = '\0';
    if (start == 0) {
        parent[0] = '/';
        parent[1] = '\0';
    } else {
        memcpy(parent, path, start);
        parent[start] = '\0';
    }
    return 0;
}

/* One step of creation: finds the deepest ancestor of `path` that resolves, and makes the next
   component below it (a directory, or with `file_last` the final component as an empty file).
   When that component exists but did not resolve, it is a dangling symlink: `path` is rewritten
   to go through the link's target instead (still resolved in root on the next pass). Returns 0
   after a change, -1 with errno on failure. */
static int create_next(int root_fd, char *path, size_t size, int file_last, mode_t mode) {
    char prefix[PATH_MAX], name[NAME_MAX + 1];
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') path[--len] = '\0';
    /* The component to make ends at `end`; the prefix before it must resolve. */
    size_t end = len;
    for (;;) {
        char saved = path[end];
        path[end] = '\0';
        int rc = split_last(path, prefix, sizeof prefix, name, sizeof name);
        path[end] = saved;
        if (rc < 0) return -1;
        int dir = berth_in_root_open(root_fd, prefix, O_PATH | O_DIRECTORY);
        if (dir < 0) {
            if (errno != ENOENT) return -1;
            /* The prefix is missing too: step one component up. */
            size_t up = end;
            while (up > 0 && path[up - 1] == '/') up--;
            while (up > 0 && path[up - 1] != '/') up--;
            while (up > 1 && path[up - 1] == '/') up--;
            if (up == 0 || up == end) { errno = ENOENT; return -1; }
            end = up;
            continue;
        }
        int last = (end == len);
        int made;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            /* Exists by definition once its parent does; nothing of ours to make. */
            close(dir);
            errno = ENOENT;
            return -1;
        }
        if (last && file_last) {
            int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            made = fd >= 0 ? 0 : -1;
            if (fd >= 0) close(fd);
        } else {
            made = mkdirat(dir, name, mode);
        }
        if (made == 0 || errno != EEXIST) {
            int e = errno;
            close(dir);
            errno = e;
            return made;
        }
        /* It exists but did not resolve: a link to something missing (or a race, then the next
           pass simply resolves it). Go through the link's target from here on. */
        char link[PATH_MAX];
        ssize_t n = readlinkat(dir, name, link, sizeof link - 1);
        close(dir);
        if (n < 0) return errno == EINVAL ? 0 : -1;
        link[n] = '\0';
        char rewritten[PATH_MAX];
        size_t at = 0;
        if (link[0] != '/') {
            size_t plen = strlen(prefix);
            if (plen + 1 >= sizeof rewritten) { errno = ENAMETOOLONG; return -1; }
            memcpy(rewritten, prefix, plen);
            at = plen;
            rewritten[at++] = '/';
        }
        size_t llen = (size_t)n, rest = len - end;
        if (at + llen + rest + 1 > sizeof rewritten || at + llen + rest + 1 > size) { errno = ENAMETOOLONG; return -1; }
        memcpy(rewritten + at, link, llen);
        memcpy(rewritten + at + llen, path + end, rest + 1);
        memcpy(path, rewritten, at + llen + rest + 1);
        return 0;
    }
}

int berth_in_root(int root_fd, const char *path, int create, unsigned int mode) {
    char work[PATH_MAX];
    if (strlen(path) >= sizeof work) { errno = ENAMETOOLONG; return -1; }
    strcpy(work, path);
    /* Each pass either resolves, or makes one component, or follows one dangling link: bounded
       by the path's depth plus the kernel's own link limit. */
    for (int pass = 0; pass < 256; pass++) {
        int fd = berth_in_root_open(root_fd, work, O_PATH);
        if (fd >= 0 || errno != ENOENT || create == 0) return fd;
        if (create_next(root_fd, work, sizeof work, create == BERTH_IN_ROOT_MKFILE, mode) < 0) return -1;
    }
    errno = ELOOP;
    return -1;
}

int berth_in_root_parent(int root_fd, const char *path, char *name, size_t size) {
    char parent[PATH_MAX];
    if (split_last(path, parent, sizeof parent, name, size) < 0) return -1;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { errno = EINVAL; return -1; }
    int fd = berth_in_root(root_fd, parent, BERTH_IN_ROOT_MKDIR, 0755);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        close(fd);
        errno = ENOTDIR;
        return -1;
    }
    return fd;
}

int berth_fd_path(char *buf, size_t size, int fd) {
    static const char prefix[] = "/proc/self/fd/";
    char digits[12];
    int n = 0;
    unsigned int v = (unsigned int)fd;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < (int)sizeof digits);
    if (sizeof prefix + (size_t)n > size) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, prefix, sizeof prefix - 1);
    size_t at = sizeof prefix - 1;
    while (n > 0) buf[at++] = digits[--n];
    buf[at] = '\0';
    return 0;
}
