//! `rbox pause` and `unpause`: the cgroup freezer, through rrun.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::LiveStatus;
use super::runtime::{live_status, runtime_output};
use crate::store::Store;

/// `rbox pause` / `unpause`: the cgroup freezer, through rrun.
pub fn pause(store: &Store, what: &str, pause: bool) -> Result<()> {
    let c = find(store, what)?;
    match (pause, live_status(store, &c)) {
        (true, LiveStatus::Running) | (false, LiveStatus::Paused) => {}
        (true, LiveStatus::Paused) => return Err(ContainerError::AlreadyPaused(c.name)),
        (false, LiveStatus::Running) => return Err(ContainerError::NotPaused(c.name)),
        _ => return Err(ContainerError::NotRunning(c.name)),
    }
    runtime_output(store, &[if pause { "pause" } else { "resume" }, &c.id])?;
    Ok(())
}
