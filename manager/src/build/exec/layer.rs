//! A build step's layer: the writable overlay layer (upper dir) a step
//! left behind, as the OCI layer tar of its changes and as the store's
//! snapshot of that layer.
//!
//! The upper dir is already in the store's snapshot format: overlayfs marks
//! a deleted entry with a 0:0 character device and a directory whose lower
//! content is hidden with `trusted.overlay.opaque=y`, the very form
//! `unpack` gives a pulled layer. So the upper dir becomes the snapshot by a
//! rename, and only the tar is written: it says the same in OCI's terms
//! (`.wh.NAME`, `.wh..wh..opq`).
//!
//! The tar is reproducible: entries in byte order of their names, numeric
//! owners without user or group names, hard links to the first name met,
//! and with an epoch (`SOURCE_DATE_EPOCH`) every mtime later than it
//! clamped to it, as BuildKit's `rewrite-timestamp` does.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::image::{temp_snapshot, GzipThread, ImageError, NewLayer};
use crate::store::{io_err, Store, StoreError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// overlayfs xattrs that change what a lower layer means; a tar cannot say
/// them (the host's overlay has `redirect_dir` or `metacopy` on)
const UNREPRESENTABLE: [&str; 2] = ["trusted.overlay.redirect", "trusted.overlay.metacopy"];
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {why}")]
    Unrepresentable { path: PathBuf, why: &'static str },
    #[error("write the layer tar: {0}")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

type Result<T> = std::result::Result<T, DiffError>;

/// The layer tar's digest (the diff_id) and the bytes of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTar {
    pub diff_id: String,
    /// the regular files' bytes, as `unpack` counts a layer's size
    pub size: u64,
}

/// Writes the OCI layer tar of the overlay upper dir `upper` to `out`.
/// overlayfs xattrs other than the opaque mark (origin, impure, nlink) are
/// left out of the tar; with `strip`, they are removed from `upper` too,
/// which then reads like an unpacked layer.
pub fn write_tar(
    upper: &Path,
    out: impl Write,
    epoch: Option<u64>,
    strip: bool,
) -> Result<LayerTar> {
    let mut w = Walker {
        root: upper.to_path_buf(),
        tar: tar::Builder::new(HashWriter::new(out)),
        links: HashMap::new(),
        epoch,
        strip,
        size: 0,
    };
    w.tar.mode(tar::HeaderMode::Complete);
    w.dir(Path::new(""))?;
    let hashed = w.tar.into_inner().map_err(DiffError::Write)?;
    Ok(LayerTar {
        diff_id: hashed.digest(),
        size: w.size,
    })
}

/// The layer a build step left in `upper` (the upper dir of an overlay
/// now unmounted): its tar, gzipped on a second core, becomes a pending
/// blob, and `upper` itself, renamed, the temp snapshot that
/// `image::commit_image` keeps. `upper` must be on the store's filesystem.
pub fn commit_upper(store: &Store, upper: &Path, epoch: Option<u64>) -> Result<NewLayer> {
    let blob = store.blob_writer()?;
    let blob_path = blob.path();
    let mut gz = GzipThread::new(blob);
    let tar = write_tar(upper, &mut gz, epoch, true)?;
    let blob = gz
        .finish()
        .map_err(io_err("write", &blob_path))?
        .finish(None)?;
    let snapshot = temp_snapshot(store)?;
    let fs_dir = snapshot.path().join("fs");
    fs::remove_dir(&fs_dir).map_err(io_err("remove", &fs_dir))?;
    fs::rename(upper, &fs_dir).map_err(io_err("rename", upper))?;
    Ok(NewLayer {
        diff_id: tar.diff_id,
        size: tar.size,
        blob_digest: blob.digest.clone(),
        blob: Some(blob),
        snapshot: Some(snapshot),
    })
}

struct Walker<W: Write> {
    root: PathBuf,
    tar: tar::Builder<HashWriter<W>>,
    /// (dev, ino) of files with more than one name: the first name written
    links: HashMap<(u64, u64), PathBuf>,
    epoch: Option<u64>,
    strip: bool,
    size: u64,
}

impl<W: Write> Walker<W> {
    fn read_err(&self, rel: &Path) -> impl FnOnce(io::Error) -> DiffError {
        let path = self.root.join(rel);
        move |source| DiffError::Read { path, source }
    }

    /// The entries of the directory `rel`, in byte order, each followed by
    /// its own content when it is a directory.
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let abs = self.root.join(rel);
        let mut names: Vec<OsString> = fs::read_dir(&abs)
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(self.read_err(rel))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let rel = rel.join(&name);
            let md = fs::symlink_metadata(self.root.join(&rel)).map_err(self.read_err(&rel))?;
            self.entry(&rel, &name, &md)?;
            if md.is_dir() {
                self.dir(&rel)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, name: &OsStr, md: &Metadata) -> Result<()> {
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            return self.whiteout(rel, name, md);
        }
        if ft.is_socket() {
            return Ok(()); // as Docker: a socket is no layer content
        }
        let xattrs = self.xattrs(rel)?;
        let opaque = xattrs.iter().any(|(k, v)| k == OPAQUE_XATTR && v == b"y");
        let pax: Vec<(String, Vec<u8>)> = xattrs
            .into_iter()
            .filter(|(k, _)| !k.starts_with(OVERLAY_XATTR_PREFIX))
            .map(|(k, v)| (format!("{XATTR_PAX_PREFIX}{k}"), v))
            .collect();
        if !pax.is_empty() {
            let pairs = pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.tar
                .append_pax_extensions(pairs)
                .map_err(DiffError::Write)?;
        }
        let mut h = self.header(md);
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            self.append(&mut h, rel, io::empty())?;
            if opaque {
                let mut o = self.header(md);
                o.set_entry_type(EntryType::Regular);
                o.set_mode(0);
                self.append(&mut o, &rel.join(OPAQUE_WHITEOUT), io::empty())?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(self.root.join(rel)).map_err(self.read_err(rel))?;
            h.set_entry_type(EntryType::Symlink);
            self.tar
                .append_link(&mut h, rel, target)
                .map_err(DiffError::Write)?;
        } else if ft.is_file() {
            self.file(rel, md, h)?;
        } else {
            h.set_entry_type(if ft.is_fifo() {
                EntryType::Fifo
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Char
            });
            let rdev = md.rdev();
            let major = nix::sys::stat::major(rdev) as u32;
            let minor = nix::sys::stat::minor(rdev) as u32;
            h.set_device_major(major).map_err(DiffError::Write)?;
            h.set_device_minor(minor).map_err(DiffError::Write)?;
            self.append(&mut h, rel, io::empty())?;
        }
        Ok(())
    }

    /// A regular file: its content, or a hard link to the name it was
    /// first written under.
    fn file(&mut self, rel: &Path, md: &Metadata, mut h: Header) -> Result<()> {
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(EntryType::Link);
                let first = first.clone();
                return self
                    .tar
                    .append_link(&mut h, rel, first)
                    .map_err(DiffError::Write);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        let f = File::open(self.root.join(rel)).map_err(self.read_err(rel))?;
        h.set_entry_type(EntryType::Regular);
        h.set_size(md.len());
        self.size += md.len();
        // the size in the header is the one read: a file that changed under
        // the walk fails it (tar::Builder checks the length)
        self.append(&mut h, rel, f)
    }

    /// A 0:0 character device is overlayfs's mark of a deleted entry: the
    /// empty file `.wh.NAME` in the tar.
    fn whiteout(&mut self, rel: &Path, name: &OsStr, md: &Metadata) -> Result<()> {
        let mut wh = OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        let mut h = self.header(md);
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0);
        let path = rel.parent().unwrap_or(Path::new("")).join(wh);
        self.append(&mut h, &path, io::empty())
    }

    fn header(&self, md: &Metadata) -> Header {
        let mut h = Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid().into());
        h.set_gid(md.gid().into());
        h.set_size(0);
        let mtime = u64::try_from(md.mtime()).unwrap_or(0);
        h.set_mtime(self.epoch.map_or(mtime, |e| mtime.min(e)));
        h
    }

    fn append(&mut self, h: &mut Header, rel: &Path, data: impl io::Read) -> Result<()> {
        self.tar.append_data(h, rel, data).map_err(DiffError::Write)
    }

    /// The entry's extended attributes, by name. overlayfs's own are
    /// removed from the upper dir with `strip` (the opaque mark stays);
    /// those a tar cannot carry are refused.
    fn xattrs(&self, rel: &Path) -> Result<Vec<(String, Vec<u8>)>> {
        let abs = self.root.join(rel);
        let c =
            CString::new(abs.as_os_str().as_bytes()).map_err(|_| DiffError::Unrepresentable {
                path: abs.clone(),
                why: "a path with a NUL byte",
            })?;
        let mut out = Vec::new();
        for name in list_xattrs(&c).map_err(self.read_err(rel))? {
            let Ok(key) = String::from_utf8(name.as_bytes().to_vec()) else {
                continue;
            };
            if UNREPRESENTABLE.contains(&key.as_str()) {
                return Err(DiffError::Unrepresentable {
                    path: abs,
                    why: "overlayfs redirect or metacopy xattr: mount build overlays with redirect_dir and metacopy off",
                });
            }
            if key.starts_with(OVERLAY_XATTR_PREFIX) && key != OPAQUE_XATTR {
                if self.strip {
                    remove_xattr(&c, &name).map_err(self.read_err(rel))?;
                }
                continue;
            }
            let value = get_xattr(&c, &name).map_err(self.read_err(rel))?;
            out.push((key, value));
        }
        out.sort();
        Ok(out)
    }
}

