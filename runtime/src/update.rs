//! `update` (change a running container's resources) and `events` (runc's
//! stats and OOM events as JSON lines).

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::state::{State, Status};

/// runc's `update` flags; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct UpdateFlags {
    pub resources_file: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    pub pids_limit: Option<i64>,
}

/// Docker's (go-units) RAMInBytes: "512", "100k", "64m", "1.5g", "1GiB"
/// (binary multiples); "-1" means unlimited.
pub fn parse_bytes(flag: &str, v: &str) -> Result<i64> {
    let bad = || Error::Usage(format!("{flag}: invalid size {v:?} (e.g. 512m, 1g, -1)"));
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((num * mult) as i64)
}

fn read_resources(file: &str) -> Result<LinuxResources> {
    let data = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::io("stdin", e))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?
    };
    let mut de = serde_json::Deserializer::from_str(&data);
    serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Config {
        path: file.into(),
        msg: format!("{}: {}", e.path(), e.inner()),
    })
}

/// Merge the flags over the container's current resources.
fn merged(current: Option<&LinuxResources>, f: &UpdateFlags) -> Result<LinuxResources> {
    let mut r = match &f.resources_file {
        Some(file) => read_resources(file)?,
        None => current.cloned().unwrap_or_default(),
    };
    let mut mem = r.memory().unwrap_or_default();
    if let Some(v) = &f.memory {
        mem.set_limit(Some(parse_bytes("--memory", v)?));
    }
    if let Some(v) = &f.memory_reservation {
        mem.set_reservation(Some(parse_bytes("--memory-reservation", v)?));
    }
    if let Some(v) = &f.memory_swap {
        mem.set_swap(Some(parse_bytes("--memory-swap", v)?));
    }
    r.set_memory(Some(mem));
    let mut cpu = r.cpu().clone().unwrap_or_default();
    if let Some(v) = f.cpu_shares {
        cpu.set_shares(Some(v));
    }
    if let Some(v) = f.cpu_quota {
        cpu.set_quota(Some(v));
    }
    if let Some(v) = f.cpu_period {
        cpu.set_period(Some(v));
    }
    if let Some(v) = f.cpu_rt_runtime {
        cpu.set_realtime_runtime(Some(v));
    }
    if let Some(v) = f.cpu_rt_period {
        cpu.set_realtime_period(Some(v));
    }
    if let Some(v) = &f.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
    }
    if let Some(v) = &f.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
    }
    r.set_cpu(Some(cpu));
    if let Some(w) = f.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if let Some(l) = f.pids_limit {
        let mut p = r.pids().unwrap_or_default();
        p.set_limit(l);
        r.set_pids(Some(p));
    }
    Ok(r)
}

/// `update`: apply new limits to a created, running or paused container and
/// record them in its state.
pub fn update(root: &Path, id: &str, flags: &UpdateFlags) -> Result<()> {
    let (mut st, status) = State::load_live(root, id, "cannot update a stopped container")?;
    let linux = st.spec.linux().clone().unwrap_or_default();
    let mut resources = merged(linux.resources().as_ref(), flags)?;
    // device rules are not changed by update (runc ignores them too)
    resources.set_devices(linux.resources().as_ref().and_then(|r| r.devices().clone()));
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::BadStatus {
        id: id.into(),
        status: status.to_string(),
        msg: "the container has no cgroup",
    })?;
    let mut apply = resources.clone();
    apply.set_devices(None);
    cg.update(&apply)?;
    let mut linux = linux;
    linux.set_resources(Some(resources));
    st.spec.set_linux(Some(linux));
    st.save(root)
}

