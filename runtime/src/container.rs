//! Container lifecycle verbs: create, start, run, kill, delete, pause,
//! resume, ps, list. `exec` lives in `exec.rs`.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;
use tracing::{debug, warn};

use crate::cgroups::Cgroup;
use crate::channel::{Channel, Msg};
use crate::error::{ErrnoExt, Error, Result};
use crate::hooks;
use crate::init::{self, InitConfig, StartSignal};
use crate::spec;
use crate::state::{self, State, Status, EXEC_FIFO};

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: no exec fifo, started right away, and a
    /// terminal (if any) proxied by rrun itself.
    pub foreground: bool,
    /// `run -d`/`run`: start right after create.
    pub start_now: bool,
}

/// What `create` leaves behind for `run`.
pub struct Created {
    pub state: State,
    pub channel: Channel,
    pub console_master: Option<OwnedFd>,
}

/// Undo a half-made container: kill its processes, detach the rootfs bind
/// of a container without a mount namespace, remove its cgroup and state
/// directory. Disarmed once the container exists.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pids: Vec<Pid>,
    rootfs_mount: Option<(PathBuf, u64)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if let Some(cg) = &self.cgroup {
            kill_cgroup(cg);
        }
        if let Some((rootfs, id)) = &self.rootfs_mount {
            if let Err(e) = crate::sharedmount::release(rootfs, *id) {
                warn!("cleanup: {e}");
            }
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                warn!("cleanup: remove cgroup: {e}");
            }
        }
        if let Some(dir) = &self.dir {
            if let Err(e) = fs::remove_dir_all(dir) {
                warn!("cleanup: remove {}: {e}", dir.display());
            }
        }
    }
}

