//! `rbox stats`: a running container's resource use, read from its cgroup
//! by the cgroup-metrics crate (v2, or the v1 controllers of a v1/hybrid
//! host) and, for network I/O, from /proc/PID/net/dev inside its network
//! namespace.

use std::fs;
use std::path::Path;

use cgroup_metrics::Cgroup;

use crate::container::{self, Container};
use crate::store::Store;

/// One reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    pub mem_usage: u64,
    /// The memory limit (the host's memory when unlimited).
    pub mem_limit: u64,
    pub pids: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn host_memory() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Read the cgroup `rel` (like `rbox/<id>`, below every hierarchy's root)
/// and the network of `pid`.
pub fn sample(rel: &str, pid: i64) -> Sample {
    let cgroup = Cgroup::at(rel);
    let m = cgroup.read();
    let mut s = Sample {
        cpu_ns: m.cpu.as_ref().map_or(0, |c| c.total_ns),
        mem_limit: u64::MAX,
        pids: m.pids.as_ref().map_or(0, |p| p.current),
        ..Sample::default()
    };
    if let Some(mem) = &m.memory {
        // less the inactive page cache, as Docker shows it (v1 counts it
        // for the whole subtree)
        let inactive = if cgroup.is_v1("memory") {
            "total_inactive_file"
        } else {
            "inactive_file"
        };
        s.mem_usage = mem
            .usage
            .usage
            .saturating_sub(mem.stat.get(inactive).copied().unwrap_or(0));
        s.mem_limit = mem.usage.limit;
    }
    (s.blk_read, s.blk_write) = m.io_bytes();
    let host = host_memory();
    if s.mem_limit == 0 || s.mem_limit > host {
        s.mem_limit = host;
    }
    // /proc/PID/net/dev: two header lines, then `iface: rx_bytes … (8) tx_bytes …`
    for line in read(Path::new(&format!("/proc/{pid}/net/dev")))
        .unwrap_or_default()
        .lines()
        .skip(2)
    {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 9 {
            s.net_rx += f[0];
            s.net_tx += f[8];
        }
    }
    s
}

/// The running containers among `what` (all running ones when empty),
/// with their init's pid.
pub fn targets(store: &Store, what: &[String]) -> container::Result<Vec<(Container, i64)>> {
    let list = if what.is_empty() {
        container::list(store)?
    } else {
        what.iter()
            .map(|w| container::find(store, w))
            .collect::<container::Result<Vec<_>>>()?
    };
    let mut out = Vec::new();
    for c in list {
        match container::init_pid(store, &c) {
            Some(pid) => out.push((c, pid.into())),
            _ if what.is_empty() => {}
            _ => return Err(container::ContainerError::NotRunning(c.name)),
        }
    }
    Ok(out)
}

/// The cgroup of a container, relative to a hierarchy's root.
pub fn cgroup_of(c: &Container) -> String {
    c.spec.cgroups_path(&c.id).trim_start_matches('/').into()
}
