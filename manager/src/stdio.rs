//! rbox's standard output when its reader goes away (`rbox ps | head -1`):
//! Docker's CLI dies of SIGPIPE there, silently, and so does rbox, from one
//! place ([`exit_closed`]) instead of a panic in `println!`. SIGPIPE itself
//! stays ignored (Rust's default): rbox also writes to pipes of its own (CNI
//! plugins' stdin, a container's stdin FIFO), where a vanished reader is an
//! error to handle, not a reason to die; only stdout's reader going away
//! ends rbox. The binary's `print!`/`println!`/`eprintln!` go through
//! [`print`] and [`eprint`]; the library's output loops (logs, attached
//! runs, exec) call [`write_out`].

use std::io::{self, Write};
use std::sync::Mutex;

/// A terminal left in raw mode by an attached `-t` run, restored before
/// [`exit_closed`] ends the process.
static TERMINAL: Mutex<Option<nix::sys::termios::Termios>> = Mutex::new(None);

/// Remember the terminal's settings to restore should rbox end on a closed
/// stdout (`None` once they are restored by their owner).
pub fn restore_terminal_on_exit(saved: Option<nix::sys::termios::Termios>) {
    *TERMINAL.lock().unwrap_or_else(|e| e.into_inner()) = saved;
}

/// Whether `e` says the reader of a pipe (or socket) went away.
pub fn closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Whether stdout is a pipe or socket whose reader has gone (the kernel
/// reports POLLERR on the writing end then).
pub fn stdout_closed() -> bool {
    let mut fds = [libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    }];
    // SAFETY: poll on one valid pollfd, no timeout.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    n == 1 && fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Ends rbox as Docker's CLI ends when its stdout's reader goes away:
/// killed by SIGPIPE, nothing printed (a shell reports status 141). The
/// terminal is restored first if an attached run made it raw.
pub fn exit_closed() -> ! {
    if let Some(t) = TERMINAL.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = nix::sys::termios::tcsetattr(io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
    }
    let mut pipe = nix::sys::signal::SigSet::empty();
    pipe.add(nix::sys::signal::Signal::SIGPIPE);
    // SAFETY: the default disposition is set before the signal is raised;
    // no handler runs, the process ends.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let _ = pipe.thread_unblock();
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

/// Writes `bytes` to stdout and flushes; a closed stdout ends rbox
/// ([`exit_closed`]); other errors are returned.
pub fn write_out(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if closed(&e) => exit_closed(),
        r => r,
    }
}

/// `print!` of the binary: to stdout; a closed stdout ends rbox quietly,
/// any other write error is one line on stderr and exit status 1 (where
/// `print!` would panic).
pub fn print(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args);
    // a line at a time on a terminal, as the standard macros do
    let written = written.and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if closed(&e) => exit_closed(),
        Err(e) => {
            drop(out);
            eprint(format_args!("rbox: write to stdout: {e}\n"));
            std::process::exit(1);
        }
    }
}

/// `eprint!` of the binary: to stderr; a write error is ignored (there is
/// nowhere left to report it).
pub fn eprint(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_a_closed_reader() {
        assert!(closed(&io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(closed(&io::Error::from_raw_os_error(libc::EPIPE)));
        assert!(!closed(&io::Error::from_raw_os_error(libc::ENOSPC)));
    }
}
