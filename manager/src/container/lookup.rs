//! Containers in the store: every one, one by name or id, its state saved.

use std::path::PathBuf;

use super::error::{ContainerError, Result};
use super::record::{Container, RunState};
use crate::store::Store;

/// Every container, newest first.
pub fn list(store: &Store) -> Result<Vec<Container>> {
    Ok(store
        .containers()?
        .into_iter()
        .map(Container::from_row)
        .collect())
}

/// By name, full id or unique id prefix.
pub fn find(store: &Store, what: &str) -> Result<Container> {
    let all = list(store)?;
    let what_name = what.trim_start_matches('/');
    if let Some(c) = all.iter().find(|c| c.name == what_name || c.id == what) {
        return Ok(c.clone());
    }
    let by_prefix: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(what)).collect();
    match by_prefix.as_slice() {
        [c] if !what.is_empty() => Ok((*c).clone()),
        [] | [_] => Err(ContainerError::NoSuch(what.to_string())),
        _ => Err(ContainerError::Ambiguous(what.to_string())),
    }
}

pub(crate) fn save_state(store: &Store, id: &str, state: &RunState) -> Result<()> {
    Ok(store.save_state(id, &state.to_json())?)
}

/// ROOT/containers: the containers' directories, and their claims.
pub(crate) fn containers_dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}
