//! The host's cgroup hierarchies and rrun's own place in them: which cgroup
//! filesystems are mounted under /sys/fs/cgroup (v1 controllers, cgroup2,
//! or both on a hybrid host) and the cgroup each belongs to in
//! /proc/self/cgroup. cgroups.rs places containers by them; rootfs.rs
//! mounts a container's view of them.

use std::path::PathBuf;

/// A cgroup filesystem mounted on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// Controller options (`memory`, `cpu,cpuacct`, `name=systemd`).
    pub options: String,
}

impl Hierarchy {
    pub fn is_v2(&self) -> bool {
        self.fstype == "cgroup2"
    }
    /// The key /proc/self/cgroup uses for this hierarchy.
    pub fn key(&self) -> String {
        if self.is_v2() {
            String::new()
        } else {
            self.options.clone()
        }
    }
}

/// cgroup mounts under /sys/fs/cgroup, from /proc/self/mountinfo, read
/// once per rrun process: creating a container asked for them a dozen times,
/// and generating mountinfo is kernel work that grows with the host's mount
/// table. They do not change while rrun runs (a child forked after the
/// first read, in a mount namespace of its own, still sees the host's).
pub fn host_hierarchies() -> &'static [Hierarchy] {
    static HIERARCHIES: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    HIERARCHIES.get_or_init(|| {
        parse_mountinfo(
            &crate::fsutil::read_generated("/proc/self/mountinfo", 64 << 10).unwrap_or_default(),
        )
    })
}

/// The cgroup and cgroup2 mounts under /sys/fs/cgroup of a mountinfo text,
/// with the mount options that are not controllers dropped.
fn parse_mountinfo(info: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mp = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let _src = post.next();
        let opts = post.next().unwrap_or("");
        if !(fstype == "cgroup" || fstype == "cgroup2") || !mp.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let options = opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro" | "nsdelegate" | "memory_recursiveprot")
                    && !o.starts_with("clone_children")
                    && !o.starts_with("release_agent")
            })
            .collect::<Vec<_>>()
            .join(",");
        out.push(Hierarchy {
            mount_point: PathBuf::from(mp),
            fstype: fstype.into(),
            options,
        });
    }
    out
}

/// `/proc/self/cgroup` as controller-key -> path.
pub fn own_cgroup_paths() -> std::collections::HashMap<String, String> {
    crate::fsutil::read_generated("/proc/self/cgroup", 1024)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hybrid_hosts_hierarchies() {
        let info = "24 1 0:22 / /sys rw - sysfs sysfs rw\n\
            30 24 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
            31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
            32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
            35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            36 1 0:32 / /mnt/cg rw - cgroup cgroup rw,memory\n";
        let h = parse_mountinfo(info);
        assert_eq!(h.len(), 3, "{h:?}");
        assert!(h[0].is_v2());
        assert_eq!((h[0].key(), h[0].options.as_str()), (String::new(), ""));
        assert_eq!(h[1].options, "xattr,name=systemd");
        assert_eq!(
            h[2].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(h[2].key(), "cpu,cpuacct");
    }
}
