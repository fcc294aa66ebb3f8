/* Helpers shared by the C files of CRuntime; all async-signal-safe. */
#ifndef BERTH_CRUNTIME_INTERNAL_H
#define BERTH_CRUNTIME_INTERNAL_H
#include "cruntime.h"
#include <errno.h>
#include <limits.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Report a failed step on the error pipe and leave. Never returns. */
__attribute__((noreturn)) void berth_fail(int error_fd, int stage, int err, int index);

/* dst = a + b (b absolute); returns -1 (ENAMETOOLONG) when it does not fit. For paths of
   berth's own (and /proc/sys keys); never for a path inside a container's root (inroot.c). */
int berth_join(char *dst, size_t size, const char *a, const char *b);

/* "/proc/self/fd/N": the path through which mount(2) reaches what fd N is. */
int berth_fd_path(char *buf, size_t size, int fd);

/* Write a whole string to a file (or an open fd); 0 or -1 with errno. */
int berth_write_file(const char *path, const char *value);
int berth_write_fd(int fd, const char *value);

/* Build the mount namespace under config->rootfs and pivot into it. */
void berth_setup_rootfs(const struct berth_container *config, int error_fd);

/* Identity, capabilities, seccomp, cwd, optional init, execve. Never returns. */
__attribute__((noreturn)) void berth_finish_process(const struct berth_process *process, int error_fd);

/* Run as PID 1 around the real process: forwards signals, reaps zombies. Returns in the
   child (which goes on to execve) and never returns in the init. */
void berth_run_init(int error_fd);

/* Point fds 0, 1, 2 at the given fds and make a tty the controlling terminal. */
void berth_setup_stdio(const struct berth_process *process, int error_fd);
/* berth_spawn with the caller's pipes (CLOEXEC; [0] read, [1] write): the child keeps
   sync_pipe[0] and error_pipe[1], this process keeps sync_pipe[1] and error_pipe[0] (in *child). A
   supervised start makes them in the caller, so that the caller, not the forked supervisor,
   releases the child and reads how its exec went. */
int berth_spawn_with_pipes(const struct berth_container *c, int sync_pipe[2], int error_pipe[2],
                           struct berth_child *child);
#endif
