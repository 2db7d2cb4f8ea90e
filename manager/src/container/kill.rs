//! `rbox kill`: a signal to a running container.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::LiveStatus;
use super::runtime::{live_status, runtime_output};
use crate::store::Store;

/// `rbox kill`: a signal to a running container.
pub fn kill(store: &Store, what: &str, signal: &str) -> Result<()> {
    let c = find(store, what)?;
    if live_status(store, &c) != LiveStatus::Running {
        return Err(ContainerError::NotRunning(c.name));
    }
    runtime_output(store, &["kill", &c.id, signal])?;
    Ok(())
}
