//! CVE-2019-5736: a container must never be able to open the rrun binary
//! on the host for writing through /proc/PID/exe. Processes that enter a
//! container (`create`, `run`, `exec`) first re-execute rrun from a sealed
//! memfd copy, so /proc/PID/exe of anything rrun runs inside a container is
//! an immutable anonymous file.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use nix::errno::Errno;

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

fn is_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: fcntl on a descriptor we own.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-exec from a sealed copy unless already running from one. Returns only
/// on failure (or when already sealed).
pub fn ensure_sealed() -> Result<(), String> {
    if is_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").map_err(|e| format!("open /proc/self/exe: {e}"))?;
    let name = CString::new("rrun").expect("static name");
    // SAFETY: memfd_create with a valid C string and flags.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", Errno::last()));
    }
    // SAFETY: memfd_create returned a fresh descriptor.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut exe, &mut copy).map_err(|e| format!("copy rrun into memfd: {e}"))?;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(format!("seal memfd: {}", Errno::last()));
    }
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
    match nix::unistd::fexecve(copy.as_raw_fd(), &args, &env) {
        Err(e) => Err(format!("re-exec sealed rrun: {e}")),
        Ok(never) => match never {},
    }
}
