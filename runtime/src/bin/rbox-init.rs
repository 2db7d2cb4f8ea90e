//! `rbox-init`: the tiny PID 1 of `rbox run --init` (Docker's
//! /sbin/docker-init, which is tini). It starts the command as its child,
//! forwards every signal it gets to it, reaps every zombie the container
//! leaves to PID 1, and exits with the child's status (128+N when a signal
//! N killed it).
//!
//! Usage: rbox-init [--] COMMAND [ARG...]
//!
//! A PID 1 gets only the signals it handles; blocking them all and taking
//! them with sigwait counts, so `rbox stop`'s SIGTERM reaches the command
//! at once instead of waiting for the SIGKILL.

use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

fn main() {
    let mut args: Vec<CString> = std::env::args_os()
        .skip(1)
        .filter_map(|a| CString::new(a.into_vec()).ok())
        .collect();
    if args.first().is_some_and(|a| a.as_bytes() == b"--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("rbox-init: usage: rbox-init [--] COMMAND [ARG...]");
        std::process::exit(2);
    }
    let all = SigSet::all();
    if let Err(e) = all.thread_block() {
        eprintln!("rbox-init: block signals: {e}");
        std::process::exit(1);
    }
    // SAFETY: single-threaded here; the child only unblocks signals and
    // execs (or writes an error and exits).
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = all.thread_unblock();
            let err = execvp(&args[0], &args).unwrap_err();
            eprintln!("rbox-init: exec {}: {err}", args[0].to_string_lossy());
            std::process::exit(if err == Errno::ENOENT { 127 } else { 126 });
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("rbox-init: fork: {e}");
            std::process::exit(1);
        }
    };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            // gone already: the SIGCHLD that follows ends the loop
            let _ = kill(child, sig);
            continue;
        }
        if let Some(code) = reap(child) {
            std::process::exit(code);
        }
    }
}

/// Reap every exited process; the child's exit code once it is among them.
fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == child => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}
