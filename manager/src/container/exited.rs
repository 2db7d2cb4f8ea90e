//! The exit of a container's init: the shim's exit hook (`rbox __exited
//! ID`), and waiting for it.

use std::fs;
use std::path::Path;

use super::discard::remove_stopped;
use super::error::{ContainerError, Result};
use super::lookup::{find, save_state};
use super::record::{RunState, Status};
use super::runtime::release_task;
use super::start::start;
use crate::claim;
use crate::net::plan::refresh_hosts_of;
use crate::net::teardown::teardown_network;
use crate::store::Store;

/// The shim's exit hook (`rbox __exited ID`, run once the init exited):
/// the task and the shim go, the network is torn down, the exit status
/// recorded; then the restart policy or `--rm`.
pub fn exited(store: &Store, id: &str, code: i32) -> Result<()> {
    let c = match find(store, id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    // an attached `run --rm` tears it down and removes it itself: wait
    // until it has (or has gone without: killed, or its stdout closed)
    let me = std::process::id() as i32;
    let (c, _owner) = if c.spec.rm && c.state.attached_pid.is_some_and(|p| p != me) {
        let Some(owner) = await_attached_run(store.root(), id) else {
            return Ok(());
        };
        match find(store, id) {
            Ok(c) => (c, Some(owner)),
            Err(ContainerError::NoSuch(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    } else {
        (c, None)
    };
    let mut state = c.state.clone();
    let was_running = state.status == Status::Running || state.status == Status::Exiting;
    if state.status == Status::Running {
        // whoever waits for the exit (stop, rm -f) now waits for the hook
        state.status = Status::Exiting;
        save_state(store, &c.id, &state)?;
    }
    release_task(store, &c);
    let net = teardown_network(store, &c, &mut state);
    // `rbox stop` may have marked it meanwhile
    state.stopping |= find(store, id).is_ok_and(|now| now.state.stopping);
    if was_running {
        // a --rm container stays `exiting` (its exit code recorded) until it
        // is removed: whoever waits for its exit (stop, rm -f) returns once
        // it is gone
        state.status = if c.spec.rm {
            Status::Exiting
        } else {
            Status::Exited
        };
        state.exit_code = code;
        state.finished_at = Some(chrono::Utc::now().to_rfc3339());
    }
    save_state(store, &c.id, &state)?;
    // the others of its network forget it (best effort: the exit is recorded)
    let _ = refresh_hosts_of(store, &c);
    if c.spec
        .restart
        .restarts(state.stopping, state.restart_count, code)
    {
        state.restart_count += 1;
        save_state(store, &c.id, &state)?;
        // Docker's back-off: 100 ms, doubling, at most a minute
        let delay = 100u64 << state.restart_count.min(10);
        std::thread::sleep(std::time::Duration::from_millis(delay.min(60_000)));
        // `rbox stop` or `rm` may have come meanwhile
        match find(store, id) {
            Ok(now) if !now.state.stopping && now.state.status == Status::Exited => {
                start(store, id)?;
            }
            _ => {}
        }
        return net;
    }
    if c.spec.rm {
        remove_stopped(store, &c.id)?;
    }
    net
}

/// Whether another rbox process runs the container in the foreground.
pub(crate) fn attached_elsewhere(state: &RunState) -> bool {
    state.attached_pid.is_some_and(|pid| {
        pid != std::process::id() as i32
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    })
}

/// The lock an attached `run --rm` holds on its container's directory
/// (ROOT/containers/ID) for as long as it answers for the container: from
/// before the start until the container is removed, or until it leaves
/// (killed, or its stdout's reader gone). None: the directory is gone.
pub(crate) fn attached_run_lock(root: &Path, id: &str) -> Option<fs::File> {
    let dir = root.join("containers").join(id);
    let f = fs::File::open(dir).ok()?;
    claim::lock(&f, true).ok()?;
    Some(f)
}

/// For the exit hook of a container an attached `run --rm` answers for:
/// waits until that rbox is done. Some (the lock, to hold while finishing
/// the container) if the container is still there: the rbox left it.
pub fn await_attached_run(root: &Path, id: &str) -> Option<fs::File> {
    let lock = attached_run_lock(root, id)?;
    // removed meanwhile: the directory went with it
    root.join("containers").join(id).exists().then_some(lock)
}
