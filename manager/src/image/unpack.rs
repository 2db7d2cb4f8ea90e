//! Layer unpack: a (decompressed) layer tar into a snapshot directory.
//!
//! Every entry is created relative to a directory descriptor of its parent,
//! and parents are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! from the snapshot root: an absolute path, a `..` component, a parent that
//! is a symlink or a hard link to something outside the layer refuses the
//! whole layer, so nothing is ever written outside the snapshot. The caller
//! unpacks into a temp dir and removes it on error.
//!
//! OCI whiteouts become overlayfs ones: `.wh.NAME` a 0:0 character device,
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.
//! Owners, modes (setuid too), mtimes, xattrs (`SCHILY.xattr.*`, except
//! `trusted.overlay.*`), hard links, symlinks, device nodes and fifos are
//! kept. The diff_id is the sha256 of the tar stream, hashed as it is read.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use sha2::{Digest, Sha256};

use crate::store::start_writeback;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?} {why}")]
    Unsafe { entry: String, why: String },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("reading the layer tar: {0}")]
    Tar(#[source] io::Error),
    #[error("snapshot {path}: {source}")]
    Snapshot { path: PathBuf, source: io::Error },
    #[error("layer content does not match its diff_id: expected {expected}, got {actual}")]
    DiffId { expected: String, actual: String },
}

type Result<T> = std::result::Result<T, UnpackError>;

/// What an unpack produced: the layer's diff_id and unpacked size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub diff_id: String,
    pub size: u64,
}

/// The compression of a layer stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The decompressed stream of a plain, gzip or zstd layer.
pub fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let c = Compression::sniff(r.fill_buf()?);
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// A reader that hashes (sha256) and counts what passes through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Read to the end, then `sha256:<hex>` and the byte count.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format!("sha256:{:x}", self.hasher.finalize()), self.count))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Unpack the tar stream `layer` (already decompressed) into the existing,
/// empty directory `dest`. With `expected`, the diff_id must match it. On
/// error `dest` holds a partial tree: the caller removes it. Nothing is
/// synced here: the caller syncs the filesystem once, before the snapshot
/// becomes visible (`Store::sync` in `image::commit_image`).
pub fn unpack(layer: impl Read, dest: &Path, expected: Option<&str>) -> Result<Unpacked> {
    let snap_err = |source| UnpackError::Snapshot {
        path: dest.to_path_buf(),
        source,
    };
    let root = open_fd(
        None,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
    )
    .map_err(|e| snap_err(e.into()))?;
    let mut hashed = HashReader::new(layer);
    let mut u = Unpacker {
        root,
        parent_cache: None,
        dir_times: Vec::new(),
        size: 0,
        buf: vec![0; COPY_BUF],
    };
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(UnpackError::Tar)? {
            let entry = entry.map_err(UnpackError::Tar)?;
            u.entry(entry)?;
        }
    }
    u.finish_dir_times();
    let (diff_id, _) = hashed.finish().map_err(UnpackError::Tar)?;
    if let Some(exp) = expected {
        if exp != diff_id {
            return Err(UnpackError::DiffId {
                expected: exp.to_string(),
                actual: diff_id,
            });
        }
    }
    Ok(Unpacked {
        diff_id,
        size: u.size,
    })
}

/// Files from this size on are sent to disk as soon as they are written
/// (`start_writeback`): here 93% of a Debian rootfs's bytes in a fifth
/// of its files, so a syscall per small file is saved.
const WRITEBACK_MIN: u64 = 16 << 10;

/// The buffer file contents are copied through (std's io::copy uses 8 KiB:
/// a write per 8 KiB).
const COPY_BUF: usize = 256 << 10;

struct Unpacker {
    root: OwnedFd,
    /// The last parent directory opened, by relative path. An entry only
    /// ever removes a child of its parent, so the cached descriptor stays
    /// the directory at that path: entries that could remove it have a
    /// parent higher up, which replaces the cache first.
    parent_cache: Option<(PathBuf, OwnedFd)>,
    /// Directories whose mtime is set at the end (their children change it).
    dir_times: Vec<(PathBuf, i64)>,
    size: u64,
    buf: Vec<u8>,
}

