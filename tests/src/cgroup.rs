//! The host's cgroup hierarchies, a cgroup parent of the test's own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::unique;

/// The mount points of the host's cgroup hierarchies (v1 controllers and
/// cgroup2: /sys/fs/cgroup/<controller> and /sys/fs/cgroup/unified on a
/// hybrid host, /sys/fs/cgroup itself on a pure v2 one).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .filter(|p| p.starts_with("/sys/fs/cgroup"))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every cgroup directory named `path` in any hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return vec![];
    }
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|p| p.exists())
        .collect()
}

/// A cgroup parent of the test's own for rbox's containers (give it as
/// `RBOX_CGROUP_PARENT`): `/rbox-test-<pid>-<n>`. Dropped, it is removed
/// from every hierarchy (rmdir only; rrun may have removed it already); a
/// directory that stays means a container's cgroup was left, and panics
/// unless the test is panicking already.
pub struct CgroupParent(pub String);

impl Default for CgroupParent {
    fn default() -> Self {
        CgroupParent(format!("/{}", unique("rbox-test")))
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        let mut left = Vec::new();
        for d in cgroup_dirs(&self.0) {
            // a just-killed container's cgroup may be busy for a moment
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match std::fs::remove_dir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        let inside: Vec<_> = std::fs::read_dir(&d)
                            .map(|r| {
                                r.flatten()
                                    .filter(|e| e.path().is_dir())
                                    .map(|e| e.file_name())
                                    .collect()
                            })
                            .unwrap_or_default();
                        left.push(format!("{}: {e} (holds {inside:?})", d.display()));
                        break;
                    }
                }
            }
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("cgroup parent left behind: {left:#?}");
        }
    }
}

/// A file of the cgroup `path`: the v1 directory of `controller` (this host
/// is hybrid), else the cgroup2 directory on a pure v2 host.
pub fn cgroup_file(controller: &str, path: &str, file: &str) -> Option<String> {
    let rel = path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel)
        .join(file);
    let v2 = Path::new("/sys/fs/cgroup").join(rel).join(file);
    std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .ok()
        .map(|s| s.trim().to_string())
}

/// True on a pure cgroup2 host (unified at /sys/fs/cgroup).
pub fn cgroup2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
