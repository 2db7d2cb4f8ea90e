//! The terminal and signals of a process rbox follows in the foreground.

use std::fs;
use std::path::PathBuf;

/// Puts the terminal in raw mode while it lives.
pub(crate) struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    pub(crate) fn new(on: bool) -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !on || !nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false) {
            return RawTerminal(None);
        }
        let Ok(old) = tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = old.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        // also restored should rbox end on a closed stdout
        crate::stdio::restore_terminal_on_exit(Some(old.clone()));
        RawTerminal(Some(old))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            crate::stdio::restore_terminal_on_exit(None);
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &old,
            );
        }
    }
}

/// The size of rbox's terminal, if stdin is one.
pub(crate) fn terminal_size() -> Option<(u32, u32)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer.
    let rc = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some((ws.ws_col.into(), ws.ws_row.into()))
}

/// Copies rbox's stdin into a process's stdin FIFO until EOF (then the
/// process reads EOF too). Not joined: stdin may never end.
pub(crate) fn copy_stdin_to(fifo: PathBuf) {
    std::thread::spawn(move || {
        if let Ok(mut w) = fs::OpenOptions::new().write(true).open(&fifo) {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        }
    });
}

/// A signal for a process: forwarded (INT, TERM, …) unless it has a
/// terminal, where ^C is a byte on stdin; a terminal's resizes follow.
pub(crate) fn forward_signals(
    client: &shim::client::ShimClient,
    exec_id: &str,
    tty: bool,
    s: nix::sys::signal::Signal,
) {
    if s == nix::sys::signal::Signal::SIGWINCH {
        if let Some((w, h)) = terminal_size() {
            let _ = client.resize_pty(exec_id, w, h);
        }
    } else if !tty {
        let _ = client.kill(exec_id, s as u32, false);
    }
}

/// The signals an attached process takes from rbox: INT, TERM, HUP and
/// QUIT with `proxy` (Docker's `--sig-proxy`), WINCH with a terminal.
pub(crate) fn handled_signals(tty: bool, proxy: bool) -> Vec<nix::sys::signal::Signal> {
    let mut v = Vec::new();
    if proxy {
        v.extend(crate::signals::FORWARDED);
    }
    if tty {
        v.push(nix::sys::signal::Signal::SIGWINCH);
    }
    v
}
