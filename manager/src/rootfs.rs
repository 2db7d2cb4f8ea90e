//! Files of a container's rootfs, read as the container would see them:
//! paths resolved inside the rootfs (symlinks, even absolute ones, and
//! `..` never lead out of it).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// Largest /etc/passwd or /etc/group read from an image.
const ID_FILE_MAX: u64 = 4 << 20;

/// A file of the image that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("read {path} in the image: {source}")]
pub struct ReadError {
    pub path: &'static str,
    pub source: io::Error,
}

/// The image's /etc/passwd and /etc/group (None: the image has none), what
/// users and groups are resolved against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

impl IdFiles {
    pub fn read(rootfs: &Path) -> Result<IdFiles, ReadError> {
        Ok(IdFiles {
            passwd: read_in_root(rootfs, "etc/passwd")?,
            group: read_in_root(rootfs, "etc/group")?,
        })
    }
}

/// Read `rel` (e.g. "etc/passwd") inside `rootfs` without leaving it:
/// `openat2(RESOLVE_IN_ROOT)` resolves `..` and absolute symlinks against
/// the rootfs. None when the image has no such file.
pub fn read_in_root(rootfs: &Path, rel: &'static str) -> Result<Option<String>, ReadError> {
    let err = |source| ReadError { path: rel, source };
    let root = File::open(rootfs).map_err(err)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(root.as_raw_fd(), rel, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(err(e.into())),
    };
    // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !f.metadata().map_err(err)?.is_file() {
        return Ok(None);
    }
    let mut s = String::new();
    f.take(ID_FILE_MAX).read_to_string(&mut s).map_err(err)?;
    Ok(Some(s))
}

/// Where `path` leads inside `rootfs`, symlinks followed as if `rootfs`
/// were `/` (`..` stops at it); the part that does not exist is taken as
/// written. Each prefix looked at has no symlink in it, so no lookup
/// leaves the rootfs.
pub fn resolve_in_root(rootfs: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut out = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        if exists {
            let host = rootfs.join(next.strip_prefix("/").expect("absolute"));
            match fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > 40 {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = fs::read_link(&host)?;
                    if target.is_absolute() {
                        out = PathBuf::from("/");
                    }
                    for t in target.components().rev() {
                        match t {
                            std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                            std::path::Component::ParentDir => todo.push("..".into()),
                            _ => {}
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => exists = false,
                Err(e) => return Err(e),
            }
        }
        out = next;
    }
    Ok(out)
}
