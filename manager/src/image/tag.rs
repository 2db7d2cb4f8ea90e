//! `rbox tag SRC DST`.

use super::commit::add_ref;
use super::{ImageError, Result};
use crate::reference::Reference;
use crate::store::Store;

/// `rbox tag SRC DST`.
pub fn tag(store: &Store, src: &str, dst: &str) -> Result<()> {
    let dst = Reference::parse(dst)?;
    if dst.digest().is_some() {
        return Err(ImageError::TagWithDigest(dst.familiar()));
    }
    let lock = store.lock()?;
    let img = store.resolve(src)?;
    add_ref(store, &dst, &img.id)?;
    lock.commit()?;
    Ok(())
}
