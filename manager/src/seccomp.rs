//! Seccomp for rbox containers: the default profile (Docker's shape: an
//! allowlist, everything else fails with EPERM), `--security-opt` parsing,
//! and Docker-format profile files turned into the OCI `linux.seccomp`
//! that rrun compiles.
//!
//! The default profile lets through the calls ordinary programs make and
//! keeps out what Docker keeps out of unprivileged containers: kernel
//! modules, kexec, reboot, swap, the kernel keyring, bpf, perf, new
//! namespaces, mounts, clock setting, open_by_handle_at, userfaultfd…
//! Calls that a capability makes safe come back when the container has
//! that capability (`--cap-add SYS_ADMIN` lets `mount` through).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("--security-opt {opt:?}: {why}")]
    Opt { opt: String, why: String },
    #[error("seccomp profile {path}: {why}")]
    Profile { path: PathBuf, why: String },
}

pub type Result<T> = std::result::Result<T, SeccompError>;

/// Which seccomp profile a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// The built-in profile below.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=/path/profile.json`: a Docker-format profile.
    Profile(PathBuf),
}

/// What `--security-opt` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
}

/// Parse `--security-opt` values as Docker spells them (`KEY=VALUE` or the
/// older `KEY:VALUE`).
pub fn parse_opts(opts: &[String]) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        let bad = |why: &str| SeccompError::Opt {
            opt: opt.clone(),
            why: why.to_string(),
        };
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("seccomp", Some("unconfined")) => out.seccomp = Seccomp::Unconfined,
            ("seccomp", Some("") | None) => return Err(bad("needs a profile path or unconfined")),
            ("seccomp", Some(path)) => out.seccomp = Seccomp::Profile(PathBuf::from(path)),
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("no-new-privileges", Some(_)) => return Err(bad("the value is true or false")),
            ("apparmor" | "label" | "systempaths", _) => {
                return Err(bad(
                    "not supported by rbox (only seccomp and no-new-privileges)",
                ))
            }
            _ => {
                return Err(bad(
                    "unknown option (rbox knows seccomp=… and no-new-privileges)",
                ))
            }
        }
    }
    Ok(out)
}

/// The calls every container may make.
#[rustfmt::skip]
const ALLOW: &[&str] = &[
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "flock", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "lchown", "lchown32", "link", "linkat", "_llseek", "lseek", "lstat", "lstat64",
    "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat",
    "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir",
    "sendfile", "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64",
    "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
    "vmsplice", "write", "writev",
    // extended attributes
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr",
    "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    // waiting for events
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "_newselect", "pause", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64",
    // asynchronous I/O
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup",
    // memory
    "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    // processes, threads and signals
    "alarm", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex",
    "futex_time64", "futex_waitv", "get_robust_list", "get_thread_area", "getcpu", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "gettid",
    "getuid", "getuid32", "ioprio_get", "ioprio_set", "kill", "pidfd_open", "pidfd_send_signal",
    "prctl", "prlimit64", "process_mrelease", "restart_syscall", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid",
    "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "setsid", "setuid",
    "setuid32", "sigaltstack", "sigprocmask", "sigreturn", "tgkill", "tkill", "ugetrlimit",
    "vfork", "wait4", "waitid", "waitpid",
    // time
    "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
    "gettimeofday", "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "times",
    // sockets (socket itself is below: no AF_VSOCK)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
    "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
    // System V and POSIX IPC
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    "shmget",
    // the rest
    "getrandom", "ioctl", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "pipe", "pipe2", "sysinfo", "uname",
];

/// Calls a capability makes safe: allowed only when the container has it.
#[rustfmt::skip]
const WITH_CAP: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// The CLONE_NEW* flags (cgroup, uts, ipc, user, pid, net, mount) that
/// `clone` may not carry without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// personality(2) values that change nothing harmful: PER_LINUX,
/// PER_LINUX32, UNAME26, PER_LINUX32|UNAME26 and the 0xffffffff query.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const AF_VSOCK: u64 = 40;

