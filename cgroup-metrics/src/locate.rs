//! Finding a cgroup's directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// cgroup2 (else a v1 hierarchy)
    pub v2: bool,
    /// The v1 controllers it carries (`cpu`, `cpuacct`; named hierarchies
    /// such as `name=systemd` carry none).
    pub controllers: Vec<String>,
}

/// The cgroup mounts of a mountinfo text, those under /sys/fs/cgroup first.
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    let mut out: Vec<Mount> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            let mut r = right.split_whitespace();
            let (fstype, _source, options) = (r.next()?, r.next()?, r.next().unwrap_or(""));
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .map(String::from)
                    .collect()
            };
            Some(Mount {
                point: PathBuf::from(point),
                v2,
                controllers,
            })
        })
        .collect();
    out.sort_by_key(|m| !m.point.starts_with("/sys/fs/cgroup"));
    out
}

/// The controllers of cgroup v1, as mount options name them.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// A cgroup's directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    /// Its directory in each v1 hierarchy, by controller.
    pub v1: BTreeMap<String, PathBuf>,
    /// Its cgroup2 directory.
    pub v2: Option<PathBuf>,
}

impl Cgroup {
    /// The cgroup `pid` is in (from /proc/PID/cgroup and this process's
    /// mount table); None when the process is gone or in no mounted
    /// hierarchy.
    pub fn of_process(pid: i32) -> Option<Cgroup> {
        let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let cg = Cgroup::from_proc(&cgroup, &mounts(&mountinfo));
        (cg != Cgroup::default()).then_some(cg)
    }

    /// From the lines of /proc/PID/cgroup (`ID:controllers:path`, `0::path`
    /// for cgroup2) and the cgroup mounts.
    pub fn from_proc(proc_cgroup: &str, mounts: &[Mount]) -> Cgroup {
        let mut cg = Cgroup::default();
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let path = path.trim_start_matches('/');
            if controllers.is_empty() {
                if cg.v2.is_none() {
                    cg.v2 = mounts.iter().find(|m| m.v2).map(|m| m.point.join(path));
                }
                continue;
            }
            for c in controllers.split(',') {
                if let Some(m) = mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|x| x == c))
                {
                    cg.v1.entry(c.to_string()).or_insert(m.point.join(path));
                }
            }
        }
        cg
    }

    /// The cgroup at `path` below the root of every hierarchy of this
    /// host (like `rbox/<id>`).
    pub fn at(path: &str) -> Cgroup {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Cgroup::below(&mounts(&mountinfo), path)
    }

    /// The cgroup at `path` below each of `mounts`' roots.
    pub fn below(mounts: &[Mount], path: &str) -> Cgroup {
        let path = path.trim_start_matches('/');
        let mut cg = Cgroup::default();
        for m in mounts {
            if m.v2 {
                if cg.v2.is_none() {
                    cg.v2 = Some(m.point.join(path));
                }
                continue;
            }
            for c in &m.controllers {
                cg.v1.entry(c.clone()).or_insert(m.point.join(path));
            }
        }
        cg
    }

    /// Only in cgroup2: no v1 controller is mounted for it (named v1
    /// hierarchies do not count).
    pub fn is_v2_only(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// The directory a controller's files are in: its v1 hierarchy's,
    /// else the cgroup2 directory.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .get(controller)
            .or(self.v2.as_ref())
            .map(PathBuf::as_path)
    }

    /// Whether `controller` is read from a v1 hierarchy.
    pub fn is_v1(&self, controller: &str) -> bool {
        self.v1.contains_key(controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
        31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
        32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
        33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
        34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
        35 1 0:27 / /mnt/other rw - cgroup2 cgroup2 rw\n";

    #[test]
    fn mounts_are_read_from_mountinfo() {
        let m = mounts(HYBRID);
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m[0].v2 && m[0].point == Path::new("/sys/fs/cgroup/unified"));
        assert!(m[1].controllers.is_empty(), "a named hierarchy has none");
        assert_eq!(m[3].controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            m[4].point,
            Path::new("/mnt/other"),
            "outside /sys/fs/cgroup last"
        );
        assert!(mounts("1 0 0:1 / / rw - ext4 /dev/sda rw\n").is_empty());
    }

    #[test]
    fn a_hybrid_process_has_both() {
        let proc = "4:name=systemd:/\n3:memory:/ns/c1\n2:cpu,cpuacct:/ns/c1\n0::/ns/c1\n";
        let cg = Cgroup::from_proc(proc, &mounts(HYBRID));
        assert_eq!(
            cg.dir("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/ns/c1"))
        );
        assert_eq!(
            cg.dir("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/ns/c1"))
        );
        assert_eq!(
            cg.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/ns/c1"))
        );
        // pids is not mounted in v1: its files would be the cgroup2 ones
        assert_eq!(cg.dir("pids"), cg.v2.as_deref());
        assert!(!cg.is_v2_only());
    }

    #[test]
    fn a_cgroup2_process_and_a_named_hierarchy() {
        let mi = "31 24 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                  32 24 0:28 / /run/systemd rw - cgroup cgroup rw,name=systemd\n";
        let cg = Cgroup::from_proc("1:name=systemd:/x\n0::/ns/c1\n", &mounts(mi));
        assert!(cg.is_v2_only());
        assert_eq!(cg.dir("memory"), Some(Path::new("/sys/fs/cgroup/ns/c1")));
    }

    #[test]
    fn a_path_below_every_root() {
        let cg = Cgroup::below(&mounts(HYBRID), "/rbox/c1");
        assert_eq!(
            cg.v1["cpu"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/rbox/c1")
        );
        assert_eq!(
            cg.v1["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/rbox/c1")
        );
        assert_eq!(cg.v2, Some(PathBuf::from("/sys/fs/cgroup/unified/rbox/c1")));
    }
}
