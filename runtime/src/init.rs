//! The processes rrun forks to make a container.
//!
//! ```text
//! rrun (parent) ──fork──▶ stage 1 ──fork──▶ init (PID 1 in the new pid ns)
//!                          │ join cgroup                │ build rootfs, pivot_root
//!                          │ setns(paths), user ns      │ hostname, sysctl, masks
//!                          │ unshare(the rest)          │ user, caps, cwd, fds
//!                          └ send init pid, exit        └ Ready → wait start → execve
//! ```
//!
//! Stage 1 exists because a new pid (and time) namespace only applies to
//! children, and a user namespace has to exist (and be mapped by the parent)
//! before the other namespaces are made, so that it owns them.
//!
//! Without a user namespace and without a mount namespace to join, stage 1
//! is forked before the cgroup exists ([`Stage1::Early`]): it makes the
//! namespaces (a new network namespace alone is about half a millisecond)
//! while the parent makes the cgroup, then joins the v1 hierarchies, forks
//! the init into the cgroup2 directory, and the init unshares the cgroup
//! namespace once it is in its cgroups. With a user namespace the cgroup
//! files have to be written before it exists (its root is not the host's
//! root), and a joined mount namespace may not show /sys/fs/cgroup: there
//! stage 1 is forked into the finished cgroup ([`Stage1::Late`]).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{fork, ForkResult, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::{Cgroup, Entry};
use crate::channel::{Channel, Msg};
use crate::error::{ErrnoExt, Error, Result};
use crate::hooks;
use crate::process::{self, ExecPlan};
use crate::rootfs::{self, RootfsPlan};
use crate::spawn::{self, Forked};

/// How the init learns that it may exec the user process.
pub enum StartSignal {
    /// `create`: block opening exec.fifo (an O_PATH fd) until `start` reads it.
    Fifo(OwnedFd),
    /// `run`: a `Start` message on the sync socket.
    Channel,
}

pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub cgroup: Option<&'a Cgroup>,
    pub console: Option<OwnedFd>,
    pub start: StartSignal,
    /// fds 3..3+extra_fds are passed to the container.
    pub extra_fds: u32,
    pub extra_env: Vec<String>,
    /// Detached id-mapped trees (inherited fds), by mount index.
    pub idmapped: &'a [(usize, RawFd)],
    /// The compiled `linux.seccomp` (see spec::Bundle).
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join: its type, an open fd of it, and where it came from.
pub type NsJoin = (LinuxNamespaceType, OwnedFd, PathBuf);

/// Namespaces to join by path (user first) and the flags to unshare.
fn namespace_plan(spec: &Spec) -> Result<(Vec<NsJoin>, CloneFlags)> {
    let mut join = Vec::new();
    let mut new = CloneFlags::empty();
    for (i, ns) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        match ns.path() {
            Some(p) => {
                let fd = nix::fcntl::open(
                    p,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .at("open namespace", p)?;
                // SAFETY: fresh descriptor from open.
                let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
                check_namespace_type(&fd, p, ns.typ())
                    .map_err(|msg| Error::config(format!("linux.namespaces[{i}].path"), msg))?;
                join.push((ns.typ(), fd, p.clone()));
            }
            None => new |= clone_flag(ns.typ()),
        }
    }
    join.sort_by_key(|(t, _, _)| *t != LinuxNamespaceType::User);
    Ok((join, new))
}

/// The spec asks for a new namespace of type `t` (listed, without a path).
fn new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == t && n.path().is_none()))
}

/// A namespace path must be a namespace of the listed type (setns with the
/// type's flag would only say EINVAL); the message names both.
fn check_namespace_type(
    fd: &OwnedFd,
    path: &Path,
    want: LinuxNamespaceType,
) -> std::result::Result<(), String> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if got < 0 {
        return Err(format!(
            "{} is not a namespace ({})",
            path.display(),
            nix::errno::Errno::last()
        ));
    }
    if got == clone_flag(want).bits() {
        return Ok(());
    }
    let name = |t: LinuxNamespaceType| {
        // the spec's names ("network", not the kernel's "net")
        serde_json::to_value(t)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| t.to_string())
    };
    let found = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ]
    .into_iter()
    .find(|t| clone_flag(*t).bits() == got)
    .map_or_else(|| format!("{got:#x}"), name);
    Err(format!(
        "{} is a namespace of type {found}, not {}",
        path.display(),
        name(want)
    ))
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == t))
}

