//! RUN's mounts (`--mount=type=…`) and heredoc scripts as the container's
//! mounts: a cache is a directory of the store kept between builds, a
//! secret the file `--secret` names, bind mounts read the context or, with
//! `from=`, a stage's or an image's root filesystem.
//!
//! A root filesystem is the layer snapshots of its image, never unpacked
//! again: a mount of it is an overlay of those snapshots (at the mount's
//! `source`, a directory in each) that the runtime makes in the container,
//! so that it lives and dies with the container's mount namespace and no
//! mount is ever left on the host. Read-only unless `rw`, whose writes go
//! to an upper dir of the step's scratch dir and are thrown away (as in
//! BuildKit); a file is bound from the layer that has it.
//!
//! A cache mount with `from=` is a cache of its own (BuildKit keys it by
//! id and the `from`), filled from the stage or image at `source` when it
//! is made. Cache dirs are made whole in the step's scratch dir and renamed
//! into place, so a build that dies half-way leaves none half-filled.
//! `sharing=locked` waits for other steps using the cache (of this build
//! or another); `sharing=private` takes a throwaway copy when it is in use.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::dockerfile::{Mount, Sharing};
use crate::build::path;
use crate::build::plan::{InlineFile, Origin, RunMount};
use crate::mounts::{MountSpec, Source};
use crate::rootfs::resolve_in_root;
use crate::store::Store;

use super::error::{ExecError, Result};
use super::layer::get_xattr;
use super::overlay::with_overlay;

/// A stage's or an image's root filesystem, as a mount's `from=` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// its image's id (`scratch`: nothing); the step's cache key takes it
    pub id: String,
    /// its layers' diff_ids, bottom first
    pub diff_ids: Vec<String>,
}

