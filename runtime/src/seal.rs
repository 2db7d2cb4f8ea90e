//! CVE-2019-5736: a container must never be able to open the rrun binary
//! on the host for writing through /proc/PID/exe. Processes that enter a
//! container (`create`, `run`, `exec`) first re-execute rrun from a copy the
//! container cannot write:
//!
//! 1. a detached read-only bind mount of the binary (`open_tree` with
//!    `OPEN_TREE_CLONE`, then `mount_setattr(MOUNT_ATTR_RDONLY)`). The mount
//!    is never attached anywhere, so no other process sees it, and nothing
//!    is copied: opening /proc/PID/exe for writing fails with EROFS. This
//!    needs CAP_SYS_ADMIN and Linux 5.12.
//! 2. otherwise a write-sealed memfd copy (rootless, older kernels).
//!
//! A binary that already runs from a read-only mount or a sealed memfd is
//! not re-executed.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when the running binary cannot be written through /proc/self/exe.
fn is_protected(exe: &File) -> bool {
    // SAFETY: fcntl on a descriptor we own.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// A private, read-only, detached bind mount of /proc/self/exe.
fn read_only_clone() -> Result<OwnedFd, Errno> {
    let tree = crate::fsutil::clone_tree(std::path::Path::new("/proc/self/exe"), false)?;
    crate::fsutil::set_tree_attrs(tree.as_fd(), libc::MOUNT_ATTR_RDONLY, None, false)?;
    Ok(tree)
}

/// A write-sealed memfd copy of /proc/self/exe.
fn sealed_copy(exe: &mut File) -> Result<OwnedFd, String> {
    let name = CString::new("rrun").expect("static name");
    // SAFETY: memfd_create with a valid C string and flags.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", Errno::last()));
    }
    // SAFETY: memfd_create returned a fresh descriptor.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    std::io::copy(exe, &mut copy).map_err(|e| format!("copy rrun into memfd: {e}"))?;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(format!("seal memfd: {}", Errno::last()));
    }
    Ok(copy.into())
}

/// Re-exec from a protected copy unless already running from one. Returns
/// only on failure (or when already protected).
pub fn ensure_sealed() -> Result<(), String> {
    let mut exe = File::open("/proc/self/exe").map_err(|e| format!("open /proc/self/exe: {e}"))?;
    if is_protected(&exe) {
        return Ok(());
    }
    let target = match read_only_clone() {
        Ok(fd) => fd,
        Err(_) => sealed_copy(&mut exe)?,
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| {
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).unwrap_or_default()
        })
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            kv.push(b'=');
            kv.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    match nix::unistd::fexecve(target.as_raw_fd(), &args, &env) {
        Err(e) => Err(format!("re-exec protected rrun: {e}")),
        Ok(never) => match never {},
    }
}
