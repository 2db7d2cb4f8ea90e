//! A process's standard streams: containerd's FIFOs on one side, pipes or
//! a pty master on the other, copied by one thread per stream.
//!
//! The process never holds a FIFO itself, so the shim can close its stdin
//! (`CloseIO`) and containerd can come and go as a reader.
//!
//! containerd's log URIs: `file:///path` appends stdout and stderr to the
//! file; `binary:///path?key=value` starts a logger that reads the
//! process's output itself (fd 3 stdout, fd 4 stderr) and closes fd 5 once
//! it is ready, as containerd's shims do.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::error::{Result, ShimError};
use crate::jsonlog::{self, JsonStream};
use crate::rrun::ProcStdio;

/// The stream paths containerd asks for (empty: none).
#[derive(Debug, Clone, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Who the process belongs to, for a `binary://` logger's environment.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub id: &'a str,
}

/// How long a `binary://` logger may take to close its ready pipe.
const LOGGER_READY: std::time::Duration = std::time::Duration::from_secs(10);

/// The shim's side of a running process's streams.
#[derive(Default)]
pub struct ProcessIo {
    /// Where stdin is copied to (a pipe or the pty master); `CloseIO` drops it.
    stdin: Arc<Mutex<Option<File>>>,
    /// The pty master, for resizing.
    console: Option<File>,
    copies: Vec<JoinHandle<()>>,
}

/// The streams being prepared for `rrun create` / `rrun exec`.
pub struct PendingIo {
    pub stdio: ProcStdio,
    pub console: Option<ConsoleSocket>,
    io: ProcessIo,
    stdout_fifo: Option<Output>,
    stderr_fifo: Option<Output>,
    stdout_pipe: Option<File>,
    stderr_pipe: Option<File>,
    stdin_fifo: String,
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::Io {
        what: "pipe",
        path: PathBuf::new(),
        source: e.into(),
    })?;
    Ok((File::from(r), File::from(w)))
}

/// Where a stream's output goes: a FIFO or file, or a json-file log.
enum Output {
    File(File),
    Json(JsonStream),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Json(j) => j.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Json(j) => j.flush(),
        }
    }
}

/// Opens a stream's destination: a `jsonfile://` log, or a FIFO (for
/// writing without waiting for a reader: read-write, so it never blocks
/// nor fails with EPIPE while containerd is away), or a file appended to.
fn open_output(path: &str, stream: &'static str) -> Result<Option<Output>> {
    if path.is_empty() {
        return Ok(None);
    }
    if path.starts_with(jsonlog::SCHEME) {
        return JsonStream::open(path, stream).map(|j| Some(Output::Json(j)));
    }
    let path = path.strip_prefix("file://").unwrap_or(path);
    let fifo = is_fifo(path);
    if !fifo {
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(ShimError::io("create log directory", dir))?;
        }
    }
    // a FIFO read-write; a log file appended to
    OpenOptions::new()
        .read(fifo)
        .write(fifo)
        .append(!fifo)
        .create(!fifo)
        .open(path)
        .map(|f| Some(Output::File(f)))
        .map_err(ShimError::io("open output", path))
}

