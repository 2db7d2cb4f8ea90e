//! The root filesystem a COPY or ADD step writes into: an overlay of the
//! parent's layer snapshots with a fresh upper dir, mounted by a thread in
//! a mount namespace of its own.
//!
//! Nothing runs in it, so no container is made: the step's closure gets
//! the merged directory. The mount exists only in that thread's namespace,
//! which the kernel tears down with the thread, however the build ends
//! (kill -9 too): no mount is ever left on the host. The upper dir is a
//! temp snapshot of the store (`snapshots/.tmp-…`, locked while in use),
//! which the store's orphan sweep removes after a crash.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::image::temp_snapshot;
use crate::store::{io_err, Store, TempPath};

use super::error::{ExecError, Result};

/// The overlay's upper dir after the step: the new layer's content.
pub struct Upper {
    /// `snapshots/.tmp-…/`, whose `fs/` is the upper dir
    pub snapshot: TempPath,
}

impl Upper {
    pub fn fs(&self) -> PathBuf {
        self.snapshot.path().join("fs")
    }
}

/// Mounts an overlay of `layers` (diff_ids, bottom first) with a fresh
/// upper dir in a thread with its own mount namespace, and runs `step` on
/// the merged root there. Returns the upper dir (the step's changes).
pub fn with_overlay<T: Send>(
    store: &Store,
    layers: &[String],
    step: impl FnOnce(&Path) -> Result<T> + Send,
) -> Result<(Upper, T)> {
    let snapshot = temp_snapshot(store)?;
    let base = snapshot.path().to_path_buf();
    for d in ["work", "merged", "empty"] {
        let p = base.join(d);
        fs::create_dir(&p).map_err(io_err("create", &p))?;
    }
    let data = format!(
        "{},upperdir={},workdir={},redirect_dir=off,metacopy=off",
        lowerdir(store, layers, layers.is_empty().then(|| base.join("empty")))?,
        base.join("fs").display(),
        base.join("work").display()
    );
    let out = mounted(
        &base.join("merged"),
        MsFlags::empty(),
        &data,
        layers.len(),
        step,
    )?;
    for d in ["work", "merged", "empty"] {
        let p = base.join(d);
        // work/ holds overlayfs's own (root-only) work dir
        fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
    }
    Ok((Upper { snapshot }, out))
}

/// `lowerdir=` of the snapshots of `layers` (diff_ids, bottom first): top
/// first, each once, then `bottom` (an empty dir) when given. The upper
/// dir of [`with_overlay`] has `redirect_dir` and `metacopy` off so that it
/// says everything in plain files (a layer tar can carry it).
fn lowerdir(store: &Store, layers: &[String], bottom: Option<PathBuf>) -> Result<String> {
    let lower: Vec<String> = store
        .lower_dirs(layers.iter().map(String::as_str))
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .chain(bottom.map(|b| b.to_string_lossy().into_owned()))
        .collect();
    if let Some(bad) = lower.iter().find(|l| l.contains([',', ':'])) {
        return Err(ExecError::OverlayPath(PathBuf::from(bad)));
    }
    Ok(format!("lowerdir={}", lower.join(":")))
}

/// Mounts an overlay with options `data` on `merged` in a thread with a
/// mount namespace of its own, runs `f` on it there and unmounts it (the
/// namespace would take the mount with it when the thread ends, but not
/// before the join returns: unmounted here, the upper and work dirs are
/// free when the caller goes on). `layers`: for the error of too long
/// options.
fn mounted<T: Send>(
    merged: &Path,
    flags: MsFlags,
    data: &str,
    layers: usize,
    f: impl FnOnce(&Path) -> Result<T> + Send,
) -> Result<T> {
    // mount(2) takes one page of options
    if data.len() >= 4096 {
        return Err(ExecError::TooManyLayers(layers));
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            private_mount_namespace()?;
            mount(Some("overlay"), merged, Some("overlay"), flags, Some(data)).map_err(
                |source| ExecError::Mount {
                    target: merged.to_path_buf(),
                    source,
                },
            )?;
            let out = f(merged);
            umount2(merged, MntFlags::empty()).map_err(|source| ExecError::Umount {
                target: merged.to_path_buf(),
                source,
            })?;
            out
        })
        .join()
        .unwrap_or(Err(ExecError::Panicked))
    })
}

/// This thread leaves the process's mount namespace for a copy of its own
/// (CLONE_FS first: threads of one process share their root and cwd) in
/// which nothing propagates back to the host.
fn private_mount_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).map_err(ExecError::Unshare)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ExecError::Unshare)
}

/// Runs `f` on the read-only rootfs of `layers` (diff_ids, bottom first):
/// an overlay of their snapshots (each once) with no upper dir, mounted by
/// a thread in a mount namespace of its own (so, as for [`with_overlay`],
/// no mount outlives it). An empty dir is the bottom lower dir: overlayfs wants
/// two without an upper, and a stage with no layer is that empty dir.
/// Whiteouts and opaque marks are applied by the mount: `f` sees the
/// flattened filesystem.
pub fn with_rootfs<T: Send>(
    store: &Store,
    layers: &[String],
    f: impl FnOnce(&Path) -> Result<T> + Send,
) -> Result<T> {
    let snapshot = temp_snapshot(store)?;
    let base = snapshot.path().to_path_buf();
    let merged = base.join("merged");
    fs::create_dir(&merged).map_err(io_err("create", &merged))?;
    // temp_snapshot's fs/: empty
    let data = lowerdir(store, layers, Some(base.join("fs")))?;
    mounted(&merged, MsFlags::MS_RDONLY, &data, layers.len(), f)
}
