/* Helpers shared by the C files of CRuntime; all async-signal-safe. */
#ifndef BERTH_CRUNTIME_INTERNAL_H
#define BERTH_CRUNTIME_INTERNAL_H
#include "cruntime.h"
#include <errno.h>
#include <limits.h>

/* Report a failed step on the error pipe and leave. Never returns. */
__attribute__((noreturn)) void berth_fail(int error_fd, int stage, int err, int index);

/* dst = a + b (b absolute); returns -1 (ENAMETOOLONG) when it does not fit. */
int berth_join(char *dst, size_t size, const char *a, const char *b);
int berth_join_in_root(char *dst, size_t size, const char *root, const char *target);

/* mkdir -p; existing directories are fine. Returns 0 or -1 with errno. */
int berth_mkdir_p(const char *path, unsigned int mode);

/* Create an empty file (and parent directories) unless something exists there. */
int berth_touch(const char *path);

/* Write a whole string to a file; 0 or -1 with errno. */
int berth_write_file(const char *path, const char *value);

/* Build the mount namespace under config->rootfs and pivot into it. */
void berth_setup_rootfs(const struct berth_container *config, int error_fd);

/* Identity, capabilities, seccomp, cwd, optional init, execve. Never returns. */
__attribute__((noreturn)) void berth_finish_process(const struct berth_process *process, int error_fd);

/* Run as PID 1 around the real process: forwards signals, reaps zombies. Returns in the
   child (which goes on to execve) and never returns in the init. */
void berth_run_init(int error_fd);

/* Point fds 0, 1, 2 at the given fds and make a tty the controlling terminal. */
void berth_setup_stdio(const struct berth_process *process, int error_fd);
#endif
