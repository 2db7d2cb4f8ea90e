//! OOM kills in a container's cgroup, watched by the shim itself (one
//! sleeping thread per container, no helper process):
//! - cgroup v2: inotify on `memory.events`, which the kernel marks modified
//!   whenever a counter changes; `oom_kill` is read from it;
//! - cgroup v1: an eventfd registered through `cgroup.event_control` for
//!   `memory.oom_control`, signalled on every OOM (before the kernel picks
//!   and counts its victim, so the signal is the event) and when the cgroup
//!   is removed.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use cgroup_metrics::Cgroup;

/// The memory cgroup of a container and how its OOM kills are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryCgroup {
    /// the cgroup2 directory (memory.events)
    V2(PathBuf),
    /// the v1 memory controller's directory (memory.oom_control)
    V1(PathBuf),
}

impl MemoryCgroup {
    /// The memory cgroup of a container's cgroup: the v1 memory
    /// controller's directory, else its cgroup2 directory.
    pub fn of(cgroup: &Cgroup) -> Option<MemoryCgroup> {
        match (cgroup.v1.get("memory"), &cgroup.v2) {
            (Some(dir), _) => Some(MemoryCgroup::V1(dir.clone())),
            (None, Some(dir)) => Some(MemoryCgroup::V2(dir.clone())),
            (None, None) => None,
        }
    }

    /// How many processes the OOM killer killed in the cgroup.
    pub fn kills(&self) -> u64 {
        let cgroup = match self {
            MemoryCgroup::V1(d) => Cgroup {
                v1: [("memory".to_string(), d.clone())].into(),
                v2: None,
            },
            MemoryCgroup::V2(d) => Cgroup {
                v1: Default::default(),
                v2: Some(d.clone()),
            },
        };
        cgroup.oom_kills()
    }
}

/// A sleeping watch on a memory cgroup's OOM notifications.
pub struct OomWatch {
    fd: OwnedFd,
    cgroup: MemoryCgroup,
    /// v1: memory.oom_control, open while the eventfd is registered
    _control: Option<fs::File>,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl OomWatch {
    /// None when the cgroup has no OOM counter to watch (a cgroup2 without
    /// the memory controller).
    pub fn new(cgroup: &MemoryCgroup) -> io::Result<Option<OomWatch>> {
        match cgroup {
            MemoryCgroup::V2(dir) => {
                let file = dir.join("memory.events");
                if !file.exists() {
                    return Ok(None);
                }
                // SAFETY: plain syscall; the fd is owned right away
                let fd = check(unsafe { libc::inotify_init1(libc::IN_CLOEXEC) })?;
                // SAFETY: fd was just returned by inotify_init1 and is ours
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                // SAFETY: a valid fd and a NUL-terminated path for the call
                check(unsafe {
                    libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY)
                })?;
                Ok(Some(OomWatch {
                    fd,
                    cgroup: cgroup.clone(),
                    _control: None,
                }))
            }
            MemoryCgroup::V1(dir) => {
                let control = fs::File::open(dir.join("memory.oom_control"))?;
                // SAFETY: plain syscall; the fd is owned right away
                let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
                // SAFETY: fd was just returned by eventfd and is ours
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                fs::write(
                    dir.join("cgroup.event_control"),
                    format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
                )?;
                Ok(Some(OomWatch {
                    fd,
                    cgroup: cgroup.clone(),
                    _control: Some(control),
                }))
            }
        }
    }

    /// Blocks until there may be a new OOM kill (true), or until the
    /// cgroup is gone (false).
    pub fn wait(&self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: buf is valid for writes of its length
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return false;
            }
            match &self.cgroup {
                // the eventfd also fires when the cgroup is removed
                MemoryCgroup::V1(dir) => return dir.join("memory.oom_control").exists(),
                MemoryCgroup::V2(_) => {
                    let n = n as usize;
                    let head = std::mem::size_of::<libc::inotify_event>();
                    let mut off = 0;
                    let mut modified = false;
                    while off + head <= n {
                        // SAFETY: the kernel wrote a whole event header at
                        // off; read_unaligned copes with the buffer's alignment
                        let ev: libc::inotify_event =
                            unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                        if ev.mask & libc::IN_IGNORED != 0 {
                            // the file went away with its cgroup
                            return false;
                        }
                        modified |= ev.mask & libc::IN_MODIFY != 0;
                        off += head + ev.len as usize;
                    }
                    if modified {
                        return true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cgroup_is_v1s_where_v1_has_memory() {
        let hybrid = Cgroup {
            v1: [("memory".to_string(), PathBuf::from("/m/c1"))].into(),
            v2: Some("/u/c1".into()),
        };
        assert_eq!(
            MemoryCgroup::of(&hybrid),
            Some(MemoryCgroup::V1("/m/c1".into()))
        );
        let v2 = Cgroup {
            v1: Default::default(),
            v2: Some("/u/c1".into()),
        };
        assert_eq!(
            MemoryCgroup::of(&v2),
            Some(MemoryCgroup::V2("/u/c1".into()))
        );
        assert_eq!(MemoryCgroup::of(&Cgroup::default()), None);
    }

    #[test]
    fn kills_are_counted_from_either_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\noom_kill 3\n",
        )
        .unwrap();
        fs::write(dir.path().join("memory.events"), "oom 2\noom_kill 1\n").unwrap();
        assert_eq!(MemoryCgroup::V1(dir.path().into()).kills(), 3);
        assert_eq!(MemoryCgroup::V2(dir.path().into()).kills(), 1);
    }
}
