//! `rbox wait`: until the container stops; its exit code. Docker's API
//! also waits for the next exit of a container not running yet, and for its
//! removal.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::Status;
use super::recover::wait_exited;
use super::task::live_status;
use crate::store::Store;
use crate::supervisor;

/// What a wait waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// the container is not running (at once if it is not)
    #[default]
    NotRunning,
    /// its next exit: one recorded after the wait began
    NextExit,
    /// it is removed (its last exit code)
    Removed,
}

/// How often the record is read again.
const POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// `rbox wait`: blocks until the container stops; its exit code.
pub fn wait(store: &Store, what: &str) -> Result<i32> {
    // never gives up: always a code
    Ok(wait_for(store, what, WaitCondition::NotRunning, &|| false)?.unwrap_or(0))
}

/// Blocks until `cond` holds; the container's exit code, or None when
/// `give_up` said yes first (its caller is gone). A container removed
/// meanwhile has exit code 0, or its last one for `Removed`.
pub fn wait_for(
    store: &Store,
    what: &str,
    cond: WaitCondition,
    give_up: &dyn Fn() -> bool,
) -> Result<Option<i32>> {
    let c = find(store, what)?;
    // an exit is recorded with its time: the next one has another
    let first_finish = c.state.finished_at.clone();
    let mut last_code = c.state.exit_code;
    loop {
        match find(store, &c.id) {
            Ok(now) if now.state.status == Status::Running => {
                let status = live_status(&now);
                // stopped, or its shim killed meanwhile (then recovered)
                if !status.is_up() || supervisor::shim_gone(store, &now) {
                    wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
                }
            }
            Ok(now) if now.state.status == Status::Exiting => {
                // the exit hook is at work (finished by this rbox if it
                // was killed)
                wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
            }
            Ok(now) => {
                last_code = now.state.exit_code;
                let done = match cond {
                    WaitCondition::NotRunning => true,
                    WaitCondition::NextExit => {
                        now.state.status == Status::Exited && now.state.finished_at != first_finish
                    }
                    WaitCondition::Removed => false,
                };
                if done {
                    return Ok(Some(last_code));
                }
            }
            Err(ContainerError::NoSuch(_)) if cond == WaitCondition::Removed => {
                return Ok(Some(last_code))
            }
            Err(ContainerError::NoSuch(_)) => return Ok(Some(0)),
            Err(e) => return Err(e),
        }
        if give_up() {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}