fn kill_cgroup(cg: &Cgroup) {
    if cg.freeze_requested() {
        let _ = cg.thaw();
    }
    for pid in cg.pids().unwrap_or_default() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// fds passed to the container: LISTEN_FDS (systemd socket activation) plus
/// `--preserve-fds`, and the environment that goes with them.
fn extra_fds(preserve: u32) -> (u32, Vec<String>) {
    // Like systemd and runc: the fds are ours only if LISTEN_PID names us.
    let ours = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    let listen: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .filter(|_| ours)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let env = if listen > 0 {
        vec![format!("LISTEN_FDS={listen}"), "LISTEN_PID=1".to_string()]
    } else {
        vec![]
    };
    (listen + preserve, env)
}

pub fn create(opts: &CreateOptions) -> Result<Created> {
    state::validate_id(opts.id)?;
    let bundle = spec::load(opts.bundle)?;
    let process = bundle.spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.foreground {
        return Err(Error::Usage(
            "process.terminal is true: --console-socket is required when the container is detached"
                .into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::Usage(
            "--console-socket given but process.terminal is false".into(),
        ));
    }

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(opts.root)
        .map_err(|e| Error::io(opts.root, e))?;
    let dir = state::container_dir(opts.root, opts.id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(opts.id.into()))
        }
        Err(e) => return Err(Error::io(&dir, e)),
    }
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pids: vec![],
        rootfs_mount: None,
    };

    // The console: a connection to the caller's socket, or for a
    // foreground terminal a socketpair whose other end rrun keeps.
    let mut console_local = None;
    let console = match (terminal, opts.console_socket) {
        (true, Some(path)) => {
            let s =
                std::os::unix::net::UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
            Some(OwnedFd::from(s))
        }
        (true, None) => {
            let (a, b) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| Error::io("console socketpair", e))?;
            console_local = Some(OwnedFd::from(a));
            Some(OwnedFd::from(b))
        }
        _ => None,
    };

    let start = if opts.start_now {
        StartSignal::Channel
    } else {
        let fifo = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .at("mkfifo", &fifo)?;
        fs::set_permissions(&fifo, fs::Permissions::from_mode(0o622))
            .map_err(|e| Error::io(&fifo, e))?;
        let fd = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .at("open", &fifo)?;
        // SAFETY: fresh descriptor from open.
        StartSignal::Fifo(unsafe { OwnedFd::from_raw_fd(fd) })
    };

    let linux = bundle.spec.linux().as_ref();
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = Cgroup::new(cgroups_path.as_deref(), opts.id)?;
    let spec_resources = linux.and_then(|l| l.resources().as_ref());
    // Rootless, device rules are left out as runc does: the container is in
    // a user namespace, where mknod is refused and host nodes are bound
    // with their host permissions; an unprivileged user cannot attach the
    // cgroup2 device program anyway.
    let resources = if rootless() {
        spec_resources
            .map(|r| {
                let mut r = crate::resources::normalized(r);
                r.set_devices(None);
                r
            })
            .filter(|r| *r != oci_spec::runtime::LinuxResources::default())
    } else {
        Some(crate::cgroups::effective_resources(spec_resources))
    };
    let make_cgroup = |mut cgroup: Cgroup| -> Result<Option<Cgroup>> {
        match cgroup.create(resources.as_ref()) {
            Ok(()) => Ok(Some(cgroup)),
            // Rootless without limits: a cgroup is not needed, and without a
            // delegated subtree there is none to make (runc does the same).
            Err(e) if rootless() && resources.is_none() => {
                debug!("rootless, running without a cgroup: {e}");
                Ok(None)
            }
            Err(e) if rootless() => Err(Error::config(
                "linux.resources",
                format!(
                    "a rootless container with limits needs a cgroup delegated to uid {} ({e})",
                    nix::unistd::geteuid()
                ),
            )),
            Err(e) => Err(e.into()),
        }
    };

    // No mount namespace: the container's mounts go below a private bind
    // of the rootfs in the runtime's mount namespace (sharedmount.rs).
    let rootfs_mount = if linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Mount))
    {
        None
    } else {
        let id = crate::sharedmount::bind(&bundle.rootfs)?;
        guard.rootfs_mount = Some((bundle.rootfs.clone(), id));
        Some(id)
    };

    let (extra, extra_env) = extra_fds(opts.preserve_fds);
    let idmapped = crate::idmap::prepare(&bundle.spec, &bundle.dir)?;
    let idmapped_fds: Vec<(usize, std::os::fd::RawFd)> = idmapped
        .iter()
        .map(|(i, fd)| (*i, fd.as_raw_fd()))
        .collect();
    let config = |cgroup| InitConfig {
        spec: &bundle.spec,
        rootfs: &bundle.rootfs,
        bundle: &bundle.dir,
        no_pivot: opts.no_pivot,
        cgroup,
        console,
        start,
        extra_fds: extra,
        extra_env,
        idmapped: &idmapped_fds,
        seccomp: bundle.seccomp.as_ref(),
    };
    let (parent_end, child_end) = Channel::pair()?;
    let cgroup = match init::Stage1::for_spec(&bundle.spec) {
        init::Stage1::Early => {
            // stage 1 makes the namespaces while the cgroup is made
            let planned = cgroup.clone();
            let stage1 = init::spawn(&config(Some(&planned)), &child_end, init::Stage1::Early)?;
            guard.pids.push(stage1);
            let cgroup = make_cgroup(cgroup)?;
            guard.cgroup = cgroup.clone();
            if let Err(e) = parent_end.send(&Msg::CgroupReady(cgroup.is_some())) {
                // stage 1 failed meanwhile: its message says why
                return Err(match parent_end.recv() {
                    Ok(Msg::Error(msg)) => Error::Init(msg),
                    _ => e,
                });
            }
            cgroup
        }
        init::Stage1::Late => {
            let cgroup = make_cgroup(cgroup)?;
            guard.cgroup = cgroup.clone();
            let stage1 = init::spawn(&config(cgroup.as_ref()), &child_end, init::Stage1::Late)?;
            guard.pids.push(stage1);
            cgroup
        }
    };
    let stage1 = *guard.pids.last().expect("stage 1 was forked");
    drop(child_end);
    drop(idmapped);
    // while stage 1 and the init work: the slow part of saving the state
    let mut pending_state = Some(State::begin_save(opts.root, opts.id)?);
    let mut cgroup = Some(cgroup);
    let mut state = None;

    let run_create_hooks = |pid: Pid| -> Result<()> {
        let state =
            |status| hooks::state_json(&bundle.spec, opts.id, pid.as_raw(), status, &bundle.dir);
        // prestart (the old hook, "after the create operation") sees
        // `created`, as crun and the runtime-tools suite have it; the
        // createRuntime and createContainer hooks `creating`
        if !hooks::of(&bundle.spec, hooks::Kind::Prestart).is_empty() {
            hooks::run(&bundle.spec, hooks::Kind::Prestart, &state("created"))?;
        }
        let creating = state("creating");
        hooks::run(&bundle.spec, hooks::Kind::CreateRuntime, &creating)?;
        parent_end.send(&Msg::CreateHooksDone(creating))
    };
    let new_state = |pid: Pid, pid_start, cgroup| State {
        id: opts.id.to_string(),
        pid: pid.as_raw(),
        pid_start,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        cgroup,
        rootfs_mount,
        spec: bundle.spec.clone(),
        started: opts.start_now,
    };
    let mut setup = Setup::default();
    let pid = 'recv: loop {
        for step in setup.on(parent_end.recv()?)? {
            match step {
                Step::WriteMappings => {
                    init::write_id_mappings(&bundle.spec, stage1)?;
                    parent_end.send(&Msg::MappingsWritten)?;
                }
                Step::InitPid(pid) => {
                    guard.pids.push(pid);
                    match waitpid(stage1, None) {
                        Ok(WaitStatus::Exited(_, 0)) => {}
                        other => return Err(Error::Init(format!("stage 1 failed: {other:?}"))),
                    }
                    guard.pids.retain(|p| *p != stage1);
                    // All of the state is known now: written while the init
                    // builds the container, put in place once it is created.
                    // An init already gone has sent why: that message comes
                    // next, the state is not written.
                    if let Some(start) = state::process_start_time(pid.as_raw()) {
                        let st = new_state(pid, start, cgroup.take().expect("one init pid"));
                        let written = pending_state.take().expect("one init pid").write(&st)?;
                        state = Some((st, written));
                    }
                }
                Step::RunCreateHooks(pid) => run_create_hooks(pid)?,
                Step::Created(pid) => break 'recv pid,
            }
        }
    };
    let console_master = match &console_local {
        Some(sock) => Some(crate::console::recv_master(sock.as_raw_fd())?),
        None => None,
    };
    // the init still runs (the same process: its start time)
    let exited = || Error::Init("the container process exited during setup".into());
    let start = state::process_start_time(pid.as_raw()).ok_or_else(exited)?;
    let state = match state {
        Some((state, written)) => {
            if state.pid_start != start {
                return Err(exited());
            }
            written.commit()?;
            state
        }
        None => {
            let state = new_state(pid, start, cgroup.take().expect("one init pid"));
            pending_state
                .expect("written only with a state")
                .finish(&state)?;
            state
        }
    };
    if let Some(pid_file) = opts.pid_file {
        write_pid_file(pid_file, pid.as_raw())?;
    }
    guard.pids.clear();
    guard.cgroup = None;
    guard.rootfs_mount = None;
    guard.dir = None;
    debug!(id = opts.id, pid = pid.as_raw(), "created");
    Ok(Created {
        state,
        channel: parent_end,
        console_master,
    })
}

