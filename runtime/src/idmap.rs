//! Id-mapped bind mounts (`uidMappings`/`gidMappings` on a mount, OCI 1.1,
//! Linux 5.12+).
//!
//! The parent prepares each one on the host side, before the container
//! process exists: a user namespace with the mount's mappings (held by a
//! short-lived helper process), a detached clone of the source
//! (`open_tree(OPEN_TREE_CLONE)`), and `mount_setattr(MOUNT_ATTR_IDMAP)`
//! with that namespace. The init inherits the detached trees and attaches
//! each at its destination with `move_mount`, so nothing is resolved or
//! mounted on the host.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::error::{Error, Result};

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Checks on id-mapped mounts, before anything is made.
pub fn validate(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let (u, g) = (m.uid_mappings().is_some(), m.gid_mappings().is_some());
        if !u && !g {
            continue;
        }
        if u != g {
            return Err(Error::config(
                format!("mounts[{i}]"),
                "uidMappings and gidMappings must be given together",
            ));
        }
        if !is_bind(m) {
            return Err(Error::config(
                format!("mounts[{i}].uidMappings"),
                "only bind mounts can be id-mapped",
            ));
        }
    }
    Ok(())
}

/// A user namespace with `uids`/`gids`, as an fd (`/proc/PID/ns/user` of a
/// helper that is gone when this returns).
fn userns_with(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping], field: &str) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    let (hold_r, hold_w) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: rrun is single-threaded here; the child only makes raw
    // syscalls and _exits.
    let child = match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(hold_w);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"1" } else { b"0" });
            let mut b = [0u8; 1];
            // wait until the parent has the namespace (or is gone)
            let _ = nix::unistd::read(hold_r.as_raw_fd(), &mut b);
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    drop(hold_r);
    let result = (|| {
        let mut b = [0u8; 1];
        match nix::unistd::read(ready_r.as_raw_fd(), &mut b) {
            Ok(1) if b[0] == b'1' => {}
            _ => {
                return Err(Error::sys(
                    "unshare a user namespace for an id-mapped mount",
                    Errno::EPERM,
                ))
            }
        }
        for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
            let text: String = maps
                .iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect();
            let path = format!("/proc/{child}/{file}");
            std::fs::write(&path, &text).map_err(|e| {
                Error::config(field, format!("write {path} ({}): {e}", text.trim()))
            })?;
        }
        let path = format!("/proc/{child}/ns/user");
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::path("open", &path, e))?;
        // SAFETY: fresh descriptor from open.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })();
    drop(hold_w);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

/// Detached, id-mapped clones of the sources of every mount that asks for
/// one, by mount index. The init attaches them with [`attach`].
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let (Some(uids), Some(gids)) = (m.uid_mappings(), m.gid_mappings()) else {
            continue;
        };
        let field = format!("mounts[{i}].uidMappings");
        let source = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::config(format!("mounts[{i}].source"), "missing"))?;
        let source = if source.is_relative() {
            bundle.join(source)
        } else {
            source.clone()
        };
        let userns = userns_with(uids, gids, &field)?;
        let recursive = m.options().iter().flatten().any(|o| o == "rbind");
        let tree = crate::fsutil::clone_tree(&source, recursive)
            .map_err(|e| Error::path("open_tree", &source, e))?;
        let read_only = m.options().iter().flatten().any(|o| o == "ro");
        let attrs = MOUNT_ATTR_IDMAP
            | if read_only {
                libc::MOUNT_ATTR_RDONLY
            } else {
                0
            };
        let r = crate::fsutil::set_tree_attrs(tree.as_fd(), attrs, Some(userns.as_fd()), recursive);
        if let Err(e) = r {
            return Err(Error::config(
                field,
                format!(
                    "id-map {}: {e}{}",
                    source.display(),
                    if e == Errno::EINVAL {
                        " (the filesystem or kernel does not support id-mapped mounts)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        out.push((i, tree));
    }
    Ok(out)
}

/// Attach a prepared tree at `target` (an O_PATH fd of the mount point).
pub fn attach(tree: RawFd, target: RawFd, dest: &Path) -> Result<()> {
    let empty = CString::default();
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: move_mount with two live fds and empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            empty.as_ptr(),
            target,
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(Error::path("attach id-mapped mount", dest, Errno::last()));
    }
    Ok(())
}
