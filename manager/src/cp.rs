//! `rbox cp`: files and directories between the host and a container,
//! running or not, as tar streams (`-` reads or writes one).
//!
//! Inside the container every path is resolved by the kernel within the
//! container's root (`openat2` with `RESOLVE_IN_ROOT`): a symlink in the
//! image, even an absolute one, never leads out to the host. Paths under a
//! bind mount or named volume resolve within that mount's host directory,
//! so files go into volumes as they would from inside.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};

use crate::container::record::Container;
use crate::mounts::Source;
use crate::store::Store;

/// What `cp` refuses, naming the path and why.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("tar entry {}: `..` is not allowed", .0.display())]
    DotDot(PathBuf),
    #[error("no such file or directory in container {container}: {path}")]
    NoSource { container: String, path: String },
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: no file name", .0.display())]
    NoFileName(PathBuf),
    #[error("{}: no such directory on the host", .0.display())]
    NoHostDirectory(PathBuf),
    #[error("copying between containers is not supported")]
    BetweenContainers,
    #[error("{container}:{path}: on a read-only mount")]
    ReadOnly { container: String, path: String },
    #[error("{container}:{path}: not a directory (a tar stream is extracted into one)")]
    StreamNeedsDirectory { container: String, path: String },
    #[error("{container}:{}: no such directory in the container", .path.display())]
    NoDirectoryIn { container: String, path: PathBuf },
    #[error("copy-up: tar thread panicked")]
    TarThreadPanicked,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, CopyError>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.to_path_buf();
    move |source| CopyError::Io { op, path, source }
}

