//! Following a container in the foreground: `rbox run` without `-d`,
//! `start -a`, `attach`.

use std::fs;
use std::path::Path;

use super::discard::discard;
use super::error::{io_err, ContainerError, Result};
use super::exited::attached_run_lock;
use super::lookup::{containers_dir, find, save_state};
use super::record::{Container, Status};
use super::recover::wait_exited;
use super::remove::remove;
use super::runtime::release_task;
use super::start::start_inner;
use super::task::live_status;
use super::terminal::{
    copy_stdin_to, forward_signals, handled_signals, terminal_size, RawTerminal,
};
use crate::bundle;
use crate::claim;
use crate::net::teardown::{net_teardown, NetTeardown};
use crate::store::Store;
use crate::supervisor;

/// Where the output of a container run in the foreground goes (its log
/// keeps it all the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// its stdout on rbox's stdout, its stderr on rbox's stderr
    Stdio,
    /// both on rbox's stderr: a build's RUN step (BuildKit's progress is
    /// all on stderr; stdout may carry `rbox build -o -`'s tar)
    Stderr,
    /// nowhere: `rbox build -q`
    Nothing,
}

/// Run a created (or exited) container in the foreground: its output (the
/// log, as it grows) on rbox's stdout and stderr, rbox's stdin into its
/// stdin with `-i`, signals forwarded with `sig_proxy` (Ctrl-C stops the
/// container, not rbox). Returns the exit code once the container is
/// cleaned up (and removed, with `--rm`).
pub fn run_attached(store: &Store, what: &str, sig_proxy: bool) -> Result<i32> {
    run_attached_to(store, what, sig_proxy, Echo::Stdio)
}

