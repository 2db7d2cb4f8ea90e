//! Where a container's cgroup is and what its counters say, the one reader
//! of cgroup metrics for rrun (`events --stats`), the shim (containerd's
//! `Stats`, OOM kills) and rbox (`rbox stats`).
//!
//! A [`Cgroup`] is the cgroup's directory in each hierarchy: by controller
//! in the v1 hierarchies, and its cgroup2 directory. A v1 host has only the
//! first, a cgroup2 host only the second, a hybrid host (v1 controllers and
//! a controller-less cgroup2 at /sys/fs/cgroup/unified) both; each
//! controller is read where it is mounted, v1 first. It is found from a
//! process's /proc/PID/cgroup ([`Cgroup::of_process`]), from a path below
//! every hierarchy's root ([`Cgroup::at`]), or given by its directories.
//!
//! [`Cgroup::read`] turns the files into [`Metrics`]: each controller's
//! counters, `None` where the controller is not there. The callers render
//! them in their own formats (runc's stats JSON, containerd's v1 and v2
//! metrics, rbox's table). Std only: it runs in the static rrun and shim.

mod locate;
mod metrics;

pub use locate::{mounts, Cgroup, Mount};
pub use metrics::{
    Blkio, BlkioEntry, CpuUsage, HugeTlb, IoStat, Memory, MemoryEntry, Metrics, Pids, Throttling,
};

/// `key value` lines (cpu.stat, memory.stat, memory.events, ...); lines
/// that are not a key and a number are skipped.
pub fn flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}