fn errno(op: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> CopyError {
    let path = path.to_path_buf();
    move |e| CopyError::Io {
        op,
        path,
        source: e.into(),
    }
}

/// A directory tree paths are confined to: the container's rootfs, or the
/// host directory of a bind mount or volume.
pub struct Root {
    fd: OwnedFd,
    /// a `:ro` bind mount or volume: nothing is copied into it
    readonly: bool,
    /// how users see it, for messages: `ctr:/path`
    label: String,
}

/// The root a container path lives in, and the path inside it.
pub fn resolve(store: &Store, c: &Container, path: &str) -> Result<(Root, PathBuf)> {
    let abs = Path::new("/").join(path.trim_start_matches('/'));
    let mut best: Option<(&Path, PathBuf, bool)> = None;
    for m in &c.spec.mounts {
        let host = match &m.source {
            Source::Bind(p) => p.clone(),
            Source::Volume(Some(name)) => crate::store::volume_dir(store.root(), name),
            _ => continue,
        };
        if abs.starts_with(&m.target)
            && best
                .as_ref()
                .is_none_or(|(t, _, _)| m.target.components().count() > t.components().count())
        {
            best = Some((m.target.as_path(), host, m.readonly));
        }
    }
    let (root, rel, readonly) = match best {
        Some((target, host, ro)) => (
            host,
            abs.strip_prefix(target).unwrap_or(&abs).to_path_buf(),
            ro,
        ),
        None => (
            c.bundle.join("rootfs"),
            abs.strip_prefix("/").unwrap_or(&abs).to_path_buf(),
            false,
        ),
    };
    let fd = nix::fcntl::open(
        &root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", &root))?;
    Ok((
        Root {
            // SAFETY: open returned a new descriptor we own
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            readonly,
            label: format!("{}:{}", c.name, abs.display()),
        },
        rel,
    ))
}

impl Root {
    fn shown(&self, rel: &Path) -> PathBuf {
        PathBuf::from(format!("{} ({})", self.label, rel.display()))
    }

    /// Opens `rel` within the root; symlinks followed inside it only.
    fn open(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.fd.as_raw_fd(), rel, how).map_err(errno("open", &self.shown(rel)))?;
        // SAFETY: openat2 returned a new descriptor we own
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// The last component of a path (`.` for the root itself).
fn split(rel: &Path) -> (PathBuf, CString) {
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel.file_name().unwrap_or(OsStr::new("."));
    (
        parent,
        CString::new(name.as_bytes()).expect("no NUL in a path"),
    )
}

/// Writes `rel` (a file, symlink or directory tree in `root`) to `tar` as
/// entries named `name/…`.
pub fn tar_from_root(root: &Root, rel: &Path, name: &Path, tar: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(tar);
    b.follow_symlinks(false);
    let (parent, leaf) = split(rel);
    let dir = root.open(&parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    add_entry(root, &mut b, &dir, &leaf, rel, name)?;
    b.finish().map_err(io_err("write tar", Path::new("-")))
}

fn header_from(st: &nix::sys::stat::FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn add_entry<W: Write>(
    root: &Root,
    b: &mut tar::Builder<W>,
    dir: &OwnedFd,
    leaf: &CString,
    rel: &Path,
    name: &Path,
) -> Result<()> {
    let shown = root.shown(rel);
    let st = fstatat(
        Some(dir.as_raw_fd()),
        leaf.as_c_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(errno("stat", &shown))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let tar_err = io_err("write tar", &shown);
    if kind == SFlag::S_IFDIR {
        let mut h = header_from(&st, tar::EntryType::Directory);
        b.append_data(&mut h, name, io::empty()).map_err(tar_err)?;
        let sub = open_at(dir, leaf, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &shown)?;
        let mut d = nix::dir::Dir::from_fd(
            sub.as_fd()
                .try_clone_to_owned()
                .map_err(io_err("dup", &shown))?
                .into_raw_fd_owned(),
        )
        .map_err(errno("read dir", &shown))?;
        let mut names: Vec<CString> = d
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        names.sort();
        for n in names {
            let os = OsStr::from_bytes(n.as_bytes());
            add_entry(root, b, &sub, &n, &rel.join(os), &name.join(os))?;
        }
    } else if kind == SFlag::S_IFREG {
        let f = File::from(open_at(dir, leaf, OFlag::O_RDONLY, &shown)?);
        let mut h = header_from(&st, tar::EntryType::Regular);
        h.set_size(st.st_size as u64);
        b.append_data(&mut h, name, f.take(st.st_size as u64))
            .map_err(tar_err)?;
    } else if kind == SFlag::S_IFLNK {
        let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), leaf.as_c_str())
            .map_err(errno("readlink", &shown))?;
        let mut h = header_from(&st, tar::EntryType::Symlink);
        b.append_link(&mut h, name, Path::new(&target))
            .map_err(tar_err)?;
    } else {
        eprintln!(
            "rbox cp: skipped {}: not a file, directory or symlink",
            shown.display()
        );
    }
    Ok(())
}

trait IntoRawOwned {
    fn into_raw_fd_owned(self) -> std::os::fd::RawFd;
}

impl IntoRawOwned for OwnedFd {
    fn into_raw_fd_owned(self) -> std::os::fd::RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self)
    }
}

/// One component below `dir`, never following a symlink.
fn open_at(dir: &OwnedFd, leaf: &CString, flags: OFlag, shown: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        leaf.as_c_str(),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", shown))?;
    // SAFETY: openat returned a new descriptor we own
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Options of an extraction into a container.
pub struct Extract {
    /// keep the archive's uid/gid (`cp -a`); else root owns what is copied
    pub keep_owner: bool,
}

/// Extracts a tar stream into directory `rel` of `root`: every entry's
/// parent is resolved within the root, the entry made without following a
/// symlink in its place.
pub fn untar_into_root(root: &Root, rel: &Path, tar: impl Read, opts: &Extract) -> Result<()> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(io_err("read tar", Path::new("-")))?;
    let mut dir_times = Vec::new();
    for e in entries {
        let mut e = e.map_err(io_err("read tar", Path::new("-")))?;
        let raw = e
            .path()
            .map_err(io_err("read tar", Path::new("-")))?
            .into_owned();
        // relative, without `..`: the archive names what is below `rel`
        let mut clean = PathBuf::new();
        for comp in raw.components() {
            match comp {
                Component::Normal(n) => clean.push(n),
                Component::CurDir | Component::RootDir => {}
                _ => return Err(CopyError::DotDot(raw.to_path_buf())),
            }
        }
        let target = rel.join(&clean);
        if clean.as_os_str().is_empty() {
            continue;
        }
        let shown = root.shown(&target);
        let (parent, leaf) = split(&target);
        let dir = root.open(&parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let h = e.header();
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644));
        let (uid, gid) = if opts.keep_owner {
            (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)
        } else {
            (0, 0)
        };
        let mtime = h.mtime().unwrap_or(0) as i64;
        let kind = h.entry_type();
        let remove_old = |dir: &OwnedFd| {
            // a file or symlink in the way is replaced; a directory is not
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                leaf.as_c_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        };
        match kind {
            tar::EntryType::Directory => {
                match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), leaf.as_c_str(), mode) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(errno("mkdir", &shown)(e)),
                }
                let d = open_at(&dir, &leaf, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &shown)?;
                fchmod(d.as_raw_fd(), mode).map_err(errno("chmod", &shown))?;
                fchown(
                    d.as_raw_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(errno("chown", &shown))?;
                dir_times.push((d, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_old(&dir);
                let f = open_at(
                    &dir,
                    &leaf,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                    &shown,
                )?;
                let mut f = File::from(f);
                io::copy(&mut e, &mut f).map_err(io_err("write", &shown))?;
                fchmod(f.as_raw_fd(), mode).map_err(errno("chmod", &shown))?;
                fchown(
                    f.as_raw_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(errno("chown", &shown))?;
                set_mtime(&f, mtime);
            }
            tar::EntryType::Symlink => {
                let link = e
                    .link_name()
                    .map_err(io_err("read tar", &shown))?
                    .unwrap_or_default()
                    .into_owned();
                remove_old(&dir);
                nix::unistd::symlinkat(link.as_path(), Some(dir.as_raw_fd()), leaf.as_c_str())
                    .map_err(errno("symlink", &shown))?;
                let _ = nix::unistd::fchownat(
                    Some(dir.as_raw_fd()),
                    leaf.as_c_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                );
            }
            tar::EntryType::Link => {
                let src = e
                    .link_name()
                    .map_err(io_err("read tar", &shown))?
                    .unwrap_or_default()
                    .into_owned();
                let src_rel = rel.join(src.strip_prefix("/").unwrap_or(&src));
                let (sp, sl) = split(&src_rel);
                let sdir = root.open(&sp, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                remove_old(&dir);
                nix::unistd::linkat(
                    Some(sdir.as_raw_fd()),
                    sl.as_c_str(),
                    Some(dir.as_raw_fd()),
                    leaf.as_c_str(),
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(errno("link", &shown))?;
            }
            other => {
                eprintln!(
                    "rbox cp: skipped {} ({other:?}): not a file, directory or link",
                    shown.display()
                );
            }
        }
    }
    // directories last: their entries changed their mtime
    for (d, mtime) in dir_times.iter().rev() {
        set_mtime(
            &File::from(d.try_clone().map_err(io_err("dup", Path::new(".")))?),
            *mtime,
        );
    }
    Ok(())
}

fn set_mtime(f: &File, mtime: i64) {
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    let _ = nix::sys::stat::futimens(f.as_raw_fd(), &t, &t);
}

/// What a path names, inside a root.
fn kind_in_root(root: &Root, rel: &Path) -> Option<SFlag> {
    let fd = root.open(rel, OFlag::O_PATH).ok()?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).ok()?;
    Some(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))
}

/// Docker's naming: into DEST if it is a directory (as the source's base
/// name, or its contents for `SRC/.`); else as DEST, whose parent must be
/// a directory. Returns (the directory to extract into, the top name).
fn destination(
    src: &str,
    dest_is_dir: bool,
    dest_exists: bool,
    dest: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let contents = src.ends_with("/.");
    let base = Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if dest_is_dir {
        if contents {
            return Ok((dest.to_path_buf(), PathBuf::new()));
        }
        return Ok((dest.to_path_buf(), base));
    }
    if dest_exists && contents {
        return Err(CopyError::NotADirectory(dest.to_path_buf()));
    }
    let parent = dest.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = dest
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| CopyError::NoFileName(dest.to_path_buf()))?;
    Ok((parent, name))
}

/// Where a `cp` argument points.
pub enum Location {
    Host(PathBuf),
    Stdio,
    Container { container: String, path: String },
}

impl Location {
    /// `-`, `CONTAINER:PATH`, or a host path (a colon after a slash is a
    /// host path, like Docker's `./a:b`).
    pub fn parse(s: &str) -> Location {
        if s == "-" {
            return Location::Stdio;
        }
        match s.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') => Location::Container {
                container: c.to_string(),
                path: p.to_string(),
            },
            _ => Location::Host(PathBuf::from(s)),
        }
    }
}

