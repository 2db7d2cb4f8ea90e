//! Forwarding the signals a user or a supervisor sends rbox (INT, TERM,
//! HUP, QUIT, and WINCH for terminals) to a container while rbox waits for
//! it in the foreground, so that rbox itself survives them and can clean
//! up after the container.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

pub const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// A signal name or number rbox does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signal {0:?}")]
pub struct BadSignal(pub String);

/// A signal as `kill` takes it: `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse(s: &str) -> Result<Signal, BadSignal> {
    let bad = || BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

/// Blocks `signals` in the calling thread, and so in every thread it starts
/// from now on: until [`forwarding`] takes them, they wait (pending) instead
/// of ending rbox in whichever thread the kernel picks (a process-wide signal
/// goes to any thread that does not block it). Call it before the threads
/// of an attached run or exec are started; they stay blocked afterwards.
pub fn block(signals: &[Signal]) {
    let mut set = SigSet::empty();
    for &s in signals {
        set.add(s);
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Runs `body` with `signals` blocked and handed to `on_signal` (in another
/// thread) as they come; the mask is restored afterwards.
pub fn forwarding<T>(
    signals: &[Signal],
    on_signal: impl Fn(Signal) + Send + 'static,
    body: impl FnOnce() -> T,
) -> T {
    let mut set = SigSet::empty();
    for &s in signals {
        set.add(s);
    }
    // blocked in this thread and so in the forwarder spawned below
    let mut old = SigSet::empty();
    let blocked =
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .is_ok();
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
                    on_signal(s);
                }
            }
        }
    });
    let out = body();
    done.store(true, Ordering::SeqCst);
    // not joined: it notices `done` within 100 ms, and waiting for that
    // would add as much to every `rbox run` and `exec`
    drop(forwarder);
    if blocked {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(
            parse("NOPE").unwrap_err().to_string(),
            "invalid signal \"NOPE\""
        );
        assert!(parse("99").is_err());
    }
}