/// What `create` has heard on the sync channel. Two processes write to it
/// at once: stage 1 sends the init's pid right after forking it, while the
/// init goes on building the container and may ask for the create hooks,
/// or say Ready, before that pid has been read. So the pid, the hooks
/// request and Ready are taken in any order: hooks wait for the pid, and
/// the container is created once both the pid and Ready are in.
#[derive(Debug, Default)]
struct Setup {
    init_pid: Option<Pid>,
    hooks_pending: bool,
    ready: bool,
}

/// What `create` does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Stage 1 made a user namespace: write its id mappings.
    WriteMappings,
    /// The init's pid came: stage 1 has exited (reap it).
    InitPid(Pid),
    /// Run the prestart and createRuntime hooks, then answer the init.
    RunCreateHooks(Pid),
    /// Set-up is done: the container is created, its init is this pid.
    Created(Pid),
}

impl Setup {
    fn on(&mut self, msg: Msg) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        match msg {
            Msg::UserNsCreated => steps.push(Step::WriteMappings),
            Msg::CreateHooks => match self.init_pid {
                Some(pid) => steps.push(Step::RunCreateHooks(pid)),
                None => self.hooks_pending = true,
            },
            Msg::Pid(raw) if self.init_pid.is_none() => {
                let pid = Pid::from_raw(raw);
                self.init_pid = Some(pid);
                steps.push(Step::InitPid(pid));
                if std::mem::take(&mut self.hooks_pending) {
                    steps.push(Step::RunCreateHooks(pid));
                }
            }
            Msg::Ready if !self.ready && !self.hooks_pending => self.ready = true,
            Msg::Error(e) => return Err(Error::Init(e)),
            other => return Err(Error::Init(format!("unexpected message {other:?}"))),
        }
        if let (true, Some(pid)) = (self.ready, self.init_pid) {
            steps.push(Step::Created(pid));
        }
        Ok(steps)
    }
}

