/* util.c: small async-signal-safe helpers used between clone() and execve(). */
#include "internal.h"
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void berth_fail(int error_fd, int stage, int err, int index) {
    struct berth_failure failure = { stage, err, index };
    ssize_t n;
    do {
        n = write(error_fd, &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    _exit(127);
}

/* root + target, with every symlink met on the way resolved inside root: an absolute link starts
   again at root and ".." never climbs above it, so links in an image cannot point a mount or a
   mkdir at the host (runc calls this securejoin). Components that do not exist yet are appended
   as written. Fixed buffers and lstat/readlink only: safe after clone(). */
int berth_join_in_root(char *dst, size_t size, const char *root, const char *target) {
    char pending[PATH_MAX], link[PATH_MAX];
    size_t rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/') rootlen--;
    if (rootlen + 1 >= size || strlen(target) >= sizeof pending) { errno = ENAMETOOLONG; return -1; }
    memcpy(dst, root, rootlen);
    dst[rootlen] = '\0';
    size_t len = rootlen;
    strcpy(pending, target);
    const char *p = pending;
    int links = 0;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *end = p;
        while (*end && *end != '/') end++;
        size_t n = (size_t)(end - p);
        if (n == 1 && p[0] == '.') { p = end; continue; }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (len > rootlen && dst[len - 1] != '/') len--;
            if (len > rootlen) len--;
            dst[len] = '\0';
            p = end;
            continue;
        }
        if (len + 1 + n >= size) { errno = ENAMETOOLONG; return -1; }
        dst[len] = '/';
        memcpy(dst + len + 1, p, n);
        dst[len + 1 + n] = '\0';
        struct stat st;
        if (lstat(dst, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++links > 40) { errno = ELOOP; return -1; }
            ssize_t l = readlink(dst, link, sizeof link - 1);
            if (l < 0) return -1;
            size_t rest = strlen(end);
            if ((size_t)l + rest + 1 > sizeof link) { errno = ENAMETOOLONG; return -1; }
            memcpy(link + l, end, rest + 1);
            /* The link replaces its own component: resolve it from root or from its directory. */
            if (link[0] == '/') len = rootlen;
            dst[len] = '\0';
            strcpy(pending, link);
            p = pending;
            continue;
        }
        len += 1 + n;
        p = end;
    }
    return 0;
}

int berth_join(char *dst, size_t size, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') la--;
    if (la + lb + 2 > size) { errno = ENAMETOOLONG; return -1; }
    memcpy(dst, a, la);
    size_t at = la;
    if (b[0] != '/') dst[at++] = '/';
    memcpy(dst + at, b, lb + 1);
    return 0;
}

int berth_mkdir_p(const char *path, unsigned int mode) {
    /* Work upwards from the path to the deepest directory that exists, then create downwards:
       mount targets nearly always exist or lack only their last component, while a walk from
       "/" costs a mkdir per component of the (host) rootfs path. */
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    enum { MAX_DEPTH = 128 };
    size_t cuts[MAX_DEPTH];
    int ncuts = 0;
    for (;;) {
        if (mkdir(buf, mode) == 0) break;
        if (errno == EEXIST) {
            if (ncuts == 0) {
                struct stat st;
                if (stat(buf, &st) < 0) return -1;
                if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
                return 0;
            }
            break;
        }
        if (errno != ENOENT || ncuts == MAX_DEPTH) return -1;
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) return -1;
        *slash = '\0';
        cuts[ncuts++] = (size_t)(slash - buf);
    }
    while (ncuts > 0) {
        buf[cuts[--ncuts]] = '/';
        if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
    }
    return 0;
}

int berth_touch(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0) return 0;
    char parent[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof parent) { errno = ENAMETOOLONG; return -1; }
    memcpy(parent, path, len + 1);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (berth_mkdir_p(parent, 0755) < 0) return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int berth_write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
    if (fd < 0) return -1;
    size_t len = strlen(value), done = 0;
    while (done < len) {
        ssize_t n = write(fd, value + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        done += (size_t)n;
    }
    close(fd);
    return 0;
}