fn is_fifo(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn spawn_copy(name: &str, run: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(run)
        .expect("spawn an io thread")
}

/// Copies until EOF or an error (EIO from a pty master whose slave closed).
fn copy(mut from: File, mut to: impl Write) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Copies the stdin FIFO into `to` (shared with `CloseIO`). The FIFO is
/// opened in the thread: opening it for reading waits for a writer.
fn copy_stdin(path: String, to: Arc<Mutex<Option<File>>>) -> JoinHandle<()> {
    spawn_copy("stdin", move || {
        let Ok(mut fifo) = OpenOptions::new().read(true).open(&path) else {
            to.lock().unwrap().take();
            return;
        };
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = match fifo.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut slot = to.lock().unwrap();
            let Some(w) = slot.as_mut() else { return };
            if w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // EOF from containerd: the process sees EOF too (a pty keeps its master)
        let mut slot = to.lock().unwrap();
        if let Some(w) = slot.as_ref() {
            if nix::unistd::isatty(w.as_raw_fd()).unwrap_or(false) {
                // ^D at the start of a line, as a terminal user would type it
                let _ = slot.as_mut().map(|w| w.write_all(&[4]));
                return;
            }
        }
        slot.take();
    })
}

impl PendingIo {
    /// Opens the FIFOs and makes the pipes (or the console socket) that the
    /// process will be given. Nothing is copied before [`PendingIo::start`].
    pub fn new(paths: &StdioPaths, owner: Owner) -> Result<PendingIo> {
        let logger = paths.stdout.strip_prefix("binary://");
        let mut p = PendingIo {
            stdio: ProcStdio::default(),
            console: None,
            io: ProcessIo::default(),
            stdout_fifo: match logger {
                Some(_) => None,
                None => open_output(&paths.stdout, "stdout")?,
            },
            stderr_fifo: if paths.terminal || logger.is_some() {
                None
            } else {
                open_output(&paths.stderr, "stderr")?
            },
            stdout_pipe: None,
            stderr_pipe: None,
            stdin_fifo: paths.stdin.clone(),
        };
        if let Some(uri) = logger {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            start_logger(uri, owner, out_r, err_r)?;
            if paths.terminal {
                // the pty master is copied to the logger's stdout
                p.stdout_fifo = Some(Output::File(out_w));
            } else {
                // the process writes to the logger directly: no copy here
                p.stdio.stdout = Some(out_w);
                p.stdio.stderr = Some(err_w);
            }
        }
        if paths.terminal {
            p.console = Some(ConsoleSocket::new()?);
            return Ok(p);
        }
        if !paths.stdin.is_empty() {
            let (r, w) = pipe()?;
            p.stdio.stdin = Some(r);
            *p.io.stdin.lock().unwrap() = Some(w);
        }
        if p.stdout_fifo.is_some() {
            let (r, w) = pipe()?;
            p.stdio.stdout = Some(w);
            p.stdout_pipe = Some(r);
        }
        if p.stderr_fifo.is_some() {
            let (r, w) = pipe()?;
            p.stdio.stderr = Some(w);
            p.stderr_pipe = Some(r);
        }
        Ok(p)
    }

    /// The process exists: receive its pty master (if any) and copy.
    pub fn start(mut self) -> Result<ProcessIo> {
        if let Some(console) = self.console.take() {
            let master = console.receive()?;
            let dup = |f: &File| {
                f.try_clone()
                    .map_err(ShimError::io("dup pty master", "console"))
            };
            if let Some(out) = self.stdout_fifo.take() {
                let from = dup(&master)?;
                self.io
                    .copies
                    .push(spawn_copy("stdout", move || copy(from, out)));
            }
            if !self.stdin_fifo.is_empty() {
                *self.io.stdin.lock().unwrap() = Some(dup(&master)?);
            }
            self.io.console = Some(master);
        }
        if let (Some(from), Some(to)) = (self.stdout_pipe.take(), self.stdout_fifo.take()) {
            self.io
                .copies
                .push(spawn_copy("stdout", move || copy(from, to)));
        }
        if let (Some(from), Some(to)) = (self.stderr_pipe.take(), self.stderr_fifo.take()) {
            self.io
                .copies
                .push(spawn_copy("stderr", move || copy(from, to)));
        }
        if !self.stdin_fifo.is_empty() {
            let t = copy_stdin(std::mem::take(&mut self.stdin_fifo), self.io.stdin.clone());
            drop(t); // never joined: it may wait for a writer forever
        }
        Ok(std::mem::take(&mut self.io))
    }
}

/// The logger's path and arguments from `binary:///path?k=v&k2=v2`
/// (what follows `binary://`): each key, then its value if it has one.
pub fn logger_command(uri: &str) -> (String, Vec<String>) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) => {
                args.push(unescape(k));
                args.push(unescape(v));
            }
            None => args.push(unescape(pair)),
        }
    }
    (unescape(path), args)
}