/// Running as a user other than root (rootless containers).
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Write the pid file atomically, like runc.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs::write(&tmp, pid.to_string()).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// `start`: release the init waiting on exec.fifo.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let mut st = State::load(root, id)?;
    let status = st.status(root);
    if status != Status::Created {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot start a container that is not created",
        });
    }
    let fifo = st.dir(root).join(EXEC_FIFO);
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .at("open", &fifo)?;
    // SAFETY: fresh descriptor from open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1];
    // The init writes one byte, then keeps the fifo open until its execve
    // closes it: read the byte, then to the end (no writer left), so that
    // start returns once the user's program runs, as runc's does.
    let mut released = false;
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16));
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => released = true,
            // every writer gone: the init has exec'd the program (or died)
            Ok(0) if released => break,
            // released and the init still before its execve (startContainer hooks)
            Err(nix::errno::Errno::EAGAIN) if released => {}
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if !st.init_alive() {
                    return Err(Error::BadStatus {
                        id: id.into(),
                        status: "stopped".into(),
                        msg: "the container process exited before start",
                    });
                }
                if Instant::now() > deadline {
                    return Err(Error::Init(
                        "timed out waiting for the container process to start".into(),
                    ));
                }
            }
            Err(e) => return Err(Error::path("read", fifo, e)),
        }
    }
    let _ = fs::remove_file(&fifo);
    st.started = true;
    st.save(root)?;
    poststart(&st);
    Ok(())
}

/// Run the poststart hooks: a failing one is a warning and the others
/// still run, the container goes on (the spec's rule; runc kills it).
fn poststart(st: &State) {
    if hooks::of(&st.spec, hooks::Kind::Poststart).is_empty() {
        return;
    }
    let state = hooks::state_json(&st.spec, &st.id, st.pid, "running", &st.bundle);
    hooks::run_warning(&st.spec, hooks::Kind::Poststart, &state);
}

