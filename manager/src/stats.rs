//! `rbox stats`: a running container's resource use, read from its cgroup
//! (v2, or the v1 controllers of a v1/hybrid host) and, for network I/O,
//! from /proc/PID/net/dev inside its network namespace.

use std::fs;
use std::path::{Path, PathBuf};

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

fn num(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (cpu.stat, memory.stat).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
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

/// Read the cgroup `rel` (like `rbox/<id>`) and the network of `pid`.
pub fn sample(rel: &str, pid: i64) -> Sample {
    let root = Path::new("/sys/fs/cgroup");
    let mut s = Sample::default();
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(rel);
        s.cpu_ns = read(&dir.join("cpu.stat"))
            .and_then(|t| keyed(&t, "usage_usec"))
            .unwrap_or(0)
            * 1000;
        let stat = read(&dir.join("memory.stat")).unwrap_or_default();
        s.mem_usage = num(&dir.join("memory.current"))
            .unwrap_or(0)
            .saturating_sub(keyed(&stat, "inactive_file").unwrap_or(0));
        s.mem_limit = num(&dir.join("memory.max")).unwrap_or(u64::MAX);
        s.pids = num(&dir.join("pids.current")).unwrap_or(0);
        for line in read(&dir.join("io.stat")).unwrap_or_default().lines() {
            for f in line.split_whitespace() {
                if let Some(v) = f.strip_prefix("rbytes=") {
                    s.blk_read += v.parse::<u64>().unwrap_or(0);
                } else if let Some(v) = f.strip_prefix("wbytes=") {
                    s.blk_write += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    } else {
        let v1 = |ctl: &str, file: &str| -> PathBuf { root.join(ctl).join(rel).join(file) };
        s.cpu_ns = num(&v1("cpuacct", "cpuacct.usage")).unwrap_or(0);
        let stat = read(&v1("memory", "memory.stat")).unwrap_or_default();
        s.mem_usage = num(&v1("memory", "memory.usage_in_bytes"))
            .unwrap_or(0)
            .saturating_sub(keyed(&stat, "total_inactive_file").unwrap_or(0));
        s.mem_limit = num(&v1("memory", "memory.limit_in_bytes")).unwrap_or(u64::MAX);
        s.pids = num(&v1("pids", "pids.current")).unwrap_or(0);
        for line in read(&v1("blkio", "blkio.throttle.io_service_bytes"))
            .unwrap_or_default()
            .lines()
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [_, op, v] = f[..] {
                let v = v.parse::<u64>().unwrap_or(0);
                match op {
                    "Read" => s.blk_read += v,
                    "Write" => s.blk_write += v,
                    _ => {}
                }
            }
        }
    }
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
        match container::runtime_status(store, &c.id) {
            Some((st, pid)) if st == "running" || st == "paused" => out.push((c, pid)),
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
