/* cnetlink.c: see include/cnetlink.h. */
#define _GNU_SOURCE
#include "cnetlink.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int berth_socket_in_namespace(int namespace_fd, int domain, int type, int protocol) {
    if (namespace_fd < 0) {
        int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
        return fd < 0 ? -errno : fd;
    }
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    int rc;
    if (setns(namespace_fd, CLONE_NEWNET) < 0) {
        rc = -errno;
    } else {
        rc = socket(domain, type | SOCK_CLOEXEC, protocol);
        if (rc < 0) rc = -errno;
        /* A thread left in the wrong namespace would open every later socket there, unseen. */
        if (setns(home, CLONE_NEWNET) < 0) abort();
    }
    close(home);
    return rc;
}

int berth_netlink_new_namespace(void) {
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    int made = -1, rc = 0;
    if (unshare(CLONE_NEWNET) < 0) {
        rc = -errno;
    } else {
        made = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (made < 0) rc = -errno;
        if (setns(home, CLONE_NEWNET) < 0) abort(); /* as above */
    }
    close(home);
    if (rc < 0) {
        if (made >= 0) close(made);
        return rc;
    }
    return made;
}
