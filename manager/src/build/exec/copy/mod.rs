//! COPY and ADD: what a step's sources name in the build context (or in
//! the rootfs of an earlier stage or an image, `--from`) written into an
//! overlay of the stage's layers, whose upper dir becomes the step's layer.
//!
//! BuildKit's semantics (dockerfile2llb's `dispatchCopy`, its file
//! backend, tonistiigi/fsutil's copy):
//!
//! - a source is cleaned against the root of its tree (`../x` is `/x`);
//!   wildcards match one component at a time (Go's `filepath.Match`); a
//!   source without wildcards must exist (else `"/x": not found`), one
//!   with them may match nothing; a symlink a source names is followed
//!   inside its tree, symlinks below a copied directory are copied as they
//!   are; `.dockerignore` hides what it excludes, `--exclude` too;
//! - a directory copies its contents; a file goes into a destination that
//!   ends in `/` or is a directory, else it becomes the destination; more
//!   than one source (or a wildcard matching several paths onto what is
//!   not a directory) needs a destination ending in `/`; missing parents
//!   of the destination are made (0755, `--chown`'s owner), and so is the
//!   destination a directory's contents go into (0755 or `--chmod`'s
//!   mode, `--chown`'s owner, else root's: not the source directory's);
//! - owners: `--chown` by name or number; without it, root for files from
//!   the context and heredocs, the source's owners for `--from` and for
//!   ADD's archives; `--chmod` octal or symbolic on what is copied; mtimes
//!   as in the source, clamped to `SOURCE_DATE_EPOCH`; hard links kept
//!   when both names are copied; a step that copies nothing (a wildcard
//!   matching nothing) still makes a layer, an empty one;
//! - `--parents` keeps each match's path (below the `/./` pivot, if any)
//!   under the destination;
//! - `--link` is a plain copy here: the layer is the same diff, only
//!   BuildKit's rebase of it onto a changed parent is not done;
//! - ADD extracts a local tar (plain, gzip, zstd) into the destination
//!   unless `--unpack=false`, with the archive's modes (`--chmod` is not
//!   applied to them); ADD of an http(s) URL fetches it on the host
//!   (remote.rs) into a file of mode 0600 named by the URL's path, not
//!   extracted unless `--unpack=true`.

mod archive;
mod chmod;
mod digest;
mod error;
mod glob;
mod owner;
mod remote;
mod select;
mod target;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fs::File;
use std::io::Cursor;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::build::context::Context;
use crate::build::ignore::Ignore;
use crate::build::path;
use crate::build::plan::{CopyKind, CopySource, CopyStep};
use crate::image::NewLayer;
use crate::rootfs::IdFiles;
use crate::store::Store;

pub use digest::sources_digest;
pub use error::CopyStepError;
pub use owner::resolve as resolve_chown;
pub use remote::{Fetched, Remote};
pub use select::{Match, Tree};
pub use target::Owner;

use super::commit::Layers;
use super::error::{ExecError, Result};
use super::layer::commit_upper;
use super::overlay::with_overlay;
use target::{cstr, split, Dir, Meta, Target};

