//! What the host offers containers: cgroup version and controllers,
//! overlayfs, seccomp. `rbox info` shows it; `create` refuses up front
//! what the host cannot do, naming what is missing.

use std::fs;
use std::path::Path;

/// The cgroup hierarchy's root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// "v2", "hybrid" or "v1", for the hierarchy mounted at `root`.
pub fn cgroup_version(root: &Path) -> &'static str {
    if root.join("cgroup.controllers").exists() {
        "v2"
    } else if root.join("unified").is_dir() {
        "hybrid"
    } else {
        "v1"
    }
}

/// The controllers available at `root`: cgroup v2's `cgroup.controllers`,
/// else the v1 hierarchies mounted there (`cpu,cpuacct` counts as both).
pub fn cgroup_controllers(root: &Path) -> Vec<String> {
    if let Ok(text) = fs::read_to_string(root.join("cgroup.controllers")) {
        return text.split_whitespace().map(String::from).collect();
    }
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "unified" || !e.path().join("cgroup.procs").exists() {
                continue;
            }
            out.extend(
                name.split(',')
                    .filter(|n| !n.starts_with("name="))
                    .map(String::from),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The controllers `--memory`, `--cpus` and `--pids-limit` need that the
/// host at `root` does not have, with the flag that needs each.
pub fn missing_controllers(
    root: &Path,
    memory: bool,
    cpus: bool,
    pids: bool,
) -> Vec<(&'static str, &'static str)> {
    let have = cgroup_controllers(root);
    [
        (memory, "memory", "--memory"),
        (cpus, "cpu", "--cpus"),
        (pids, "pids", "--pids-limit"),
    ]
    .into_iter()
    .filter(|(asked, c, _)| *asked && !have.iter().any(|h| h == c))
    .map(|(_, c, flag)| (c, flag))
    .collect()
}

/// Whether the kernel knows filesystem `fs` (/proc/filesystems; a module
/// not loaded yet is not listed but loads on the first mount).
pub fn has_filesystem(fs: &str) -> bool {
    fs::read_to_string("/proc/filesystems")
        .is_ok_and(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
}

/// Whether the kernel has seccomp filters (the `Seccomp:` line of
/// /proc/self/status exists only with CONFIG_SECCOMP).
pub fn has_seccomp() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("\nSeccomp:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_of_v1_and_v2_hierarchies() {
        let v1 = tempfile::tempdir().unwrap();
        for d in ["cpu,cpuacct", "pids", "name=systemd", "unified", "empty"] {
            fs::create_dir(v1.path().join(d)).unwrap();
            if d != "empty" {
                fs::write(v1.path().join(d).join("cgroup.procs"), "").unwrap();
            }
        }
        assert_eq!(cgroup_version(v1.path()), "hybrid");
        assert_eq!(cgroup_controllers(v1.path()), ["cpu", "cpuacct", "pids"]);
        assert_eq!(
            missing_controllers(v1.path(), true, true, true),
            [("memory", "--memory")]
        );
        let v2 = tempfile::tempdir().unwrap();
        fs::write(
            v2.path().join("cgroup.controllers"),
            "cpuset cpu io memory\n",
        )
        .unwrap();
        assert_eq!(cgroup_version(v2.path()), "v2");
        assert_eq!(
            missing_controllers(v2.path(), true, true, true),
            [("pids", "--pids-limit")]
        );
        assert!(missing_controllers(v2.path(), true, true, false).is_empty());
    }
}
