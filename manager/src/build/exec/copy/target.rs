//! Writing into the root a step copies to (the merged overlay of the
//! stage): every entry is made relative to a descriptor of its parent
//! directory, never following a symlink in its place, and the directories
//! a destination needs are found with symlinks resolved inside the root
//! (`/lib -> usr/lib` in an image leads to `/usr/lib` of the image, an
//! absolute or `..` symlink never out of it).

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::build::plan::Chmod;
use crate::rootfs::resolve_in_root;

use super::chmod::apply as apply_chmod;
use super::error::CopyStepError;

type Result<T> = std::result::Result<T, CopyStepError>;

/// Who owns what a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `--chown`, or 0:0 for files from the build context
    Set(u32, u32),
    /// the source's owners (COPY --from a stage or image, ADD of a tar)
    Keep,
    /// no chown at all (a context extracted from a tar; tests without root)
    Untouched,
}

/// What an entry is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// permission bits (with setuid, setgid and sticky)
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl From<&Metadata> for Meta {
    fn from(md: &Metadata) -> Meta {
        Meta {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            mtime_nsec: md.mtime_nsec(),
        }
    }
}

pub type Dir = Rc<OwnedFd>;

pub struct Target {
    root_path: PathBuf,
    root: Dir,
    pub owner: Owner,
    /// `--chmod`, applied to what is copied (not to what an archive holds)
    pub chmod: Option<Chmod>,
    epoch: Option<i64>,
    /// the time of directories the copy makes for a destination
    now: i64,
    /// (dev, ino) of a source file with more than one name: where its
    /// first name was written
    links: HashMap<(u64, u64), (Dir, CString)>,
    /// directories whose mtime is set when everything is written
    dir_times: Vec<(Dir, i64, i64)>,
}

