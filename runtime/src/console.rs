//! Terminals: the container side makes a pty inside the container and sends
//! the master over the console socket (SCM_RIGHTS, like runc); the caller
//! side receives it, or proxies it to rrun's own terminal for a foreground
//! `run`/`exec`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{ErrnoExt, Error, Result};

/// In the container: make a pty, make its slave our controlling terminal and
/// stdio, and send the master to `socket`.
/// `size` is `process.consoleSize` as (rows, columns).
pub fn setup_in_container(socket: RawFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .op(|| "open /dev/ptmx".into())?;
    grantpt(&master).op(|| "grantpt".into())?;
    unlockpt(&master).op(|| "unlockpt".into())?;
    let name = ptsname_r(&master).op(|| "ptsname".into())?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct we own.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .at("open", &name)?;
    // SAFETY: ioctl TIOCSCTTY on a terminal fd we just opened.
    if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys("ioctl TIOCSCTTY", nix::errno::Errno::last()));
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).op(|| format!("dup2 pty to fd {fd}"))?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        socket,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .op(|| "send pty master on console socket".into())?;
    Ok(())
}

/// On the caller side: receive a pty master sent with SCM_RIGHTS.
pub fn recv_master(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .op(|| "receive pty master".into())?;
    for c in msg.cmsgs().op(|| "read control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Init(
        "no pty master received on the console socket".into(),
    ))
}

/// Copy between our stdio and the pty master until the container side
/// closes, with our terminal (if any) in raw mode meanwhile.
pub fn proxy(master: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::termios;
    use std::os::fd::BorrowedFd;
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let saved = termios::tcgetattr(stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin, termios::SetArg::TCSANOW, &raw);
        copy_winsize(0, master.as_raw_fd());
    }
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(
            // SAFETY: master outlives this loop.
            unsafe { BorrowedFd::borrow_raw(master.as_raw_fd()) },
            PollFlags::POLLIN,
        )];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let m = fds[0].revents().unwrap_or(PollFlags::empty());
        let s = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if m.intersects(PollFlags::POLLIN) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = write_all(1, &buf[..n]);
                }
            }
        } else if m.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            break;
        }
        if s.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all(master.as_raw_fd(), &buf[..n]);
                }
            }
        }
    }
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin, termios::SetArg::TCSANOW, t);
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        // SAFETY: fd is open for the duration of the call.
        let n = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, data)?;
        data = &data[n..];
    }
    Ok(())
}

pub fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write a winsize struct we own.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// `process.consoleSize` as (rows, columns).
pub fn console_size(p: &oci_spec::runtime::Process) -> Option<(u16, u16)> {
    p.console_size().as_ref().map(|b| {
        (
            u16::try_from(b.height()).unwrap_or(u16::MAX),
            u16::try_from(b.width()).unwrap_or(u16::MAX),
        )
    })
}
