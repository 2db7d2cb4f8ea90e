//! `exec`: run another process in a running container. Stage 1 joins the
//! container's cgroup and namespaces (a pid namespace only applies to
//! children), then forks the process, which sets up user, capabilities, cwd
//! and fds like the init did and execs. An error before exec reaches rrun on
//! the sync socket; a successful exec closes it (close-on-exec).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::setns;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::cgroups::{Cgroup, Entry};
use crate::channel::{Channel, Msg};
use crate::container;
use crate::error::{ErrnoExt, Error, Result};
use crate::init::{clone_flag, NsJoin};
use crate::process::{self, ExecPlan};
use crate::spawn::{self, Forked};
use crate::state::{State, Status};

pub struct ExecOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    /// The container's state, when the caller has read it already.
    pub state: Option<State>,
    pub process: Process,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Returns the exit code of the process (0 when detached).
pub fn exec(mut opts: ExecOptions) -> Result<i32> {
    let st = match opts.state.take() {
        Some(st) => st,
        None => State::load(opts.root, opts.id)?,
    };
    let status = st.status(opts.root);
    if status != Status::Running && status != Status::Created {
        return Err(Error::BadStatus {
            id: opts.id.into(),
            status: status.to_string(),
            msg: "cannot exec in a container that is not running",
        });
    }
    crate::spec::validate_process(&opts.process)?;
    crate::attrs::validate(&opts.process, None)?;
    let terminal = opts.process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(Error::Usage("-t with -d needs --console-socket".into()));
    }
    // exec'd processes get the container's seccomp filter too
    let seccomp = st
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    let mut namespaces: Vec<NsJoin> = Vec::new();
    let spec_ns = st
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &spec_ns {
        let path = PathBuf::from(format!("/proc/{}/ns/{}", st.pid, ns_file(ns.typ())));
        let fd = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .at("open namespace", &path)?;
        // SAFETY: fresh descriptor from open.
        namespaces.push((
            ns.typ(),
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
            path,
        ));
    }
    namespaces.sort_by_key(|(t, _, _)| {
        (
            *t != LinuxNamespaceType::User,
            *t == LinuxNamespaceType::Mount,
        )
    });
    // Without a mount namespace to join (the container shares the
    // runtime's), the process enters the init's root as the init did: chroot.
    let root = if spec_ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount) {
        None
    } else {
        let path = PathBuf::from(format!("/proc/{}/root", st.pid));
        let fd = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .at("open the container's root", &path)?;
        // SAFETY: fresh descriptor from open.
        Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    };

    let mut console_local = None;
    let console: Option<OwnedFd> = match (terminal, opts.console_socket) {
        (true, Some(p)) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .map_err(|e| Error::io(p, e))?
                .into(),
        ),
        (true, None) => {
            let (a, b) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| Error::io("console socketpair", e))?;
            console_local = Some(OwnedFd::from(a));
            Some(b.into())
        }
        _ => None,
    };
    if !opts.detach {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let (parent_end, child_end) = Channel::pair()?;
    let entry = st.cgroup.as_ref().map(Cgroup::entry).transpose()?;
    // rrun is single-threaded here; the child only runs our code, forks the
    // process with the C library's fork and leaves with _exit.
    let stage1 = match spawn::fork_into(entry.as_ref().and_then(|e| e.cgroup2_fd()))? {
        Forked::Child { in_cgroup } => {
            let code = match stage1(
                entry.as_ref().map(|e| (e, in_cgroup)),
                &opts,
                &namespaces,
                root.as_ref(),
                console.as_ref(),
                seccomp.as_ref(),
                &child_end,
            ) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = child_end.send(&Msg::Error(e.to_string()));
                    1
                }
            };
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(code) }
        }
        Forked::Parent(child) => child,
    };
    drop(child_end);
    drop(entry);
    drop(console);
    // Stage 1 sends the process's pid after its fork while the process
    // runs on; the process itself sends nothing unless it fails (then an
    // Error, which may come before the pid: reported as it is).
    let pid = match parent_end.recv() {
        Ok(Msg::Pid(p)) => Pid::from_raw(p),
        Ok(Msg::Error(e)) => {
            let _ = waitpid(stage1, None);
            return Err(Error::Init(e));
        }
        Ok(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
        Err(e) => {
            let _ = waitpid(stage1, None);
            return Err(e);
        }
    };
    match waitpid(stage1, None) {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => return Err(Error::Init(format!("exec stage 1 failed: {other:?}"))),
    }
    let mask = container::forwarded_signals();
    if !opts.detach {
        mask.thread_block().op(|| "block signals".into())?;
    }
    if let Ok(Msg::Error(e)) = parent_end.recv() {
        let _ = waitpid(pid, None);
        return Err(Error::Init(e));
    }
    if let Some(p) = opts.pid_file {
        container::write_pid_file(p, pid.as_raw())?;
    }
    if opts.detach {
        return Ok(0);
    }
    let master = match &console_local {
        Some(sock) => Some(crate::console::recv_master(sock.as_raw_fd())?),
        None => None,
    };
    let proxy = master.map(|m| std::thread::spawn(move || crate::console::proxy(&m)));
    let code = container::wait_forwarding(pid, &mask);
    if let Some(p) = proxy {
        let _ = p.join();
    }
    Ok(code)
}

