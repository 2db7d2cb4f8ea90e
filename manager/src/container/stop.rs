//! `rbox stop` and `restart`.

use super::error::Result;
use super::kill::kill;
use super::lookup::{find, save_state};
use super::record::{Container, LiveStatus, Status};
use super::recover::wait_exited;
use super::restart::RestartPolicy;
use super::start::start;
use super::task::live_status;
use crate::store::Store;

/// Marks a container as stopped by the user: no restart policy applies.
pub(crate) fn mark_stopping(store: &Store, c: &Container) -> Result<()> {
    let mut state = c.state.clone();
    state.stopping = true;
    save_state(store, &c.id, &state)
}

/// `rbox stop [-t N]`: SIGTERM, then SIGKILL after `timeout`; returns once
/// it has stopped and its exit is recorded (network gone, `--rm` done).
pub fn stop(store: &Store, what: &str, timeout: std::time::Duration) -> Result<()> {
    let c = find(store, what)?;
    if c.spec.restart != RestartPolicy::No {
        // also between two runs of a restart policy
        mark_stopping(store, &c)?;
    }
    if live_status(&c) != LiveStatus::Running {
        if c.state.status == Status::Running {
            // the shim was killed: finish what its hook would have done
            return wait_exited(store, &c.id, std::time::Duration::from_secs(10)).map(drop);
        }
        return Ok(());
    }
    mark_stopping(store, &c)?;
    let _ = kill(store, &c.id, "TERM");
    match wait_exited(store, &c.id, timeout) {
        Ok(_) => Ok(()),
        Err(_) => {
            let _ = kill(store, &c.id, "KILL");
            wait_exited(store, &c.id, std::time::Duration::from_secs(10)).map(drop)
        }
    }
}

/// `rbox restart`: stop, then start again.
pub fn restart(store: &Store, what: &str, timeout: std::time::Duration) -> Result<()> {
    stop(store, what, timeout)?;
    start(store, what).map(drop)
}
