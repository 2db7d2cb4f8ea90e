//! WORKDIR's directory, made as BuildKit's `dispatchWorkdir` makes it: a
//! `mkdir -p` of mode 0755 whose new directories belong to the stage's
//! USER (a name the stage's /etc/passwd lacks is root, as in BuildKit), in
//! a layer of its own, an empty one when the directory was there;
//! `WORKDIR /` makes no layer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::image::NewLayer;
use crate::rootfs::{resolve_in_root, IdFiles};
use crate::store::Store;

use super::commit::Layers;
use super::copy::resolve_chown;
use super::error::{ExecError, Result};
use super::layer::commit_upper;
use super::overlay::with_overlay;

/// The layer of `WORKDIR dir` (absolute) on the stage whose layers are
/// `layers` and whose USER is `user` (empty: root).
pub fn make(
    store: &Store,
    layers: &Layers,
    dir: &str,
    user: &str,
    epoch: Option<u64>,
) -> Result<Option<NewLayer>> {
    if dir == "/" {
        return Ok(None);
    }
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| ExecError::Io { op, path, source }
    };
    let (upper, ()) = with_overlay(store, &layers.diff_ids, |root| {
        let rel = resolve_in_root(root, Path::new(dir)).map_err(io("resolve", Path::new(dir)))?;
        let mut host = root.to_path_buf();
        let mut owner = None;
        for c in rel.components().skip(1) {
            host.push(c);
            if host.is_dir() {
                continue;
            }
            let (uid, gid) = *owner.get_or_insert_with(|| owner_of(root, user));
            std::fs::create_dir(&host).map_err(io("create", &host))?;
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid)).map_err(io("chown", &host))?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                .map_err(io("chmod", &host))?;
        }
        Ok(())
    })?;
    Ok(Some(commit_upper(store, &upper.fs(), epoch)?))
}

/// The uid and gid of `user` (`name`, `uid`, `user:group`) in the rootfs,
/// root's when it names no one there.
fn owner_of(root: &Path, user: &str) -> (u32, u32) {
    if user.is_empty() {
        return (0, 0);
    }
    IdFiles::read(root)
        .ok()
        .and_then(|files| resolve_chown(user, &files).ok())
        .unwrap_or((0, 0))
}
