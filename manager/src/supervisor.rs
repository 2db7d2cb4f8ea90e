//! Every container runs under its own containerd-shim-rrun-v2: the shim
//! starts it through rrun, is its subreaper, writes its output to the
//! container's json-file log and, when its init exits, runs
//! `rbox __exited ID` (network teardown, exit status, `--rm`, restart
//! policy). rbox commands come and go; they find the shim again through the
//! `address` file it writes in the bundle.

use std::path::{Path, PathBuf};

use shim::client::{ProcessIo, ShimClient, ShimOptions};

use crate::bundle;
use crate::container::error::{ContainerError, Result};
use crate::container::log_config;
use crate::container::record::Container;
use crate::locate::runtime_bin;
use crate::store::Store;

/// containerd's notion of a namespace: the shim keeps rrun's state in
/// ROOT/runtime/<namespace>.
pub const NAMESPACE: &str = "rbox";

/// The shim's file name.
pub const SHIM_NAME: &str = "containerd-shim-rrun-v2";

/// The shim binary: `$RBOX_SHIM`, else next to rbox, else in PATH.
pub fn shim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RBOX_SHIM") {
        return PathBuf::from(p);
    }
    let name = SHIM_NAME;
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// The container's log: Docker's `<id>-json.log` in the container's dir.
pub fn log_path(store: &Store, id: &str) -> PathBuf {
    bundle::container_dir(store, id).join(format!("{id}-json.log"))
}

/// The FIFO an interactive (`-i`) container's stdin is written into.
pub fn stdin_fifo(store: &Store, id: &str) -> PathBuf {
    bundle::container_dir(store, id).join("init-stdin")
}

/// `attached`: an attached `run --rm` (this process) finishes the
/// container itself; its exit hook only checks that it still lives.
fn options(store: &Store, c: &Container, attached: bool) -> ShimOptions {
    let rbox = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rbox"));
    let mut on_exit = vec![
        rbox.display().to_string(),
        "--root".into(),
        store.root().display().to_string(),
        "__exited".into(),
        c.id.clone(),
    ];
    if attached && c.spec.rm {
        on_exit.extend(["--unless-attached".into(), std::process::id().to_string()]);
    }
    ShimOptions {
        shim: shim_bin(),
        namespace: NAMESPACE.into(),
        id: c.id.clone(),
        bundle: c.bundle.clone(),
        runtime: Some(runtime_bin()),
        root: Some(store.root().join("runtime")),
        on_exit: Some(on_exit),
    }
}

fn shim_err(e: shim::client::ClientError) -> ContainerError {
    ContainerError::Runtime {
        bin: shim_bin().display().to_string(),
        what: e.to_string(),
    }
}

pub fn mkfifo(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| {
        ContainerError::Io {
            op: "mkfifo",
            path: path.to_path_buf(),
            source: e.into(),
        }
    })
}

/// Creates the container under a new shim (its init not started yet). On
/// error the shim is gone again.
pub fn create(store: &Store, c: &Container, attached: bool) -> Result<ShimClient> {
    let log = format!(
        "{}{}{}",
        shim::jsonlog::SCHEME,
        log_path(store, &c.id).display(),
        log_config::query(&c.spec.log_opts)
    );
    let stdin = if c.spec.interactive {
        let fifo = stdin_fifo(store, &c.id);
        mkfifo(&fifo)?;
        Some(fifo)
    } else {
        None
    };
    let io = ProcessIo {
        stdin,
        stdout: Some(PathBuf::from(&log)),
        stderr: (!c.spec.tty).then(|| PathBuf::from(&log)),
        terminal: c.spec.tty,
    };
    // a missing shim: say where it was looked for
    crate::locate::find(SHIM_NAME, "RBOX_SHIM")?;
    let client = ShimClient::start(options(store, c, attached)).map_err(shim_err)?;
    if let Err(e) = client.create(&io) {
        // not Delete and Shutdown: a Create that timed out (a runtime that
        // hangs) still holds the shim's table, and they would wait behind it
        kill_shim(client);
        return Err(shim_err(e));
    }
    Ok(client)
}

