//! Path resolution inside a container's rootfs that never leaves it.
//!
//! Every lookup goes through `openat2(RESOLVE_IN_ROOT)`: `..` and absolute
//! symlinks are clamped to the rootfs, so a hostile image cannot redirect a
//! mount, device node or file onto the host. Targets are then used through
//! their `/proc/self/fd/N` magic link, so nothing is re-resolved by path.
//! New entries are made with the `*at` calls relative to the `O_PATH` fd
//! of their resolved parent directory (the kernel takes an `O_PATH` fd as
//! a `dirfd`), by a single name that is never followed.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// `/proc/self/fd/N`: a path naming exactly the object behind `fd`.
pub fn fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// The components of `path` below `/`, with `.` dropped (`..` is left for the
/// kernel to clamp).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// Open `path` inside `root` as an `O_PATH` fd, resolving symlinks as if
/// `root` were `/`.
pub fn open_in_root(root: BorrowedFd, path: &Path, extra: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), &rel, how)?;
    // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdir -p` inside `root`; returns an `O_PATH` fd of the final directory.
/// A symlink on the way is followed as if `root` were `/` (its missing
/// target is made inside the rootfs, never outside).
pub fn mkdir_all_in_root(root: BorrowedFd, path: &Path, mode: Mode) -> nix::Result<OwnedFd> {
    // the usual cases first: the directory is there already, or only its
    // last component is missing
    match open_in_root(root, path, OFlag::O_DIRECTORY) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let rel = relative(path);
    if let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) {
        if let Ok(dir) = open_in_root(root, parent, OFlag::O_DIRECTORY) {
            match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, mode) {
                Ok(()) => return open_in_root(root, path, OFlag::O_DIRECTORY),
                // a dangling symlink (or a race): the walk below sorts it out
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
    }
    mkdir_all_depth(root, &rel, mode, 0)
}

fn mkdir_all_depth(root: BorrowedFd, rel: &Path, mode: Mode, depth: u32) -> nix::Result<OwnedFd> {
    if depth > 40 {
        return Err(Errno::ELOOP);
    }
    let mut current = PathBuf::new();
    let mut dir = open_in_root(root, Path::new("/"), OFlag::O_DIRECTORY)?;
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        current.push(comp);
        match open_in_root(root, &current, OFlag::O_DIRECTORY) {
            Ok(fd) => dir = fd,
            Err(Errno::ENOENT) => {
                let name = comp.as_os_str();
                match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, mode) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        // A dangling symlink: make its target, inside the
                        // root, then continue below it.
                        let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)?;
                        let target = Path::new(&target);
                        let base = if target.is_absolute() {
                            PathBuf::new()
                        } else {
                            current.parent().map(Path::to_path_buf).unwrap_or_default()
                        };
                        let mut rest = base.join(relative(target));
                        for c in &comps[i + 1..] {
                            rest.push(c);
                        }
                        return mkdir_all_depth(root, &rest, mode, depth + 1);
                    }
                    Err(e) => return Err(e),
                }
                dir = open_in_root(root, &current, OFlag::O_DIRECTORY)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Make sure a regular file exists at `path` inside `root` (a bind-mount
/// target for a file source) and return an `O_PATH` fd of it.
pub fn create_file_in_root(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, path, OFlag::empty()) {
        return Ok(fd);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or(Errno::EINVAL)?;
    let dir = mkdir_all_in_root(root, parent, Mode::from_bits_truncate(0o755))?;
    // O_EXCL|O_NOFOLLOW: never create through a dangling symlink.
    match nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(fd) => drop(
            // SAFETY: fresh descriptor from openat.
            unsafe { OwnedFd::from_raw_fd(fd) },
        ),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path, OFlag::empty())
}

/// Create a symlink `dir/name -> target` unless something exists there
/// (`dir`: an `O_PATH` fd of a directory resolved inside the rootfs).
pub fn symlink_at(dir: BorrowedFd, name: &OsStr, target: &str) -> nix::Result<()> {
    match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Read a file the kernel generates as it is read (procfs, cgroupfs):
/// stat says 0 bytes, so `fs::read_to_string` starts with 32-byte reads and
/// doubles, and every read of a one-record file like /proc/PID/stat makes
/// all of it again. `cap`: a size the file usually fits in.
pub fn read_generated(path: impl AsRef<Path>, cap: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(cap);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

pub fn os(s: &str) -> &OsStr {
    OsStr::from_bytes(s.as_bytes())
}

/// `mount_setattr(2)` argument (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `AT_RECURSIVE` (linux/fcntl.h): the whole subtree, for open_tree and
/// mount_setattr.
pub const AT_RECURSIVE: libc::c_uint = 0x8000;

/// A detached clone of the mount at `path` (`open_tree(OPEN_TREE_CLONE)`),
/// of its whole subtree with `recursive`. Nobody else sees it until it is
/// attached with move_mount.
pub fn clone_tree(path: &Path, recursive: bool) -> std::result::Result<OwnedFd, Errno> {
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree with a valid C string; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open_tree returned a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `mount_setattr` on a (detached) tree: set `attr_set` flags, with the
/// user namespace `userns` for MOUNT_ATTR_IDMAP.
pub fn set_tree_attrs(
    tree: BorrowedFd,
    attr_set: u64,
    userns: Option<BorrowedFd>,
    recursive: bool,
) -> std::result::Result<(), Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map(|u| u.as_raw_fd() as u64).unwrap_or(0),
    };
    let empty = std::ffi::CString::default();
    // SAFETY: mount_setattr on a live tree fd with a correctly sized struct
    // that lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
