/// berth's default seccomp profile, in Docker's JSON profile format, so the same parser reads it
/// and any `security_opt: seccomp=FILE.json`. It is equal in effect to Docker's default: an
/// allowlist with EPERM for everything else, plus capability-conditional rules (namespace-creating
/// clone flags, mount, unshare, bpf, ... only with the capability that makes them safe).
/// Written for berth, grouped by topic; syscalls this architecture does not know are skipped.
enum SeccompDefaultProfile {
    static let json = #"""
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
          ],
          "syscalls": [
            {"comment": "files and directories", "action": "SCMP_ACT_ALLOW", "names": [
              "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat", "fchmodat2",
              "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "close", "close_range",
              "creat", "open", "openat", "openat2", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock",
              "fadvise64", "fadvise64_64", "fallocate", "fdatasync", "fsync", "sync", "syncfs", "sync_file_range",
              "ftruncate", "ftruncate64", "truncate", "truncate64", "getdents", "getdents64",
              "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "unlink", "unlinkat",
              "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "rename", "renameat", "renameat2",
              "lseek", "_llseek", "read", "readv", "pread64", "preadv", "preadv2", "readahead",
              "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendfile", "sendfile64", "splice", "tee",
              "vmsplice", "copy_file_range", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64",
              "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "umask",
              "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
              "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr",
              "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
              "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
              "ioctl", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
              "io_pgetevents_time64", "ioprio_get", "ioprio_set", "memfd_create", "cachestat"
            ]},
            {"comment": "memory", "action": "SCMP_ACT_ALLOW", "names": [
              "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
              "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier",
              "pkey_alloc", "pkey_free", "pkey_mprotect", "memfd_secret", "map_shadow_stack"
            ]},
            {"comment": "processes, threads, identity, limits", "action": "SCMP_ACT_ALLOW", "names": [
              "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid",
              "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid",
              "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
              "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
              "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
              "setresuid", "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32",
              "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "capget", "capset", "prctl", "seccomp",
              "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority",
              "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
              "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
              "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
              "sched_rr_get_interval_time64", "getcpu", "set_tid_address", "set_robust_list", "get_robust_list",
              "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
              "get_thread_area", "set_thread_area", "rseq", "restart_syscall", "uname", "sysinfo", "getrandom",
              "pidfd_open", "pidfd_send_signal", "process_mrelease",
              "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"
            ]},
            {"comment": "signals", "action": "SCMP_ACT_ALLOW", "names": [
              "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigqueueinfo",
              "rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
              "sigaltstack", "sigprocmask", "sigreturn", "signalfd", "signalfd4", "pause"
            ]},
            {"comment": "time and timers", "action": "SCMP_ACT_ALLOW", "names": [
              "alarm", "time", "times", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
              "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
              "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
              "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
              "timerfd_gettime64", "timerfd_settime", "timerfd_settime64"
            ]},
            {"comment": "waiting on descriptors", "action": "SCMP_ACT_ALLOW", "names": [
              "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
              "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
              "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "pipe", "pipe2"
            ]},
            {"comment": "System V and POSIX IPC (namespaced)", "action": "SCMP_ACT_ALLOW", "names": [
              "ipc", "msgget", "msgctl", "msgsnd", "msgrcv", "semget", "semctl", "semop", "semtimedop",
              "semtimedop_time64", "shmget", "shmctl", "shmat", "shmdt", "mq_open", "mq_unlink", "mq_notify",
              "mq_getsetattr", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64"
            ]},
            {"comment": "sockets", "action": "SCMP_ACT_ALLOW", "names": [
              "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4", "shutdown",
              "getsockname", "getpeername", "getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg",
              "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64"
            ]},
            {"comment": "any socket family but vsock (host communication)", "action": "SCMP_ACT_ALLOW",
             "names": ["socket"], "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"comment": "personality: only the harmless personas", "action": "SCMP_ACT_ALLOW", "names": ["personality"],
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"action": "SCMP_ACT_ALLOW", "names": ["personality"], "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"action": "SCMP_ACT_ALLOW", "names": ["personality"], "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
            {"action": "SCMP_ACT_ALLOW", "names": ["personality"], "args": [{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]},
            {"action": "SCMP_ACT_ALLOW", "names": ["personality"], "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
            {"comment": "ptrace is safe since 4.8 (seccomp is re-checked after the tracer changes a syscall)",
             "action": "SCMP_ACT_ALLOW", "names": ["ptrace"], "includes": {"minKernel": "4.8"}},
            {"comment": "x86 only", "action": "SCMP_ACT_ALLOW", "names": ["arch_prctl", "modify_ldt"],
             "includes": {"arches": ["amd64", "x32", "x86"]}},
            {"comment": "clone without namespace flags unless CAP_SYS_ADMIN", "action": "SCMP_ACT_ALLOW", "names": ["clone"],
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"comment": "clone3 hides its flags in memory: ENOSYS makes libcs fall back to clone",
             "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "names": ["clone3"], "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}, "names": [
              "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
              "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
              "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare", "name_to_handle_at"
            ]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}, "names": ["reboot"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}, "names": ["chroot"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_MODULE"]}, "names": ["delete_module", "init_module", "finit_module"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PACCT"]}, "names": ["acct"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}, "names": [
              "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"
            ]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_RAWIO"]}, "names": ["iopl", "ioperm"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_TIME"]}, "names": [
              "settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64"
            ]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_TTY_CONFIG"]}, "names": ["vhangup"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_NICE"]}, "names": [
              "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"
            ]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYSLOG"]}, "names": ["syslog"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_DAC_READ_SEARCH"]}, "names": ["open_by_handle_at"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}, "names": ["bpf"]},
            {"action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_PERFMON"]}, "names": ["perf_event_open"]}
          ]
        }
        """#
}
