//! `rbox container prune`.

use super::error::Result;
use super::lookup::list;
use super::reconcile::reconcile;
use super::remove::remove;
use super::task::live_status;
use crate::store::Store;

/// `rbox container prune`: every stopped container; their names.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    reconcile(store)?;
    let mut removed = Vec::new();
    for c in list(store)? {
        if !live_status(&c).is_up() {
            remove(store, &c.id, false)?;
            removed.push(c.id);
        }
    }
    Ok(removed)
}