/// Where a step's sources are.
#[derive(Clone, Copy)]
pub enum CopyFrom<'a> {
    Context(&'a Context),
    /// The rootfs of an earlier stage or of an image (`COPY --from`).
    Layers(&'a Layers),
}

/// Runs `step` on the stage whose layers are `layers`: the step's layer,
/// an empty one when it wrote nothing (a wildcard that matched nothing),
/// as BuildKit's.
pub fn copy(
    store: &Store,
    layers: &Layers,
    step: &CopyStep,
    from: CopyFrom<'_>,
    epoch: Option<u64>,
) -> Result<Option<NewLayer>> {
    // the store's connection stays in this thread: paths only go to the
    // step's
    let from_layers: Vec<PathBuf> = match from {
        // bottom first, each once
        CopyFrom::Layers(l) => {
            let mut dirs = store.lower_dirs(l.diff_ids.iter().map(String::as_str));
            dirs.reverse();
            dirs
        }
        CopyFrom::Context(_) => Vec::new(),
    };
    let (upper, _wrote) = with_overlay(store, &layers.diff_ids, |merged| {
        let owner = match &step.chown {
            Some(c) => {
                let files = IdFiles::read(merged).map_err(CopyStepError::from)?;
                let (u, g) = owner::resolve(c, &files)?;
                Owner::Set(u, g)
            }
            None if matches!(from, CopyFrom::Context(_)) => Owner::Set(0, 0),
            None => Owner::Keep,
        };
        match from {
            CopyFrom::Context(ctx) => {
                copy_into(merged, step, Some(ctx.tree()), owner, epoch).map_err(ExecError::from)
            }
            CopyFrom::Layers(_) => with_rootfs(merged, &from_layers, |root| {
                let tree = Tree {
                    root,
                    ignore: None,
                    remote: None,
                };
                copy_into(merged, step, Some(tree), owner, epoch).map_err(ExecError::from)
            }),
        }
    })?;
    Ok(Some(commit_upper(store, &upper.fs(), epoch)?))
}

/// Runs `f` on the rootfs of the snapshots `layers` (bottom first), read-only: a lower-only overlay
/// mounted beside `merged` (in the step's mount namespace), the snapshot
/// itself for one layer, an empty directory for none.
fn with_rootfs(
    merged: &Path,
    layers: &[PathBuf],
    f: impl FnOnce(&Path) -> Result<bool>,
) -> Result<bool> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let base = merged.parent().unwrap_or(merged);
    let dir = base.join("from");
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| ExecError::Io { op, path, source }
    };
    match layers {
        [one] => return f(one),
        [] => {
            std::fs::create_dir(&dir).map_err(io("create", &dir))?;
            let out = f(&dir);
            std::fs::remove_dir(&dir).map_err(io("remove", &dir))?;
            return out;
        }
        _ => {}
    }
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if let Some(bad) = lower.iter().find(|l| l.contains([',', ':'])) {
        return Err(ExecError::OverlayPath(PathBuf::from(bad)));
    }
    let data = format!("lowerdir={}", lower.join(":"));
    if data.len() >= 4096 {
        return Err(ExecError::TooManyLayers(lower.len()));
    }
    std::fs::create_dir(&dir).map_err(io("create", &dir))?;
    mount(
        Some("overlay"),
        &dir,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(data.as_str()),
    )
    .map_err(|source| ExecError::Mount {
        target: dir.clone(),
        source,
    })?;
    let out = f(&dir);
    umount2(&dir, MntFlags::empty()).map_err(|source| ExecError::Umount {
        target: dir.clone(),
        source,
    })?;
    std::fs::remove_dir(&dir).map_err(io("remove", &dir))?;
    out
}

/// Whether a destination names a directory by its form: `/`, or ending in
/// `/` or `/.`.
fn names_a_dir(dest: &str) -> bool {
    dest.ends_with('/') || dest.ends_with("/.") || dest == "."
}

/// The step written into `root` (a plain directory: the merged overlay,
/// or any directory in tests) from `tree`. Returns whether anything was
/// written.
pub fn copy_into(
    root: &Path,
    step: &CopyStep,
    tree: Option<Tree<'_>>,
    owner: Owner,
    epoch: Option<u64>,
) -> std::result::Result<bool, CopyStepError> {
    let dest_is_dir = names_a_dir(&step.dest);
    if step.sources.len() > 1 && !dest_is_dir {
        return Err(CopyStepError::DestNotDirectory);
    }
    let excludes = Ignore::new(&step.excludes, "--exclude")
        .map_err(|_| CopyStepError::BadPattern(step.excludes.join(" ")))?;
    let mut t = Target::new(root, owner, step.chmod.clone(), epoch)?;
    let (parents, unpack) = match &step.kind {
        CopyKind::Copy { parents } => (*parents, false),
        CopyKind::Add { unpack, .. } => (false, *unpack != Some(false)),
    };
    let mut wrote = false;
    // BuildKit copies the paths first, then the heredocs
    for s in &step.sources {
        match s {
            CopySource::Path(p) => {
                let Some(tree) = tree else { continue };
                wrote |= copy_path(
                    &mut t,
                    tree,
                    step,
                    p,
                    &excludes,
                    parents,
                    unpack,
                    dest_is_dir,
                )?;
            }
            CopySource::Url(u) => {
                let remote = tree
                    .and_then(|t| t.remote)
                    .ok_or_else(|| CopyStepError::Url {
                        url: u.clone(),
                        why: "no URL can be fetched here".into(),
                    })?;
                copy_url(&mut t, step, u, remote, dest_is_dir)?;
                wrote = true;
            }
            CopySource::Inline { .. } => {}
        }
    }
    for s in &step.sources {
        if let CopySource::Inline { name, content } = s {
            let meta = Meta {
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: t.now(),
                mtime_nsec: 0,
            };
            let base = Path::new(name).file_name().unwrap_or(OsStr::new(name));
            let (parent, leaf, shown) = file_place(&mut t, &step.dest, dest_is_dir, base)?;
            let keep = t.owner;
            if keep == Owner::Keep {
                t.owner = Owner::Set(0, 0);
            }
            let r = t.file_at(
                &parent,
                &leaf,
                &meta,
                &mut Cursor::new(content.as_bytes()),
                None,
                &shown,
            );
            t.owner = keep;
            r?;
            wrote = true;
        }
    }
    t.finish()?;
    Ok(wrote)
}

