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

int berth_write_fd(int fd, const char *value) {
    size_t len = strlen(value), done = 0;
    while (done < len) {
        ssize_t n = write(fd, value + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int berth_write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
    if (fd < 0) return -1;
    int rc = berth_write_fd(fd, value);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
