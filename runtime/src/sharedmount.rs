//! A container without a mount namespace of its own (none listed in
//! `linux.namespaces`) inherits the runtime's, as the spec says. runc runs
//! it so: the container's mounts are made in the runtime's mount namespace
//! on the rootfs, and the init chroots into it. rrun does the same with
//! less reaching the host:
//!
//! - `create` binds the rootfs onto itself and makes that bind private
//!   before the init starts, and the init mounts below it: nothing the
//!   container mounts propagates to other mount namespaces, and the
//!   runtime's `/` keeps its propagation (runc makes it rslave and the
//!   rootfs's parent mount private);
//! - `delete`, or a create that fails, detaches that bind and everything
//!   below it (runc leaves the mounts behind); the bind is recognised by
//!   its mount id, so a mount someone else put there is never touched.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{ErrnoExt, Error, Result};

const NONE: Option<&str> = None;

/// Bind `rootfs` (canonical) onto itself, private; returns the bind's
/// mount id.
pub fn bind(rootfs: &Path) -> Result<u64> {
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .at("bind mount rootfs (no mount namespace)", rootfs)?;
    let id = top_mount_id(rootfs);
    let private = mount(
        NONE,
        rootfs,
        NONE,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        NONE,
    )
    .at("make private", rootfs);
    match (id, private) {
        (Some(id), Ok(())) => Ok(id),
        (id, private) => {
            let _ = umount2(rootfs, MntFlags::MNT_DETACH);
            private?;
            Err(Error::Init(format!(
                "{}: the rootfs bind is not in /proc/self/mountinfo (id {id:?})",
                rootfs.display()
            )))
        }
    }
}

/// Detach the bind [`bind`] made (mount id `id`) and all below it, if it
/// is still the top mount at `rootfs`.
pub fn release(rootfs: &Path, id: u64) -> Result<()> {
    match top_mount_id(rootfs) {
        Some(top) if top == id => {
            umount2(rootfs, MntFlags::MNT_DETACH).at("unmount the container's rootfs", rootfs)
        }
        // already gone (a reboot, someone else): nothing of ours is there
        _ if !mount_ids(rootfs).contains(&id) => Ok(()),
        _ => Err(Error::Init(format!(
            "{}: another mount covers the container's rootfs mount (id {id}); it was left in place",
            rootfs.display()
        ))),
    }
}

/// The ids of the mounts at mount point `path`, bottom first.
fn mount_ids(path: &Path) -> Vec<u64> {
    let info = crate::fsutil::read_generated("/proc/self/mountinfo", 64 << 10).unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let point = f.nth(3)?;
            (Path::new(&unescape(point)) == path).then_some(id)
        })
        .collect()
}

/// The id of the mount on top at mount point `path`: mountinfo lists a
/// mount stacked on another after it.
fn top_mount_id(path: &Path) -> Option<u64> {
    mount_ids(path).last().copied()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| b[i] == b'\\' && o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(o) => {
                out.push(o.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape(r"/plain\x"), r"/plain\x");
        assert_eq!(unescape("/"), "/");
    }

    #[test]
    fn the_root_is_a_mount_point() {
        assert!(top_mount_id(Path::new("/")).is_some());
        assert!(mount_ids(Path::new("/no/such/mount/point")).is_empty());
    }
}
