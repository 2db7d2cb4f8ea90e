//! The test's end of `--console-socket`.

use std::path::PathBuf;

/// The test's end of `--console-socket`: a unix listener that receives the
/// pty master over SCM_RIGHTS and reads everything written to the terminal
/// until the last slave closes (10 s limit for each step).
pub struct ConsoleSocket {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    reader: std::thread::JoinHandle<Result<String, String>>,
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-console")
            .tempdir()
            .unwrap();
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let reader = std::thread::spawn(move || receive_console(listener));
        ConsoleSocket {
            path,
            _dir: dir,
            reader,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Everything the container wrote to its terminal.
    #[track_caller]
    pub fn output(self) -> String {
        self.reader.join().unwrap().unwrap()
    }
}

fn receive_console(listener: std::os::unix::net::UnixListener) -> Result<String, String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::{IoSliceMut, Read};
    use std::os::fd::{AsFd, AsRawFd, FromRawFd};

    let ready = |fd: std::os::fd::BorrowedFd| {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(10_000u16)).map_err(|e| e.to_string())
    };
    if ready(listener.as_fd())? == 0 {
        return Err("nobody connected to the console socket".into());
    }
    let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(|e| e.to_string())?;
    let fd = msg
        .cmsgs()
        .map_err(|e| e.to_string())?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(f) => f.first().copied(),
            _ => None,
        })
        .ok_or("no fd in the console socket message")?;
    // SAFETY: the fd was just received over SCM_RIGHTS and nothing else owns it.
    let mut master = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if ready(master.as_fd())? == 0 {
            return Err(format!(
                "terminal silent for 10 s; so far: {:?}",
                String::from_utf8_lossy(&out)
            ));
        }
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break, // EIO: every slave fd is closed
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