/// The default profile for a container with these capabilities (the
/// bounding set, names like `CAP_SYS_ADMIN`).
pub fn default_profile(caps: &HashSet<String>) -> LinuxSeccomp {
    let has = |c: &str| caps.contains(c);
    let mut rules = vec![json!({"names": ALLOW, "action": "SCMP_ACT_ALLOW"})];
    // ptrace is confined to the container's own processes since Linux 4.8
    if kernel_version() >= (4, 8) {
        rules.push(
            json!({"names": ["process_vm_readv", "process_vm_writev", "ptrace"],
                          "action": "SCMP_ACT_ALLOW"}),
        );
    }
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    for p in PERSONALITIES {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    match std::env::consts::ARCH {
        "x86_64" => {
            rules.push(json!({"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"}))
        }
        "aarch64" => rules.push(json!({"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW"})),
        "riscv64" => {
            rules.push(json!({"names": ["riscv_flush_icache"], "action": "SCMP_ACT_ALLOW"}))
        }
        _ => {}
    }
    for (cap, names) in WITH_CAP {
        if has(cap) {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        // threads and plain forks, no new namespaces; clone3's flags sit
        // in memory a filter cannot read, so it fails with ENOSYS and libc
        // falls back to clone
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS,
                                    "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": libc::ENOSYS}));
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": native_architectures(),
        "syscalls": rules,
    });
    serde_json::from_value(profile).expect("the built-in profile is a valid linux.seccomp")
}

/// The libseccomp names of this machine's architecture and the 32-bit ABIs
/// it also runs.
fn native_architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        _ => vec![],
    }
}

/// Docker's (Go) architecture name for this machine, for `includes.arches`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .map(|u| parse_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

const ACTIONS: [&str; 8] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
];