/// One path source: its matches placed under the destination.
#[allow(clippy::too_many_arguments)]
fn copy_path(
    t: &mut Target,
    tree: Tree<'_>,
    step: &CopyStep,
    source: &str,
    excludes: &Ignore,
    parents: bool,
    unpack: bool,
    dest_is_dir: bool,
) -> std::result::Result<bool, CopyStepError> {
    // --parents: the path below the pivot (`a/./b` keeps `b`) is kept
    let pivot = match (parents, source.split_once("/./")) {
        (false, _) => None,
        (true, Some((p, _))) => Some(
            path::clean(&format!("/{p}"))
                .trim_start_matches('/')
                .to_string(),
        ),
        (true, None) => Some(String::new()),
    };
    let source_path = source.replacen("/./", "/", usize::from(parents));
    let matches = select::select(tree, &source_path, excludes)?;
    if matches.len() > 1 && !dest_is_dir && !parents {
        let d = t.resolve(&step.dest)?;
        if !t.stat(&d).is_some_and(|m| m.is_dir()) {
            return Err(CopyStepError::DestNotDirectory);
        }
    }
    for m in &matches {
        if let Some(pivot) = &pivot {
            copy_with_parents(t, tree, step, m, pivot)?;
            continue;
        }
        let src = tree.root.join(&m.resolved);
        if unpack && !m.is_dir() {
            if let Some(r) = archive::open(&src)? {
                let d = t.resolve(&step.dest)?;
                t.mkdir_all(&d)?;
                let keep = t.owner;
                if keep == Owner::Set(0, 0) && step.chown.is_none() {
                    t.owner = Owner::Keep; // the archive's owners
                }
                // the archive's modes: BuildKit's unpack takes no --chmod
                let chmod = t.chmod.take();
                let r = archive::extract(t, &d, r);
                t.owner = keep;
                t.chmod = chmod;
                r?;
                continue;
            }
        }
        if m.is_dir() {
            let dest_rel = {
                let ensure = if dest_is_dir {
                    step.dest.clone()
                } else {
                    parent_of(&step.dest)
                };
                let e = t.resolve(&ensure)?;
                t.mkdir_all(&e)?;
                t.resolve(&step.dest)?
            };
            let (parent_rel, leaf) = split(&dest_rel);
            let shown = Path::new("/").join(&dest_rel);
            let top = if dest_rel.as_os_str().is_empty() {
                t.mkdir_all(Path::new(""))?
            } else {
                let parent = t.mkdir_all(&parent_rel)?;
                t.dest_dir(&parent, &leaf, &shown)?
            };
            write_tree(t, tree, m, top, &shown)?;
        } else {
            let (parent, leaf, shown) =
                file_place(t, &step.dest, dest_is_dir, OsStr::new(m.name()))?;
            write_entry(t, &parent, &leaf, &src, &m.entries[0], &shown)?;
        }
    }
    Ok(!matches.is_empty())
}

/// ADD of a URL: the fetched file (0600, root's or `--chown`'s, its
/// mtime `Last-Modified`'s) named by the URL's path, into the destination
/// or as it; with `--unpack=true` an archive is extracted instead.
fn copy_url(
    t: &mut Target,
    step: &CopyStep,
    url: &str,
    remote: &Remote,
    dest_is_dir: bool,
) -> std::result::Result<(), CopyStepError> {
    let (checksum, unpack) = match &step.kind {
        CopyKind::Add { checksum, unpack } => (checksum.as_deref(), *unpack == Some(true)),
        CopyKind::Copy { .. } => (None, false),
    };
    let f = remote.fetch(url, checksum)?;
    if unpack {
        if let Some(r) = archive::open(&f.path)? {
            let d = t.resolve(&step.dest)?;
            t.mkdir_all(&d)?;
            return archive::extract(t, &d, r);
        }
    }
    let meta = Meta {
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: f.last_modified.unwrap_or_else(|| t.now()),
        mtime_nsec: 0,
    };
    let name = remote::file_name(url);
    let (parent, leaf, shown) = file_place(t, &step.dest, dest_is_dir, &name)?;
    let mut data = File::open(&f.path).map_err(|source| CopyStepError::Read {
        path: f.path.clone(),
        source,
    })?;
    let keep = t.owner;
    if keep == Owner::Keep {
        t.owner = Owner::Set(0, 0);
    }
    let r = t.file_at(&parent, &leaf, &meta, &mut data, None, &shown);
    t.owner = keep;
    r
}

/// Where a file named `name` goes: into the destination if it names or is
/// a directory, else as the destination. Its parent is made.
fn file_place(
    t: &mut Target,
    dest: &str,
    dest_is_dir: bool,
    name: &OsStr,
) -> std::result::Result<(Dir, std::ffi::CString, PathBuf), CopyStepError> {
    let ensure = if dest_is_dir {
        dest.to_string()
    } else {
        parent_of(dest)
    };
    let e = t.resolve(&ensure)?;
    t.mkdir_all(&e)?;
    let mut d = t.resolve(dest)?;
    if d.as_os_str().is_empty() || t.stat(&d).is_some_and(|m| m.is_dir()) {
        d.push(name);
    }
    let (parent_rel, leaf) = split(&d);
    let parent = t.mkdir_all(&parent_rel)?;
    Ok((parent, leaf, Path::new("/").join(&d)))
}