impl Rootfs {
    pub fn scratch() -> Rootfs {
        Rootfs {
            id: "scratch".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// Where a build finds what RUN's mounts name.
pub struct MountInputs<'a> {
    /// the build context's directory
    pub context: &'a Path,
    /// `--secret id=…,src=…`
    pub secrets: &'a [(String, PathBuf)],
    /// a directory of this step, removed after it: heredoc scripts, the
    /// upper dirs of `rw` mounts, a cache being made
    pub scratch: &'a Path,
    /// the root filesystem of a mount's `from=` (a stage or an image)
    pub rootfs: &'a dyn Fn(&Origin) -> Result<Rootfs>,
}

/// What a RUN's mounts come to.
#[derive(Debug, Default)]
pub struct RunMounts {
    /// the container's mounts
    pub mounts: Vec<MountSpec>,
    /// `KEY=value` of the `env=` secrets
    pub env: Vec<String>,
    /// the locks of `sharing=locked` and `private` caches: held while the
    /// step runs
    pub locks: Vec<File>,
}

/// The directory of the cache mount `id`: ROOT/build-cache/<sha256(id)>;
/// with `from=`, another for each `from` and source.
pub fn cache_dir(store: &Store, id: &str, from: Option<(&Rootfs, &str)>) -> PathBuf {
    let key = match from {
        None => id.to_string(),
        Some((fs, source)) => format!("{id}:{}:{source}", fs.id),
    };
    let h = format!("{:x}", Sha256::digest(key.as_bytes()));
    store.root().join("build-cache").join(h)
}

fn spec(source: Source, target: &str, readonly: bool) -> MountSpec {
    MountSpec {
        source,
        target: PathBuf::from(target),
        readonly,
        propagation: None,
        anonymous: false,
        must_exist: true,
    }
}

/// The container mounts of a RUN's `--mount`s and heredoc scripts, and the
/// environment variables of `env=` secrets.
pub fn run_mounts(
    store: &Store,
    mounts: &[RunMount],
    inline: &[InlineFile],
    inputs: &MountInputs<'_>,
) -> Result<RunMounts> {
    let mut out = RunMounts::default();
    for (i, m) in mounts.iter().enumerate() {
        let scratch = inputs.scratch.join(format!("mount-{i}"));
        match &m.mount {
            Mount::Bind {
                target,
                source,
                read_only,
                ..
            } => {
                let from = match &m.origin {
                    Origin::Context => None,
                    origin => Some((inputs.rootfs)(origin)?),
                };
                let s = match from {
                    None => bind_context(inputs.context, source, *read_only, &scratch)?,
                    Some(fs) => bind_rootfs(store, &fs, source, *read_only, &scratch)?,
                };
                out.mounts.push(spec(s, target, *read_only));
            }
            Mount::Cache {
                target,
                id,
                sharing,
                from,
                source,
                read_only,
                mode,
                uid,
                gid,
            } => {
                let from = match from {
                    Some(_) => Some((inputs.rootfs)(&m.origin)?),
                    None => None,
                };
                let seed = from.as_ref().map(|fs| (fs, source.as_str()));
                let dir = cache_dir(store, id, seed);
                let made = |dest: &Path| -> Result<()> {
                    make_cache(store, dest, seed, (*mode, *uid, *gid), &scratch)
                };
                if !dir.exists() {
                    made(&dir)?;
                }
                let (dir, lock) = share(&dir, *sharing, &scratch.join("private"), made)?;
                out.locks.extend(lock);
                out.mounts
                    .push(spec(Source::Bind(dir), target, *read_only));
            }
            Mount::Tmpfs { target, size } => {
                out.mounts.push(spec(
                    Source::Tmpfs {
                        size: *size,
                        mode: None,
                    },
                    target,
                    false,
                ));
            }
            Mount::Secret {
                id,
                target,
                env: env_name,
                required,
                ..
            } => {
                let Some((_, src)) = inputs.secrets.iter().find(|(i, _)| i == id) else {
                    if *required {
                        return Err(ExecError::MissingSecret(id.clone()));
                    }
                    continue;
                };
                if let Some(name) = env_name {
                    let value = fs::read_to_string(src).map_err(io("read", src))?;
                    out.env
                        .push(format!("{name}={}", value.trim_end_matches('\n')));
                }
                if target.is_some() || env_name.is_none() {
                    let t = target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{id}"));
                    out.mounts.push(spec(Source::Bind(src.clone()), &t, true));
                }
            }
            Mount::Ssh { .. } => {
                return Err(ExecError::Unsupported(
                    "RUN --mount=type=ssh is not supported: rbox build forwards no SSH agent (give the key as a --secret)",
                ))
            }
        }
    }
    for (i, f) in inline.iter().enumerate() {
        let p = inputs.scratch.join(format!("heredoc-{i}"));
        fs::write(&p, &f.content).map_err(io("write", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).map_err(io("chmod", &p))?;
        out.mounts.push(spec(Source::Bind(p), &f.path, true));
    }
    Ok(out)
}

/// A bind of the context at `source`. Symlinks of the context resolve
/// inside it, never to the host; the context never changes: `rw` writes
/// go to a copy (a file) or an overlay's upper dir (a directory) in
/// `scratch`.
fn bind_context(context: &Path, source: &str, read_only: bool, scratch: &Path) -> Result<Source> {
    let rel = inside(Path::new("/"), source);
    let resolved = resolve_in_root(context, &rel).map_err(io("resolve", &context.join(source)))?;
    let host = inside(context, &resolved.to_string_lossy());
    if read_only {
        return Ok(Source::Bind(host));
    }
    if host.is_dir() {
        return discarding(vec![host], scratch);
    }
    copy_file(&host, scratch)
}

/// A bind of `fs` at `source`: an overlay of its layers' directories
/// there, or the file from the layer that has it.
fn bind_rootfs(
    store: &Store,
    fs: &Rootfs,
    source: &str,
    read_only: bool,
    scratch: &Path,
) -> Result<Source> {
    let (rel, is_dir) = resolve_in_layers(store, fs, source)?;
    let roots = layer_roots(store, fs);
    if !is_dir {
        let file = layer_file(&roots, &rel).ok_or_else(|| missing(fs, source))?;
        if read_only {
            return Ok(Source::Bind(file));
        }
        return copy_file(&file, scratch);
    }
    let mut lower = layer_dirs(&roots, &rel);
    if read_only {
        // overlayfs wants two lower dirs when it has no upper one; an
        // empty one at the bottom changes nothing
        let empty = scratch.join("empty");
        fs::create_dir_all(&empty).map_err(io("create", &empty))?;
        if lower.is_empty() {
            return Ok(Source::Bind(empty));
        }
        lower.push(empty);
        check_paths(&lower)?;
        return Ok(Source::Overlay { lower, upper: None });
    }
    discarding(lower, scratch)
}

/// What `source` is in `fs`, symlinks followed inside it: its path (no
/// symlink in it) and whether it is a directory. Looked up in an overlay
/// of the layers mounted in a thread of its own (overlay.rs).
fn resolve_in_layers(store: &Store, fs: &Rootfs, source: &str) -> Result<(PathBuf, bool)> {
    let want = inside(Path::new("/"), source);
    let (_upper, found) = with_overlay(store, &fs.diff_ids, |root| {
        let rel = resolve_in_root(root, &want).map_err(io("resolve", &want))?;
        let host = root.join(rel.strip_prefix("/").unwrap_or(&rel));
        Ok(fs::symlink_metadata(&host).ok().map(|m| (rel, m.is_dir())))
    })?;
    found.ok_or_else(|| missing(fs, source))
}

fn missing(fs: &Rootfs, source: &str) -> ExecError {
    ExecError::MountSource {
        path: source.to_string(),
        from: fs.id.clone(),
    }
}

/// The layers' snapshot dirs, top first.
fn layer_roots(store: &Store, fs: &Rootfs) -> Vec<PathBuf> {
    fs.diff_ids
        .iter()
        .rev()
        .map(|d| store.snapshot_fs(d))
        .collect()
}

/// How `rel` looks in one layer (`root`): what it is there and whether an
/// opaque directory on the way (or `rel` itself) hides the layers below.
#[derive(Debug, PartialEq, Eq)]
enum InLayer {
    /// the layer has nothing at `rel`: lower layers show through, unless
    /// the flag (an opaque directory above it) says they are hidden
    Nothing { hides_below: bool },
    /// a whiteout or a file in the way: the layers below are hidden
    Hidden,
    /// the entry at `rel`, and whether the layers below are hidden there
    Entry { path: PathBuf, hides_below: bool },
}

fn in_layer(root: &Path, rel: &Path) -> InLayer {
    let mut p = root.to_path_buf();
    let mut opaque = false;
    let comps: Vec<_> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    for (k, c) in comps.iter().enumerate() {
        p.push(c);
        let last = k + 1 == comps.len();
        let Ok(md) = fs::symlink_metadata(&p) else {
            return InLayer::Nothing {
                hides_below: opaque,
            };
        };
        if last && !is_whiteout(&md) {
            let hides = opaque || (md.is_dir() && is_opaque(&p)) || !md.is_dir();
            return InLayer::Entry {
                path: p,
                hides_below: hides,
            };
        }
        if !md.is_dir() {
            return InLayer::Hidden;
        }
        opaque |= is_opaque(&p);
    }
    // `rel` is the root
    InLayer::Entry {
        path: p,
        hides_below: false,
    }
}

/// The directories overlayfs merges at `rel` (a directory in the merged
/// view), top first: each layer's, down to the first that hides the rest.
fn layer_dirs(roots: &[PathBuf], rel: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in roots {
        match in_layer(root, rel) {
            InLayer::Nothing { hides_below: false } => continue,
            InLayer::Nothing { hides_below: true } | InLayer::Hidden => break,
            InLayer::Entry { path, hides_below } => {
                if !path.is_dir() || path.is_symlink() {
                    break;
                }
                out.push(path);
                if hides_below {
                    break;
                }
            }
        }
    }
    out
}

/// The file at `rel` (not a directory in the merged view): the topmost
/// layer's entry.
fn layer_file(roots: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    for root in roots {
        match in_layer(root, rel) {
            InLayer::Nothing { hides_below: false } => continue,
            InLayer::Nothing { hides_below: true } | InLayer::Hidden => return None,
            InLayer::Entry { path, .. } => return Some(path),
        }
    }
    None
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))
    else {
        return false;
    };
    get_xattr(&c, c"trusted.overlay.opaque").is_ok_and(|v| v == b"y")
}

/// An overlay of `lower` (top first) whose writes go to an upper dir in
/// `scratch`, thrown away with it.
fn discarding(mut lower: Vec<PathBuf>, scratch: &Path) -> Result<Source> {
    let (upper, work, empty) = (
        scratch.join("upper"),
        scratch.join("work"),
        scratch.join("empty"),
    );
    for d in [&upper, &work, &empty] {
        fs::create_dir_all(d).map_err(io("create", d))?;
    }
    lower.push(empty);
    let mut all = lower.clone();
    all.extend([upper.clone(), work.clone()]);
    check_paths(&all)?;
    Ok(Source::Overlay {
        lower,
        upper: Some((upper, work)),
    })
}

/// A copy of `file` in `scratch` to bind writable (writes thrown away).
fn copy_file(file: &Path, scratch: &Path) -> Result<Source> {
    fs::create_dir_all(scratch).map_err(io("create", scratch))?;
    let copy = scratch.join("file");
    fs::copy(file, &copy).map_err(io("copy", file))?;
    Ok(Source::Bind(copy))
}

/// overlayfs's options cannot hold a path with `,` or `:`, and take one
/// page.
fn check_paths(paths: &[PathBuf]) -> Result<()> {
    if let Some(bad) = paths
        .iter()
        .find(|p| p.to_string_lossy().contains([',', ':']))
    {
        return Err(ExecError::OverlayPath(bad.clone()));
    }
    let len: usize = paths.iter().map(|p| p.as_os_str().len() + 12).sum();
    if len >= 4000 {
        return Err(ExecError::TooManyLayers(paths.len()));
    }
    Ok(())
}

/// Makes the cache dir `dest`: made whole in `scratch` (with its mode and
/// owner, filled from `seed`'s source), then renamed into place; another
/// step that made it first wins.
fn make_cache(
    store: &Store,
    dest: &Path,
    seed: Option<(&Rootfs, &str)>,
    (mode, uid, gid): (Option<u32>, Option<u32>, Option<u32>),
    scratch: &Path,
) -> Result<()> {
    let tmp = scratch.join("cache");
    fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode.unwrap_or(0o755)))
        .map_err(io("chmod", &tmp))?;
    nix::unistd::chown(
        &tmp,
        Some(nix::unistd::Uid::from_raw(uid.unwrap_or(0))),
        Some(nix::unistd::Gid::from_raw(gid.unwrap_or(0))),
    )
    .map_err(|e| io("chown", &tmp)(e.into()))?;
    if let Some((fs, source)) = seed {
        let want = inside(Path::new("/"), source);
        with_overlay(store, &fs.diff_ids, |root| {
            Ok(crate::cp::copy_up(root, &want, &tmp)?)
        })?;
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    match fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(io("rename", &tmp)(e)),
    }
}

