//! `rbox pause` and `unpause`: the cgroup freezer, through rrun.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::runtime::{live_status, runtime_output};
use crate::store::Store;

/// `rbox pause` / `unpause`: the cgroup freezer, through rrun.
pub fn pause(store: &Store, what: &str, pause: bool) -> Result<()> {
    let c = find(store, what)?;
    let status = live_status(store, &c);
    match (pause, status.as_str()) {
        (true, "running") | (false, "paused") => {}
        (true, "paused") => {
            return Err(ContainerError::Invalid(format!(
                "container {} is already paused",
                c.name
            )))
        }
        (false, "running") => {
            return Err(ContainerError::Invalid(format!(
                "container {} is not paused",
                c.name
            )))
        }
        _ => return Err(ContainerError::NotRunning(c.name)),
    }
    runtime_output(store, &[if pause { "pause" } else { "resume" }, &c.id])?;
    Ok(())
}
