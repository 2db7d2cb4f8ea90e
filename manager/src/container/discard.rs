//! The end of a container whose init is not running (exited, or never
//! started): its shim and task, network, cgroups, record, bundle and
//! `--rm`'s anonymous volumes go.

use super::error::{io_err, ContainerError, Result};
use super::lookup::{containers_dir, find};
use super::runtime::delete_task;
use crate::bundle;
use crate::claim;
use crate::net::teardown::teardown_network;
use crate::store::Store;
use crate::supervisor;
use crate::volume;

/// Removes a container that is not running (the exit hook's `--rm`, a
/// failed start's, and `rm` once it has stopped), under its claim: should
/// this rbox be killed half-way, the next one finishes.
pub(crate) fn remove_stopped(store: &Store, id: &str) -> Result<()> {
    let _claim = if claim::held(id) {
        None
    } else {
        let claim = claim::take(store, id).map_err(io_err("claim", &containers_dir(store)))?;
        Some(claim::hold_scoped(id, claim))
    };
    let c = match find(store, id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let _ = supervisor::release(store, &c);
    // a shim left by a run killed during its Create, a runtime left by a
    // killed shim
    supervisor::kill_workers_of(store, &c.id);
    delete_task(store, &c.id);
    discard(store, &c.id)
}

/// Removes a container whose task and shim are gone: its network, record,
/// bundle and (with `--rm`) anonymous volumes.
pub(crate) fn discard(store: &Store, id: &str) -> Result<()> {
    let c = find(store, id)?;
    let mut state = c.state.clone();
    let net = teardown_network(store, &c, &mut state);
    // left only by a runtime killed during its create (rrun delete removes it)
    crate::cgroups::remove(&c.spec.cgroups_path(&c.id));
    // the row that references the bundle's first
    store.delete_record(&c.id)?;
    bundle::remove(store, &c.id)?;
    if c.spec.rm {
        // like Docker's --rm: the anonymous volumes go with the container
        volume::remove_anonymous(store, &c.spec);
    }
    net
}
