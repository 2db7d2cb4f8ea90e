//! The server: a unix socket (mode 0660, root's group or `--group`'s; a
//! stale socket of a dead server replaced, a live one's refused), one task
//! per connection (HTTP/1.1 with keep-alive, hyper), each request a task of
//! its own. It ends on SIGTERM or SIGINT, or after `--timeout` with no
//! connection open; the socket goes first, then the requests under way get
//! a moment to finish.

use std::convert::Infallible;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use super::router;
use super::state::Api;

/// Docker's socket, rbox's place.
pub const DEFAULT_SOCKET: &str = "/run/rbox/docker.sock";

/// How long requests under way may take to finish once the server ends.
const GRACE: Duration = Duration::from_secs(10);

/// How often the idle timeout is checked.
const IDLE_CHECK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("-H {0}: tcp:// is not supported yet (it will need TLS client certificates): use unix://PATH")]
    Tcp(String),
    #[error("-H {0}: fd:// (socket activation) is not supported yet: use unix://PATH")]
    Fd(String),
    #[error("-H {0:?}: not unix://PATH")]
    BadHost(String),
    #[error("{0}: another server is listening on it")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket")]
    NotSocket(PathBuf),
    #[error("--group {0}: no such group")]
    NoGroup(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("catch SIGTERM and SIGINT: {0}")]
    Signals(std::io::Error),
}

type Result<T> = std::result::Result<T, ServeError>;

/// Where the server listens (`-H`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
}

impl Listen {
    /// `unix://PATH` (an absolute path); tcp:// and fd:// are refused,
    /// naming what is missing.
    pub fn parse(s: &str) -> Result<Listen> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.starts_with('/') {
                return Ok(Listen::Unix(PathBuf::from(p)));
            }
        } else if s.starts_with("tcp://") {
            return Err(ServeError::Tcp(s.into()));
        } else if s.starts_with("fd://") {
            return Err(ServeError::Fd(s.into()));
        }
        Err(ServeError::BadHost(s.into()))
    }
}

/// What `rbox serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Listen,
    /// The socket's group (a name or a number); root's when not given
    pub group: Option<String>,
    /// End after this long with no connection open
    pub idle_timeout: Option<Duration>,
    /// The store (`--root`)
    pub root: PathBuf,
    /// rbox.toml (`--config`)
    pub config: Option<PathBuf>,
    /// Each request and its status on stderr
    pub debug: bool,
}

/// Serves until a signal or the idle timeout; the socket is removed.
pub fn serve(o: &ServeOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let out = rt.block_on(run(o));
    // a request that outlived the grace (a followed log) is cut off
    rt.shutdown_timeout(Duration::from_millis(100));
    out
}

async fn run(o: &ServeOptions) -> Result<()> {
    let Listen::Unix(path) = &o.listen;
    let socket = Socket::bind(path, o.group.as_deref())?;
    let api = Arc::new(Api::new(&o.root, o.config.clone()));
    let conns = Arc::new(Connections::new());
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    loop {
        tokio::select! {
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (api, conns) = (api.clone(), conns.clone());
                    let debug = o.debug;
                    conns.opened();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let api = api.clone();
                            async move { Ok::<_, Infallible>(router::handle(api, req, debug).await) }
                        });
                        // a client that goes away mid-request is no error of ours
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                        conns.closed();
                    });
                }
                Err(e) => {
                    // out of descriptors, say: try again in a moment
                    eprintln!("rbox serve: accept on {}: {e}", path.display());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tokio::time::sleep(IDLE_CHECK), if o.idle_timeout.is_some() => {
                if o.idle_timeout.is_some_and(|t| conns.idle_for() >= t) {
                    break;
                }
            }
        }
    }
    // no new connection from here on
    drop(socket);
    let begin = Instant::now();
    while conns.open() > 0 && begin.elapsed() < GRACE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The open connections, and since when none has been.
struct Connections {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

impl Connections {
    fn new() -> Connections {
        Connections {
            open: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn opened(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
    }

    fn closed(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// How long no connection has been open (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.open() > 0 {
            return Duration::ZERO;
        }
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// The listening socket; removed on drop if it is still the one bound.
struct Socket {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl Socket {
    fn bind(path: &Path, group: Option<&str>) -> Result<Socket> {
        let io = |op, source| ServeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| io("create the directory of", e))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ServeError::InUse(path.to_path_buf()));
                }
                // a server that died left it
                std::fs::remove_file(path).map_err(|e| io("remove the stale socket", e))?;
            }
            Ok(_) => return Err(ServeError::NotSocket(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("stat", e)),
        }
        let gid = group.map(group_id).transpose()?;
        let listener = UnixListener::bind(path).map_err(|e| io("listen on", e))?;
        let socket = Socket {
            listener,
            path: path.to_path_buf(),
            ino: std::fs::metadata(path).map_err(|e| io("stat", e))?.ino(),
        };
        if let Some(gid) = gid {
            nix::unistd::chown(path, None, Some(gid))
                .map_err(|e| io("chown", std::io::Error::from(e)))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| io("chmod", e))?;
        Ok(socket)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `--group`: a group name, or a number.
fn group_id(g: &str) -> Result<nix::unistd::Gid> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(grp)) => Ok(grp.gid),
        _ => Err(ServeError::NoGroup(g.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_sockets_are_served_for_now() {
        assert_eq!(
            Listen::parse("unix:///run/x.sock").unwrap(),
            Listen::Unix("/run/x.sock".into())
        );
        let tcp = Listen::parse("tcp://0.0.0.0:2375").unwrap_err().to_string();
        assert!(tcp.contains("not supported yet"), "{tcp}");
        assert!(matches!(Listen::parse("fd://"), Err(ServeError::Fd(_))));
        assert!(matches!(
            Listen::parse("unix://relative.sock"),
            Err(ServeError::BadHost(_))
        ));
        assert!(matches!(
            Listen::parse("/run/x.sock"),
            Err(ServeError::BadHost(_))
        ));
    }
}