/// Kills a shim whose Create failed, and every process under it (a runtime
/// still at work, a half-made container's processes); its socket goes too.
/// The runtime's state and the cgroups are the caller's to remove.
fn kill_shim(client: ShimClient) {
    let socket = client.address().trim_start_matches("unix://").to_string();
    if let Some(pid) = client.peer_pid() {
        // children first, so none is reparented away from the tree seen
        let mut tree = descendants(pid);
        tree.reverse();
        tree.push(pid);
        for p in tree {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    drop(client);
    if !socket.starts_with('@') {
        let _ = std::fs::remove_file(&socket);
    }
}

/// Kills, with everything under them, the processes still working on
/// container `id` after it was let go, and waits until they are gone: its
/// shim, and the runtime processes naming it. The shim of a `run` killed
/// while its Create was under way lives on, and a runtime whose shim was
/// killed goes on alone: either would make the container (its state, its
/// cgroups) after the removal deleted it. Any shim or runtime process with
/// that id in its arguments, or working in the container's directory (the
/// shim and the runtimes it runs do, and the directory stays while its
/// command line is empty in the middle of an exec), works on it: ids are
/// 256 random bits.
///
/// A worker may fork between the look at /proc and the kill (a shim
/// starting the runtime's create): the child, no longer below anything
/// seen, would live on. So the look is repeated until it finds nothing.
pub fn kill_workers_of(store: &Store, id: &str) {
    let runtime = runtime_bin();
    let runtime = runtime
        .file_name()
        .map(|n| n.as_encoded_bytes().to_vec())
        .unwrap_or_default();
    let dir = bundle::container_dir(store, id);
    // this process and those above it are spared: the exit hook (`rbox
    // __exited`) runs under the shim it would otherwise kill with itself
    let spared = ancestry(std::process::id() as i32);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let workers: Vec<i32> = workers_of(id, &dir, &runtime)
            .into_iter()
            .filter(|w| !spared.contains(w))
            .collect();
        if workers.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        let mut all = Vec::new();
        for worker in workers {
            let mut tree = descendants(worker);
            tree.retain(|p| !spared.contains(p));
            tree.reverse();
            tree.push(worker);
            for p in &tree {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            all.extend(tree);
        }
        while std::time::Instant::now() < deadline
            && all
                .iter()
                .any(|p| crate::liveness::Process::of(*p).is_some())
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The shims and runtime processes working on container `id` (see
/// [`kill_workers_of`]).
fn workers_of(id: &str, dir: &Path, runtime: &[u8]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            // the program by its file and by its first argument (empty
            // for a moment in an exec; a runtime run from a sealed copy)
            let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
            let names = [
                exe.file_name().map(|n| n.as_encoded_bytes()),
                args.first().and_then(|a| a.rsplit(|b| *b == b'/').next()),
            ];
            let is_shim = names.contains(&Some(SHIM_NAME.as_bytes()));
            if !is_shim && !names.contains(&Some(runtime)) {
                return None;
            }
            let names_it = if is_shim {
                args.windows(2)
                    .any(|w| w[0] == b"-id" && w[1] == id.as_bytes())
            } else {
                args.contains(&id.as_bytes())
            };
            let works_in_it =
                || std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
            (names_it || works_in_it()).then_some(pid)
        })
        .collect()
}

/// `pid` and the processes above it, up to init.
fn ancestry(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut p = pid;
    while p > 1 {
        let Some(parent) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok())
        else {
            break;
        };
        out.push(parent);
        p = parent;
    }
    out
}

/// The processes below `pid` (children before their own children).
fn descendants(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for &(p, pp) in &parents {
            if pp == parent && !out.contains(&p) {
                out.push(p);
                next.push(p);
            }
        }
    }
    out
}

/// Starts the created container's init; returns its pid.
pub fn start(client: &ShimClient) -> Result<u32> {
    client.start_process("").map_err(shim_err)
}

/// The task deleted and the shim gone (a start that failed).
pub fn abandon(client: ShimClient) {
    let _ = client.delete("");
    let _ = client.shutdown();
}

/// A shim process: its pid and its start time, which tells it from a later
/// process that got the same pid.
pub type ShimPid = crate::liveness::Process;

impl ShimPid {
    /// The shim at the other end of `client`'s connection.
    pub fn of_client(client: &ShimClient) -> Option<ShimPid> {
        ShimPid::of(client.peer_pid()?)
    }
}

/// Whether the shim of a container recorded as running is gone (killed):
/// its recorded process has died, or, for a record without it, its socket
/// no longer answers.
pub fn shim_gone(store: &Store, c: &Container) -> bool {
    match &c.state.shim {
        Some(shim) => !shim.alive(),
        None => connect(store, c).is_none(),
    }
}

/// The shim serving a container, if it is still there.
pub fn connect(store: &Store, c: &Container) -> Option<ShimClient> {
    let address = std::fs::read_to_string(c.bundle.join("address")).ok()?;
    let address = address.trim();
    let socket = address.trim_start_matches("unix://");
    if !Path::new(socket).exists() {
        return None;
    }
    ShimClient::connect(options(store, c, false), address).ok()
}

/// Deletes the container's task and lets its shim go (idempotent). The
/// socket of a shim that was killed is removed. False when the shim did not
/// delete the task (it is gone, killed perhaps after the init's exit, or
/// its Delete failed): the runtime's state is then the caller's to delete.
#[must_use]
pub fn release(store: &Store, c: &Container) -> bool {
    if let Some(client) = connect(store, c) {
        let deleted = client.delete("").is_ok();
        let _ = client.shutdown();
        return deleted;
    }
    if let Ok(address) = std::fs::read_to_string(c.bundle.join("address")) {
        let socket = address.trim().trim_start_matches("unix://").to_string();
        let stale = matches!(
            std::os::unix::net::UnixStream::connect(&socket),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if stale {
            let _ = std::fs::remove_file(&socket);
        }
    }
    false
}

/// Runs a process in a running container.
pub fn exec(
    store: &Store,
    c: &Container,
    exec_id: &str,
    process: &oci_spec::runtime::Process,
    io: &ProcessIo,
) -> Result<ShimClient> {
    let client = connect(store, c).ok_or_else(|| ContainerError::NotRunning(c.name.clone()))?;
    client.exec(exec_id, process, io).map_err(shim_err)?;
    Ok(client)
}

pub fn map_err(e: shim::client::ClientError) -> ContainerError {
    shim_err(e)
}
