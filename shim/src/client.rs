//! A client for containerd-shim-rrun-v2 without containerd (for rbox):
//! start a shim for a bundle, then create/start/exec/kill/wait/delete over
//! ttrpc. The client serves the shim's event endpoint itself (the shim needs
//! one to start) and keeps the topics it receives.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options;
use containerd_shim_protos::shim_sync::{create_events, Events, TaskClient};
use containerd_shim_protos::ttrpc::{self, context::Context, Client, Server, TtrpcContext};

/// Written in the bundle: the command the shim runs when the container's
/// init exits (JSON array: program and arguments).
pub const ON_EXIT_FILE: &str = "on-exit.json";

/// Kept in the bundle by a shim started with an on-exit command (rbox's):
/// what became of the container's init, `paused` while it is frozen and
/// `exited STATUS` from the moment it exits (before the on-exit command
/// runs); no file while it runs. A new shim for the bundle starts without
/// one. A manager reads it instead of asking the shim or the runtime.
pub const STATUS_FILE: &str = "task-status";

/// What a bundle's [`STATUS_FILE`] says of its container's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStatus {
    /// no record: running (if a shim serves it)
    Running,
    Paused,
    Exited(i32),
}

impl InitStatus {
    /// The bundle's record (a missing or unreadable one is `Running`).
    pub fn of_bundle(bundle: &Path) -> InitStatus {
        let text = std::fs::read_to_string(bundle.join(STATUS_FILE)).unwrap_or_default();
        match text.split_whitespace().collect::<Vec<_>>()[..] {
            ["paused"] => InitStatus::Paused,
            ["exited", code] => code.parse().map_or(InitStatus::Running, InitStatus::Exited),
            _ => InitStatus::Running,
        }
    }