/// Copies out of a container: to a host path, or a tar stream on stdout.
pub fn copy_out(store: &Store, c: &Container, src: &str, dest: &Location) -> Result<()> {
    let (root, rel) = resolve(store, c, src)?;
    if kind_in_root(&root, &rel).is_none() {
        return Err(CopyError::NoSource {
            container: c.name.clone(),
            path: src.to_string(),
        });
    }
    let base = Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    match dest {
        Location::Stdio => tar_from_root(&root, &rel, &base, io::stdout().lock()),
        Location::Host(dest) => {
            let meta = std::fs::metadata(dest).ok();
            let (into, top) = destination(
                src,
                meta.as_ref().is_some_and(|m| m.is_dir()),
                meta.is_some(),
                dest,
            )?;
            let into = if into.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                into
            };
            if !into.is_dir() {
                return Err(CopyError::NoHostDirectory(into));
            }
            let top = if top.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                top
            };
            // through a pipe: the container side is read by one thread
            let (r, w) = nix::unistd::pipe().map_err(errno("pipe", Path::new("-")))?;
            let (r, w) = (File::from(r), File::from(w));
            let writer = std::thread::scope(|s| {
                let t = s.spawn(|| tar_from_root(&root, &rel, &top, w));
                let mut archive = tar::Archive::new(r);
                archive.set_preserve_permissions(true);
                archive.set_overwrite(true);
                let unpacked = archive.unpack(&into).map_err(io_err("write", &into));
                drop(archive);
                let written = t.join().expect("the tar thread does not panic");
                written.and(unpacked)
            });
            writer
        }
        Location::Container { .. } => Err(CopyError::BetweenContainers),
    }
}