/// Read a Docker-format profile file (moby's `default.json`, containers-common's
/// `/usr/share/containers/seccomp.json`: `defaultAction`, `syscalls[{names,
/// action, errnoRet, args, includes, excludes}]` with includes and excludes
/// by capability, architecture and kernel version, `architectures` or
/// `archMap`, `flags`) and resolve it for a container with these
/// capabilities (the bounding set, names like `CAP_SYS_ADMIN`). This is
/// the one Docker-to-OCI converter: rrun reads only the OCI form.
pub fn load_profile(path: &Path, caps: &HashSet<String>) -> Result<LinuxSeccomp> {
    let bad = |why: String| SeccompError::Profile {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let doc: Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    from_docker(&doc, caps).map_err(bad)
}

/// A Docker-format profile → the OCI form; the error names the field.
fn from_docker(doc: &Value, caps: &HashSet<String>) -> std::result::Result<LinuxSeccomp, String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let check_action = |v: &Value, field: &str| -> std::result::Result<(), String> {
        match v.as_str() {
            Some(a) if ACTIONS.contains(&a) => Ok(()),
            Some(a) => Err(format!(
                "{field}: unknown action {a:?} (known: {})",
                ACTIONS.join(", ")
            )),
            None => Err(format!("{field}: missing (an action like SCMP_ACT_ERRNO)")),
        }
    };
    if !doc.is_object() {
        return Err("not a JSON object".into());
    }
    check_action(&doc["defaultAction"], "defaultAction")?;
    let kernel = kernel_version();
    let applies = |rule: &Value| -> bool {
        let (inc, exc) = (&rule["includes"], &rule["excludes"]);
        let arches = strings(&inc["arches"]);
        strings(&inc["caps"]).iter().all(|c| caps.contains(c))
            && (arches.is_empty() || arches.iter().any(|a| a == go_arch()))
            && inc["minKernel"]
                .as_str()
                .is_none_or(|min| kernel >= parse_version(min))
            && !strings(&exc["caps"]).iter().any(|c| caps.contains(c))
            && !strings(&exc["arches"]).iter().any(|a| a == go_arch())
    };
    let mut architectures = strings(&doc["architectures"]);
    let native = native_architectures();
    for entry in doc["archMap"].as_array().into_iter().flatten() {
        if let Some(a) = entry["architecture"]
            .as_str()
            .filter(|a| native.first() == Some(a))
        {
            architectures.push(a.to_string());
            architectures.extend(strings(&entry["subArchitectures"]));
        }
    }
    let mut syscalls = Vec::new();
    let rules = match &doc["syscalls"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return Err("syscalls: not a list".into()),
    };
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        check_action(&rule["action"], &format!("{field}.action"))?;
        if !applies(rule) {
            continue;
        }
        let mut names = strings(&rule["names"]);
        if let Some(n) = rule["name"].as_str() {
            names.push(n.to_string());
        }
        if names.is_empty() {
            return Err(format!("{field}.names: empty"));
        }
        let mut out = json!({"names": names, "action": rule["action"]});
        if let Some(e) = rule.get("errnoRet").filter(|e| !e.is_null()) {
            out["errnoRet"] = e.clone();
        }
        if let Some(args) = rule["args"].as_array().filter(|a| !a.is_empty()) {
            out["args"] = json!(args);
        }
        syscalls.push(out);
    }
    let mut oci = json!({"defaultAction": doc["defaultAction"], "syscalls": syscalls});
    if let Some(e) = doc.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        oci["defaultErrnoRet"] = e.clone();
    }
    if !architectures.is_empty() {
        oci["architectures"] = json!(architectures);
    }
    // SECCOMP_FILTER_FLAG_* as Docker passes them on
    if let Some(flags) = doc["flags"].as_array().filter(|f| !f.is_empty()) {
        oci["flags"] = json!(flags);
    }
    let text = oci.to_string();
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn options_parse_like_docker() {
        let o = parse_opts(&["seccomp=unconfined".into(), "no-new-privileges".into()]).unwrap();
        assert_eq!(o.seccomp, Seccomp::Unconfined);
        assert!(o.no_new_privileges);
        let o = parse_opts(&["seccomp:/p.json".into(), "no-new-privileges:false".into()]).unwrap();
        assert_eq!(o.seccomp, Seccomp::Profile("/p.json".into()));
        assert!(!o.no_new_privileges);
        let e = parse_opts(&["bogus=1".into()]).unwrap_err().to_string();
        assert!(e.contains("bogus=1"), "{e}");
    }

    #[test]
    fn default_profile_follows_capabilities() {
        let plain = default_profile(&HashSet::new());
        let all = names(&plain);
        assert!(all.contains(&"read".to_string()));
        assert!(!all.contains(&"mount".to_string()));
        assert!(!all.contains(&"kexec_load".to_string()));
        // clone only without namespace flags, clone3 refused with ENOSYS
        assert!(all.contains(&"clone".to_string()));
        let admin = default_profile(&HashSet::from(["CAP_SYS_ADMIN".to_string()]));
        let all = names(&admin);
        assert!(all.contains(&"mount".to_string()) && all.contains(&"unshare".to_string()));
        assert!(!all.contains(&"reboot".to_string()));
    }

    #[test]
    fn docker_profiles_resolve_and_errors_name_the_field() {
        let doc = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        });
        let p = from_docker(&doc, &HashSet::new()).unwrap();
        assert_eq!(names(&p), ["mkdir", "mkdirat"]);
        let bad = json!({"defaultAction": "SCMP_ACT_ERRNO",
                         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]});
        let e = from_docker(&bad, &HashSet::new()).unwrap_err();
        assert!(
            e.contains("syscalls[0].action") && e.contains("SCMP_ACT_MAYBE"),
            "{e}"
        );
        let e = from_docker(&json!({"syscalls": []}), &HashSet::new()).unwrap_err();
        assert!(e.contains("defaultAction"), "{e}");
    }

    #[test]
    fn docker_profiles_include_and_exclude_by_capability_and_arch() {
        let doc = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {}, "excludes": {}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
                {"names": ["breakpoint"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
                {"names": ["future_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}}
            ]
        });
        let plain = from_docker(&doc, &HashSet::new()).unwrap();
        assert_eq!(names(&plain), ["read", "chroot"]);
        let caps = HashSet::from(["CAP_SYS_ADMIN".to_string(), "CAP_SYS_CHROOT".to_string()]);
        let admin = from_docker(&doc, &caps).unwrap();
        assert_eq!(names(&admin), ["read", "mount"]);
        // the native architecture's entry of archMap, with its sub-architectures
        if std::env::consts::ARCH == "x86_64" {
            let arches = serde_json::to_value(plain.architectures()).unwrap();
            assert_eq!(arches, json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]));
        }
    }

    #[test]
    fn docker_profile_flags_are_passed_on_and_checked() {
        let doc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [],
                         "flags": ["SECCOMP_FILTER_FLAG_LOG"]});
        let p = from_docker(&doc, &HashSet::new()).unwrap();
        assert_eq!(
            serde_json::to_value(p.flags()).unwrap(),
            json!(["SECCOMP_FILTER_FLAG_LOG"])
        );
        let bad = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]});
        let e = from_docker(&bad, &HashSet::new()).unwrap_err();
        assert!(e.contains("flags") && e.contains("NOPE"), "{e}");
    }
}
