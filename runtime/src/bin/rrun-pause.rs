//! `rrun-pause`: the PID 1 of a pod sandbox, the "pause" container that
//! containerd's CRI starts first in every pod (sandbox_image; see
//! docs/kubernetes.md). It holds the pod's namespaces by doing nothing: it
//! sleeps, reaps the zombies of processes re-parented to it (a pod that
//! shares its PID namespace), and exits 0 on SIGTERM or SIGINT, which is
//! how containerd stops a sandbox. Kubernetes' own pause does the same.
//!
//! A PID 1 gets only the signals it handles; these three are blocked and
//! taken with sigwait, so no handler runs and nothing else can wake it.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

fn main() {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        set.add(s);
    }
    if let Err(e) = set.thread_block() {
        eprintln!("rrun-pause: block signals: {e}");
        std::process::exit(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => std::process::exit(0),
            Err(_) => {}
        }
    }
}

/// Reap every process that has exited.
fn reap() {
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}
