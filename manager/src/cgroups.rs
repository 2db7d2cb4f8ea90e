//! A container's cgroup: where it goes (under `--cgroup-parent`, checked
//! here), and its removal as a runtime killed during its create leaves it
//! (`kill -9` of rrun between making the cgroups and writing its state):
//! a directory in every hierarchy (each v1 controller's, and cgroup2's),
//! perhaps with the half-made container's processes in it, which `rrun
//! delete` cannot find without the state. rbox removes it by path when it
//! removes the container or undoes a failed start.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cgroup parent rbox cannot use (`what`: the flag or variable it came
/// from).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} {value:?}: {why}")]
pub struct BadParent {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// The cgroup containers go under unless `--cgroup-parent` or
/// `RBOX_CGROUP_PARENT` names another (cgroupfs, like Docker's `/docker`).
pub const DEFAULT_PARENT: &str = "/rbox";

/// A cgroup parent (`what`: where it came from, for the error) checked and
/// cleaned: an absolute path below each hierarchy's root, `//a/b/` is
/// `/a/b`. Relative parents (Docker's "below the daemon's cgroup") and
/// systemd slices are refused: rbox has no daemon and drives cgroupfs.
pub fn parent(what: &'static str, value: &str) -> Result<String, BadParent> {
    let bad = |why| BadParent {
        what,
        value: value.to_string(),
        why,
    };
    if !value.starts_with('/') {
        return Err(bad(
            "not an absolute cgroup path (like /rbox); relative parents and systemd slices are not supported",
        ));
    }
    let mut clean = String::new();
    for c in value.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return Err(bad("'.' and '..' are not allowed in a cgroup path"));
        }
        if c.len() > 255 {
            return Err(bad("a path component is longer than 255 bytes"));
        }
        if c.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed in a cgroup path"));
        }
        clean.push('/');
        clean.push_str(c);
    }
    Ok(if clean.is_empty() { "/".into() } else { clean })
}

/// `RBOX_CGROUP_PARENT`, checked; `None` when unset or empty.
pub fn env_parent() -> Result<Option<String>, BadParent> {
    match std::env::var("RBOX_CGROUP_PARENT") {
        Ok(v) if !v.is_empty() => parent("RBOX_CGROUP_PARENT", &v).map(Some),
        _ => Ok(None),
    }
}

/// `linux.cgroupsPath` of container `id` under the (clean) `parent`.
pub fn path(parent: &str, id: &str) -> String {
    format!("{}/{id}", parent.trim_end_matches('/'))
}

/// The mount points of the host's cgroup hierarchies (v1 and v2), from
/// /proc/self/mountinfo.
fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (mount, fs) = l.split_once(" - ")?;
            let fstype = fs.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            mount.split(' ').nth(4).map(PathBuf::from)
        })
        .collect()
}

/// `path` (like `linux.cgroupsPath`) relative to a hierarchy's root, if it
/// names a cgroup below the root (no `.` or `..`, not the root itself).
fn relative(path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let plain = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (plain && rel.components().next().is_some()).then(|| rel.to_path_buf())
}

/// `dir` and every cgroup below it, deepest first.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(subtree(&e.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

/// SIGKILL to every process in `dir` (cgroup.kill on cgroup2 when the
/// kernel has it, which also takes processes forked meanwhile).
fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Removes cgroup `path` from every hierarchy: what still runs in it is
/// killed, then its directories go, deepest first (a killed process leaves
/// its cgroup a moment after it dies: retried for up to 2 s). Best effort:
/// nothing happens where it does not exist; what cannot be removed stays.
pub fn remove(path: &str) {
    let Some(rel) = relative(path) else { return };
    for root in hierarchies() {
        let dir = root.join(&rel);
        if !dir.is_dir() {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut busy = false;
            for d in subtree(&dir) {
                kill_all(&d);
                match std::fs::remove_dir(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => busy = true,
                }
            }
            if !busy || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_are_absolute_and_clean() {
        let ok = |v: &str| parent("--cgroup-parent", v).unwrap();
        assert_eq!(ok("/rbox"), "/rbox");
        assert_eq!(ok("//a///b/"), "/a/b");
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/a:b/c.slice"), "/a:b/c.slice");
        assert_eq!(path("/", "abc"), "/abc");
        assert_eq!(path("/a/b", "abc"), "/a/b/abc");
        let long = format!("/{}", "x".repeat(256));
        for bad in [
            "rbox",
            "",
            "user.slice",
            "/a/../b",
            "/a/./b",
            "/a\nb",
            &long,
        ] {
            let e = parent("--cgroup-parent", bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("--cgroup-parent {bad:?}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn only_paths_below_a_root() {
        assert_eq!(relative("/rbox/abc"), Some(PathBuf::from("rbox/abc")));
        assert_eq!(relative("rbox"), Some(PathBuf::from("rbox")));
        for bad in ["", "/", "/rbox/../etc", "/./x", "//"] {
            assert_eq!(relative(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_subtree_lists_the_deepest_first() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir_all(d.path().join("c")).unwrap();
        std::fs::write(d.path().join("a/file"), "").unwrap();
        let t = subtree(d.path());
        assert_eq!(t.last().unwrap(), d.path());
        let pos = |p: &str| t.iter().position(|x| *x == d.path().join(p)).unwrap();
        assert!(pos("a/b") < pos("a"));
        assert_eq!(t.len(), 4, "{t:?}");
    }
}
