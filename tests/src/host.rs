//! What the host shows: mounts, processes, namespaces, /proc fields.

use std::path::{Path, PathBuf};

/// Mount points currently in this mount namespace below `prefix`.
pub fn mounts_under(prefix: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| Path::new(m).starts_with(prefix))
        .collect()
}

/// Host mountinfo lines whose mount point or mounted root is below `dir`.
pub fn mounts_mentioning(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 4 && (Path::new(f[3]).starts_with(dir) || Path::new(f[4]).starts_with(dir))
        })
        .map(String::from)
        .collect()
}

/// Host processes whose cwd or root is below `dir` (a half-made container
/// still sitting in its bundle).
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            ["cwd", "root"].iter().any(|l| {
                std::fs::read_link(format!("/proc/{pid}/{l}")).is_ok_and(|p| p.starts_with(dir))
            })
        })
        .collect()
}

/// `/proc/self/ns/<name>` of the test process, e.g. `net:[4026531840]`.
pub fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A mount on the host, lazily unmounted on drop.
pub struct HostMount(pub PathBuf);

impl HostMount {
    /// `mount -t tmpfs tmpfs target`.
    pub fn tmpfs(target: &Path) -> HostMount {
        std::fs::create_dir_all(target).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        HostMount(target.to_path_buf())
    }

    /// `mount --bind dir dir && mount --make-shared dir`.
    pub fn shared_bind(dir: &Path) -> HostMount {
        use nix::mount::MsFlags;
        nix::mount::mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        let m = HostMount(dir.to_path_buf());
        nix::mount::mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        m
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The (dev, inode) of a path, following symlinks.
pub fn dev_ino(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// A value of the `Key:\tvalue` lines of /proc/<pid>/status-like text.
pub fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}
