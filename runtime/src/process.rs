//! The last steps before the user process runs, shared by the container
//! init and `exec`: rlimits, user and groups, capabilities, cwd, fds, and
//! the program lookup in the container's PATH.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, Process};

use crate::error::{ErrnoExt, Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().iter().flatten() {
        let name = rl.typ().to_string();
        let res = rlimit_resource(&name)
            .ok_or_else(|| Error::config("process.rlimits", format!("unknown rlimit {name}")))?;
        setrlimit(res, rl.soft(), rl.hard()).map_err(|e| {
            let hint = if e == Errno::EPERM {
                "; raising a hard limit above the current one needs CAP_SYS_RESOURCE"
            } else {
                ""
            };
            Error::sys(
                format!(
                    "setrlimit {name} soft={} hard={}{hint}",
                    rl.soft(),
                    rl.hard()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

fn to_caps(set: &Option<Capabilities>, known: &caps::CapsHashSet) -> caps::CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .filter(|c| known.contains(c))
        .collect()
}

/// Switch to the process's user and capability sets, in runc's order:
/// bounding set, keep-caps, groups/gid/uid, then the other four sets.
pub fn apply_user_and_caps(process: &Process) -> Result<()> {
    let user = process.user();
    let capabilities = process.capabilities().as_ref();
    // What the kernel supports: /proc/sys/kernel/cap_last_cap, or else a
    // probe of one prctl per capability; once.
    let known = match capabilities {
        Some(_) => caps::runtime::procfs_all_supported(None)
            .unwrap_or_else(|_| caps::runtime::thread_all_supported()),
        None => caps::CapsHashSet::new(),
    };
    if let Some(c) = capabilities {
        let keep = to_caps(c.bounding(), &known);
        for cap in known.iter().filter(|cap| !keep.contains(cap)) {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap.index() as libc::c_ulong, 0, 0, 0) }
                < 0
            {
                return Err(Error::Init(format!(
                    "drop {cap} from the bounding set: {}",
                    Errno::last()
                )));
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        // setgroups is denied in user namespaces with setgroups=deny.
        Err(Errno::EPERM) if gids.is_empty() => {}
        r => r.op(|| format!("setgroups {gids:?}"))?,
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).op(|| format!("setgid {gid}"))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).op(|| format!("setuid {uid}"))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(c) = capabilities {
        let set = |set, caps: &caps::CapsHashSet, name: &str| {
            caps::set(None, set, caps)
                .map_err(|e| Error::Init(format!("set {name} capabilities: {e}")))
        };
        // Each capset must keep effective within permitted, and raising
        // inheritable needs CAP_SETPCAP still effective: this order works.
        set(
            caps::CapSet::Inheritable,
            &to_caps(c.inheritable(), &known),
            "inheritable",
        )?;
        set(
            caps::CapSet::Effective,
            &to_caps(c.effective(), &known),
            "effective",
        )?;
        set(
            caps::CapSet::Permitted,
            &to_caps(c.permitted(), &known),
            "permitted",
        )?;
        let _ = caps::clear(None, caps::CapSet::Ambient);
        for cap in to_caps(c.ambient(), &known) {
            // the kernel raises an ambient capability only if it is both
            // permitted and inheritable; like runc, one that is not is
            // left out (`runc spec` lists ambient but no inheritable)
            if let Err(e) = caps::raise(None, caps::CapSet::Ambient, cap) {
                tracing::debug!("ambient {cap} not raised: {e}");
            }
        }
    }
    Ok(())
}

/// chdir into the process cwd and make sure it really is inside the
/// container (CVE-2024-21626: a cwd reached through a leaked fd shows up
/// as an unreachable path).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).at("chdir to cwd", cwd)?;
    check_cwd(cwd)
}

/// [`enter_cwd`] while still root with every capability, before the
/// seccomp filter is installed (a profile may deny getcwd, which the check
/// needs) and before the user switch, as runc first tries. `Ok(false)`
/// when root may not enter it (EACCES/EPERM: a directory only the user
/// can enter, on root-squashed NFS or owned by an unmapped id): then call
/// [`enter_cwd`] again as the user.
pub fn enter_cwd_early(cwd: &Path) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd(cwd).map(|()| true),
        Err(Errno::EACCES | Errno::EPERM) => Ok(false),
        Err(e) => Err(Error::path("chdir to cwd", cwd, e)),
    }
}

fn check_cwd(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() && !p.starts_with("(unreachable)") => Ok(()),
        Ok(_) | Err(Errno::ENOENT) => Err(Error::config(
            "process.cwd",
            format!("{} is outside the container's root", cwd.display()),
        )),
        Err(e) => Err(Error::config(
            "process.cwd",
            format!(
                "cannot check that {} is inside the container: getcwd: {e}",
                cwd.display()
            ),
        )),
    }
}

