//! File descriptors the shim inherits beyond stdin, stdout and stderr.
//!
//! containerd (Go) starts a shim with those three only, but rbox is started
//! from shells and scripts that may leave a descriptor open without
//! close-on-exec (`flock 9` on a lock file, a pipe of a test harness), and
//! Rust's `Command` passes such descriptors on. A shim lives as long as its
//! container: a lock it inherited would stay held, a pipe's reader would
//! never see EOF, and the runtime and the container would inherit them in
//! turn. The shim takes nothing from its parent but its arguments and
//! environment (the socket is bound from `-socket`, never passed), so every
//! descriptor from 3 up is closed before anything else runs.

/// Closes every descriptor from 3 up (close_range(2), or one by one from
/// /proc/self/fd on kernels before 5.9).
pub fn close_inherited() {
    // SAFETY: no descriptor is open yet in this process but the inherited
    // ones: main calls this first, before any thread or file exists.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // the directory's own descriptor is closed by now (read_dir's iterator
    // is dropped); closing it again fails with EBADF, which is harmless
    for fd in fds {
        // SAFETY: fd is an inherited descriptor nothing in this process uses
        unsafe { libc::close(fd) };
    }
}
