//! `rbox rmi`: untag an image, and delete it with the layers and blobs no
//! other image uses (an image the build cache keeps stays for it).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{short_id, ImageError, Result};
use crate::reference::Reference;
use crate::store::{io_err, temp_name, ImageRow, RefRow, Store, TempPath};

/// What `rmi` did, a name or an id at a time: Docker's `Untagged: …` and
/// `Deleted: …` lines (Display), the API's `{"Untagged": …}` objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// a name, as Docker writes it (`busybox:latest`)
    Untagged(String),
    /// the image's id or a layer's diff_id
    Deleted(String),
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Removed::Untagged(name) => write!(f, "Untagged: {name}"),
            Removed::Deleted(id) => write!(f, "Deleted: {id}"),
        }
    }
}

/// `rbox rmi [-f] IMAGE`: what was untagged and deleted, in order.
pub fn rmi(store: &Store, what: &str, force: bool) -> Result<Vec<Removed>> {
    let lock = store.lock()?;
    let img = store.resolve(what)?;
    let refs = store.refs(&img.id)?;
    let mut out = Vec::new();
    let untag = names_to_untag(what, &refs, &img.id, force)?;
    // a built image is often the build cache's image of its last step too:
    // untagged, the cache keeps it (`builder prune` removes it); an image
    // only the cache keeps, named by its id, goes with its cache entries
    let cached = store.cached_image(&img.id)?;
    if cached && refs.is_empty() {
        store.cache_forget_image(&img.id)?;
    }
    let delete = untag.len() == refs.len() && (refs.is_empty() || !cached);
    if delete {
        if let Some(c) = store.containers_of(&img.id)?.first() {
            return Err(ImageError::InUse {
                image: short_id(&img.id).into(),
                container: c.clone(),
            });
        }
    }
    for name in &untag {
        store.delete_ref(name)?;
        let familiar = Reference::parse_named(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.to_string());
        out.push(Removed::Untagged(familiar));
    }
    let trash = if delete {
        delete_image(store, &img, &mut out)?
    } else {
        Vec::new()
    };
    // out of the final names while still locked, removed after the commit
    let moved = move_aside(trash)?;
    store.sweep_orphans();
    if let Err(e) = lock.commit() {
        for (p, t) in moved {
            let _ = fs::rename(t.path(), p);
            t.keep();
        }
        return Err(e.into());
    }
    drop(moved);
    Ok(out)
}

/// The names `rmi WHAT` removes: a reference (not an id) removes only
/// itself while the image keeps a tag; an id removes every name, and
/// names in more than one repository only with `force`.
fn names_to_untag<'a>(
    what: &str,
    refs: &'a [RefRow],
    image_id: &str,
    force: bool,
) -> Result<Vec<&'a str>> {
    let by_ref = Reference::parse(what)
        .ok()
        .map(|r| r.to_string())
        .and_then(|n| refs.iter().find(|x| x.name == n));
    let mut untag: Vec<&str> = Vec::new();
    if let Some(named) = by_ref {
        let name = &named.name;
        untag.push(name);
        let other_tags = refs.iter().any(|r| r.tag.is_some() && &r.name != name);
        if !other_tags {
            untag.extend(
                refs.iter()
                    .filter(|r| &r.name != name)
                    .map(|r| r.name.as_str()),
            );
        }
    } else {
        let repos: BTreeSet<&str> = refs.iter().map(|r| r.repository.as_str()).collect();
        if repos.len() > 1 && !force {
            return Err(ImageError::MultipleRepositories(short_id(image_id).into()));
        }
        untag.extend(refs.iter().map(|r| r.name.as_str()));
    }
    Ok(untag)
}

/// Delete the image's row, and the layers it was the last user of (a
/// `Deleted: …` line each). Returns the files that go with them.
fn delete_image(store: &Store, img: &ImageRow, out: &mut Vec<Removed>) -> Result<Vec<PathBuf>> {
    let mut trash = Vec::new();
    let layers = store.layers(&img.id)?;
    store.delete_image(&img.id)?;
    out.push(Removed::Deleted(img.id.clone()));
    trash.push(store.blob_path(&img.id));
    trash.push(store.blob_path(&img.manifest_digest));
    let mut seen = BTreeSet::new();
    for l in &layers {
        if !seen.insert(&l.diff_id) {
            continue;
        }
        if store.drop_layer_user(&l.diff_id)? <= 0 {
            store.delete_layer(&l.diff_id)?;
            out.push(Removed::Deleted(l.diff_id.clone()));
            trash.push(store.snapshot_path(&l.diff_id));
        }
        if store.blob_users(&l.blob_digest)? == 0 {
            trash.push(store.blob_path(&l.blob_digest));
        }
    }
    Ok(trash)
}

/// Each file of `trash` renamed to a locked temp name beside it (so no
/// other rbox sweeps it while this one removes it): the pairs of final
/// and temp names, to put back if the transaction fails.
fn move_aside(trash: Vec<PathBuf>) -> Result<Vec<(PathBuf, TempPath)>> {
    let mut moved = Vec::new();
    for p in trash {
        if !p.exists() {
            continue;
        }
        let parent = p.parent().unwrap_or(Path::new("/"));
        let t = parent.join(temp_name());
        fs::rename(&p, &t).map_err(io_err("rename", &p))?;
        // locked, so no other rbox sweeps it while this one removes it
        moved.push((p, TempPath::locked(t.clone()).unwrap_or(TempPath::new(t))));
    }
    Ok(moved)
}
