//! `rbox kill`: a signal to a running container, through its shim.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::LiveStatus;
use super::task::{live_status, signal};
use crate::signals;
use crate::store::Store;

/// `rbox kill`: a signal (`KILL`, `SIGKILL` or `9`) to a running container.
pub fn kill(store: &Store, what: &str, sig: &str) -> Result<()> {
    let c = find(store, what)?;
    if live_status(&c) != LiveStatus::Running {
        return Err(ContainerError::NotRunning(c.name));
    }
    signal(store, &c, signals::parse(sig)?)
}
