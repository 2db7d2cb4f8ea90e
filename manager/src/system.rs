//! `rbox system df` and `rbox system prune`: what the store holds and
//! what no container needs, like Docker's.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::container::{self, ContainerError};
use crate::image::{self, ImageError};
use crate::mounts::Source;
use crate::net::usernet::{self, UserNetError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    UserNet(#[from] UserNetError),
}

pub type Result<T> = std::result::Result<T, SystemError>;

/// One line of `system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfRow {
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// Bytes of the files under `dir` (apparent sizes; symlinks not
/// followed; what cannot be read counts nothing).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Images (those `rbox images` lists: layers shared between images
/// counted once; reclaimable: the layers no container's image uses),
/// containers (their writable layers; reclaimable: those not running),
/// local volumes (reclaimable: unused) and the build cache (its entries
/// and cache mounts; the bytes of layers no image has: `build::usage`).
pub fn df(store: &Store) -> Result<Vec<DfRow>> {
    let containers = container::list(store)?;
    let mut images = Vec::new();
    for img in store.images()? {
        // the build's images of each step are the build cache's
        let tagged = store.refs(&img.id)?.iter().any(|r| r.tag.is_some());
        if tagged || !store.cached_image(&img.id)? {
            images.push(img);
        }
    }
    let mut layer_sizes = std::collections::BTreeMap::new();
    let mut used_layers = BTreeSet::new();
    let mut active_images = 0;
    for img in &images {
        let in_use = !store.containers_of(&img.id)?.is_empty();
        active_images += usize::from(in_use);
        for l in store.layers(&img.id)? {
            if in_use {
                used_layers.insert(l.diff_id.clone());
            }
            layer_sizes.insert(l.diff_id, l.size);
        }
    }
    let image_size: u64 = layer_sizes.values().sum();
    let image_free: u64 = layer_sizes
        .iter()
        .filter(|(d, _)| !used_layers.contains(*d))
        .map(|(_, s)| s)
        .sum();

    let (mut ctr_size, mut ctr_free, mut running) = (0, 0, 0);
    for c in &containers {
        let upper = crate::bundle::container_dir(store, &c.id).join("upper");
        let size = dir_size(&upper);
        ctr_size += size;
        if container::live_status(c).is_up() {
            running += 1;
        } else {
            ctr_free += size;
        }
    }

    let used_volumes: HashSet<&str> = containers
        .iter()
        .flat_map(|c| c.spec.mounts.iter())
        .filter_map(|m| match &m.source {
            Source::Volume(Some(n)) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let volumes = crate::volume::list(store)?;
    let (mut vol_size, mut vol_free, mut vol_active) = (0, 0, 0);
    for (name, path) in &volumes {
        let size = dir_size(path);
        vol_size += size;
        if used_volumes.contains(name.as_str()) {
            vol_active += 1;
        } else {
            vol_free += size;
        }
    }
    let cache = crate::build::usage::usage(store)?;
    Ok(vec![
        DfRow {
            kind: "Images",
            total: images.len(),
            active: active_images,
            size: image_size,
            reclaimable: image_free,
        },
        DfRow {
            kind: "Containers",
            total: containers.len(),
            active: running,
            size: ctr_size,
            reclaimable: ctr_free,
        },
        DfRow {
            kind: "Local Volumes",
            total: volumes.len(),
            active: vol_active,
            size: vol_size,
            reclaimable: vol_free,
        },
        DfRow {
            kind: "Build Cache",
            total: cache.entries,
            active: cache.active,
            size: cache.size,
            reclaimable: cache.reclaimable,
        },
    ])
}

/// What `system prune` removed, in Docker's sections.
#[derive(Debug, Default)]
pub struct Pruned {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// `rmi`'s "Untagged: …" / "Deleted: …" lines
    pub images: Vec<String>,
    pub reclaimed: u64,
}

/// `rbox system prune`: stopped containers, user networks no container
/// uses, dangling images (untagged; with `all`, every image no container
/// uses), with `volumes` volumes no container uses, and the temp files of
/// dead rbox processes (a killed pull's partial blob; counted in the
/// space reclaimed).
pub fn prune(store: &Store, all: bool, volumes: bool) -> Result<Pruned> {
    let temp_before = temp_size(store);
    store.sweep()?;
    let temp_freed = temp_before.saturating_sub(temp_size(store));
    let before: u64 = df(store)?.iter().map(|r| r.size).sum();
    let mut out = Pruned {
        containers: container::prune(store)?,
        ..Default::default()
    };
    out.networks = usernet::prune(store, &container::list(store)?)?;
    if volumes {
        out.volumes = crate::volume::prune(store)?;
    }
    out.images = remove_unused_images(store, all)?;
    let after: u64 = df(store)?.iter().map(|r| r.size).sum();
    out.reclaimed = before.saturating_sub(after) + temp_freed;
    Ok(out)
}

/// Dangling images (untagged; with `all`, every image) that no container
/// uses, removed; `rmi`'s lines.
fn remove_unused_images(store: &Store, all: bool) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for img in store.images()? {
        let unused = store.containers_of(&img.id)?.is_empty();
        let dangling = store.refs(&img.id)?.iter().all(|r| r.tag.is_none());
        // the build cache's images are `builder prune`'s, as in Docker
        if unused && (all || dangling) && !store.cached_image(&img.id)? {
            // by id, all its names at once (no container uses it)
            lines.extend(
                image::rmi(store, &img.id, true)?
                    .iter()
                    .map(ToString::to_string),
            );
        }
    }
    Ok(lines)
}

/// `rbox image prune`: [`remove_unused_images`], and the bytes it freed.
pub fn prune_images(store: &Store, all: bool) -> Result<(Vec<String>, u64)> {
    let before: u64 = df(store)?.iter().map(|r| r.size).sum();
    let lines = remove_unused_images(store, all)?;
    let after: u64 = df(store)?.iter().map(|r| r.size).sum();
    Ok((lines, before.saturating_sub(after)))
}

/// Bytes under the store's temp names (`.tmp-*` in blobs and snapshots).
fn temp_size(store: &Store) -> u64 {
    let mut total = 0;
    for d in ["blobs/sha256", "snapshots"] {
        let Ok(rd) = std::fs::read_dir(store.root().join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