/// `run`: create, start and (in the foreground) wait; returns the exit code.
pub fn run(opts: &CreateOptions, detach: bool) -> Result<i32> {
    if !detach {
        // Orphaned container processes (init once stage 1 exits) come to us.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let created = create(&CreateOptions {
        foreground: !detach,
        start_now: true,
        ..*opts
    })?;
    let root = opts.root;
    let id = opts.id;
    let mask = forwarded_signals();
    if !detach {
        mask.thread_block().op(|| "block signals".into())?;
    }
    if let Err(e) = created.channel.send(&Msg::Start) {
        let _ = delete(root, id, true);
        return Err(e);
    }
    // The channel closes when the init execs; an error message means it failed.
    if let Ok(Msg::Error(e)) = created.channel.recv() {
        let _ = delete(root, id, true);
        return Err(Error::Init(e));
    }
    poststart(&created.state);
    if detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(created.state.pid);
    let proxy = created
        .console_master
        .map(|m| std::thread::spawn(move || crate::console::proxy(&m)));
    let code = wait_forwarding(pid, &mask);
    if let Some(p) = proxy {
        let _ = p.join();
    }
    // with the state it made (unless a `delete --force` came first): no
    // need to read and parse it again
    let removed = if state::container_dir(root, id)
        .join(state::STATE_FILE)
        .exists()
    {
        remove(root, &created.state, true)
    } else {
        Ok(())
    };
    if let Err(e) = removed {
        warn!("delete after run: {e}");
    }
    Ok(code)
}

pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGALRM,
        Signal::SIGCONT,
    ] {
        set.add(s);
    }
    set
}

/// Reap children until `pid` exits, forwarding signals to it; returns its
/// exit code (128+signal when killed), like runc.
pub fn wait_forwarding(pid: Pid, mask: &SigSet) -> i32 {
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) => continue,
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(_) => continue,
        }
    }
}

pub fn kill_container(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let (st, status) = State::load_live(root, id, "container not running")?;
    if all {
        if let Some(cg) = &st.cgroup {
            for p in cg.pids()? {
                let _ = kill(Pid::from_raw(p), sig);
            }
            if sig == Signal::SIGKILL && status == Status::Paused {
                let _ = cg.thaw();
            }
            return Ok(());
        }
    }
    st.signal_init(sig)
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    state::validate_id(id)?;
    let dir = state::container_dir(root, id);
    let st = match State::load(root, id) {
        Ok(st) => st,
        // like runc: --force on a container that is not there succeeds
        // (also removing a directory left by an aborted create)
        Err(Error::NotFound(_)) if force => {
            let _ = fs::remove_dir_all(&dir);
            return Ok(());
        }
        Err(Error::NotFound(_)) => return Err(Error::NotFound(id.into())),
        Err(e) if force => {
            // A corrupt or half-written state: remove what we can.
            warn!("delete --force: {e}");
            return fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e));
        }
        Err(e) => return Err(e),
    };
    remove(root, &st, force)
}

/// `delete` of a loaded state.
fn remove(root: &Path, st: &State, force: bool) -> Result<()> {
    let id = st.id.as_str();
    let status = st.status(root);
    // The spec: deleting a container that is not stopped (created,
    // running, paused) must fail and leave it as it is; runc and crun kill
    // a created one. Podman, rbox's shim and `ctr task delete --force`
    // kill first or pass --force; containerd's runc shim passes a plain
    // delete, so a created task must be killed before it is deleted.
    if status != Status::Stopped && !force {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "only a stopped container can be deleted (--force kills it first)",
        });
    }
    if status != Status::Stopped && st.init_alive() {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        if let Some(cg) = &st.cgroup {
            kill_cgroup(cg);
        }
        wait_gone(st);
    }
    if let Some(id) = st.rootfs_mount {
        crate::sharedmount::release(&st.rootfs, id)?;
    }
    if let Some(cg) = &st.cgroup {
        // the usual case, nothing left in it: one rmdir per hierarchy;
        // else what is left (the init's daemons) is killed first
        if cg.remove_if_empty().is_err() {
            kill_cgroup(cg);
            cg.destroy()?;
        }
    }
    st.remove_dir(root)?;
    if !hooks::of(&st.spec, hooks::Kind::Poststop).is_empty() {
        let state = hooks::state_json(&st.spec, id, 0, "stopped", &st.bundle);
        hooks::run_warning(&st.spec, hooks::Kind::Poststop, &state);
    }
    Ok(())
}