/// The names of a path's extended attributes (the path itself, not a
/// symlink's target).
fn list_xattrs(path: &CString) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `path` is NUL-terminated and `buf` is writable for its length.
        let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| CString::new(n).ok())
        .collect())
}

/// The value of a path's extended attribute (the path itself, not a
/// symlink's target).
pub(super) fn get_xattr(path: &CStr, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `path` and `name` are NUL-terminated, `buf` is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

fn remove_xattr(path: &CString, name: &CString) -> io::Result<()> {
    // SAFETY: both are NUL-terminated strings.
    if unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Passes bytes on and hashes them: the diff_id of the tar written.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn digest(self) -> String {
        format!("sha256:{:x}", self.hasher.finalize())
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn entries(tar_bytes: &[u8]) -> Vec<(String, EntryType, u64)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let p = e.path().unwrap().to_string_lossy().into_owned();
                (p, e.header().entry_type(), e.header().size().unwrap())
            })
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc/conf.d")).unwrap();
        fs::write(r.join("etc/hosts"), b"127.0.0.1 x\n").unwrap();
        fs::write(r.join("b"), b"bee").unwrap();
        fs::hard_link(r.join("b"), r.join("a-link")).unwrap();
        symlink("/etc/hosts", r.join("etc/link")).unwrap();
        fs::set_permissions(r.join("b"), fs::Permissions::from_mode(0o4755)).unwrap();
        d
    }

    #[test]
    fn entries_in_name_order_with_hard_links_to_the_first_name() {
        let d = tree();
        let mut out = Vec::new();
        let t = write_tar(d.path(), &mut out, None, false).unwrap();
        let names: Vec<_> = entries(&out)
            .into_iter()
            .map(|(p, ty, _)| (p, ty))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a-link".into(), EntryType::Regular),
                ("b".into(), EntryType::Link),
                ("etc".into(), EntryType::Directory),
                ("etc/conf.d".into(), EntryType::Directory),
                ("etc/hosts".into(), EntryType::Regular),
                ("etc/link".into(), EntryType::Symlink),
            ]
        );
        assert_eq!(t.size, 3 + 12);
        let digest = format!("sha256:{:x}", Sha256::digest(&out));
        assert_eq!(t.diff_id, digest);
    }

    #[test]
    fn the_same_tree_gives_the_same_diff_id_and_the_epoch_clamps_mtimes() {
        let d = tree();
        let a = write_tar(d.path(), io::sink(), Some(1000), false).unwrap();
        // a later mtime is clamped: touching the file changes nothing
        fs::write(d.path().join("etc/hosts"), b"127.0.0.1 x\n").unwrap();
        let b = write_tar(d.path(), io::sink(), Some(1000), false).unwrap();
        assert_eq!(a, b);
        let mut out = Vec::new();
        write_tar(d.path(), &mut out, Some(1000), false).unwrap();
        let mut ar = tar::Archive::new(out.as_slice());
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), 1000);
            assert!(e.header().username().unwrap().unwrap_or("").is_empty());
        }
    }

    #[test]
    fn modes_keep_setuid() {
        let d = tree();
        let mut out = Vec::new();
        write_tar(d.path(), &mut out, None, false).unwrap();
        let mut ar = tar::Archive::new(out.as_slice());
        let e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap() == Path::new("a-link"))
            .unwrap();
        assert_eq!(e.header().mode().unwrap(), 0o4755);
    }

    #[test]
    #[ignore = "needs root: a whiteout is a 0:0 device node, the opaque mark a trusted.* xattr"]
    fn overlay_whiteouts_become_oci_whiteouts_and_overlay_xattrs_are_stripped() {
        let d = tree();
        let r = d.path();
        nix::sys::stat::mknod(
            &r.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let etc = CString::new(r.join("etc").as_os_str().as_bytes()).unwrap();
        for (k, v) in [
            ("trusted.overlay.opaque", "y"),
            ("trusted.overlay.origin", "x"),
            ("user.keep", "1"),
        ] {
            let k = CString::new(k).unwrap();
            // SAFETY: NUL-terminated strings and a buffer of the given length.
            let rc =
                unsafe { libc::lsetxattr(etc.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        }
        let mut out = Vec::new();
        write_tar(r, &mut out, None, true).unwrap();
        let names: Vec<_> = entries(&out).into_iter().map(|(p, _, _)| p).collect();
        assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
        assert!(names.contains(&"etc/.wh..wh..opq".to_string()), "{names:?}");
        let mut ar = tar::Archive::new(out.as_slice());
        let mut e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap() == Path::new("etc"))
            .unwrap();
        let pax: Vec<String> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| x.unwrap().key().unwrap().to_string())
            .collect();
        assert_eq!(pax, vec!["SCHILY.xattr.user.keep"]);
        // the origin mark is gone from the dir, the opaque mark stays
        let names = list_xattrs(&etc).unwrap();
        let names: Vec<_> = names.iter().map(|n| n.to_str().unwrap()).collect();
        assert!(names.contains(&"trusted.overlay.opaque"), "{names:?}");
        assert!(!names.contains(&"trusted.overlay.origin"), "{names:?}");
    }
}
