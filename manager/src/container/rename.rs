//! `rbox rename OLD NEW`.

use super::error::{ContainerError, Result};
use super::lookup::find;
use crate::names::valid_name;
use crate::store::Store;

/// `rbox rename OLD NEW`.
pub fn rename(store: &Store, what: &str, new: &str) -> Result<()> {
    let c = find(store, what)?;
    if !valid_name(new) {
        return Err(ContainerError::BadName(new.to_string()));
    }
    match store.rename_record(&c.id, new) {
        Ok(()) => Ok(()),
        Err(e) if e.is_constraint() => Err(ContainerError::NameInUse(new.to_string())),
        Err(e) => Err(e.into()),
    }
}
