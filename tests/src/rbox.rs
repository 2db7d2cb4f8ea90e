//! `Rbox`: the rbox binary under test (RBOX_BIN) on a store of the test's
//! own, with rrun (RRUN_BIN), its shim (SHIM_BIN) and our CNI plugins
//! (CNI_BIN_DIR), and the checks that nothing of it is left.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::{
    assert_ok, busybox_tar, cgroup_dirs, cni_bin_dir, mounts_mentioning, require_root, rrun_bin,
    shim_bin, stdout, wait_for, CgroupParent, RunDirs,
};

/// A temp dir holding a store (`root/`) and anything else a test makes
/// (tarballs, bundles, scripts), and a cgroup parent of its own for the
/// containers (RBOX_CGROUP_PARENT). On drop: the store's containers (for a
/// store that runs them), shims and mounts, the host's run directories
/// rbox made, then the cgroup parent; a mount or cgroup left fails the test.
pub struct Rbox {
    pub dir: tempfile::TempDir,
    pub cgroup: CgroupParent,
    /// RBOX_RUNTIME: rrun, unless a test puts a wrapper in between
    pub runtime: PathBuf,
    /// RBOX_CNI_PATH: the plugins under test, unless a test says
    pub cni_path: PathBuf,
    /// set for a store that runs containers
    run_dirs: Option<RunDirs>,
}

impl Rbox {
    /// An empty store (no image).
    pub fn new() -> Rbox {
        require_root();
        Rbox {
            dir: tempfile::Builder::new()
                .prefix("rbox-test")
                .tempdir()
                .unwrap(),
            cgroup: CgroupParent::default(),
            runtime: rrun_bin(),
            cni_path: cni_bin_dir(),
            run_dirs: None,
        }
    }

    /// This store runs containers: on drop they are removed with `rm -f`,
    /// leftover shims go, and the run directories rbox and the shims made
    /// on the host (see [`RunDirs`]) are removed if they were not there.
    pub fn for_containers(mut self) -> Rbox {
        self.run_dirs = Some(RunDirs::new());
        self
    }

    /// A store for containers with the busybox image `bb`.
    pub fn with_busybox() -> Rbox {
        Rbox::with_image(|_| {})
    }

    /// A store for containers with the image `bb`: a busybox rootfs that
    /// `edit` may change, imported from the tarball `bb.tar` (left in the
    /// dir for more imports; see [`busybox_tar`]).
    pub fn with_image(edit: impl FnOnce(&Path)) -> Rbox {
        let rb = Rbox::new().for_containers();
        let tar = busybox_tar(rb.dir.path(), "bb", edit);
        rb.ok(&["import", tar.to_str().unwrap(), "bb"]);
        rb
    }

    /// The store (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A path in the test's dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rbox --root ROOT ARGS` with the binaries under test, stdin from
    /// /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::rbox_bin());
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env("RBOX_RUNTIME", &self.runtime)
            .env("RBOX_SHIM", shim_bin())
            .env("RBOX_CNI_PATH", &self.cni_path)
            .env("RBOX_CGROUP_PARENT", &self.cgroup.0)
            .stdin(Stdio::null());
        c
    }

    /// [`Rbox::cmd`], its output captured through pipes: a detached shim or
    /// container that kept rbox's stdout or stderr would hang it.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// [`Rbox::run`] that must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_ok(&o, &format!("rbox {}", args.join(" ")));
        stdout(&o)
    }

    /// `rbox inspect` of one image or container.
    #[track_caller]
    pub fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// `rbox inspect --format FORMAT NAME`, trimmed.
    #[track_caller]
    pub fn inspect_format(&self, format: &str, name: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
            .trim()
            .to_string()
    }

    /// Names in a store directory (temp names included).
    pub fn entries(&self, rel: &str) -> BTreeSet<String> {
        match std::fs::read_dir(self.root().join(rel)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// The store holds nothing: no image, blob, snapshot (temp or not) or
    /// container dir.
    #[track_caller]
    pub fn assert_empty(&self) {
        assert_eq!(self.ok(&["images", "-q"]), "");
        for d in ["blobs/sha256", "snapshots", "containers"] {
            assert!(
                self.entries(d).is_empty(),
                "{d} not empty: {:?}",
                self.entries(d)
            );
        }
    }

    /// The container's cgroup directories (every hierarchy).
    pub fn cgroups_of(&self, id: &str) -> Vec<PathBuf> {
        cgroup_dirs(&format!("{}/{id}", self.cgroup.0))
    }

    /// No container, container dir, mount of the store, shim of the store,
    /// rrun state, cgroup below the store's parent or rbox network namespace
    /// is left. `what`: for messages.
    #[track_caller]
    pub fn assert_nothing_left(&self, what: &str) {
        assert_eq!(self.ok(&["ps", "-a", "-q"]), "", "{what}: containers");
        let left = self.entries("containers");
        assert!(left.is_empty(), "{what}: container dirs {left:?}");
        assert!(
            mounts_mentioning(&self.root()).is_empty(),
            "{what}: mounts {:?}",
            mounts_mentioning(&self.root())
        );
        assert!(rbox_netns().is_empty(), "{what}: {:?}", rbox_netns());
        // a shim let go exits a moment after its last call
        wait_for(
            &format!("{what}: the shims to go"),
            Duration::from_secs(5),
            || shims_of(&self.root()).is_empty(),
        );
        let runtime = self.entries("runtime/rbox");
        assert!(runtime.is_empty(), "{what}: rrun state {runtime:?}");
        let below: Vec<_> = cgroup_dirs(&self.cgroup.0)
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        assert!(below.is_empty(), "{what}: cgroups {below:?}");
    }

    /// `rm -f` of every container of the store, through rrun itself.
    fn remove_containers(&mut self) {
        self.runtime = rrun_bin();
        if let Ok(ids) = self.cmd(&["ps", "-a", "-q", "--no-trunc"]).output() {
            for id in stdout(&ids).lines() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        // a shim let go exits a moment after its last call; one that stays
        // is killed
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !shims_of(&self.root()).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in shims_of(&self.root()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Default for Rbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Rbox {
    fn drop(&mut self) {
        if self.run_dirs.is_some() {
            self.remove_containers();
        }
        // deepest first: a bundle rootfs before anything it sits on
        let mut m: Vec<String> = mounts_mentioning(self.dir.path())
            .iter()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .collect();
        m.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in &m {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        // before the panic below, which would skip it
        drop(self.run_dirs.take());
        if !m.is_empty() && !std::thread::panicking() {
            panic!("mounts left behind: {m:?}");
        }
    }
}

/// Network namespaces of rbox containers (`rbox-` and a short id).
pub fn rbox_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix("rbox-")
                        .is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Shims serving containers of the store at `root` (their cwd is a bundle
/// under it).
pub fn shims_of(root: &Path) -> Vec<i32> {
    let o = Command::new("pgrep")
        .args(["-f", "containerd-shim-rrun-v2"])
        .output()
        .unwrap();
    stdout(&o)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|p| p.starts_with(root))
        })
        .collect()
}

/// The tests of one test binary one at a time, for those that share the
/// host's rbox0 bridge, shims and ports, or check for leftovers host-wide
/// (every rbox network namespace, every veth).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // a failed test poisons the lock; the next one still runs
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
