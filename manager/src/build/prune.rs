//! `rbox builder prune`: the build cache forgotten, the images only it
//! kept (untagged, no container) removed, the cache mounts' data, and the
//! step containers of builds whose rbox was killed.

use crate::image;
use crate::store::Store;
use crate::system::dir_size;

use super::executor::Result;

/// Returns the entries removed and the bytes freed.
pub fn prune(store: &Store) -> Result<(usize, u64)> {
    // the step containers of builds whose rbox was killed
    super::executor::remove_dead_builds(store)?;
    let rows = store.cache_rows()?;
    let before = store_bytes(store);
    let lock = store.lock()?;
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    store.cache_delete(&keys)?;
    lock.commit()?;
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        if !seen.insert(r.image_id.clone()) || store.image(&r.image_id)?.is_none() {
            continue;
        }
        let unused = store.containers_of(&r.image_id)?.is_empty();
        let untagged = store.refs(&r.image_id)?.iter().all(|x| x.tag.is_none());
        if unused && untagged {
            image::rmi(store, &r.image_id, true)?;
        }
    }
    let mounts = store.root().join("build-cache");
    if mounts.exists() {
        std::fs::remove_dir_all(&mounts).map_err(|source| super::exec::ExecError::Io {
            op: "remove",
            path: mounts.clone(),
            source,
        })?;
    }
    Ok((rows.len(), before.saturating_sub(store_bytes(store))))
}

fn store_bytes(store: &Store) -> u64 {
    ["snapshots", "blobs", "build-cache"]
        .iter()
        .map(|d| dir_size(&store.root().join(d)))
        .sum()
}
