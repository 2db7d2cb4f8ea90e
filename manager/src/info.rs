//! What this host has for containers and what rbox runs them with: `rbox
//! info` and `rbox version` print it, `rbox serve` answers Docker's `/info`
//! and `/version` with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::container::{self, ContainerError, LiveStatus};
use crate::host;
use crate::net::cni;
use crate::store::Store;

/// What rbox is and runs containers with (`rbox version`).
#[derive(Debug, Clone)]
pub struct Versions {
    /// rbox's own version
    pub rbox: &'static str,
    pub os: &'static str,
    /// Docker's (Go's) name of the architecture: amd64, arm64
    pub arch: &'static str,
    /// the runtime rbox runs (`$RBOX_RUNTIME`, next to rbox, or in PATH)
    pub runtime: PathBuf,
    /// the first line of its `--version`, if it answered
    pub runtime_version: Option<String>,
    pub shim: PathBuf,
    pub cni_dirs: Vec<PathBuf>,
}

/// Docker's (Go's) name of this host's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// [`Versions`]: runs the runtime's `--version` once.
pub fn versions() -> Versions {
    let runtime = crate::locate::runtime_bin();
    let runtime_version = Command::new(&runtime)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(String::from)
        });
    Versions {
        rbox: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: go_arch(),
        runtime,
        runtime_version,
        shim: crate::supervisor::shim_bin(),
        cni_dirs: cni::plugin_dirs(),
    }
}

/// A program rbox runs, and whether it is there.
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    pub found: bool,
}

impl Program {
    fn at(path: PathBuf) -> Program {
        let found = path.is_file()
            || std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&path).is_file()));
        Program { path, found }
    }
}

/// What this host has for containers (`rbox info`).
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    /// image lines of `rbox images` (one per tag)
    pub images: usize,
    pub root: PathBuf,
    pub runtime: Program,
    pub shim: Program,
    pub overlay: bool,
    /// "v1", "v2" or "hybrid"
    pub cgroup_version: &'static str,
    pub cgroup_controllers: Vec<String>,
    pub seccomp: bool,
    /// the hard limit of open files
    pub nofile: u64,
    pub cni_dirs: Vec<PathBuf>,
    /// bridge, host-local and portmap: where each is, or None
    pub cni_plugins: Vec<(&'static str, Option<PathBuf>)>,
    pub kernel: String,
    pub hostname: String,
    pub cpus: usize,
    /// MemTotal of /proc/meminfo, in bytes
    pub memory: u64,
    /// PRETTY_NAME of /etc/os-release
    pub operating_system: String,
}

/// [`HostInfo`] of the store and the host.
pub fn host_info(store: &Store) -> Result<HostInfo, ContainerError> {
    let cgroot = Path::new(host::CGROUP_ROOT);
    let containers = container::list(store)?;
    let count = |s: LiveStatus| {
        containers
            .iter()
            .filter(|c| container::live_status(c) == s)
            .count()
    };
    let cni_dirs = cni::plugin_dirs();
    let cni_plugins = ["bridge", "host-local", "portmap"]
        .into_iter()
        .map(|name| {
            let at = cni_dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
            (name, at)
        })
        .collect();
    let (_, nofile) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((0, 0));
    let uname = nix::sys::utsname::uname().ok();
    Ok(HostInfo {
        containers: containers.len(),
        running: count(LiveStatus::Running),
        paused: count(LiveStatus::Paused),
        images: crate::image::list(store).map(|l| l.len()).unwrap_or(0),
        root: store.root().to_path_buf(),
        runtime: Program::at(crate::locate::runtime_bin()),
        shim: Program::at(crate::supervisor::shim_bin()),
        overlay: host::has_filesystem("overlay"),
        cgroup_version: host::cgroup_version(cgroot),
        cgroup_controllers: host::cgroup_controllers(cgroot),
        seccomp: host::has_seccomp(),
        nofile,
        cni_dirs,
        cni_plugins,
        kernel: uname
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        hostname: uname
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory: mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()),
        operating_system: pretty_name(
            &std::fs::read_to_string("/etc/os-release").unwrap_or_default(),
        ),
    })
}

/// `MemTotal:  16384 kB` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"` of /etc/os-release.
fn pretty_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_are_read_as_docker_reads_them() {
        assert_eq!(
            mem_total("MemFree: 1 kB\nMemTotal:       24529920 kB\n"),
            24_529_920 * 1024
        );
        assert_eq!(mem_total(""), 0);
        assert_eq!(
            pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(pretty_name(""), "Linux");
    }
}