fn stage1(
    cgroup: Option<(&Entry, bool)>,
    opts: &ExecOptions,
    namespaces: &[NsJoin],
    root: Option<&OwnedFd>,
    console: Option<&OwnedFd>,
    seccomp: Option<&crate::seccomp::Compiled>,
    ch: &Channel,
) -> Result<()> {
    // into the cgroups before the namespaces (the cgroup namespace too)
    if let Some((entry, in_cgroup2)) = cgroup {
        entry.join(in_cgroup2)?;
    }
    if let Some(root) = root {
        nix::unistd::fchdir(root.as_raw_fd()).op(|| "chdir to the container's root".into())?;
        nix::unistd::chroot(".").op(|| "chroot to the container's root".into())?;
    }
    for (t, fd, path) in namespaces {
        setns(fd, clone_flag(*t)).at("join namespace", path)?;
    }
    // SAFETY: single-threaded; the child execs or _exits.
    match unsafe { fork() }.op(|| "fork".into())? {
        ForkResult::Parent { child } => ch.send(&Msg::Pid(child.as_raw())),
        ForkResult::Child => {
            let err = match prepare(opts, console, seccomp) {
                Ok(plan) => plan.exec(),
                Err(e) => e,
            };
            let _ = ch.send(&Msg::Error(err.to_string()));
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(127) }
        }
    }
}

fn prepare(
    opts: &ExecOptions,
    console: Option<&OwnedFd>,
    seccomp: Option<&crate::seccomp::Compiled>,
) -> Result<ExecPlan> {
    let p = &opts.process;
    if let Some(c) = console {
        nix::unistd::setsid().op(|| "setsid".into())?;
        crate::console::setup_in_container(c.as_raw_fd(), crate::console::console_size(p))?;
    }
    if let Some(umask) = p.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    }
    process::apply_rlimits(p)?;
    crate::attrs::apply(p, None)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    // the cwd and its check before the filter, which may deny getcwd
    let cwd_entered = process::enter_cwd_early(p.cwd())?;
    if let (Some(filter), false) = (seccomp, nnp) {
        // needs CAP_SYS_ADMIN without no_new_privs: before dropping caps
        crate::seccomp::install(filter)?;
    }
    process::apply_user_and_caps(p)?;
    if !cwd_entered {
        process::enter_cwd(p.cwd())?;
    }
    let plan = ExecPlan::new(p, process::environment(p))?;
    process::cloexec_from(3 + opts.preserve_fds)?;
    crate::attrs::set_exec_labels(p)?;
    if nnp {
        process::set_no_new_privs()?;
        if let Some(filter) = seccomp {
            crate::seccomp::install(filter)?;
        }
    }
    Ok(plan)
}