/// runc's `events` stats object for the container's cgroup.
pub fn stats(st: &State) -> Result<Value> {
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::BadStatus {
        id: st.id.clone(),
        status: "running".into(),
        msg: "the container has no cgroup",
    })?;
    let s = cg.stats()?;
    let mut cpu = json!({});
    if let Some(a) = &s.cpu.cpu_acct {
        cpu["usage"] = json!({
            "total": a.total_usage,
            "percpu": a.usage_percpu,
            "kernel": a.system_usage,
            "user": a.user_usage,
        });
    }
    if let Some(t) = &s.cpu.cpu_throttling {
        cpu["throttling"] = json!({
            "periods": t.periods,
            "throttledPeriods": t.throttled_periods,
            "throttledTime": t.throttled_time,
        });
    }
    let entry = |m: &Option<cgroups_rs::stats::MemoryStats>| {
        m.as_ref().map(|m| {
            json!({
                "limit": if m.limit < 0 { u64::MAX } else { m.limit as u64 },
                "usage": m.usage,
                "max": m.max_usage,
                "failcnt": m.fail_cnt,
            })
        })
    };
    let mut memory = json!({ "cache": s.memory.cache });
    for (key, m) in [
        ("usage", &s.memory.memory),
        ("swap", &s.memory.memory_swap),
        ("kernel", &s.memory.kernel_memory),
    ] {
        if let Some(e) = entry(m) {
            memory[key] = e;
        }
    }
    let raw = json!({
        "cache": s.memory.cache, "rss": s.memory.rss, "rss_huge": s.memory.rss_huge,
        "shmem": s.memory.shmem, "mapped_file": s.memory.mapped_file,
        "dirty": s.memory.dirty, "writeback": s.memory.writeback, "swap": s.memory.swap,
        "pgpgin": s.memory.pgpgin, "pgpgout": s.memory.pgpgout,
        "pgfault": s.memory.pgfault, "pgmajfault": s.memory.pgmajfault,
        "inactive_anon": s.memory.inactive_anon, "active_anon": s.memory.active_anon,
        "inactive_file": s.memory.inactive_file, "active_file": s.memory.active_file,
        "unevictable": s.memory.unevictable,
        "total_cache": s.memory.total_cache, "total_rss": s.memory.total_rss,
    });
    memory["raw"] = raw;
    let mut pids = json!({ "current": s.pids.current });
    if s.pids.limit > 0 {
        pids["limit"] = json!(s.pids.limit);
    }
    let blk = |v: &Vec<cgroups_rs::stats::BlkioStat>| -> Value {
        v.iter()
            .map(|b| json!({"major": b.major, "minor": b.minor, "op": b.op, "value": b.value}))
            .collect()
    };
    let blkio = json!({
        "ioServiceBytesRecursive": blk(&s.blkio.io_service_bytes_recursive),
        "ioServicedRecursive": blk(&s.blkio.io_serviced_recursive),
        "ioQueueRecursive": blk(&s.blkio.io_queued_recursive),
        "ioServiceTimeRecursive": blk(&s.blkio.io_service_time_recursive),
        "ioWaitTimeRecursive": blk(&s.blkio.io_wait_time_recursive),
        "ioMergedRecursive": blk(&s.blkio.io_merged_recursive),
        "ioTimeRecursive": blk(&s.blkio.io_time_recursive),
        "sectorsRecursive": blk(&s.blkio.sectors_recursive),
    });
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_cnt}),
            )
        })
        .collect();
    Ok(json!({
        "cpu": cpu,
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
    }))
}

/// `events`: with `once`, one stats event; otherwise a stats event every
/// `interval` and an `oom` event whenever the OOM killer struck, until the
/// container stops.
pub fn events(root: &Path, id: &str, once: bool, interval: Duration) -> Result<()> {
    let (st, _) = State::load_live(root, id, "container is not running")?;
    let print = |v: Value| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    };
    if once {
        print(json!({"type": "stats", "id": id, "data": stats(&st)?}));
        return Ok(());
    }
    let mut ooms = st.cgroup.as_ref().map(|c| c.oom_kills()).unwrap_or(0);
    while st.status(root) != Status::Stopped {
        let now = st.cgroup.as_ref().map(|c| c.oom_kills()).unwrap_or(0);
        if now > ooms {
            ooms = now;
            print(json!({"type": "oom", "id": id}));
        }
        if let Ok(data) = stats(&st) {
            print(json!({"type": "stats", "id": id, "data": data}));
        }
        std::thread::sleep(interval);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(parse_bytes("--memory", "512").unwrap(), 512);
        assert_eq!(parse_bytes("--memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("--memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("--memory", "-1").unwrap(), -1);
        let e = parse_bytes("--memory", "12q").unwrap_err().to_string();
        assert!(e.contains("--memory") && e.contains("12q"), "{e}");
    }
}