fn wait_gone(st: &State) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while st.init_alive() && Instant::now() < deadline {
        // Reap it if it is ours (run, or a subreaper caller).
        let _ = waitpid(Pid::from_raw(st.pid), Some(WaitPidFlag::WNOHANG));
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    if status != Status::Running && status != Status::Created {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot pause a container that is not running",
        });
    }
    st.cgroup
        .as_ref()
        .ok_or_else(|| {
            Error::Init(format!(
            "cannot pause container {id:?}: it has no cgroup (rootless without a delegated cgroup)"
        ))
        })?
        .freeze()?;
    Ok(())
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    if status != Status::Paused {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            msg: "cannot resume a container that is not paused",
        });
    }
    st.cgroup
        .as_ref()
        .ok_or_else(|| {
            Error::Init(format!(
            "cannot resume container {id:?}: it has no cgroup (rootless without a delegated cgroup)"
        ))
        })?
        .thaw()?;
    Ok(())
}

/// Host pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let st = State::load(root, id)?;
    match &st.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None => Ok(if st.init_alive() {
            vec![st.pid]
        } else {
            vec![]
        }),
    }
}

/// Every container under `root`, sorted by id; unreadable entries skipped.
pub fn list(root: &Path) -> Result<Vec<State>> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(root, e)),
    };
    let mut out: Vec<State> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|id| State::load(root, &id).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `msgs` in order; the steps taken.
    fn steps(msgs: Vec<Msg>) -> Vec<Step> {
        let mut setup = Setup::default();
        msgs.into_iter()
            .flat_map(|m| setup.on(m).unwrap())
            .collect()
    }

    #[test]
    fn ready_before_the_pid_waits_for_the_pid() {
        assert_eq!(
            steps(vec![Msg::Ready, Msg::Pid(42)]),
            [
                Step::InitPid(Pid::from_raw(42)),
                Step::Created(Pid::from_raw(42))
            ]
        );
        assert_eq!(
            steps(vec![Msg::Pid(42), Msg::Ready]),
            [
                Step::InitPid(Pid::from_raw(42)),
                Step::Created(Pid::from_raw(42))
            ]
        );
    }

    #[test]
    fn hooks_run_once_the_pid_is_known_whatever_the_order() {
        let pid = Pid::from_raw(7);
        let want = [
            Step::InitPid(pid),
            Step::RunCreateHooks(pid),
            Step::Created(pid),
        ];
        assert_eq!(steps(vec![Msg::CreateHooks, Msg::Pid(7), Msg::Ready]), want);
        assert_eq!(steps(vec![Msg::Pid(7), Msg::CreateHooks, Msg::Ready]), want);
        assert_eq!(
            steps(vec![
                Msg::UserNsCreated,
                Msg::CreateHooks,
                Msg::Pid(7),
                Msg::Ready
            ])[0],
            Step::WriteMappings
        );
    }

    #[test]
    fn out_of_place_messages_are_errors() {
        let mut s = Setup::default();
        s.on(Msg::Pid(1)).unwrap();
        assert!(s.on(Msg::Pid(2)).is_err(), "a second pid");
        let mut s = Setup::default();
        s.on(Msg::CreateHooks).unwrap();
        assert!(
            s.on(Msg::Ready).is_err(),
            "ready while the hooks are pending"
        );
        let mut s = Setup::default();
        let e = s.on(Msg::Error("mount failed".into())).unwrap_err();
        assert_eq!(e.to_string(), "mount failed");
        assert!(Setup::default().on(Msg::Start).is_err());
    }
}