/// URI percent-decoding (and `+` as a space in the query, as Go reads it).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts a `binary://` logger with the process's stdout and stderr read
/// ends as its fds 3 and 4 and a pipe as fd 5, and waits until it closes
/// that pipe (or exits): its output is not lost from the first byte on.
fn start_logger(uri: &str, owner: Owner, stdout: File, stderr: File) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let (path, args) = logger_command(uri);
    let (ready_r, ready_w) = pipe()?;
    let fds = [stdout.as_raw_fd(), stderr.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = std::process::Command::new(&path);
    cmd.args(&args)
        .env("CONTAINER_ID", owner.id)
        .env("CONTAINER_NAMESPACE", owner.namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and
    // exec, on fds that stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // first out of the way of 3..=5, then into place (without CLOEXEC)
            let mut high = [0; 3];
            for (h, &fd) in high.iter_mut().zip(&fds) {
                *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if *h < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (target, &h) in (3..).zip(&high) {
                if libc::dup2(h, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let spawned = crate::reaper::Reaper::get().spawn(&mut cmd);
    // the logger holds them now; closing ours lets the ready pipe reach EOF
    drop(cmd);
    drop((stdout, stderr, ready_w));
    let (child, exited) = spawned.map_err(ShimError::io("start logger", &path))?;
    drop(child);
    let mut fd = [libc::pollfd {
        fd: ready_r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let deadline = std::time::Instant::now() + LOGGER_READY;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ShimError::Invalid {
                what: "logger",
                msg: format!("{path} did not close its ready pipe (fd 5) within {LOGGER_READY:?}"),
            });
        }
        // SAFETY: one valid pollfd for the duration of the call
        let n = unsafe { libc::poll(fd.as_mut_ptr(), 1, left.as_millis() as i32) };
        if n > 0 {
            break;
        }
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(ShimError::io("wait for logger", &path)(
                io::Error::last_os_error(),
            ));
        }
    }
    if let Ok(exit) = exited.try_recv() {
        if exit.code != 0 {
            return Err(ShimError::Invalid {
                what: "logger",
                msg: format!(
                    "{path} exited with status {} before it was ready",
                    exit.code
                ),
            });
        }
    }
    Ok(())
}

impl ProcessIo {
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap().take();
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(console) = &self.console else {
            return Ok(());
        };
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX.into()) as u16,
            ws_col: width.min(u16::MAX.into()) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is
        // valid for the call; the fd is the open pty master.
        let rc = unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc < 0 {
            return Err(ShimError::io("resize pty", "console")(
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Waits up to `limit` for stdout and stderr to be copied out (done
    /// once the process and whatever inherited its streams have exited).
    pub fn wait(&mut self, limit: std::time::Duration) {
        let copies = std::mem::take(&mut self.copies);
        if copies.is_empty() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("io-wait".into())
            .spawn(move || {
                for t in copies {
                    let _ = t.join();
                }
                let _ = tx.send(());
            });
        let _ = rx.recv_timeout(limit);
    }
}

/// A listening socket that receives the pty master from rrun.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

static CONSOLE_SEQ: AtomicU64 = AtomicU64::new(0);

impl ConsoleSocket {
    fn new() -> Result<ConsoleSocket> {
        // short, so it fits in sun_path whatever the bundle path is
        let path = std::env::temp_dir().join(format!(
            "rrun-shim-{}-{}.sock",
            std::process::id(),
            CONSOLE_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(ShimError::io("bind console socket", &path))?;
        Ok(ConsoleSocket { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master rrun sent: it connected and sent it before `create` or
    /// `exec` returned, so this does not wait.
    fn receive(&self) -> Result<File> {
        let err = |e: io::Error| ShimError::io("receive the pty master on", &self.path)(e);
        self.listener.set_nonblocking(true).map_err(err)?;
        let (conn, _) = self.listener.accept().map_err(err)?;
        conn.set_nonblocking(false).map_err(err)?;
        let mut buf = [0u8; 4096];
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| err(e.into()))?;
        for c in msg.cmsgs().map_err(|e| err(e.into()))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    for &extra in &fds[1..] {
                        // SAFETY: received fds are new and owned by us
                        drop(unsafe { OwnedFd::from_raw_fd(extra) });
                    }
                    // SAFETY: the fd was just received and nothing else owns it
                    return Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
        }
        Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no fd in the message",
        )))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