impl Target {
    pub fn new(
        root: &Path,
        owner: Owner,
        chmod: Option<Chmod>,
        epoch: Option<u64>,
    ) -> Result<Target> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(write_err("open", &root.display().to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let epoch = epoch.map(|e| e.min(i64::MAX as u64) as i64);
        Ok(Target {
            root_path: root.to_path_buf(),
            // SAFETY: open returned a new descriptor we own
            root: Rc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            owner,
            chmod,
            epoch,
            now: epoch.map_or(now, |e| e.min(now)),
            links: HashMap::new(),
            dir_times: Vec::new(),
        })
    }

    /// The time of what the step makes itself (`SOURCE_DATE_EPOCH` if
    /// earlier).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// `dest` (absolute in the root) with its symlinks resolved inside the
    /// root, relative to it.
    pub fn resolve(&self, dest: &str) -> Result<PathBuf> {
        let r = resolve_in_root(&self.root_path, Path::new(dest)).map_err(|source| {
            CopyStepError::Write {
                op: "resolve",
                path: dest.to_string(),
                source,
            }
        })?;
        Ok(r.strip_prefix("/").unwrap_or(&r).to_path_buf())
    }

    /// What a resolved path is (None: nothing there).
    pub fn stat(&self, rel: &Path) -> Option<Metadata> {
        std::fs::symlink_metadata(self.root_path.join(rel)).ok()
    }

    /// The directory `rel` (resolved), made with its missing parents
    /// (mode 0755, the step's owner).
    pub fn mkdir_all(&mut self, rel: &Path) -> Result<Dir> {
        let mut cur = self.root.clone();
        let mut shown = PathBuf::from("/");
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            shown.push(name);
            let cname = cstr(name);
            let meta = Meta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: self.now,
                mtime_nsec: 0,
            };
            cur = self.dir_at(&cur, &cname, &meta, &shown, false, true)?;
        }
        Ok(cur)
    }

    /// The directory `name` in `parent`: made with `meta` (and the step's
    /// owner and chmod) if missing, or given them when `overwrite`; a
    /// file or symlink there is an error.
    pub fn dir_at(
        &mut self,
        parent: &Dir,
        name: &CStr,
        meta: &Meta,
        shown: &Path,
        overwrite: bool,
        for_dest: bool,
    ) -> Result<Dir> {
        let created = match mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(write_err("mkdir", &shown.display().to_string())(e)),
        };
        let fd = match openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                return Err(CopyStepError::NotADirectory(shown.display().to_string()))
            }
            Err(e) => return Err(write_err("open", &shown.display().to_string())(e)),
        };
        // SAFETY: openat returned a new descriptor we own
        let dir: Dir = Rc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        if created || overwrite {
            // directories a destination needs take the step's --chown (else
            // root's) and no --chmod; copied ones are what they copy
            let (owner, chmod) = match (for_dest, self.owner) {
                (true, Owner::Keep) => (Owner::Set(0, 0), None),
                (true, o) => (o, None),
                (false, o) => (o, self.chmod.clone()),
            };
            self.meta_fd(&dir, meta, owner, chmod.as_ref(), true, shown)?;
            let mtime = self.clamp(meta.mtime);
            let nsec = if mtime == meta.mtime {
                meta.mtime_nsec
            } else {
                0
            };
            self.dir_times.push((dir.clone(), mtime, nsec));
        }
        Ok(dir)
    }

    /// A copied directory: made or, when it is there, given the source's
    /// metadata (`overwrite`: not for the top of a copy into an existing
    /// directory, as fsutil does).
    pub fn copied_dir(
        &mut self,
        parent: &Dir,
        name: &CStr,
        meta: &Meta,
        shown: &Path,
        overwrite: bool,
    ) -> Result<Dir> {
        self.dir_at(parent, name, meta, shown, overwrite, false)
    }

    /// The destination a copied directory's contents go into, made when
    /// missing as fsutil's `MkdirAll(dest, mode, chown)` makes it: mode
    /// 0755 (or an octal `--chmod`'s), the step's `--chown` (else root's),
    /// not the source directory's; an existing one is left as it is.
    pub fn dest_dir(&mut self, parent: &Dir, name: &CStr, shown: &Path) -> Result<Dir> {
        let meta = Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: self.now,
            mtime_nsec: 0,
        };
        let (owner, chmod) = (self.owner, self.chmod.clone());
        if owner == Owner::Keep {
            self.owner = Owner::Set(0, 0);
        }
        if matches!(chmod, Some(Chmod::Symbolic(_))) {
            self.chmod = None;
        }
        let made = self.dir_at(parent, name, &meta, shown, false, false);
        (self.owner, self.chmod) = (owner, chmod);
        made
    }

    /// Removes a file or symlink where an entry goes; a directory there is
    /// an error.
    fn make_room(&self, parent: &Dir, name: &CStr, shown: &Path) -> Result<()> {
        match fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(write_err("stat", &shown.display().to_string())(e)),
            Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
                Err(CopyStepError::ReplaceDirectory(shown.display().to_string()))
            }
            Ok(_) => unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(write_err("remove", &shown.display().to_string())),
        }
    }

    /// A regular file with `data`; `link_key` (dev, ino of a source file
    /// with several names) makes later names hard links to the first.
    pub fn file_at(
        &mut self,
        parent: &Dir,
        name: &CStr,
        meta: &Meta,
        data: &mut dyn Read,
        link_key: Option<(u64, u64)>,
        shown: &Path,
    ) -> Result<()> {
        self.make_room(parent, name, shown)?;
        if let Some(key) = link_key {
            if let Some((first_dir, first)) = self.links.get(&key) {
                return linkat(
                    Some(first_dir.as_raw_fd()),
                    first.as_c_str(),
                    Some(parent.as_raw_fd()),
                    name,
                    AtFlags::empty(),
                )
                .map_err(write_err("link", &shown.display().to_string()));
            }
            self.links.insert(key, (parent.clone(), name.to_owned()));
        }
        let fd = openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(write_err("create", &shown.display().to_string()))?;
        // SAFETY: openat returned a new descriptor we own
        let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        io::copy(data, &mut f).map_err(|source| CopyStepError::Write {
            op: "write",
            path: shown.display().to_string(),
            source,
        })?;
        let fd: OwnedFd = f.into();
        self.meta_fd(
            &fd,
            meta,
            self.owner,
            self.chmod.clone().as_ref(),
            false,
            shown,
        )?;
        let t = self.times(meta);
        futimens(fd.as_raw_fd(), &t, &t)
            .map_err(write_err("set times of", &shown.display().to_string()))
    }

    /// A hard link `name` to `target` (relative to `base`, a directory of
    /// the root): a tar's link entry.
    pub fn hard_link_at(
        &mut self,
        parent: &Dir,
        name: &CStr,
        base: &Path,
        target: &Path,
        shown: &Path,
    ) -> Result<()> {
        let rel = self.resolve(&base.join(target).to_string_lossy())?;
        let (dir_rel, leaf) = split(&rel);
        let dir = self.open_dir(&dir_rel, shown)?;
        self.make_room(parent, name, shown)?;
        linkat(
            Some(dir.as_raw_fd()),
            leaf.as_c_str(),
            Some(parent.as_raw_fd()),
            name,
            AtFlags::empty(),
        )
        .map_err(write_err("link", &shown.display().to_string()))
    }

    /// What a tar's hard link entry also does, as Docker's archive package
    /// does: the file it names gets the entry's owner (or the step's) and,
    /// unless it is a symlink, its mode.
    pub fn link_meta(&self, parent: &Dir, name: &CStr, meta: &Meta, shown: &Path) -> Result<()> {
        self.chown_at(parent, name, meta, shown)?;
        let st = fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(write_err("stat", &shown.display().to_string()))?;
        if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() {
            return Ok(());
        }
        fchmodat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(write_err("chmod", &shown.display().to_string()))
    }

    /// `name` in `parent` (not followed) gets the entry's owner or the
    /// step's, when either is set.
    fn chown_at(&self, parent: &Dir, name: &CStr, meta: &Meta, shown: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids(meta, self.owner) {
            fchownat(
                Some(parent.as_raw_fd()),
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(write_err("chown", &shown.display().to_string()))?;
        }
        Ok(())
    }

    /// An existing directory of the root (`rel` resolved).
    fn open_dir(&self, rel: &Path, shown: &Path) -> Result<Dir> {
        let mut cur = self.root.clone();
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            let fd = openat(
                Some(cur.as_raw_fd()),
                cstr(name).as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(write_err("open", &shown.display().to_string()))?;
            // SAFETY: openat returned a new descriptor we own
            cur = Rc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(cur)
    }

    pub fn symlink_at(
        &mut self,
        parent: &Dir,
        name: &CStr,
        target: &Path,
        meta: &Meta,
        shown: &Path,
    ) -> Result<()> {
        self.make_room(parent, name, shown)?;
        symlinkat(target, Some(parent.as_raw_fd()), name)
            .map_err(write_err("symlink", &shown.display().to_string()))?;
        self.chown_at(parent, name, meta, shown)?;
        let t = self.times(meta);
        utimensat(
            Some(parent.as_raw_fd()),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(write_err("set times of", &shown.display().to_string()))
    }

    /// A fifo or device node (`kind` from the source's file type).
    pub fn node_at(
        &mut self,
        parent: &Dir,
        name: &CStr,
        md: &Metadata,
        shown: &Path,
    ) -> Result<()> {
        let ft = md.file_type();
        let kind = if ft.is_fifo() {
            SFlag::S_IFIFO
        } else if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else {
            return Ok(()); // a socket is no content
        };
        self.make_room(parent, name, shown)?;
        mknodat(
            Some(parent.as_raw_fd()),
            name,
            kind,
            Mode::from_bits_truncate(md.mode() & 0o7777),
            md.rdev(),
        )
        .map_err(write_err("mknod", &shown.display().to_string()))?;
        if let Some((uid, gid)) = self.ids(&Meta::from(md), self.owner) {
            fchownat(
                Some(parent.as_raw_fd()),
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(write_err("chown", &shown.display().to_string()))?;
        }
        Ok(())
    }

    /// Sets the directories' mtimes, deepest first (writing in them
    /// changed them).
    pub fn finish(&mut self) -> Result<()> {
        for (d, sec, nsec) in self.dir_times.drain(..).rev() {
            let t = TimeSpec::new(sec, nsec);
            futimens(d.as_raw_fd(), &t, &t).map_err(write_err("set times of", "a directory"))?;
        }
        Ok(())
    }

    fn ids(&self, meta: &Meta, owner: Owner) -> Option<(u32, u32)> {
        match owner {
            Owner::Set(u, g) => Some((u, g)),
            Owner::Keep => Some((meta.uid, meta.gid)),
            Owner::Untouched => None,
        }
    }

    fn clamp(&self, t: i64) -> i64 {
        self.epoch.map_or(t, |e| t.min(e))
    }

    fn times(&self, meta: &Meta) -> TimeSpec {
        let sec = self.clamp(meta.mtime);
        TimeSpec::new(
            sec,
            if sec == meta.mtime {
                meta.mtime_nsec
            } else {
                0
            },
        )
    }

    /// Owner first, then mode: a chown clears setuid and setgid.
    fn meta_fd(
        &self,
        fd: &OwnedFd,
        meta: &Meta,
        owner: Owner,
        chmod: Option<&Chmod>,
        dir: bool,
        shown: &Path,
    ) -> Result<()> {
        if let Some((uid, gid)) = self.ids(meta, owner) {
            fchown(
                fd.as_raw_fd(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
            )
            .map_err(write_err("chown", &shown.display().to_string()))?;
        }
        let mode = match chmod {
            Some(c) => apply_chmod(c, meta.mode, dir),
            None => meta.mode,
        };
        fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))
            .map_err(write_err("chmod", &shown.display().to_string()))
    }
}

pub fn cstr(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_else(|_| CString::from(c"_"))
}

/// A resolved path's directory and last component.
pub fn split(rel: &Path) -> (PathBuf, CString) {
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel.file_name().unwrap_or(OsStr::new("."));
    (parent, cstr(name))
}

fn write_err(op: &'static str, path: &str) -> impl FnOnce(Errno) -> CopyStepError {
    let path = path.to_string();
    move |e| CopyStepError::Write {
        op,
        path,
        source: e.into(),
    }
}