    /// The shim side: records `self` in a bundle whose shim has an on-exit
    /// command (written whole: a temp file renamed into place).
    pub(crate) fn record(self, bundle: &Path) {
        if !bundle.join(ON_EXIT_FILE).exists() {
            return;
        }
        let path = bundle.join(STATUS_FILE);
        let text = match self {
            InitStatus::Running => {
                let _ = std::fs::remove_file(&path);
                return;
            }
            InitStatus::Paused => "paused\n".to_string(),
            InitStatus::Exited(code) => format!("exited {code}\n"),
        };
        let tmp = bundle.join(format!(".{STATUS_FILE}.tmp"));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            log::warn!("record {}: {e}", path.display());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("shim {shim}: {source}")]
    Spawn {
        shim: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim {shim} start for {id}: {msg}")]
    Start {
        shim: PathBuf,
        id: String,
        msg: String,
    },
    #[error("connect to shim {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: ttrpc::Error,
    },
    #[error("serve shim events on {path}: {source}")]
    Events {
        path: PathBuf,
        #[source]
        source: ttrpc::Error,
    },
    #[error("{call} {id}: {msg}")]
    Rpc {
        call: &'static str,
        id: String,
        msg: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How to start a shim.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// the containerd-shim-rrun-v2 binary
    pub shim: PathBuf,
    /// groups containers like a containerd namespace (rrun's root is per namespace)
    pub namespace: String,
    pub id: String,
    /// holds config.json and rootfs/ (already populated)
    pub bundle: PathBuf,
    /// rrun's binary (default: next to the shim, else in PATH)
    pub runtime: Option<PathBuf>,
    /// rrun's state root (default /run/containerd/rrun)
    pub root: Option<PathBuf>,
    /// run (by the shim, cwd the bundle) once the container's init exits, with
    /// RRUN_SHIM_ID and RRUN_SHIM_EXIT_STATUS set: e.g. `rbox rm ID` for --rm
    pub on_exit: Option<Vec<String>>,
}

/// A process's standard streams: paths of files (appended to) or FIFOs.
#[derive(Debug, Clone, Default)]
pub struct ProcessIo {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub terminal: bool,
}

impl ProcessIo {
    fn strings(&self) -> [String; 3] {
        let s = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        [s(&self.stdin), s(&self.stdout), s(&self.stderr)]
    }
}

/// Event topics received from the shim, in order.
#[derive(Default, Clone)]
struct Sink(Arc<Mutex<Vec<String>>>);

impl Events for Sink {
    fn forward(&self, _: &TtrpcContext, req: api::ForwardRequest) -> ttrpc::Result<api::Empty> {
        if let Some(env) = req.envelope.as_ref() {
            self.0.lock().unwrap().push(env.topic.clone());
        }
        Ok(api::Empty::new())
    }
}

/// A running shim serving one container.
pub struct ShimClient {
    /// before `task`: dropped (shut down) while the connection is open
    conn: Arc<Conn>,
    task: TaskClient,
    opts: ShimOptions,
    address: String,
    events: Sink,
    server: Option<Server>,
    events_socket: PathBuf,
}

/// The socket of a connection to the shim, shut down when the last handle
/// on it goes: its ttrpc reader thread then ends instead of polling on
/// while the client is retired (the socket stays open, see crate::retire).
struct Conn(std::os::fd::RawFd);

impl Drop for Conn {
    fn drop(&mut self) {
        // open: the client owning it is retired, not dropped
        let _ = nix::sys::socket::shutdown(self.0, nix::sys::socket::Shutdown::Both);
    }
}

/// Connects to the shim's ttrpc `address` (`unix:///path`, or
/// `unix://@name` for an abstract socket).
fn dial(address: &str) -> Result<(TaskClient, Arc<Conn>)> {
    use std::os::fd::IntoRawFd;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let err = |e: std::io::Error| ClientError::Connect {
        address: address.to_string(),
        source: ttrpc::Error::Socket(e.to_string()),
    };
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let stream = match path.strip_prefix('@') {
        Some(name) => {
            SocketAddr::from_abstract_name(name).and_then(|a| UnixStream::connect_addr(&a))
        }
        None => UnixStream::connect(path),
    }
    .map_err(err)?;
    // ttrpc's from here (and left open should Client::new fail)
    let fd = stream.into_raw_fd();
    let client = Client::new(fd).map_err(|source| ClientError::Connect {
        address: address.to_string(),
        source,
    })?;
    Ok((TaskClient::new(client), Arc::new(Conn(fd))))
}

fn ctx() -> Context {
    ttrpc::context::with_timeout(30_000_000_000)
}

impl ShimClient {
    /// Starts a shim for `opts.bundle` (nothing is created yet).
    pub fn start(opts: ShimOptions) -> Result<ShimClient> {
        // short, so it fits in sun_path whatever the bundle path is
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let events_socket = std::env::temp_dir().join(format!(
            "rrun-shim-events-{}-{}.sock",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&events_socket);
        sweep_event_sockets(&std::env::temp_dir());
        let events = Sink::default();
        let service = create_events(Arc::new(events.clone()));
        let events_err = |source| ClientError::Events {
            path: events_socket.clone(),
            source,
        };
        let mut server = Server::new()
            .bind(&format!("unix://{}", events_socket.display()))
            .map_err(events_err)?
            .register_service(service);
        server.start().map_err(events_err)?;
        // the shim logs into the bundle's `log` (containerd makes it a FIFO)
        let log = opts.bundle.join("log");
        if !log.exists() {
            std::fs::write(&log, "").map_err(|source| ClientError::Io {
                what: "write",
                path: log.clone(),
                source,
            })?;
        }
        if let Some(cmd) = &opts.on_exit {
            // what an earlier shim of the bundle recorded is no longer so
            let _ = std::fs::remove_file(opts.bundle.join(STATUS_FILE));
            let path = opts.bundle.join(ON_EXIT_FILE);
            std::fs::write(&path, serde_json::to_vec(cmd).expect("strings")).map_err(|source| {
                ClientError::Io {
                    what: "write",
                    path,
                    source,
                }
            })?;
        }
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&opts.shim);
        // SAFETY: only sigprocmask, async-signal-safe, between fork and exec.
        unsafe {
            // no signal the caller blocks (an attached rbox blocks the ones
            // it forwards) stays blocked in the shim and the containers it
            // starts
            cmd.pre_exec(|| {
                nix::sys::signal::sigprocmask(
                    nix::sys::signal::SigmaskHow::SIG_SETMASK,
                    Some(&nix::sys::signal::SigSet::empty()),
                    None,
                )
                .map_err(std::io::Error::from)
            });
        }
        let out = cmd
            // a process group of its own (the long-lived shim it spawns
            // stays in it): a terminal's ^C, ^Z and ^\ go to the foreground
            // group, which the caller may be in, never to the shim
            .process_group(0)
            .args(["-namespace", &opts.namespace, "-id", &opts.id])
            .args(["-address", &events_socket.display().to_string()])
            .arg("start")
            .current_dir(&opts.bundle)
            // a plain path: what containerd passes
            .env("TTRPC_ADDRESS", &events_socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ClientError::Spawn {
                shim: opts.shim.clone(),
                source,
            })?;
        if !out.status.success() {
            server.shutdown();
            return Err(ClientError::Start {
                shim: opts.shim.clone(),
                id: opts.id.clone(),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (task, conn) = dial(&address)?;
        Ok(ShimClient {
            conn,
            task,
            opts,
            address,
            events,
            server: Some(server),
            events_socket,
        })
    }

    /// Connects to the shim already serving `opts.id` at `address` (the
    /// bundle's `address` file): what a later rbox command does. Events
    /// are not received.
    pub fn connect(opts: ShimOptions, address: &str) -> Result<ShimClient> {
        let (task, conn) = dial(address)?;
        Ok(ShimClient {
            conn,
            task,
            events_socket: PathBuf::new(),
            opts,
            address: address.to_string(),
            events: Sink::default(),
            server: None,
        })
    }

    /// A second handle on the same connection (requests are multiplexed, so
    /// one thread can wait while another sends signals). It receives no
    /// events; dropping it leaves the connection to the other handles.
    pub fn share(&self) -> ShimClient {
        ShimClient {
            conn: self.conn.clone(),
            task: self.task.clone(),
            events_socket: PathBuf::new(),
            opts: self.opts.clone(),
            address: self.address.clone(),
            events: Sink::default(),
            server: None,
        }
    }

    /// The pid of the shim at the other end of the connection (SO_PEERCRED).
    pub fn peer_pid(&self) -> Option<i32> {
        // SAFETY: the descriptor stays open while `conn` lives (it is shut
        // down, never closed, when the last handle goes).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.conn.0) };
        nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.pid())
    }

    /// The shim's ttrpc address (also in the bundle's `address` file).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Event topics received so far, e.g. `/tasks/exit`.
    pub fn events(&self) -> Vec<String> {
        self.events.0.lock().unwrap().clone()
    }

    fn rpc_err(&self, call: &'static str) -> impl Fn(ttrpc::Error) -> ClientError + '_ {
        move |e| ClientError::Rpc {
            call,
            id: self.opts.id.clone(),
            msg: match e {
                ttrpc::Error::RpcStatus(s) => s.message,
                e => e.to_string(),
            },
        }
    }

    /// Creates the container; returns its init's pid.
    pub fn create(&self, io: &ProcessIo) -> Result<u32> {
        let mut req = api::CreateTaskRequest::new();
        req.id = self.opts.id.clone();
        req.bundle = self.opts.bundle.display().to_string();
        [req.stdin, req.stdout, req.stderr] = io.strings();
        req.terminal = io.terminal;
        if self.opts.runtime.is_some() || self.opts.root.is_some() {
            let mut o = Options::new();
            o.binary_name = self
                .opts
                .runtime
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            o.root = self
                .opts
                .root
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let mut any = Any::new();
            any.type_url = "containerd.runc.v1.Options".into();
            any.value = o.write_to_bytes().expect("plain message");
            req.options = Some(any).into();
        }
        Ok(self
            .task
            .create(ctx(), &req)
            .map_err(self.rpc_err("create"))?
            .pid)
    }

    /// Starts the init (`exec_id` empty) or an exec process; returns its pid.
    pub fn start_process(&self, exec_id: &str) -> Result<u32> {
        let mut req = api::StartRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        Ok(self
            .task
            .start(ctx(), &req)
            .map_err(self.rpc_err("start"))?
            .pid)
    }

    /// Adds an exec process (started by [`ShimClient::start_process`]).
    pub fn exec(
        &self,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        io: &ProcessIo,
    ) -> Result<()> {
        let mut req = api::ExecProcessRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        [req.stdin, req.stdout, req.stderr] = io.strings();
        req.terminal = io.terminal;
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = serde_json::to_vec(process).expect("serializable");
        req.spec = Some(any).into();
        self.task.exec(ctx(), &req).map_err(self.rpc_err("exec"))?;
        Ok(())
    }

    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let mut req = api::KillRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        req.signal = signal;
        req.all = all;
        self.task.kill(ctx(), &req).map_err(self.rpc_err("kill"))?;
        Ok(())
    }

    /// Freezes the container's processes (the cgroup freezer).
    pub fn pause(&self) -> Result<()> {
        let mut req = api::PauseRequest::new();
        req.id = self.opts.id.clone();
        self.task
            .pause(ctx(), &req)
            .map_err(self.rpc_err("pause"))?;
        Ok(())
    }

    /// Thaws the container's processes.
    pub fn resume(&self) -> Result<()> {
        let mut req = api::ResumeRequest::new();
        req.id = self.opts.id.clone();
        self.task
            .resume(ctx(), &req)
            .map_err(self.rpc_err("resume"))?;
        Ok(())
    }

    /// The pids of the container's processes.
    pub fn pids(&self) -> Result<Vec<u32>> {
        let mut req = api::PidsRequest::new();
        req.id = self.opts.id.clone();
        Ok(self
            .task
            .pids(ctx(), &req)
            .map_err(self.rpc_err("pids"))?
            .processes
            .iter()
            .map(|p| p.pid)
            .collect())
    }

    /// Changes the container's resource limits (OCI `linux.resources`).
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let mut req = api::UpdateTaskRequest::new();
        req.id = self.opts.id.clone();
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
        any.value = serde_json::to_vec(resources).expect("serializable");
        req.resources = Some(any).into();
        self.task
            .update(ctx(), &req)
            .map_err(self.rpc_err("update"))?;
        Ok(())
    }

    /// A terminal's new size.
    pub fn resize_pty(&self, exec_id: &str, width: u32, height: u32) -> Result<()> {
        let mut req = api::ResizePtyRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        req.width = width;
        req.height = height;
        self.task
            .resize_pty(ctx(), &req)
            .map_err(self.rpc_err("resize pty"))?;
        Ok(())
    }

    /// Closes the process's stdin (it reads EOF).
    pub fn close_stdin(&self, exec_id: &str) -> Result<()> {
        let mut req = api::CloseIORequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        req.stdin = true;
        self.task
            .close_io(ctx(), &req)
            .map_err(self.rpc_err("close io"))?;
        Ok(())
    }

    /// The process's pid and status (`running`, `stopped`, …).
    pub fn state(&self, exec_id: &str) -> Result<(u32, String)> {
        let mut req = api::StateRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        let st = self
            .task
            .state(ctx(), &req)
            .map_err(self.rpc_err("state"))?;
        let status = format!("{:?}", st.status.enum_value_or_default()).to_ascii_lowercase();
        Ok((st.pid, status))
    }

    /// Waits for the process to exit; returns its exit status.
    pub fn wait(&self, exec_id: &str) -> Result<u32> {
        let mut req = api::WaitRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        Ok(self
            .task
            .wait(Context::default(), &req)
            .map_err(self.rpc_err("wait"))?
            .exit_status)
    }

    /// Deletes the process (the container, for `exec_id` empty); returns its exit status.
    pub fn delete(&self, exec_id: &str) -> Result<u32> {
        let mut req = api::DeleteRequest::new();
        req.id = self.opts.id.clone();
        req.exec_id = exec_id.into();
        Ok(self
            .task
            .delete(ctx(), &req)
            .map_err(self.rpc_err("delete"))?
            .exit_status)
    }

    /// Asks the shim to exit (it does once it serves no container).
    pub fn shutdown(mut self) -> Result<()> {
        let mut req = api::ShutdownRequest::new();
        req.id = self.opts.id.clone();
        // the shim may close the connection before it answers
        let _ = self.task.shutdown(ctx(), &req);
        self.stop_events();
        Ok(())
    }

    fn stop_events(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            let _ = std::fs::remove_file(&self.events_socket);
        }
    }
}

/// Removes the events sockets of clients whose process is gone: a client
/// killed (kill -9 of rbox) cannot remove its own, and they piled up in
/// the temp dir. A socket of a live process (its pid in the name) is kept.
fn sweep_event_sockets(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rrun-shim-events-"))
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for ShimClient {
    fn drop(&mut self) {
        self.stop_events();
        // the connection stays open a while: its reader thread may still
        // read the fd (see crate::retire)
        crate::retire::retire(self.task.clone());
    }
}

/// The shim side: runs the bundle's on-exit command, if any, once the
/// container's init has exited (called by the task service).
pub(crate) fn on_exit_command(bundle: &Path, id: &str, status: i32) -> Option<Command> {
    let argv: Vec<String> =
        serde_json::from_slice(&std::fs::read(bundle.join(ON_EXIT_FILE)).ok()?).ok()?;
    let (prog, args) = argv.split_first()?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(bundle)
        .env("RRUN_SHIM_ID", id)
        .env("RRUN_SHIM_EXIT_STATUS", status.to_string())
        .stdin(Stdio::null());
    let log = std::fs::File::create(bundle.join("on-exit.log")).ok();
    match log.and_then(|l| l.try_clone().ok().map(|c| (l, c))) {
        Some((out, err)) => cmd.stdout(out).stderr(err),
        None => cmd.stdout(Stdio::null()).stderr(Stdio::null()),
    };
    Some(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rbox_bundle_records_its_init_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        // no on-exit command: no record
        InitStatus::Paused.record(b);
        assert!(!b.join(STATUS_FILE).exists());
        assert_eq!(InitStatus::of_bundle(b), InitStatus::Running);
        std::fs::write(b.join(ON_EXIT_FILE), "[\"true\"]").unwrap();
        InitStatus::Paused.record(b);
        assert_eq!(InitStatus::of_bundle(b), InitStatus::Paused);
        InitStatus::Running.record(b);
        assert!(!b.join(STATUS_FILE).exists());
        InitStatus::Exited(137).record(b);
        assert_eq!(InitStatus::of_bundle(b), InitStatus::Exited(137));
        assert_eq!(
            std::fs::read_to_string(b.join(STATUS_FILE)).unwrap(),
            "exited 137\n"
        );
    }
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    #[test]
    fn the_last_handle_shuts_the_connection_down_and_the_socket_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (task, conn) = dial(&format!("unix://{}", path.display())).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let fd = conn.0;
        let second = conn.clone();
        drop(conn);
        // another handle is left: nothing arrives, the connection is up
        peer.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            peer.read(&mut b).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        drop(second);
        peer.set_nonblocking(false).unwrap();
        assert_eq!(
            peer.read(&mut b).unwrap(),
            0,
            "no end of file after the last handle"
        );
        // still this connection's descriptor: the client is not dropped
        let st = nix::sys::stat::fstat(fd).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFSOCK);
        drop(task);
    }

    #[test]
    fn abstract_addresses_are_dialled() {
        let name = format!("rrun-shim-client-test-{}", std::process::id());
        let addr = <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(&name).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let (task, _conn) = dial(&format!("unix://@{name}")).unwrap();
        assert!(listener.accept().is_ok());
        drop(task);
    }
}