/// When stage 1 is forked (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage1 {
    /// Before the cgroup exists; the parent sends [`Msg::CgroupReady`].
    Early,
    /// Into the cgroup, once it exists.
    Late,
}

impl Stage1 {
    pub fn for_spec(spec: &Spec) -> Stage1 {
        let joins_mount = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| {
                n.iter()
                    .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_some())
            });
        if has_ns(spec, LinuxNamespaceType::User) || joins_mount {
            Stage1::Late
        } else {
            Stage1::Early
        }
    }
}

/// Fork stage 1. In the parent returns its pid; the child never returns.
/// `cfg.cgroup` is the container's cgroup: made already ([`Stage1::Late`])
/// or about to be ([`Stage1::Early`]).
pub fn spawn(cfg: &InitConfig, child_end: &Channel, when: Stage1) -> Result<nix::unistd::Pid> {
    let (join, new) = namespace_plan(cfg.spec)?;
    let entry = match when {
        Stage1::Late => cfg.cgroup.map(Cgroup::entry).transpose()?,
        Stage1::Early => None,
    };
    // rrun is single-threaded here; the child only runs our code, forks the
    // init and leaves with _exit.
    match spawn::fork_into(entry.as_ref().and_then(|e| e.cgroup2_fd()))? {
        Forked::Parent(child) => Ok(child),
        Forked::Child { in_cgroup } => {
            let cgroup = entry.as_ref().map(|e| (e, in_cgroup));
            let code = match stage1(cfg, child_end, cgroup, join, new, when) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = child_end.send(&Msg::Error(e.to_string()));
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
    }
}

/// `cgroup` (Late): the entry of the cgroup stage 1 was forked into, and
/// whether clone3 placed it in the cgroup2 directory.
fn stage1(
    cfg: &InitConfig,
    ch: &Channel,
    cgroup: Option<(&Entry, bool)>,
    join: Vec<NsJoin>,
    new: CloneFlags,
    when: Stage1,
) -> Result<()> {
    let early = when == Stage1::Early;
    // into the cgroups first: a new cgroup namespace is rooted where its
    // maker is when it unshares
    if let Some((entry, in_cgroup2)) = cgroup {
        entry.join(in_cgroup2)?;
    }
    for (t, fd, path) in &join {
        setns(fd, clone_flag(*t)).at("join namespace", path)?;
    }
    if new.contains(CloneFlags::CLONE_NEWUSER) {
        unshare(CloneFlags::CLONE_NEWUSER).op(|| "unshare user namespace".into())?;
        ch.send(&Msg::UserNsCreated)?;
        match ch.recv()? {
            Msg::MappingsWritten => {}
            Msg::Error(e) => return Err(Error::Init(e)),
            other => return Err(Error::Init(format!("unexpected message {other:?}"))),
        }
    }
    if has_ns(cfg.spec, LinuxNamespaceType::User) {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .op(|| "setgid 0 in the user namespace".into())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .op(|| "setuid 0 in the user namespace".into())?;
    }
    let mut rest = new - CloneFlags::CLONE_NEWUSER;
    if early {
        // the init unshares it, in its cgroups
        rest -= CloneFlags::CLONE_NEWCGROUP;
    }
    if !rest.is_empty() {
        unshare(rest).op(|| format!("unshare {rest:?}"))?;
    }
    if rest.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
        // the offsets must be set before a process enters the namespace
        crate::attrs::write_time_offsets(cfg.spec.linux().as_ref())?;
    }
    if !early {
        // SAFETY: still single-threaded; the child runs init and never returns.
        return match unsafe { fork() }.op(|| "fork init".into())? {
            ForkResult::Parent { child } => ch.send(&Msg::Pid(child.as_raw())),
            ForkResult::Child => exit_init(cfg, ch),
        };
    }
    let entry = match ch.recv()? {
        Msg::CgroupReady(true) => cfg.cgroup.map(Cgroup::entry).transpose()?,
        Msg::CgroupReady(false) => None,
        Msg::Error(e) => return Err(Error::Init(e)),
        other => return Err(Error::Init(format!("expected the cgroup, got {other:?}"))),
    };
    if let Some(entry) = &entry {
        // stage 1 moves itself; the init inherits them
        entry.join_v1()?;
    }
    match spawn::fork_into(entry.as_ref().and_then(|e| e.cgroup2_fd()))? {
        Forked::Parent(child) => ch.send(&Msg::Pid(child.as_raw())),
        Forked::Child { in_cgroup } => {
            let joined: Result<()> = match &entry {
                Some(entry) => entry.join_v2(in_cgroup).map_err(Error::from),
                None => Ok(()),
            };
            let unshared = joined.and_then(|()| {
                if new.contains(CloneFlags::CLONE_NEWCGROUP) {
                    unshare(CloneFlags::CLONE_NEWCGROUP)
                        .op(|| "unshare the cgroup namespace".into())
                } else {
                    Ok(())
                }
            });
            if let Err(e) = unshared {
                let _ = ch.send(&Msg::Error(e.to_string()));
                // SAFETY: leave without running destructors.
                unsafe { libc::_exit(1) }
            }
            exit_init(cfg, ch)
        }
    }
}

