//! `rbox pause` and `unpause`: the cgroup freezer, through the shim.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::LiveStatus;
use super::task::{freeze, live_status};
use crate::store::Store;

/// `rbox pause` / `unpause`: the cgroup freezer, through the shim.
pub fn pause(store: &Store, what: &str, pause: bool) -> Result<()> {
    let c = find(store, what)?;
    match (pause, live_status(&c)) {
        (true, LiveStatus::Running) | (false, LiveStatus::Paused) => {}
        (true, LiveStatus::Paused) => return Err(ContainerError::AlreadyPaused(c.name)),
        (false, LiveStatus::Running) => return Err(ContainerError::NotPaused(c.name)),
        _ => return Err(ContainerError::NotRunning(c.name)),
    }
    freeze(store, &c, pause)
}
