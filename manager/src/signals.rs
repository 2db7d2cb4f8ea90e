//! Running a child in the foreground while forwarding the signals a user
//! or a supervisor sends rbox (INT, TERM, HUP, QUIT) to it, so that rbox
//! itself survives them and can clean up after the child.

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Spawn `cmd` and wait for it; returns its exit code (128+N for a signal
/// N, like a shell).
pub fn run_forwarding(cmd: &mut Command) -> io::Result<i32> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    // blocked in this thread and so in the forwarder spawned below; the
    // child gets an empty mask (std resets it before exec)
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
    let child = cmd.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return Err(e);
        }
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let forwarder = std::thread::spawn(move || {
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: sigtimedwait with a valid set and timeout; no info.
            let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &timeout) };
            if sig > 0 {
                if let Ok(s) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(pid, s);
                }
            }
        }
    });
    let status = child.wait();
    done.store(true, Ordering::SeqCst);
    let _ = forwarder.join();
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    let status = status?;
    Ok(match status.code() {
        Some(c) => c,
        None => 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0),
    })
}
