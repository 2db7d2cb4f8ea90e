//! Container cgroups on cgroup v1, v2 and hybrid hosts.
//!
//! cgroups-rs does the heavy lifting: on a cgroup2 host `fs::Cgroup` creates
//! the directory (enabling the controllers in its ancestors), and
//! `manager::FsManager` turns OCI `LinuxResources` into cgroup files (memory,
//! cpu, cpuset, pids, blkio, hugetlb) and freezes. On v1 and hybrid hosts
//! the directories are made here, one mkdir per hierarchy (copying
//! cpuset.cpus/mems from the parent). What cgroups-rs does not know is
//! filled in here too:
//!
//! - **device rules**: always enforced, as runc does (devices.rs): through
//!   the v1 devices controller on v1 and hybrid hosts, as an eBPF program
//!   (devfilter.rs) on cgroup2.
//! - **hybrid hosts** (v1 controllers plus a cgroup2 mount at
//!   /sys/fs/cgroup/unified): cgroups-rs sees only the v1 side. Like runc we
//!   also make the container's directory in the unified tree and join it, and
//!   put `hugepageLimits` and `unified` keys there when the v1 side lacks them.
//! - the resolved directories are kept (and saved in state.json) so joining
//!   the cgroup from a freshly forked child is one write per hierarchy, and
//!   `destroy` removes exactly what `create` made, parents included.
//! - metrics and OOM kills are read from those directories by the
//!   cgroup-metrics crate, the reader the shim and rbox use too.
//!
//! Path resolution follows runc's cgroupfs driver: an absolute
//! `linux.cgroupsPath` is taken below each hierarchy's root; a relative one
//! (and the default, the container id) below the cgroup rrun itself runs in.
//! When rrun's own cgroup differs between v1 hierarchies, the memory
//! hierarchy's (or the v2 one) is used for all of them.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::hierarchies;
use cgroups_rs::manager::{FsManager, Manager};
use cgroups_rs::FreezerState;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::fsutil::read_generated;
use crate::hierarchy::{host_hierarchies, own_cgroup_paths};