/// The cache dir a step mounts and the lock it holds: `shared` mounts it
/// as is, `locked` waits for the other steps using it, `private` takes a
/// fresh one (made by `make` at `spare`) when another step uses it.
fn share(
    dir: &Path,
    sharing: Sharing,
    spare: &Path,
    make: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, Option<File>)> {
    if sharing == Sharing::Shared {
        return Ok((dir.to_path_buf(), None));
    }
    let f = File::open(dir).map_err(io("open", dir))?;
    let op = match sharing {
        Sharing::Locked => libc::LOCK_EX,
        _ => libc::LOCK_EX | libc::LOCK_NB,
    };
    // SAFETY: flock on a descriptor we hold; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        return Ok((dir.to_path_buf(), Some(f)));
    }
    let e = std::io::Error::last_os_error();
    if sharing == Sharing::Private && e.kind() == std::io::ErrorKind::WouldBlock {
        make(spare)?;
        return Ok((spare.to_path_buf(), None));
    }
    Err(io("lock", dir)(e))
}

/// `source` taken inside `root`, as BuildKit takes a bind source: `..`
/// stops at the root (Go's `path.Clean` of it made absolute).
fn inside(root: &Path, source: &str) -> PathBuf {
    let clean = path::clean(&format!("/{source}"));
    root.join(clean.trim_start_matches('/'))
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ExecError {
    let path = path.to_path_buf();
    move |source| ExecError::Io { op, path, source }
}

#[cfg(test)]
mod tests;
