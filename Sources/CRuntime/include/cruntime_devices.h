#ifndef BERTH_CRUNTIME_DEVICES_H
#define BERTH_CRUNTIME_DEVICES_H
/*
 * Device control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program built from an allow list
 * and attached to one cgroup directory. v2 has no devices.allow file; the kernel instead runs
 * every program attached to the process's cgroup (and its ancestors) on each open() of a device
 * node and each mknod(), and refuses with EPERM when one of them returns 0.
 *
 * Parent side only (called before the clone, may allocate). See devices.c.
 */
#include <stddef.h>
#include <stdint.h>

/* Access bits of a rule; the same values as the kernel's BPF_DEVCG_ACC_*. */
enum {
    BERTH_DEVICE_MKNOD = 1,
    BERTH_DEVICE_READ = 2,
    BERTH_DEVICE_WRITE = 4,
};

/* One allow rule, as cgroup v1 writes "c 1:3 rwm". */
struct berth_device_rule {
    char type;       /* 'c' character, 'b' block, 'a' either */
    int32_t major;   /* -1 for any */
    int32_t minor;   /* -1 for any */
    uint32_t access; /* BERTH_DEVICE_* bits the rule grants */
};

/*
 * Loads a program that allows a device access when any of `rules` grants it (and refuses
 * everything when `count` is 0), attaches it to the cgroup v2 directory `cgroup_path` with
 * BPF_F_ALLOW_MULTI, then detaches any device program attached to that directory before, so a
 * second call replaces the first instead of stacking on it.
 *
 * Returns 0 or -errno. When loading fails and `log` is not NULL, the verifier's log is written
 * there (NUL-terminated, truncated to `log_size`); otherwise `log` is left an empty string.
 */
int berth_device_fence_attach(const char *cgroup_path, const struct berth_device_rule *rules, size_t count,
                              char *log, size_t log_size);

/* How many device programs are attached directly to `cgroup_path`, or -errno. For tests. */
int berth_device_fence_count(const char *cgroup_path);

#endif