/// Copies into a container: a host path, or a tar stream from stdin
/// (extracted into the destination directory).
pub fn copy_in(
    store: &Store,
    src: &Location,
    c: &Container,
    dest: &str,
    opts: &Extract,
) -> Result<()> {
    let (root, rel) = resolve(store, c, dest)?;
    if root.readonly {
        return Err(CopyError::ReadOnly {
            container: c.name.clone(),
            path: dest.to_string(),
        });
    }
    let kind = kind_in_root(&root, &rel);
    match src {
        Location::Stdio => {
            if kind != Some(SFlag::S_IFDIR) {
                return Err(CopyError::StreamNeedsDirectory {
                    container: c.name.clone(),
                    path: dest.to_string(),
                });
            }
            untar_into_root(&root, &rel, io::stdin().lock(), opts)
        }
        Location::Host(path) => {
            let src_s = path.display().to_string();
            let meta = std::fs::symlink_metadata(
                path.to_str()
                    .map_or(path.as_path(), |s| Path::new(s.trim_end_matches("/."))),
            )
            .map_err(io_err("stat", path))?;
            let (into, top) =
                destination(&src_s, kind == Some(SFlag::S_IFDIR), kind.is_some(), &rel)?;
            if kind_in_root(&root, &into) != Some(SFlag::S_IFDIR) {
                return Err(CopyError::NoDirectoryIn {
                    container: c.name.clone(),
                    path: Path::new("/").join(&into),
                });
            }
            let (r, w) = nix::unistd::pipe().map_err(errno("pipe", Path::new("-")))?;
            let (r, w) = (File::from(r), File::from(w));
            let src_dir = PathBuf::from(src_s.trim_end_matches("/."));
            std::thread::scope(|s| {
                let t = s.spawn(move || -> io::Result<()> {
                    let mut b = tar::Builder::new(w);
                    b.follow_symlinks(false);
                    let name = if top.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        top
                    };
                    if meta.is_dir() {
                        b.append_dir_all(&name, &src_dir)?;
                    } else {
                        b.append_path_with_name(&src_dir, &name)?;
                    }
                    b.finish()
                });
                let extracted = untar_into_root(&root, &into, r, opts);
                let written = t.join().expect("the tar thread does not panic");
                extracted.and(written.map_err(io_err("read", path)))
            })
        }
        Location::Container { .. } => Err(CopyError::BetweenContainers),
    }
}