fn parent_of(dest: &str) -> String {
    let c = path::clean(dest);
    match c.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    }
}

/// `--parents`: the match's path below `pivot` kept under the destination,
/// the directories on the way made like those of the source.
fn copy_with_parents(
    t: &mut Target,
    tree: Tree<'_>,
    step: &CopyStep,
    m: &Match,
    pivot: &str,
) -> std::result::Result<(), CopyStepError> {
    let rel = m
        .path
        .strip_prefix(pivot)
        .unwrap_or(&m.path)
        .trim_start_matches('/');
    let d = t.resolve(&step.dest)?;
    let mut dir = t.mkdir_all(&d)?;
    let mut shown = Path::new("/").join(&d);
    let mut src_dir = PathBuf::from(pivot);
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let Some((last, middle)) = comps.split_last() else {
        return write_tree(t, tree, m, dir, &shown);
    };
    for c in middle {
        src_dir.push(c);
        shown.push(c);
        let md =
            std::fs::metadata(tree.root.join(&src_dir)).map_err(|source| CopyStepError::Read {
                path: tree.root.join(&src_dir),
                source,
            })?;
        dir = t.copied_dir(&dir, &cstr(OsStr::new(c)), &Meta::from(&md), &shown, false)?;
    }
    shown.push(last);
    let leaf = cstr(OsStr::new(last));
    if m.is_dir() {
        let top = t.copied_dir(&dir, &leaf, &Meta::from(&m.entries[0].md), &shown, false)?;
        write_tree(t, tree, m, top, &shown)
    } else {
        write_entry(
            t,
            &dir,
            &leaf,
            &tree.root.join(&m.resolved),
            &m.entries[0],
            &shown,
        )
    }
}

/// The entries below a matched directory, into `top`.
fn write_tree(
    t: &mut Target,
    tree: Tree<'_>,
    m: &Match,
    top: Dir,
    shown: &Path,
) -> std::result::Result<(), CopyStepError> {
    let src_top = tree.root.join(&m.resolved);
    let mut stack: Vec<(PathBuf, Dir)> = vec![(PathBuf::new(), top)];
    for e in &m.entries[1..] {
        let parent_rel = e.rel.parent().unwrap_or(Path::new(""));
        while stack.len() > 1 && stack.last().is_some_and(|(p, _)| p != parent_rel) {
            stack.pop();
        }
        let parent = stack.last().map(|(_, d)| d.clone()).expect("the top stays");
        let name = cstr(e.rel.file_name().unwrap_or(OsStr::new(".")));
        let at = shown.join(&e.rel);
        if e.md.is_dir() {
            let d = t.copied_dir(&parent, &name, &Meta::from(&e.md), &at, true)?;
            stack.push((e.rel.clone(), d));
        } else {
            write_entry(t, &parent, &name, &src_top.join(&e.rel), e, &at)?;
        }
    }
    Ok(())
}

/// A file, symlink or node `name` in `parent`, from `src`.
fn write_entry(
    t: &mut Target,
    parent: &Dir,
    name: &std::ffi::CStr,
    src: &Path,
    e: &select::Entry,
    shown: &Path,
) -> std::result::Result<(), CopyStepError> {
    let meta = Meta::from(&e.md);
    if let Some(link) = &e.link {
        return t.symlink_at(parent, name, link, &meta, shown);
    }
    if !e.md.is_file() {
        return t.node_at(parent, name, &e.md, shown);
    }
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(|source| CopyStepError::Read {
            path: src.to_path_buf(),
            source,
        })?;
    let key = (e.md.nlink() > 1).then(|| (e.md.dev(), e.md.ino()));
    t.file_at(parent, name, &meta, &mut f, key, shown)
}

/// Extracts the tar stream `r` (plain, gzip or zstd) into the directory
/// `dir`, every entry inside it, owners left as they are: a build context
/// sent as a tar (`rbox build - < ctx.tar`).
pub fn extract_tar_into(
    dir: &Path,
    r: impl std::io::Read,
) -> std::result::Result<(), CopyStepError> {
    let stream =
        crate::image::unpack::decompress(std::io::BufReader::new(r)).map_err(|source| {
            CopyStepError::Read {
                path: PathBuf::from("the context tar"),
                source,
            }
        })?;
    let mut t = Target::new(dir, Owner::Untouched, None, None)?;
    archive::extract(&mut t, Path::new(""), stream)?;
    t.finish()
}