/// Run the init; it returns only on failure, which it reports.
fn exit_init(cfg: &InitConfig, ch: &Channel) -> ! {
    let err = init(cfg, ch);
    let _ = ch.send(&Msg::Error(err.to_string()));
    // SAFETY: leave without running destructors.
    unsafe { libc::_exit(1) }
}

/// PID 1 of the container. Returns only on failure.
fn init(cfg: &InitConfig, ch: &Channel) -> Error {
    match prepare(cfg, ch) {
        Ok(plan) => plan.exec(),
        Err(e) => e,
    }
}

fn prepare(cfg: &InitConfig, ch: &Channel) -> Result<ExecPlan> {
    let spec = cfg.spec;
    let process = spec.process().as_ref().expect("validated");
    nix::unistd::setsid().op(|| "setsid".into())?;
    if new_ns(spec, LinuxNamespaceType::Network) {
        crate::net::loopback_up()?;
    }
    let plan = RootfsPlan {
        spec,
        rootfs: cfg.rootfs,
        bundle: cfg.bundle,
        no_pivot: cfg.no_pivot,
        new_cgroupns: has_ns(spec, LinuxNamespaceType::Cgroup),
        in_userns: has_ns(spec, LinuxNamespaceType::User),
        // without one, the runtime's (sharedmount.rs)
        own_mount_ns: has_ns(spec, LinuxNamespaceType::Mount),
        idmapped: cfg.idmapped,
    };
    plan.prepare()?;
    let hook_state = create_hooks(spec, ch)?;
    plan.switch_root()?;
    if let Some(console) = &cfg.console {
        crate::console::setup_in_container(
            console.as_raw_fd(),
            crate::console::console_size(process),
        )?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).op(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::sys(
                format!("setdomainname {d:?}"),
                nix::errno::Errno::last(),
            ));
        }
    }
    rootfs::apply_sysctl(spec)?;
    rootfs::finalize(spec)?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| Error::config("process.oomScoreAdj", format!("write {adj}: {e}")))?;
    }
    if let Some(umask) = process.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    }
    process::apply_rlimits(process)?;
    crate::attrs::apply(process, spec.linux().as_ref())?;
    let cwd = process.cwd();
    let seccomp = cfg.seccomp;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // the cwd and its check before the filter, which may deny getcwd
    let cwd_entered = process::enter_cwd_early(cwd)?;
    if let (Some(filter), false) = (seccomp, nnp) {
        // without no_new_privs installing a filter needs CAP_SYS_ADMIN:
        // do it before the capabilities go (runc's order)
        crate::seccomp::install(filter)?;
    }
    process::apply_user_and_caps(process)?;
    if !cwd_entered {
        process::enter_cwd(cwd)?;
    }
    let mut env = process::environment(process);
    env.extend(cfg.extra_env.iter().cloned());
    let plan = ExecPlan::new(process, env)?;
    process::cloexec_from(3 + cfg.extra_fds)?;
    ch.send(&Msg::Ready)?;
    wait_for_start(&cfg.start, ch)?;
    if let Some(state) = &hook_state {
        // the same state, now `created`
        let mut state: serde_json::Value = serde_json::from_str(state)
            .map_err(|e| Error::Init(format!("hook state from the runtime: {e}")))?;
        state["status"] = "created".into();
        hooks::run(spec, hooks::Kind::StartContainer, &state.to_string())?;
    }
    crate::attrs::set_exec_labels(process)?;
    if nnp {
        process::set_no_new_privs()?;
        if let Some(filter) = seccomp {
            // as late as possible: only execve is left
            crate::seccomp::install(filter)?;
        }
    }
    Ok(plan)
}