/// The environment for the process, with HOME filled in like runc.
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    env
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2] == uid.to_string()).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

/// Resolve `args[0]` in the container's PATH (not rrun's).
pub fn lookup(program: &str, env: &[String]) -> Result<PathBuf> {
    let not_found = || {
        Error::config(
            "process.args",
            format!("exec: {program:?}: executable file not found in $PATH"),
        )
    };
    let executable =
        |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file();
    if program.contains('/') {
        // like runc (Go's exec.LookPath): a directory is refused here, at
        // create, with EISDIR, not left to fail in execve after start
        let p = PathBuf::from(program);
        nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK)
            .map_err(|e| Error::path("exec", &p, e))?;
        if p.is_dir() {
            return Err(Error::path("exec", p, Errno::EISDIR));
        }
        return Ok(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| executable(p))
        .ok_or_else(not_found)
}

/// Mark every fd from `first` on close-on-exec, so nothing of rrun's
/// reaches the container (the preserved fds sit below `first`).
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range only changes descriptor flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Old kernels: walk /proc/self/fd.
    for entry in std::fs::read_dir("/proc/self/fd").map_err(|e| Error::io("/proc/self/fd", e))? {
        let Ok(entry) = entry else { continue };
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        {
            if fd >= first as i32 {
                let _ = nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
            }
        }
    }
    Ok(())
}

/// The argv/envp and program path, ready for execve.
pub struct ExecPlan {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

impl ExecPlan {
    pub fn new(process: &Process, env: Vec<String>) -> Result<ExecPlan> {
        let args = process.args().clone().unwrap_or_default();
        let path = lookup(&args[0], &env)?;
        let cstr = |s: &str, field: &str| {
            CString::new(s)
                .map_err(|_| Error::config(field.to_string(), format!("{s:?} contains a NUL byte")))
        };
        Ok(ExecPlan {
            path: CString::new(path.as_os_str().as_bytes())
                .map_err(|_| Error::config("process.args", "NUL byte in program"))?,
            args: args
                .iter()
                .map(|a| cstr(a, "process.args"))
                .collect::<Result<_>>()?,
            env: env
                .iter()
                .map(|e| cstr(e, "process.env"))
                .collect::<Result<_>>()?,
        })
    }

    /// Replace this process. Only returns on failure.
    pub fn exec(&self) -> Error {
        // Rust's runtime ignores SIGPIPE in rrun, and an ignored signal
        // stays ignored across execve: the container's programs would get
        // EPIPE where they expect to die (`yes | head -1` printing "Broken
        // pipe"). Back to the default, as runc's (Go) and Rust's Command leave it.
        // SAFETY: setting a disposition to SIG_DFL installs no handler.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Err(e) => Error::path(
                "exec",
                PathBuf::from(self.path.to_string_lossy().into_owned()),
                e,
            ),
            Ok(never) => match never {},
        }
    }
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_given_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(lookup("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        let err = lookup("no-such-program-xyz", &env).unwrap_err().to_string();
        assert!(err.contains("executable file not found"), "{err}");
    }

    #[test]
    fn lookup_refuses_directories_and_missing_paths() {
        let env = vec!["PATH=/bin".to_string()];
        let err = lookup("/", &env).unwrap_err().to_string();
        assert!(err.contains("Is a directory"), "{err}");
        let err = lookup("/no/such/program", &env).unwrap_err().to_string();
        assert!(err.contains("No such file or directory"), "{err}");
    }

    #[test]
    fn rlimit_names() {
        assert!(rlimit_resource("RLIMIT_NOFILE").is_some());
        assert!(rlimit_resource("RLIMIT_BOGUS").is_none());
    }
}