/// Docker's copy-up for a new, empty volume `dir`: what the image has at
/// `target` (a directory) is copied into it, with owners, modes and times,
/// and the volume's top directory takes the image directory's owner and
/// mode. Paths are resolved inside `rootfs`: a symlink in the image never
/// leads the copy to the host.
pub fn copy_up(rootfs: &Path, target: &Path, dir: &Path) -> Result<()> {
    let open_root = |p: &Path, label: String| -> Result<Root> {
        let fd = nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", p))?;
        Ok(Root {
            // SAFETY: open returned a new descriptor we own
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            readonly: false,
            label,
        })
    };
    let image = open_root(rootfs, "image".into())?;
    let rel = target.strip_prefix("/").unwrap_or(target);
    if kind_in_root(&image, rel) != Some(SFlag::S_IFDIR) {
        return Ok(()); // nothing there to copy
    }
    let volume = open_root(dir, format!("volume {}", dir.display()))?;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno("pipe", dir))?;
    let (r, w) = (File::from(r), File::from(w));
    let copied = std::thread::scope(|s| {
        let image = &image;
        let writer = s.spawn(move || tar_from_root(image, rel, Path::new("."), w));
        let read = untar_into_root(&volume, Path::new(""), r, &Extract { keep_owner: true });
        let written = writer.join().unwrap_or(Err(CopyError::TarThreadPanicked));
        read.and(written)
    });
    copied?;
    let top = image.open(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let st = nix::sys::stat::fstat(top.as_raw_fd()).map_err(errno("stat", target))?;
    fchown(
        volume.fd.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(errno("chown", dir))?;
    fchmod(
        volume.fd.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(errno("chmod", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_naming() {
        let d = |src, is_dir, exists, dest: &str| destination(src, is_dir, exists, Path::new(dest));
        assert_eq!(
            d("a.txt", true, true, "/tmp").unwrap(),
            ("/tmp".into(), "a.txt".into())
        );
        assert_eq!(
            d("/x/a.txt", false, false, "/tmp/b.txt").unwrap(),
            ("/tmp".into(), "b.txt".into())
        );
        assert_eq!(
            d("/x/dir/.", true, true, "/tmp").unwrap(),
            ("/tmp".into(), PathBuf::new())
        );
        assert!(d("/x/dir/.", false, true, "/tmp/file").is_err());
    }

    #[test]
    fn locations() {
        assert!(matches!(Location::parse("-"), Location::Stdio));
        assert!(matches!(Location::parse("./a:b"), Location::Host(_)));
        assert!(matches!(
            Location::parse("web:/tmp"),
            Location::Container { .. }
        ));
    }
}