/// With the mounts built and before the root is switched: the parent runs
/// prestart and createRuntime hooks, then the init runs createContainer
/// hooks in the container's namespaces. Returns the hooks' state JSON when
/// the spec has any hooks the init runs.
fn create_hooks(spec: &oci_spec::runtime::Spec, ch: &Channel) -> Result<Option<String>> {
    let needed = |k| !hooks::of(spec, k).is_empty();
    use hooks::Kind::*;
    if ![Prestart, CreateRuntime, CreateContainer, StartContainer]
        .into_iter()
        .any(needed)
    {
        return Ok(None);
    }
    ch.send(&Msg::CreateHooks)?;
    let state = match ch.recv()? {
        Msg::CreateHooksDone(state) => state,
        Msg::Error(e) => return Err(Error::Init(e)),
        other => return Err(Error::Init(format!("expected hooks done, got {other:?}"))),
    };
    hooks::run(spec, CreateContainer, &state)?;
    Ok(Some(state))
}

fn wait_for_start(start: &StartSignal, ch: &Channel) -> Result<()> {
    match start {
        StartSignal::Fifo(fifo) => {
            let path = crate::fsutil::fd_path(fifo.as_raw_fd());
            let fd: RawFd = nix::fcntl::open(
                &path,
                nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .at("open exec fifo", &path)?;
            // SAFETY: fresh descriptor from open.
            let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
            nix::unistd::write(&fd, b"0").op(|| "write exec fifo".into())?;
            // Kept open on purpose until the execve closes it (O_CLOEXEC), or
            // the init dies: `start` reads the fifo to its end, so it returns
            // (and runs poststart hooks) only once the user's program runs,
            // as runc's start does, not while startContainer hooks still run.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
            Ok(())
        }
        StartSignal::Channel => match ch.recv()? {
            Msg::Start => Ok(()),
            other => Err(Error::Init(format!("expected start, got {other:?}"))),
        },
    }
}

/// Write the id mappings of a freshly made user namespace (parent side).
/// As root the maps are written directly. Rootless, a process may map only
/// its own uid and gid (after denying setgroups); anything wider goes
/// through the setuid helpers newuidmap/newgidmap, which check
/// /etc/subuid and /etc/subgid.
pub fn write_id_mappings(spec: &Spec, pid: nix::unistd::Pid) -> Result<()> {
    let linux = spec.linux().as_ref().expect("user namespace implies linux");
    let rootless = !nix::unistd::geteuid().is_root();
    for (file, field, maps, own) in [
        (
            "uid_map",
            "linux.uidMappings",
            linux.uid_mappings(),
            nix::unistd::geteuid().as_raw(),
        ),
        (
            "gid_map",
            "linux.gidMappings",
            linux.gid_mappings(),
            nix::unistd::getegid().as_raw(),
        ),
    ] {
        let maps = maps.as_deref().unwrap_or_default();
        let text: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let only_own = maps.len() == 1 && maps[0].size() == 1 && maps[0].host_id() == own;
        if rootless && !only_own {
            let helper = if file == "uid_map" {
                "newuidmap"
            } else {
                "newgidmap"
            };
            let mut cmd = std::process::Command::new(helper);
            cmd.arg(pid.as_raw().to_string());
            for m in maps {
                cmd.args([
                    m.container_id().to_string(),
                    m.host_id().to_string(),
                    m.size().to_string(),
                ]);
            }
            let out = cmd.output().map_err(|e| {
                Error::config(
                    field,
                    format!("mapping more than your own id needs {helper} (package uidmap): {e}"),
                )
            })?;
            if !out.status.success() {
                return Err(Error::config(
                    field,
                    format!(
                        "{helper} refused {}: {} (check /etc/subuid and /etc/subgid)",
                        text.trim().replace('\n', ", "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            continue;
        }
        if rootless && file == "gid_map" {
            // an unprivileged gid_map write needs setgroups denied first
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").map_err(|e| Error::io(&path, e))?;
        }
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &text).map_err(|e| Error::InvalidConfig {
            field: field.into(),
            msg: format!("write {path} ({}): {e}", text.trim().replace('\n', ", ")),
        })?;
    }
    Ok(())
}
