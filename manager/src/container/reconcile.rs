//! Containers half-made or half-removed by an rbox that was killed: a
//! claim nobody holds (claim.rs).

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::Status;
use super::remove::remove;
use crate::bundle::{self, BundleError};
use crate::claim;
use crate::store::Store;
use crate::supervisor;

/// Finishes what killed rbox processes left half-done: a container being
/// made (bundle, network, shim) or removed goes, with whatever of it
/// exists. Images, volumes and the other containers are not touched.
pub fn reconcile(store: &Store) -> Result<()> {
    for (id, held) in claim::abandoned(store) {
        let Some(id) = id else {
            drop(held);
            continue;
        };
        let done = match find(store, &id) {
            Ok(c) if c.id == id => {
                if c.state.status == Status::Created {
                    // a start under way when its rbox died: the shim (its
                    // Create perhaps still waiting on the runtime, which
                    // would hold up a Delete) goes first
                    supervisor::kill_workers_of(store, &id);
                }
                remove(store, &id, true)
            }
            Ok(_) | Err(ContainerError::NoSuch(_)) => {
                // the bundle without its record: no network or task yet
                supervisor::kill_workers_of(store, &id);
                match bundle::remove(store, &id) {
                    Ok(()) | Err(BundleError::NoSuchContainer(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        // what is left of it stays listed for `rm -f`
        if let Err(e) = done {
            eprintln!("rbox: warning: cleaning up container {id}: {e}");
        }
        drop(held);
    }
    Ok(())
}
