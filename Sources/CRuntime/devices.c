/* devices.c: cgroup v2 device control, a BPF_PROG_TYPE_CGROUP_DEVICE program per container.
 *
 * cgroup v1 has devices.allow/devices.deny; v2 has no device controller file at all. Instead
 * the kernel runs the device programs attached to a process's cgroup on every mknod() and every
 * open() of a device node, with a struct bpf_cgroup_dev_ctx:
 *     access_type = (access << 16) | type   access: BPF_DEVCG_ACC_MKNOD/READ/WRITE bits
 *                                           type: BPF_DEVCG_DEV_BLOCK (1) or _CHAR (2)
 *     major, minor
 * and refuses with EPERM unless the program returns 1. runc and crun attach such a program to
 * each container's group; this file builds the same kind of program, by hand, from a flat allow
 * list (no libbpf, no compiler: the program is a few straight-line comparisons per rule).
 *
 * The program, for rules R1..Rn:
 *     r2 = ctx->access_type & 0xffff        device type
 *     r3 = ctx->access_type >> 16           requested access bits
 *     r4 = ctx->major
 *     r5 = ctx->minor
 *   rule i:                                 (checks a wildcard does not need are left out)
 *     if r2 != TYPE goto rule i+1
 *     if r3 & ~ACCESS goto rule i+1         a requested bit the rule does not grant
 *     if r4 != MAJOR goto rule i+1
 *     if r5 != MINOR goto rule i+1
 *     r0 = 1; exit                          allowed
 *   after the last rule:
 *     r0 = 0; exit                          refused
 *
 * Runs in the parent, before the clone: allocating is fine here.
 */
#include "cruntime_devices.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc has no wrapper for bpf(2). */
static int bpf(int command, union bpf_attr *attr) {
    return (int)syscall(SYS_bpf, command, attr, sizeof *attr);
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    struct bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = code;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    return i;
}

/* The few instruction forms the program uses. */
static struct bpf_insn load_u32(uint8_t dst, int16_t offset) {
    return insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, offset, 0);
}
static struct bpf_insn move_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
static struct bpf_insn move_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
static struct bpf_insn and_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
static struct bpf_insn shift_right(uint8_t dst, int32_t imm) {
    return insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm);
}
static struct bpf_insn jump_if_not(uint8_t reg, int32_t imm, int16_t skip) {
    return insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, skip, imm);
}
static struct bpf_insn jump_if_any_bit(uint8_t reg, int32_t bits, int16_t skip) {
    return insn(BPF_JMP | BPF_JSET | BPF_K, reg, 0, skip, bits);
}
static struct bpf_insn exit_insn(void) { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

enum { ALL_ACCESS = BERTH_DEVICE_MKNOD | BERTH_DEVICE_READ | BERTH_DEVICE_WRITE };

/* Longest code for one rule: four checks and "r0 = 1; exit". */
enum { RULE_MAX_INSNS = 6 };

/* Writes the program for `rules` into `prog` (room for 8 + 6 * count instructions) and returns
   its length, or -EINVAL for a rule the program cannot express. */
static int build_program(const struct berth_device_rule *rules, size_t count, struct bpf_insn *prog) {
    int n = 0;
    prog[n++] = load_u32(BPF_REG_2, offsetof(struct bpf_cgroup_dev_ctx, access_type));
    prog[n++] = move_reg(BPF_REG_3, BPF_REG_2);
    prog[n++] = and_imm(BPF_REG_2, 0xffff);
    prog[n++] = shift_right(BPF_REG_3, 16);
    prog[n++] = load_u32(BPF_REG_4, offsetof(struct bpf_cgroup_dev_ctx, major));
    prog[n++] = load_u32(BPF_REG_5, offsetof(struct bpf_cgroup_dev_ctx, minor));

    for (size_t r = 0; r < count; r++) {
        const struct berth_device_rule *rule = &rules[r];
        int type;
        switch (rule->type) {
        case 'c': type = BPF_DEVCG_DEV_CHAR; break;
        case 'b': type = BPF_DEVCG_DEV_BLOCK; break;
        case 'a': type = 0; break;
        default: return -EINVAL;
        }
        if (rule->major < -1 || rule->minor < -1 || (rule->access & ~(uint32_t)ALL_ACCESS) != 0) return -EINVAL;
        if (rule->access == 0) continue; /* grants nothing */

        /* Which checks this rule needs; each jump skips the rest of the rule's block. */
        int check_type = type != 0;
        int check_access = rule->access != ALL_ACCESS;
        int check_major = rule->major != -1;
        int check_minor = rule->minor != -1;
        int length = check_type + check_access + check_major + check_minor + 2;
        int start = n;
#define SKIP_REST ((int16_t)(length - (n - start) - 1))
        if (check_type) { prog[n] = jump_if_not(BPF_REG_2, type, SKIP_REST); n++; }
        if (check_access) {
            prog[n] = jump_if_any_bit(BPF_REG_3, (int32_t)(~rule->access & ALL_ACCESS), SKIP_REST);
            n++;
        }
        if (check_major) { prog[n] = jump_if_not(BPF_REG_4, rule->major, SKIP_REST); n++; }
        if (check_minor) { prog[n] = jump_if_not(BPF_REG_5, rule->minor, SKIP_REST); n++; }
#undef SKIP_REST
        prog[n++] = move_imm(BPF_REG_0, 1);
        prog[n++] = exit_insn();
    }
    prog[n++] = move_imm(BPF_REG_0, 0);
    prog[n++] = exit_insn();
    return n;
}

/* Loads the program; on failure fills `log` with the verifier's reasons when asked to. */
static int load_program(const struct bpf_insn *prog, int length, char *log, size_t log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)prog;
    attr.insn_cnt = (uint32_t)length;
    /* No helper is called, so no GPL-only one either: the string only labels the program. */
    attr.license = (uint64_t)(uintptr_t)"Apache";
    strncpy(attr.prog_name, "berth_devices", sizeof attr.prog_name - 1);
    int fd = bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0) return fd;
    int err = errno;
    /* A second load with the log on costs nothing on the success path; the kernel wants at least
       128 bytes of room. */
    if (log != NULL && log_size >= 128 && (err == EINVAL || err == EACCES)) {
        attr.log_level = 1;
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = (uint32_t)(log_size > UINT32_MAX >> 2 ? UINT32_MAX >> 2 : log_size);
        int again = bpf(BPF_PROG_LOAD, &attr);
        if (again >= 0) close(again); /* cannot happen: the same program failed a moment ago */
        log[log_size - 1] = '\0';
    }
    return -err;
}

