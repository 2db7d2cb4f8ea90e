//! File helpers of the store: temp names, locks, removal, the snapshots
//! directory's allocation hint, early writeback.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other process or thread uses: `.tmp-<pid>-<nanos>-<n>`.
pub(crate) fn temp_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        ".tmp-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Remove a file or a directory tree; gone already is fine.
pub(super) fn remove_any(p: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

pub(super) fn open_nofollow(p: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// flock(LOCK_EX), or LOCK_EX|LOCK_NB with `try_only`.
pub(crate) fn flock(f: &impl AsRawFd, try_only: bool) -> io::Result<()> {
    let op = if try_only {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    // SAFETY: flock on a descriptor we hold; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `FS_TOPDIR_FL` (`chattr +T`): the top of unrelated directory trees.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Mark `dir` as the top of unrelated directory trees (ext2/3/4's
/// `chattr +T`): the Orlov allocator then puts each snapshot in a block
/// group of its own instead of next to its siblings. Without it, on ext4
/// without a journal, a new snapshot's inodes are allocated in the groups
/// of the snapshots removed in the last minutes, and every inode
/// allocation scans past each recently deleted inode there (1 to 2 ms a
/// file after a `rmi` of a large image). Best effort: other filesystems
/// have no such flag, and nothing depends on it.
pub(super) fn mark_topdir(dir: &Path) {
    let Ok(f) = open_nofollow(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the live `flags`.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return;
    }
    if flags & FS_TOPDIR_FL != 0 {
        return;
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the live `flags`.
    let _ = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
}

/// Start writing what is in `f` to disk, without waiting: the disk works
/// while the rest of the layer or blob is written, and the one sync before the
/// snapshot is committed finds the data written or in flight. Best effort.
pub(crate) fn start_writeback(f: &impl AsRawFd) {
    // SAFETY: sync_file_range on a descriptor the caller holds; no memory
    // is passed.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}