pub type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {msg}")]
    Manager { path: String, msg: String },
    #[error("cgroup {path}: write {value:?}: {err}")]
    Write {
        path: PathBuf,
        value: String,
        err: std::io::Error,
    },
    #[error("cgroup {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("cgroup {0}: already exists and has processes in it")]
    Busy(String),
    #[error("linux.resources.{field}: {msg}")]
    Unsupported { field: String, msg: String },
    #[error(transparent)]
    Resource(#[from] crate::resources::ResourceError),
    #[error("invalid linux.cgroupsPath {0:?}")]
    BadPath(String),
    #[error("cgroup {path}: still {state} after {waited:?}")]
    Timeout {
        path: String,
        state: String,
        waited: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostKind {
    /// Only cgroup v1 hierarchies.
    V1,
    /// /sys/fs/cgroup is cgroup2.
    V2,
    /// v1 controllers and a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    /// Path below each hierarchy root, without a leading '/'.
    pub path: String,
    pub kind: HostKind,
    /// The container's directory in every hierarchy (v1, and cgroup2).
    pub dirs: Vec<PathBuf>,
    /// The first path component `create` had to make: `destroy` removes the
    /// directories up to and including it.
    pub created_from: Option<String>,
}

impl Cgroup {
    pub fn host_kind() -> HostKind {
        if hierarchies::is_cgroup2_unified_mode() {
            HostKind::V2
        } else if host_hierarchies().iter().any(|h| h.is_v2()) {
            HostKind::Hybrid
        } else {
            HostKind::V1
        }
    }

    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        let path = resolve_path(cgroups_path, id, own_cgroup_paths)?;
        let kind = Self::host_kind();
        let dirs = host_hierarchies()
            .iter()
            .map(|h| h.mount_point.join(&path))
            .collect::<Vec<_>>();
        if dirs.is_empty() {
            return Err(CgroupError::Manager {
                path,
                msg: "no cgroup filesystem is mounted under /sys/fs/cgroup".into(),
            });
        }
        Ok(Cgroup {
            path,
            kind,
            dirs,
            created_from: None,
        })
    }

    fn manager(&self) -> Result<FsManager> {
        FsManager::new(&self.path).map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> CgroupError {
        CgroupError::Manager {
            path: format!("/{}", self.path),
            msg: e.to_string(),
        }
    }

    /// The cgroup2 directory of a hybrid host.
    fn unified_dir(&self) -> Option<&PathBuf> {
        if self.kind != HostKind::Hybrid {
            return None;
        }
        let unified = host_hierarchies().iter().find(|h| h.is_v2())?;
        self.dirs
            .iter()
            .find(|d| d.starts_with(&unified.mount_point))
    }

    /// Make the cgroup in every hierarchy and apply `resources`. On error
    /// nothing is left behind; a cgroup that exists with processes in it is
    /// refused ([`CgroupError::Busy`]) and left as it is.
    pub fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.kind == HostKind::V2 {
            // cgroups-rs also enables the controllers in every ancestor's
            // cgroup.subtree_control
            if let Some(procs) = self.dirs.first().map(|d| d.join("cgroup.procs")) {
                if procs.exists() {
                    let pids = fs::read_to_string(&procs).unwrap_or_default();
                    if !pids.trim().is_empty() {
                        return Err(CgroupError::Busy(format!("/{}", self.path)));
                    }
                }
            }
            self.created_from = first_missing(&self.dirs[0], &self.path);
            let cg = cgroups_rs::fs::Cgroup::load(hierarchies::auto(), &self.path);
            if let Err(e) = cg.create() {
                let _ = self.destroy();
                return Err(self.err(e));
            }
        } else {
            self.make_v1_dirs()?;
        }
        debug!(path = %self.path, kind = ?self.kind, "cgroup created");
        let result = resources.map_or(Ok(()), |r| self.update(r));
        if result.is_err() {
            let _ = self.destroy();
        }
        result
    }

    /// The directories of a v1 or hybrid host: one mkdir per hierarchy for
    /// a new cgroup (the usual case), parents made as needed; cpuset.cpus
    /// and cpuset.mems copied from the nearest ancestor that has them, as
    /// cgroups-rs did (a new v1 cpuset is empty, and an empty cpuset cannot
    /// take tasks). On error, what was made here is removed. (cgroups-rs's
    /// own create read the mount table again and made every directory twice.)
    fn make_v1_dirs(&mut self) -> Result<()> {
        let mut existed = vec![false; self.dirs.len()];
        let mut made = Ok(());
        for (i, d) in self.dirs.iter().enumerate() {
            let r = match fs::create_dir(d) {
                Ok(()) => {
                    if i == 0 {
                        self.created_from = self.path.rsplit('/').next().map(String::from);
                    }
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    existed[i] = true;
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if i == 0 {
                        self.created_from = first_missing(d, &self.path);
                    }
                    fs::create_dir_all(d)
                }
                Err(e) => Err(e),
            };
            if let Err(err) = r {
                made = Err(CgroupError::Io {
                    path: d.clone(),
                    err,
                });
                break;
            }
        }
        // like before anything is made: an existing cgroup must be empty
        if made.is_ok() {
            if let Some(d) = self.dirs.iter().zip(&existed).find(|(_, e)| **e) {
                let pids = fs::read_to_string(d.0.join("cgroup.procs")).unwrap_or_default();
                if !pids.trim().is_empty() {
                    made = Err(CgroupError::Busy(format!("/{}", self.path)));
                }
            }
        }
        if let (Ok(()), Some(dir)) = (&made, self.v1_dir("cpuset")) {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                // not fatal, as in cgroups-rs: joining the cgroup then fails
                if let Err(e) = copy_cpuset_from_parent(dir, file) {
                    debug!("copy {file} from the parent cgroup: {e}");
                }
            }
        }
        if made.is_err() {
            // only what this call made: a busy cgroup belongs to someone
            let _ = self.remove_dirs(|i| !existed[i]);
        }
        made
    }

    /// Apply resources (also used by `update`). Values that mean "not
    /// set" are skipped and a set value whose file this kernel lacks is
    /// refused before anything is written (resources.rs).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let mut r = crate::resources::normalized(resources);
        crate::resources::check_hugepage_limits(
            r.hugepage_limits().as_deref().unwrap_or_default(),
        )?;
        if self.kind != HostKind::V2 {
            crate::resources::missing_file(&crate::resources::v1_knobs(&r), |c| {
                self.v1_dir(c).cloned()
            })?;
        }
        let unified = self.unified_dir().cloned();
        let v1_hugetlb = host_hierarchies()
            .iter()
            .any(|h| !h.is_v2() && h.options.split(',').any(|o| o == "hugetlb"));
        // Hugepage limits and `unified` keys go to the cgroup2 side of a
        // hybrid host, which cgroups-rs does not manage.
        let hugepages = r.hugepage_limits().clone().filter(|h| !h.is_empty());
        if hugepages.is_some() && self.kind != HostKind::V2 && !v1_hugetlb {
            r.set_hugepage_limits(None);
        }
        let unified_keys = r.unified().clone().filter(|u| !u.is_empty());
        r.set_unified(None);
        // Device rules are written below: to the v1 devices controller,
        // or on cgroup2 as an eBPF program (devfilter.rs). cgroups-rs would
        // write a missing major or minor as 0 instead of '*'.
        let device_rules = r.devices().clone().filter(|d| !d.is_empty());
        r.set_devices(None);
        // With the BFQ scheduler v1 has only blkio.bfq.weight (runc falls
        // back to it too); cgroups-rs knows only blkio.weight.
        let mut bfq_weight = None;
        if let (Some(dir), Some(w)) = (
            self.v1_dir("blkio"),
            r.block_io().as_ref().and_then(|b| b.weight()),
        ) {
            if !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists() {
                bfq_weight = Some((dir.join("blkio.bfq.weight"), w));
                let mut b = r.block_io().clone().unwrap_or_default();
                b.set_weight(None);
                r.set_block_io(Some(b));
            }
        }
        // kernel memory: v1's TCP limit is written below, the rest is
        // ignored with runc's warning (resources.rs)
        let (ignored, kernel_tcp) =
            crate::resources::take_kernel_memory(&mut r, self.v1_dir("memory").is_some());
        for w in ignored {
            tracing::warn!("{w}");
        }
        // what is left is cgroups-rs's to write; its manager reads the
        // mount table twice, so only when there is something to write
        if r != LinuxResources::default() {
            let mut mgr = self.manager()?;
            mgr.set(&r).map_err(|e| match missing_controller(&r) {
                // cgroups-rs only says "subsystems is empty"
                Some((field, controller)) => CgroupError::Unsupported {
                    field: field.into(),
                    msg: format!("this host's cgroups have no {controller} controller"),
                },
                None => self.err(format!("apply linux.resources: {e}")),
            })?;
        }
        if let Some((file, w)) = bfq_weight {
            write_file(&file, &w.to_string())?;
        }
        if let (Some(dir), Some(tcp)) = (self.v1_dir("memory"), kernel_tcp) {
            write_file(&dir.join(crate::resources::KMEM_TCP), &tcp.to_string())?;
        }
        if let Some(rules) = device_rules {
            self.apply_devices(&rules)?;
        }

        if let (Some(limits), false) = (hugepages, v1_hugetlb || self.kind == HostKind::V2) {
            let dir = unified.as_ref().ok_or_else(|| CgroupError::Unsupported {
                field: "hugepageLimits".into(),
                msg: "no hugetlb controller on this host".into(),
            })?;
            enable_controller(dir, "hugetlb")?;
            for l in limits {
                let file = dir.join(format!("hugetlb.{}.max", l.page_size()));
                if !file.exists() {
                    return Err(CgroupError::Unsupported {
                        field: "hugepageLimits".into(),
                        msg: format!(
                            "page size {} is not supported by this kernel",
                            l.page_size()
                        ),
                    });
                }
                write_file(&file, &l.limit().to_string())?;
            }
        }
        if let Some(keys) = unified_keys {
            let dir = match self.kind {
                HostKind::V2 => self.dirs[0].clone(),
                HostKind::Hybrid => unified.clone().expect("hybrid has a unified dir"),
                HostKind::V1 => {
                    return Err(CgroupError::Unsupported {
                        field: "unified".into(),
                        msg: "this host has no cgroup2 hierarchy".into(),
                    })
                }
            };
            for (k, v) in keys {
                if k.contains('/') || k.starts_with('.') {
                    return Err(CgroupError::Unsupported {
                        field: format!("unified.{k}"),
                        msg: "not a cgroup file name".into(),
                    });
                }
                if let Some(ctrl) = k.split('.').next() {
                    let _ = enable_controller(&dir, ctrl);
                }
                let file = dir.join(&k);
                if !file.exists() {
                    return Err(CgroupError::Unsupported {
                        field: format!("unified.{k}"),
                        msg: format!("{} does not exist", file.display()),
                    });
                }
                write_file(&file, &v)?;
            }
        }
        Ok(())
    }

    /// Enforce device rules (already `devices::effective`): through the v1
    /// devices controller where there is one (v1 and hybrid hosts), else
    /// with an eBPF program on the cgroup2 directory.
    fn apply_devices(&self, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        if self.kind != HostKind::V2 {
            if let Some(dir) = self.v1_dir("devices") {
                return crate::devices::apply_v1(dir, rules).map_err(|e| CgroupError::Write {
                    path: e.file,
                    value: e.line,
                    err: e.err,
                });
            }
        }
        let dir = match self.kind {
            HostKind::V2 => &self.dirs[0],
            HostKind::Hybrid => self.unified_dir().ok_or_else(|| CgroupError::Unsupported {
                field: "devices".into(),
                msg: "this host has neither a devices controller nor a cgroup2 hierarchy".into(),
            })?,
            HostKind::V1 => {
                return Err(CgroupError::Unsupported {
                    field: "devices".into(),
                    msg: "this host's cgroups have no devices controller: device access cannot be restricted".into(),
                })
            }
        };
        crate::devfilter::attach(dir, rules).map_err(|e| self.err(e))
    }

    /// How a new process enters this cgroup: prepared before the fork, so
    /// that the child only writes (see [`Entry`]).
    pub fn entry(&self) -> Result<Entry> {
        let v2_mount = host_hierarchies()
            .iter()
            .find(|h| h.is_v2())
            .map(|h| &h.mount_point);
        let mut v1_tasks = Vec::new();
        let mut v2 = None;
        for d in &self.dirs {
            let is_v2 = match self.kind {
                HostKind::V1 => false,
                HostKind::V2 => true,
                HostKind::Hybrid => v2_mount.as_ref().is_some_and(|m| d.starts_with(m)),
            };
            if !is_v2 {
                v1_tasks.push(d.join("tasks"));
            } else if v2.is_none() {
                let fd = nix::fcntl::open(
                    d,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| CgroupError::Io {
                    path: d.clone(),
                    err: e.into(),
                })?;
                // SAFETY: fresh descriptor from open.
                v2 = Some((unsafe { OwnedFd::from_raw_fd(fd) }, d.join("cgroup.procs")));
            }
        }
        Ok(Entry { v1_tasks, v2 })
    }

    pub fn freeze(&self) -> Result<()> {
        self.manager()?
            .freeze(FreezerState::Frozen)
            .map_err(|e| self.err(format!("freeze: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.is_frozen()? {
            if Instant::now() > deadline {
                let _ = self.thaw();
                return Err(CgroupError::Timeout {
                    path: self.path.clone(),
                    state: "freezing".into(),
                    waited: Duration::from_secs(5),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// The container's directories for the metrics reader: each v1
    /// directory under the controllers of its hierarchy, and the cgroup2
    /// one.
    pub fn located(&self) -> cgroup_metrics::Cgroup {
        let hs = host_hierarchies();
        let mut cg = cgroup_metrics::Cgroup::default();
        for d in &self.dirs {
            let Some(h) = hs.iter().find(|h| d.starts_with(&h.mount_point)) else {
                continue;
            };
            if h.is_v2() {
                cg.v2.get_or_insert_with(|| d.clone());
                continue;
            }
            for c in h.options.split(',').filter(|o| !o.starts_with("name=")) {
                cg.v1.entry(c.to_string()).or_insert_with(|| d.clone());
            }
        }
        cg
    }

    /// Usage counters (cpu, memory, pids, block I/O, hugetlb).
    pub fn metrics(&self) -> cgroup_metrics::Metrics {
        self.located().read()
    }

    /// How many processes the OOM killer has killed in this cgroup
    /// (`oom_kill` of memory.oom_control on v1, memory.events on v2).
    pub fn oom_kills(&self) -> u64 {
        self.located().oom_kills()
    }

    pub fn thaw(&self) -> Result<()> {
        self.manager()?
            .freeze(FreezerState::Thawed)
            .map_err(|e| self.err(format!("thaw: {e}")))
    }

    /// Whether the cgroup is frozen or freezing: SIGKILL ends its processes
    /// only once thawed. When the file cannot be read, true (thaw anyway).
    pub fn freeze_requested(&self) -> bool {
        let (file, thawed) = match self.kind {
            HostKind::V2 => (self.dirs[0].join("cgroup.freeze"), "0"),
            _ => match self.v1_dir("freezer") {
                Some(dir) => (dir.join("freezer.state"), "THAWED"),
                None => return false,
            },
        };
        read_generated(file, 64).map_or(true, |s| s.trim() != thawed)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        if self.kind == HostKind::V2 {
            let events = self.dirs[0].join("cgroup.events");
            let text =
                fs::read_to_string(&events).map_err(|err| CgroupError::Io { path: events, err })?;
            return Ok(text.lines().any(|l| l == "frozen 1"));
        }
        let Some(dir) = self.v1_dir("freezer") else {
            return Ok(false);
        };
        let state = dir.join("freezer.state");
        match read_generated(&state, 64) {
            Ok(s) => Ok(s.trim() == "FROZEN"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(CgroupError::Io { path: state, err }),
        }
    }

    fn v1_dir(&self, controller: &str) -> Option<&PathBuf> {
        let hs = host_hierarchies();
        let h = hs
            .iter()
            .find(|h| !h.is_v2() && h.options.split(',').any(|o| o == controller))?;
        self.dirs.iter().find(|d| d.starts_with(&h.mount_point))
    }

    /// Every process in the cgroup (and its children), host pids.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = match self.kind {
            HostKind::V2 => Some(&self.dirs[0]),
            _ => self
                .v1_dir("pids")
                .or_else(|| self.v1_dir("memory"))
                .or_else(|| self.dirs.first()),
        };
        let mut out = Vec::new();
        if let Some(d) = dir {
            collect_procs(d, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Remove every directory `create` made; fine if already gone. The
    /// processes must be dead (or moved) first: retries briefly on EBUSY.
    pub fn destroy(&self) -> Result<()> {
        self.remove_dirs(|_| true)
    }

    /// Remove the cgroup if no process is left in it, with one rmdir per
    /// directory; stops at the first that fails (EBUSY: processes or child
    /// cgroups left), for [`Cgroup::destroy`] to finish once they are gone.
    pub fn remove_if_empty(&self) -> std::io::Result<()> {
        for d in &self.dirs {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            for parent in self.made_parents(d) {
                let _ = fs::remove_dir(parent);
            }
        }
        Ok(())
    }

    /// The parents of `dir` that `create` made, deepest first: path "a/b/c"
    /// created from "b" gives .../a/b.
    fn made_parents(&self, dir: &Path) -> Vec<String> {
        let (Some(from), Some(root)) = (
            &self.created_from,
            dir.to_str().and_then(|d| d.strip_suffix(&self.path)),
        ) else {
            return vec![];
        };
        let comps: Vec<&str> = self.path.split('/').collect();
        let Some(i) = comps.iter().position(|c| c == from) else {
            return vec![];
        };
        (i + 1..comps.len())
            .rev()
            .map(|end| format!("{root}{}", comps[..end].join("/")))
            .collect()
    }

    /// [`Cgroup::destroy`] for the hierarchies (by index) `which` selects.
    fn remove_dirs(&self, which: impl Fn(usize) -> bool) -> Result<()> {
        let mut first_err = None;
        for (i, d) in self.dirs.iter().enumerate() {
            if !which(i) {
                continue;
            }
            if let Err(e) = remove_tree(d) {
                first_err.get_or_insert(e);
            }
            for parent in self.made_parents(d) {
                let _ = fs::remove_dir(parent);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How a freshly forked, single-threaded child enters a container's cgroup
/// without the write side of the kernel's global `cgroup_threadgroup_rwsem`
/// (whose first writer after a quiet spell waits for an RCU grace period):
///
/// - cgroup2: the child is born there, by `clone3(CLONE_INTO_CGROUP)` with
///   [`Entry::cgroup2_fd`] (spawn.rs), which takes only the read side;
/// - cgroup v1: the child writes `0` to each hierarchy's `tasks` file. That
///   moves the writing thread alone, which the kernel does without the
///   threadgroup lock (`cgroup_procs_write_start`: pid 0 and not a whole
///   thread group); for a single-threaded process it is the whole process.
///
/// A child that clone3 could not place writes `0` to the cgroup2
/// `cgroup.procs` instead (the lock is taken then).
pub struct Entry {
    v1_tasks: Vec<PathBuf>,
    v2: Option<(OwnedFd, PathBuf)>,
}

impl Entry {
    /// The cgroup2 directory (O_PATH), for clone3(CLONE_INTO_CGROUP).
    pub fn cgroup2_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|(fd, _)| fd.as_fd())
    }

    /// In the child, single-threaded: join every hierarchy it was not born
    /// in (`in_cgroup2`: clone3 placed it in the cgroup2 directory).
    pub fn join(&self, in_cgroup2: bool) -> Result<()> {
        self.join_v1()?;
        self.join_v2(in_cgroup2)
    }

    /// Join the v1 hierarchies: the children forked afterwards are in them.
    pub fn join_v1(&self) -> Result<()> {
        for tasks in &self.v1_tasks {
            write_file(tasks, "0")?;
        }
        Ok(())
    }

    /// Join the cgroup2 directory, unless clone3 made the caller in it.
    pub fn join_v2(&self, in_cgroup2: bool) -> Result<()> {
        match &self.v2 {
            Some((_, procs)) if !in_cgroup2 => write_file(procs, "0"),
            _ => Ok(()),
        }
    }
}

/// The resources a root container's cgroup gets: the spec's, with the
/// device rules runc enforces whatever the spec says (devices.rs).
pub fn effective_resources(resources: Option<&LinuxResources>) -> LinuxResources {
    let mut r = resources.cloned().unwrap_or_default();
    let spec_rules = r.devices().clone().unwrap_or_default();
    r.set_devices(Some(crate::devices::effective(&spec_rules)));
    r
}

/// Resolve `linux.cgroupsPath` to a path below each hierarchy root. `own`
/// gives rrun's own cgroups (`/proc/self/cgroup`), read only for a
/// relative path.
pub fn resolve_path(
    cgroups_path: Option<&str>,
    id: &str,
    own: impl FnOnce() -> std::collections::HashMap<String, String>,
) -> Result<String> {
    let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
    if raw.contains(':') && !raw.starts_with('/') {
        return Err(CgroupError::BadPath(format!(
            "{raw} (a systemd slice:prefix:name path needs --systemd-cgroup, which rrun does not implement yet)"
        )));
    }
    let joined = if raw.starts_with('/') {
        PathBuf::from(raw)
    } else {
        let own = own();
        let base = own
            .get("")
            .filter(|_| hierarchies::is_cgroup2_unified_mode())
            .or_else(|| own.get("memory"))
            .or_else(|| own.get(""))
            .cloned()
            .unwrap_or_else(|| "/".into());
        Path::new(&base).join(raw)
    };
    let mut clean = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::Normal(n) => clean.push(n),
            std::path::Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    let s = clean.to_string_lossy().into_owned();
    if s.is_empty() {
        return Err(CgroupError::BadPath(raw.into()));
    }
    Ok(s)
}

/// The first component of `path` (below `hierarchy_dir`'s root) that does not exist yet.
fn first_missing(dir: &Path, path: &str) -> Option<String> {
    let root = dir.to_string_lossy();
    let root = root.strip_suffix(path).unwrap_or(&root).to_string();
    let mut cur = PathBuf::from(root);
    for comp in Path::new(path).components() {
        cur.push(comp);
        if !cur.exists() {
            return Some(comp.as_os_str().to_string_lossy().into_owned());
        }
    }
    None
}

/// A v1 cpuset's `file` (cpuset.cpus or cpuset.mems) when it is empty: the
/// value of the nearest ancestor that has one, written from the top down to
/// every empty directory on the way.
fn copy_cpuset_from_parent(dir: &Path, file: &str) -> Result<()> {
    let read = |d: &Path| {
        let f = d.join(file);
        read_generated(&f, 256)
            .map(|v| v.trim().to_string())
            .map_err(|err| CgroupError::Io { path: f, err })
    };
    let mut empty = Vec::new();
    let mut cur = Some(dir);
    let value = loop {
        let Some(d) = cur else {
            return Ok(());
        };
        let v = read(d)?;
        if !v.is_empty() {
            break v;
        }
        empty.push(d);
        cur = d.parent();
    };
    for d in empty.iter().rev() {
        write_file(&d.join(file), &value)?;
    }
    Ok(())
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    match read_generated(&procs, 4096) {
        Ok(t) => out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(CgroupError::Io { path: procs, err }),
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_procs(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<()> {
    // the usual case first: no child cgroups and no processes left
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => {
                return Err(CgroupError::Io {
                    path: dir.to_path_buf(),
                    err,
                })
            }
        }
    }
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|err| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.into(),
            err,
        })
}

/// The first resource of `r` whose controller the host's hierarchy lacks:
/// (the `linux.resources` field, the controller). Only asked after
/// cgroups-rs failed, so the common path reads nothing more.
fn missing_controller(r: &LinuxResources) -> Option<(&'static str, &'static str)> {
    let have: Vec<String> = hierarchies::auto()
        .subsystems()
        .iter()
        .map(|s| s.controller_name())
        .collect();
    let cpu = r.cpu().as_ref();
    let wanted = [
        ("memory", "memory", r.memory().is_some()),
        (
            "cpu",
            "cpu",
            cpu.is_some_and(|c| {
                c.shares().is_some()
                    || c.quota().is_some()
                    || c.period().is_some()
                    || c.realtime_runtime().is_some()
                    || c.realtime_period().is_some()
            }),
        ),
        (
            "cpu",
            "cpuset",
            cpu.is_some_and(|c| c.cpus().is_some() || c.mems().is_some()),
        ),
        ("pids", "pids", r.pids().is_some()),
        ("blockIO", "blkio", r.block_io().is_some()),
        (
            "network",
            "net_cls",
            r.network().as_ref().is_some_and(|n| n.class_id().is_some()),
        ),
        (
            "network",
            "net_prio",
            r.network()
                .as_ref()
                .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty())),
        ),
    ];
    wanted
        .into_iter()
        .find(|(_, c, want)| *want && !have.iter().any(|h| h == c))
        .map(|(field, c, _)| (field, c))
}

/// Enable a cgroup2 controller in every ancestor's subtree_control down to `dir`.
fn enable_controller(dir: &Path, controller: &str) -> Result<()> {
    let unified = host_hierarchies()
        .iter()
        .find(|h| h.is_v2())
        .map(|h| h.mount_point.clone())
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
    let available = fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if !available.split_whitespace().any(|c| c == controller) {
        return Err(CgroupError::Unsupported {
            field: controller.into(),
            msg: format!(
                "controller {controller} is not available in {}",
                unified.display()
            ),
        });
    }
    let rel = dir.strip_prefix(&unified).unwrap_or(dir);
    let mut cur = unified.clone();
    for comp in rel.components() {
        let ctl = cur.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&ctl).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write_file(&ctl, &format!("+{controller}"))?;
        }
        cur.push(comp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn absolute_paths_are_below_the_root() {
        let own = HashMap::from([("memory".to_string(), "/user/x".to_string())]);
        let own = || own.clone();
        assert_eq!(resolve_path(Some("/a/b"), "id", own).unwrap(), "a/b");
        assert_eq!(resolve_path(Some("/a/../b"), "id", own).unwrap(), "b");
    }

    #[test]
    fn relative_and_default_paths_are_below_our_cgroup() {
        let own = HashMap::from([
            ("memory".to_string(), "/user/x".to_string()),
            ("".to_string(), "/".to_string()),
        ]);
        let own = || own.clone();
        let p = resolve_path(None, "ctr", own).unwrap();
        assert!(p.ends_with("ctr"), "{p}");
        assert!(resolve_path(Some("sub/ctr"), "id", own)
            .unwrap()
            .ends_with("sub/ctr"));
    }

    #[test]
    fn systemd_paths_are_refused_clearly() {
        let err = resolve_path(Some("system.slice:rrun:abc"), "id", HashMap::new).unwrap_err();
        assert!(err.to_string().contains("systemd"), "{err}");
    }

    #[test]
    fn empty_path_is_refused() {
        assert!(resolve_path(Some("/.."), "id", HashMap::new).is_err());
    }
}