/* IDs of the device programs attached directly to the group (not inherited), at most `room`. */
static int attached_programs(int cgroup_fd, uint32_t *ids, uint32_t room) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = (uint32_t)cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
    attr.query.prog_cnt = room;
    if (bpf(BPF_PROG_QUERY, &attr) != 0) return -errno;
    return (int)attr.query.prog_cnt;
}

static int detach_program(int cgroup_fd, uint32_t id) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_id = id;
    int prog_fd = bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (prog_fd < 0) return errno == ENOENT ? 0 : -errno; /* already gone */
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    int rc = (bpf(BPF_PROG_DETACH, &attr) == 0 || errno == ENOENT) ? 0 : -errno;
    close(prog_fd);
    return rc;
}

int berth_device_fence_attach(const char *cgroup_path, const struct berth_device_rule *rules, size_t count,
                              char *log, size_t log_size) {
    if (log != NULL && log_size > 0) log[0] = '\0';
    if (count > 100000) return -E2BIG;
    struct bpf_insn *prog = calloc(8 + RULE_MAX_INSNS * count, sizeof *prog);
    if (prog == NULL) return -ENOMEM;
    int length = build_program(rules, count, prog);
    int prog_fd = length < 0 ? length : load_program(prog, length, log, log_size);
    free(prog);
    if (prog_fd < 0) return prog_fd;

    int rc = 0;
    int cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
        rc = -errno;
        close(prog_fd);
        return rc;
    }
    /* Programs from an earlier call (a reused group), detached once the new one is in place so
       the group is never without a fence. */
    uint32_t old[64];
    int old_count = attached_programs(cgroup_fd, old, 64);
    if (old_count < 0) rc = old_count;

    if (rc == 0) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.target_fd = (uint32_t)cgroup_fd;
        attr.attach_bpf_fd = (uint32_t)prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        /* MULTI: on a systemd host the ancestors carry their own device programs; ours adds to
           them (every program must allow) instead of being refused. */
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        if (bpf(BPF_PROG_ATTACH, &attr) != 0) rc = -errno;
    }
    for (int i = 0; rc == 0 && i < old_count; i++) rc = detach_program(cgroup_fd, old[i]);
    /* The attachment holds its own reference to the program. */
    close(prog_fd);
    close(cgroup_fd);
    return rc;
}

int berth_device_fence_count(const char *cgroup_path) {
    int cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) return -errno;
    uint32_t ids[64];
    int count = attached_programs(cgroup_fd, ids, 64);
    close(cgroup_fd);
    return count;
}