/// [`run_attached`] with the output sent as `echo` says.
pub fn run_attached_to(store: &Store, what: &str, sig_proxy: bool, echo: Echo) -> Result<i32> {
    let c = find(store, what)?;
    // from now on, before any thread starts: a signal waits for the
    // forwarder (it goes to the container once it runs)
    crate::signals::block(&handled_signals(c.spec.tty, sig_proxy));
    // the exit hook of a --rm container waits for us (see `exited`)
    let owner = if c.spec.rm {
        let dir = bundle::container_dir(store, &c.id);
        Some(
            attached_run_lock(store.root(), &c.id).ok_or_else(|| ContainerError::Io {
                op: "lock",
                path: dir.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?,
        )
    } else {
        None
    };
    let offset = log_end(store, &c);
    let raw = RawTerminal::new(c.spec.tty);
    let c = start_inner(store, &c.id, true)?;
    let code = follow_until_exit(store, &c, offset, c.spec.rm, sig_proxy, echo);
    drop(raw);
    drop(owner);
    code
}

/// `rbox attach`: the running container's output from now on (and its
/// stdin with `-i`), signals forwarded, until it exits; its exit code.
pub fn attach(store: &Store, what: &str) -> Result<i32> {
    let c = find(store, what)?;
    crate::signals::block(&handled_signals(c.spec.tty, true));
    let status = live_status(&c);
    if !status.is_up() {
        return Err(ContainerError::CannotAttach {
            name: c.name,
            status,
        });
    }
    let offset = log_end(store, &c);
    let raw = RawTerminal::new(c.spec.tty);
    let code = follow_until_exit(store, &c, offset, false, true, Echo::Stdio);
    drop(raw);
    code
}

/// Where the container's log ends now: output after it is new.
fn log_end(store: &Store, c: &Container) -> u64 {
    let log = supervisor::log_path(store, &c.id);
    fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
}

/// The output of an attached run once its stdout's reader has gone (`rbox
/// run … | head -1`). Until the container's exit is in hand rbox ends at
/// once, quietly, as Docker's CLI does: the container runs on and its exit
/// hook records the exit (and, for `--rm`, removes it: the hook waits for
/// this process, see `exited`). After that rbox finishes the container
/// first, and then ends the same way.
#[derive(Default)]
struct Output {
    /// the exit is in hand: no leaving half-way from here
    finishing: std::sync::Mutex<bool>,
    /// stdout's reader has gone
    closed: std::sync::atomic::AtomicBool,
}

impl Output {
    /// Called by the follower when stdout turns out to be closed.
    fn closed(&self) {
        let finishing = self.finishing.lock().unwrap_or_else(|e| e.into_inner());
        if !*finishing {
            // with the lock held: the waiting thread cannot start finishing
            crate::stdio::exit_closed();
        }
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Called once the exit is in hand.
    fn finish(&self) {
        *self.finishing.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Prints the log from `offset` (stdin copied in with `-i`, the terminal
/// size passed on with `-t`, signals to rbox forwarded with `proxy`) until
/// the container's init exits and its exit hook has run; the exit code.
fn follow_until_exit(
    store: &Store,
    c: &Container,
    offset: u64,
    remove_after: bool,
    proxy: bool,
    echo: Echo,
) -> Result<i32> {
    let log = supervisor::log_path(store, &c.id);
    let waiter = supervisor::connect(store, c);
    if let Some(client) = &waiter {
        if c.spec.tty {
            if let Some((w, h)) = terminal_size() {
                let _ = client.resize_pty("", w, h);
            }
        }
        if c.spec.interactive {
            copy_stdin_to(supervisor::stdin_fifo(store, &c.id));
        }
    }
    let output = std::sync::Arc::new(Output::default());
    // dropped when the init has exited: the follower reads the rest at once
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let out = output.clone();
    let follower = std::thread::spawn(move || {
        follow_to_end(
            &log,
            offset,
            |poll| {
                matches!(
                    stopped.recv_timeout(poll),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                )
            },
            &out,
            echo,
        )
    });
    let mut waited_code = None;
    if let Some(client) = waiter {
        // the same connection: the wait blocks this thread only
        let signaller = client.share();
        let tty = c.spec.tty;
        waited_code = crate::signals::forwarding(
            &handled_signals(tty, proxy),
            move |s| forward_signals(&signaller, "", tty, s),
            // ends when the init exits, or fails if the hook was quicker
            // (or the shim was killed)
            || client.wait(""),
        )
        .ok();
    }
    output.finish();
    let drain = move || {
        drop(stop);
        let _ = follower.join();
    };
    let mut recovered = None;
    let claim = match waited_code {
        // the exit hook leaves an attached `run --rm` to us
        Some(code) if remove_after => finish_attached_rm(store, &c.id, code as i32, drain)?,
        // the hook has recorded the exit code (and torn the network down),
        // or, its shim killed, the container is recovered here
        _ => {
            let waited = wait_exited(store, &c.id, std::time::Duration::from_secs(30));
            drain();
            recovered = waited?;
            None
        }
    };
    // the record, unless the hook removed the container (--rm)
    let code = find(store, &c.id).map_or(
        recovered.unwrap_or(waited_code.map_or(0, |c| c as i32)),
        |c| c.state.exit_code,
    );
    if remove_after {
        match claim {
            Some((_claim, net)) => discard(store, &c.id).and(net)?,
            None => match remove(store, &c.id, true) {
                Ok(()) | Err(ContainerError::NoSuch(_)) => {}
                Err(e) => return Err(e),
            },
        }
    }
    if output.is_closed() {
        crate::stdio::exit_closed();
    }
    Ok(code)
}

/// The exit of an attached `run --rm` container, handled by its own rbox
/// instead of the exit hook: claimed (a killed rbox leaves the rest to the
/// next one), marked exiting (others wait), then at once the network torn
/// down, the task deleted with its shim (whose Delete returns once the
/// output is copied out), the output `drain`ed and the bundle's files
/// removed. The records stay for [`discard`]; returns the claim and how the
/// network teardown went.
fn finish_attached_rm(
    store: &Store,
    id: &str,
    code: i32,
    drain: impl FnOnce(),
) -> Result<Option<(claim::Claim, Result<()>)>> {
    let held = claim::take(store, id).map_err(io_err("claim", &containers_dir(store)))?;
    let c = find(store, id)?;
    let mut state = c.state.clone();
    state.status = Status::Exiting;
    state.exit_code = code;
    state.finished_at = Some(chrono::Utc::now().to_rfc3339());
    // saved with the network still in it (a killed rbox leaves the next one
    // something to tear down), while the teardown already runs: the claim
    // keeps every other rbox away meanwhile
    let exiting = state.clone();
    let teardown = net_teardown(store, &c, &mut state);
    let net = std::thread::scope(|s| {
        let t = s.spawn(|| teardown.map_or(Ok(()), NetTeardown::run));
        if let Err(e) = save_state(store, id, &exiting) {
            let _ = t.join();
            return Err(e);
        }
        release_task(store, &c);
        drain();
        // an error is found again (and reported) by `discard`
        let _ = bundle::remove_files(store, id);
        Ok(t.join().expect("the teardown thread does not panic"))
    })?;
    save_state(store, id, &state)?;
    Ok(Some((held, net)))
}

/// Prints log entries from `offset` as they come, raw, where `echo` says;
/// a closed stdout is handed to `output` (nothing is printed after it).
fn follow_to_end(
    log: &Path,
    offset: u64,
    wait: impl FnMut(std::time::Duration) -> bool,
    output: &Output,
    echo: Echo,
) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    crate::logs::follow(log, offset, wait, |e| {
        if output.is_closed() || echo == Echo::Nothing {
            return;
        }
        if e.stream == "stderr" || echo == Echo::Stderr {
            let _ = err.write_all(e.log.as_bytes());
        } else if let Err(e) = out.write_all(e.log.as_bytes()).and_then(|()| out.flush()) {
            if crate::stdio::closed(&e) {
                output.closed();
            }
        }
    });
}
