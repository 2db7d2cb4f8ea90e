//! Every container runs under its own containerd-shim-rrun-v2: the shim
//! starts it through rrun, is its subreaper, writes its output to the
//! container's json-file log and, when its init exits, runs
//! `rbox __exited ID` (network teardown, exit status, `--rm`, restart
//! policy). rbox commands come and go; they find the shim again through the
//! `address` file it writes in the bundle.

use std::path::{Path, PathBuf};

use shim::client::{ProcessIo, ShimClient, ShimOptions};

use crate::bundle;
use crate::container::{self, Container, ContainerError, Result};
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
        runtime: Some(container::runtime_bin()),
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
        log_options(&c.spec.log_opts)?
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
        abandon(client);
        return Err(shim_err(e));
    }
    Ok(client)
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

/// `max-size=10m&max-file=3` from `--log-opt` values, as a URI query.
pub fn log_options(opts: &[String]) -> Result<String> {
    let mut q = Vec::new();
    for o in opts {
        match o.split_once('=') {
            Some((k @ ("max-size" | "max-file"), v)) if !v.is_empty() => q.push(format!("{k}={v}")),
            _ => {
                return Err(ContainerError::Invalid(format!(
                    "--log-opt {o:?}: only max-size=SIZE and max-file=N are known"
                )))
            }
        }
    }
    Ok(if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    })
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
/// socket of a shim that was killed is removed.
pub fn release(store: &Store, c: &Container) {
    if let Some(client) = connect(store, c) {
        let _ = client.delete("");
        let _ = client.shutdown();
    } else if let Ok(address) = std::fs::read_to_string(c.bundle.join("address")) {
        let socket = address.trim().trim_start_matches("unix://").to_string();
        let stale = matches!(
            std::os::unix::net::UnixStream::connect(&socket),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if stale {
            let _ = std::fs::remove_file(&socket);
        }
    }
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