/// What a layer entry's header says of the file it makes.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    /// (major, minor) of a character or block device, else (0, 0)
    dev: (u32, u32),
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    /// The entry's owner, mode (with setuid, setgid and sticky), mtime,
    /// device numbers and `SCHILY.xattr.*` xattrs, except
    /// `trusted.overlay.*`.
    fn read<R: Read>(e: &mut tar::Entry<'_, R>, kind: tar::EntryType, name: &str) -> Result<Meta> {
        let h = e.header();
        let tar_err = header_err(name);
        let mut meta = Meta {
            mode: h.mode().map_err(&tar_err)? & 0o7777,
            uid: h.uid().map_err(&tar_err)?.try_into().unwrap_or(u32::MAX),
            gid: h.gid().map_err(&tar_err)?.try_into().unwrap_or(u32::MAX),
            mtime: h.mtime().map_err(&tar_err)?.try_into().unwrap_or(i64::MAX),
            dev: if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
                (
                    h.device_major().map_err(&tar_err)?.unwrap_or(0),
                    h.device_minor().map_err(&tar_err)?.unwrap_or(0),
                )
            } else {
                (0, 0)
            },
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions().map_err(&tar_err)? {
            for ext in pax {
                let ext = ext.map_err(&tar_err)?;
                let Ok(key) = ext.key() else { continue };
                let Some(xname) = key.strip_prefix(XATTR_PAX_PREFIX) else {
                    continue;
                };
                // overlayfs metadata must come from rbox, never from a layer
                if xname.starts_with("trusted.overlay.") {
                    continue;
                }
                if let Ok(c) = CString::new(xname) {
                    meta.xattrs.push((c, ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }
}

/// The error of a header field of entry `name` that cannot be read.
fn header_err(name: &str) -> impl Fn(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Entry {
        entry: name.to_string(),
        op: "read header",
        source,
    }
}

/// The target of a link entry (`what`: a symlink or a hard link), which
/// it must have.
fn link_target<R: Read>(e: &tar::Entry<'_, R>, name: &str, what: &str) -> Result<PathBuf> {
    Ok(e.link_name()
        .map_err(header_err(name))?
        .ok_or_else(|| UnpackError::Unsafe {
            entry: name.to_string(),
            why: format!("is a {what} without a target"),
        })?
        .into_owned())
}

impl Unpacker {
    /// One entry of the layer, created in its parent (opened beneath the
    /// root, no symlink on the way), by its kind.
    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path().map_err(UnpackError::Tar)?.into_owned();
        let name = raw.display().to_string();
        let comps = clean(&raw, &name)?;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            return Ok(());
        }
        let meta = Meta::read(&mut e, kind, &name)?;
        let Some((base, parent)) = comps.split_last() else {
            return self.root_dir(kind, &meta, &name);
        };
        let p = self.open_parent(parent, &name)?;
        let base_s = base.to_string_lossy();
        if let Some(hidden) = base_s.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(p, &base_s, hidden, &meta, &name);
        }
        match kind {
            tar::EntryType::Directory => self.directory(p, base, &comps, &meta, &name),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.regular(p, base, &mut e, &meta, &name)
            }
            tar::EntryType::Symlink => self.symlink(p, base, &e, &meta, &name),
            tar::EntryType::Link => self.hard_link(p, base, &e, &name),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.node(p, base, kind, &meta, &name)
            }
            _ => Ok(()), // other GNU extensions carry no file
        }
    }

    /// "." : the snapshot root itself takes a directory entry's metadata.
    fn root_dir(&mut self, kind: tar::EntryType, meta: &Meta, name: &str) -> Result<()> {
        if kind.is_dir() {
            let fd = self
                .root
                .try_clone()
                .map_err(|s| self.err(name, "dup", s))?;
            self.apply_meta(&fd, meta, name)?;
            self.dir_times.push((PathBuf::new(), meta.mtime));
        }
        Ok(())
    }

    /// `.wh..wh..opq` makes its directory opaque; `.wh.NAME` makes NAME an
    /// overlayfs whiteout (a 0:0 character device) owned as the entry;
    /// other `.wh..wh.` metadata is skipped.
    fn whiteout(&self, p: RawFd, base: &str, hidden: &str, meta: &Meta, name: &str) -> Result<()> {
        if base == OPAQUE_WHITEOUT {
            let d = open_fd(Some(p), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|s| self.err(name, "open", s.into()))?;
            set_xattr(&d, c"trusted.overlay.opaque", b"y")
                .map_err(|s| self.err(name, OPAQUE_XATTR, s))?;
            return Ok(());
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            return Ok(()); // other .wh..wh. metadata (e.g. .wh..wh.plnk)
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(UnpackError::Unsafe {
                entry: name.to_string(),
                why: "is a whiteout of no file".into(),
            });
        }
        self.remove_existing(p, OsStr::new(hidden), false, name)?;
        mknodat(Some(p), hidden, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|s| self.err(name, "mknod whiteout", s.into()))?;
        self.chown_at(p, OsStr::new(hidden), meta, name)
    }

    /// A directory: made (0700 until its metadata is applied), or kept if
    /// one is there; anything else there is replaced. Its mtime is set at
    /// the end, when its children are in.
    fn directory(
        &mut self,
        p: RawFd,
        base: &OsStr,
        comps: &[OsString],
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let mkdir = || mkdirat(Some(p), base, Mode::from_bits_truncate(0o700));
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                if !self.remove_existing(p, base, true, name)? {
                    mkdir().map_err(|s| self.err(name, "mkdir", s.into()))?;
                }
            }
            Err(s) => return Err(self.err(name, "mkdir", s.into())),
        }
        let d = open_fd(
            Some(p),
            base,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        )
        .map_err(|s| self.err(name, "open", s.into()))?;
        self.apply_meta(&d, meta, name)?;
        self.dir_times.push((comps.iter().collect(), meta.mtime));
        Ok(())
    }

    /// A regular file: its content (sent to disk early when large), then
    /// its metadata and mtime.
    fn regular<R: Read>(
        &mut self,
        p: RawFd,
        base: &OsStr,
        e: &mut tar::Entry<'_, R>,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let create = || {
            open_fd(
                Some(p),
                base,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            )
        };
        let fd = self.replacing(p, base, name, "create", create)?;
        let mut f = File::from(fd);
        let n = copy(e, &mut f, &mut self.buf).map_err(|s| self.err(name, "write", s))?;
        if n >= WRITEBACK_MIN {
            start_writeback(&f);
        }
        self.size += n;
        let fd = OwnedFd::from(f);
        self.apply_meta(&fd, meta, name)?;
        set_times(&fd, meta.mtime).map_err(|s| self.err(name, "futimens", s))
    }

    /// A symlink, its target as the layer gives it (never followed here),
    /// with its owner and mtime.
    fn symlink<R: Read>(
        &self,
        p: RawFd,
        base: &OsStr,
        e: &tar::Entry<'_, R>,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let target = link_target(e, name, "symlink")?;
        self.replacing(p, base, name, "symlink", || {
            symlinkat(&target, Some(p), base)
        })?;
        self.chown_at(p, base, meta, name)?;
        self.set_times_at(p, base, meta.mtime, name)
    }

    /// A hard link to an entry unpacked before: the target is a path in
    /// the layer (not absolute, no "..") whose parent is opened beneath the
    /// root with no symlink on the way.
    fn hard_link<R: Read>(
        &self,
        p: RawFd,
        base: &OsStr,
        e: &tar::Entry<'_, R>,
        name: &str,
    ) -> Result<()> {
        let target = link_target(e, name, "hard link")?;
        let tname = target.display().to_string();
        let tcomps = clean(&target, name).map_err(|_| UnpackError::Unsafe {
            entry: name.to_string(),
            why: format!("is a hard link to {tname:?}, outside the layer"),
        })?;
        let Some((tbase, tparent)) = tcomps.split_last() else {
            return Err(UnpackError::Unsafe {
                entry: name.to_string(),
                why: "is a hard link to the layer root".into(),
            });
        };
        let tdir = self.open_existing(tparent, name)?;
        // no AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
        self.replacing(p, base, name, "link", || {
            linkat(
                Some(tdir.as_raw_fd()),
                tbase.as_os_str(),
                Some(p),
                base,
                nix::fcntl::AtFlags::empty(),
            )
        })?;
        Ok(())
    }

    /// A character or block device or a fifo, with its owner, mode and
    /// mtime.
    fn node(
        &self,
        p: RawFd,
        base: &OsStr,
        kind: tar::EntryType,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let sflag = match kind {
            tar::EntryType::Char => SFlag::S_IFCHR,
            tar::EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        self.replacing(p, base, name, "mknod", || {
            mknodat(
                Some(p),
                base,
                sflag,
                Mode::empty(),
                libc::makedev(meta.dev.0, meta.dev.1),
            )
        })?;
        self.chown_at(p, base, meta, name)?;
        self.chmod_at(p, base, meta.mode, name)?;
        self.set_times_at(p, base, meta.mtime, name)
    }

    fn err(&self, entry: &str, op: &'static str, source: io::Error) -> UnpackError {
        UnpackError::Entry {
            entry: entry.to_string(),
            op,
            source,
        }
    }

    /// chown (before chmod: chown clears setuid), chmod, xattrs.
    fn apply_meta(&self, fd: &OwnedFd, m: &Meta, name: &str) -> Result<()> {
        fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
        )
        .map_err(|s| self.err(name, "chown", s.into()))?;
        fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(m.mode))
            .map_err(|s| self.err(name, "chmod", s.into()))?;
        for (k, v) in &m.xattrs {
            set_xattr(fd, k, v).map_err(|s| self.err(name, "setxattr", s))?;
        }
        Ok(())
    }

    fn chown_at(&self, p: i32, base: &OsStr, m: &Meta, name: &str) -> Result<()> {
        fchownat(
            Some(p),
            base,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|s| self.err(name, "chown", s.into()))
    }

    /// chmod of a node just made in `p`, not following a symlink.
    fn chmod_at(&self, p: RawFd, base: &OsStr, mode: u32, name: &str) -> Result<()> {
        fchmodat(
            Some(p),
            base,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            // fchmodat(AT_SYMLINK_NOFOLLOW) is ENOTSUP on older
            // kernels; the node is no symlink, we just made it
            if e == Errno::ENOTSUP || e == Errno::EOPNOTSUPP {
                fchmodat(
                    Some(p),
                    base,
                    Mode::from_bits_truncate(mode),
                    FchmodatFlags::FollowSymlink,
                )
            } else {
                Err(e)
            }
        })
        .map_err(|s| self.err(name, "chmod", s.into()))
    }

    /// The mtime (and atime) of `base` in `p`, not following a symlink.
    fn set_times_at(&self, p: RawFd, base: &OsStr, mtime: i64, name: &str) -> Result<()> {
        let t = TimeSpec::new(mtime, 0);
        utimensat(Some(p), base, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|s| self.err(name, "utimensat", s.into()))
    }

    /// The parent directory of an entry, created (0755, root) when missing.
    /// The descriptor stays in the cache (owned there) until the next entry.
    fn open_parent(&mut self, parent: &[OsString], name: &str) -> Result<RawFd> {
        let rel: PathBuf = parent.iter().collect();
        if let Some((p, fd)) = &self.parent_cache {
            if *p == rel {
                return Ok(fd.as_raw_fd());
            }
        }
        let fd = match self.resolve(&rel) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => self.create_parents(parent, name)?,
            Err(e) => return Err(self.resolve_error(e, &rel, name)),
        };
        let raw = fd.as_raw_fd();
        self.parent_cache = Some((rel, fd));
        Ok(raw)
    }

    /// A directory that must already exist (a hard link target's parent).
    fn open_existing(&self, parent: &[OsString], name: &str) -> Result<OwnedFd> {
        let rel: PathBuf = parent.iter().collect();
        self.resolve(&rel).map_err(|e| {
            if e == Errno::ENOENT {
                UnpackError::Unsafe {
                    entry: name.to_string(),
                    why: format!("is a hard link into {:?}, which the layer lacks", rel),
                }
            } else {
                self.resolve_error(e, &rel, name)
            }
        })
    }

    fn resolve_error(&self, e: Errno, rel: &Path, name: &str) -> UnpackError {
        match e {
            Errno::ELOOP | Errno::EXDEV => UnpackError::Unsafe {
                entry: name.to_string(),
                why: format!("would be written through the symlink in {rel:?}"),
            },
            Errno::ENOTDIR => UnpackError::Unsafe {
                entry: name.to_string(),
                why: format!("has a parent {rel:?} that is not a directory"),
            },
            e => self.err(name, "open parent", e.into()),
        }
    }

    fn resolve(&self, rel: &Path) -> nix::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return self.root.try_clone().map_err(|_| Errno::EBADF);
        }
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = openat2(self.root.as_raw_fd(), rel, how)?;
        // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn create_parents(&self, parent: &[OsString], name: &str) -> Result<OwnedFd> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(|s| self.err(name, "dup", s))?;
        let mut rel = PathBuf::new();
        for c in parent {
            rel.push(c);
            match mkdirat(
                Some(cur.as_raw_fd()),
                c.as_os_str(),
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.err(name, "mkdir parent", e.into())),
            }
            cur = self
                .resolve(&rel)
                .map_err(|e| self.resolve_error(e, &rel, name))?;
        }
        Ok(cur)
    }

    /// `create` a new entry `base` in `p`; when something is already there
    /// (a later entry of the layer replaces an earlier one), remove it and
    /// try once more. The common case costs no extra stat.
    fn replacing<T>(
        &self,
        p: RawFd,
        base: &OsStr,
        name: &str,
        op: &'static str,
        create: impl Fn() -> nix::Result<T>,
    ) -> Result<T> {
        let r = match create() {
            Err(Errno::EEXIST) => {
                self.remove_existing(p, base, false, name)?;
                create()
            }
            r => r,
        };
        r.map_err(|s| self.err(name, op, s.into()))
    }

    /// Make room for a new entry `base` in `p`. Returns true when an existing
    /// directory is kept (`keep_dir` and it is one).
    fn remove_existing(&self, p: RawFd, base: &OsStr, keep_dir: bool, name: &str) -> Result<bool> {
        let st = match fstatat(Some(p), base, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(self.err(name, "stat", e.into())),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            let path = PathBuf::from(format!("/proc/self/fd/{p}")).join(base);
            std::fs::remove_dir_all(&path).map_err(|s| self.err(name, "remove directory", s))?;
        } else {
            unlinkat(Some(p), base, UnlinkatFlags::NoRemoveDir)
                .map_err(|s| self.err(name, "unlink", s.into()))?;
        }
        Ok(false)
    }

    /// Directory mtimes, deepest first, once their children exist.
    fn finish_dir_times(&mut self) {
        let times = std::mem::take(&mut self.dir_times);
        for (rel, mtime) in times.iter().rev() {
            if let Ok(fd) = self.resolve(rel) {
                // an O_PATH descriptor: go through its /proc link
                let t = TimeSpec::new(*mtime, 0);
                let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
                let _ = utimensat(None, path.as_str(), &t, &t, UtimensatFlags::FollowSymlink);
            }
        }
    }
}

/// The components of an entry path: `./` and `.` dropped; absolute paths
/// and `..` refused.
fn clean(path: &Path, entry: &str) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(UnpackError::Unsafe {
            entry: entry.to_string(),
            why: "has a NUL byte".into(),
        });
    }
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::Unsafe {
                    entry: entry.to_string(),
                    why: "is an absolute path".into(),
                })
            }
            Component::ParentDir => {
                return Err(UnpackError::Unsafe {
                    entry: entry.to_string(),
                    why: "has a '..' component".into(),
                })
            }
        }
    }
    Ok(out)
}

fn open_fd(
    dir: Option<i32>,
    path: &(impl nix::NixPath + ?Sized),
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copy a file's content through `buf`.
fn copy(r: &mut impl Read, w: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let len = match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        io::Write::write_all(w, &buf[..len])?;
        n += len as u64;
    }
}

fn set_times(fd: &OwnedFd, mtime: i64) -> io::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    futimens(fd.as_raw_fd(), &t, &t).map_err(io::Error::from)
}

fn set_xattr(fd: &OwnedFd, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is NUL-terminated, value is a live slice of value.len() bytes.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
