//! `rbox rm [-f]`.

use nix::sys::signal::Signal;

use super::discard::remove_stopped;
use super::error::{io_err, ContainerError, Result};
use super::lookup::{containers_dir, find};
use super::record::Status;
use super::recover::wait_exited;
use super::stop::mark_stopping;
use super::task::{live_status, signal};
use crate::claim;
use crate::store::Store;

/// `rbox rm [-f] [-v]`: [`remove`], then with `volumes` the container's
/// anonymous volumes.
pub fn remove_with_volumes(store: &Store, what: &str, force: bool, volumes: bool) -> Result<()> {
    let spec = find(store, what)?.spec;
    remove(store, what, force)?;
    if volumes {
        crate::volume::remove_anonymous(store, &spec);
    }
    Ok(())
}

/// `rbox rm [-f]`: everything of the container goes (bundle, network,
/// records, anonymous volumes).
pub fn remove(store: &Store, what: &str, force: bool) -> Result<()> {
    let c = find(store, what)?;
    // should this rbox be killed half-way, the next one finishes
    let _claim = if claim::held(&c.id) {
        None
    } else {
        let claim = claim::take(store, &c.id).map_err(io_err("claim", &containers_dir(store)))?;
        Some(claim::hold_scoped(&c.id, claim))
    };
    if c.state.status == Status::Exiting {
        // the exit hook is tearing it down: not twice at once
        wait_exited(store, &c.id, std::time::Duration::from_secs(30))?;
    }
    let c = match find(store, &c.id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if live_status(&c).is_up() {
        if !force {
            return Err(ContainerError::Running(c.name));
        }
        mark_stopping(store, &c)?;
        let _ = signal(store, &c, Signal::SIGKILL);
        // the exit hook records the exit (and with --rm removes it)
        wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
    }
    remove_stopped(store, &c.id)
}
