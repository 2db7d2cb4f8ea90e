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
    Ok(stats_json(&cg.metrics()))
}

/// The metrics in runc's shape (`cpu`, `memory`, `pids`, `blkio`,
/// `hugetlb`; times in nanoseconds; memory's `raw` is memory.stat).
fn stats_json(m: &cgroup_metrics::Metrics) -> Value {
    let mut cpu = json!({});
    if let Some(u) = &m.cpu {
        cpu["usage"] = json!({
            "total": u.total_ns,
            "percpu": u.per_cpu_ns,
            "kernel": u.system_ns,
            "user": u.user_ns,
        });
    }
    if let Some(t) = &m.throttling {
        cpu["throttling"] = json!({
            "periods": t.periods,
            "throttledPeriods": t.throttled_periods,
            "throttledTime": t.throttled_ns,
        });
    }
    let entry = |e: &cgroup_metrics::MemoryEntry| json!({"limit": e.limit, "usage": e.usage, "max": e.max_usage, "failcnt": e.failcnt});
    let mut memory = json!({"cache": 0, "raw": {}});
    if let Some(mem) = &m.memory {
        // v1's page cache; cgroup2 calls it file
        let cache = mem.stat.get("cache").or(mem.stat.get("file"));
        memory["cache"] = json!(cache.copied().unwrap_or(0));
        memory["usage"] = entry(&mem.usage);
        if let Some(s) = &mem.swap {
            memory["swap"] = entry(s);
        }
        if let Some(k) = &mem.kernel {
            memory["kernel"] = entry(k);
        }
        memory["raw"] = json!(mem.stat);
    }
    let mut pids = json!({"current": m.pids.as_ref().map_or(0, |p| p.current)});
    if let Some(limit) = m.pids.as_ref().and_then(|p| p.limit).filter(|l| *l > 0) {
        pids["limit"] = json!(limit);
    }
    let blk = |v: &[cgroup_metrics::BlkioEntry]| -> Value {
        v.iter()
            .map(|b| json!({"major": b.major, "minor": b.minor, "op": b.op, "value": b.value}))
            .collect()
    };
    let mut b = m.blkio.clone().unwrap_or_default();
    // cgroup2's io.stat in v1's lists, as runc reports it
    for io in m.io.iter().flatten() {
        let e = |op: &str, value| cgroup_metrics::BlkioEntry {
            major: io.major,
            minor: io.minor,
            op: op.into(),
            value,
        };
        b.service_bytes
            .extend([e("Read", io.rbytes), e("Write", io.wbytes)]);
        b.serviced.extend([e("Read", io.rios), e("Write", io.wios)]);
    }
    let blkio = json!({
        "ioServiceBytesRecursive": blk(&b.service_bytes),
        "ioServicedRecursive": blk(&b.serviced),
        "ioQueueRecursive": blk(&b.queued),
        "ioServiceTimeRecursive": blk(&b.service_time),
        "ioWaitTimeRecursive": blk(&b.wait_time),
        "ioMergedRecursive": blk(&b.merged),
        "ioTimeRecursive": blk(&b.time),
        "sectorsRecursive": blk(&b.sectors),
    });
    let hugetlb: serde_json::Map<String, Value> = m
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.failcnt}),
            )
        })
        .collect();
    json!({
        "cpu": cpu,
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
    })
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
    fn stats_are_in_runcs_shape() {
        use cgroup_metrics::*;
        let mut m = Metrics {
            cpu: Some(CpuUsage {
                total_ns: 5,
                user_ns: 3,
                system_ns: 2,
                per_cpu_ns: vec![4, 1],
            }),
            memory: Some(Memory {
                usage: MemoryEntry {
                    usage: 10,
                    max_usage: 20,
                    limit: u64::MAX,
                    failcnt: 1,
                },
                stat: [("cache".to_string(), 7), ("rss".to_string(), 3)].into(),
                ..Memory::default()
            }),
            pids: Some(Pids {
                current: 3,
                limit: Some(50),
            }),
            io: Some(vec![IoStat {
                major: 8,
                minor: 0,
                rbytes: 4096,
                wbytes: 0,
                rios: 1,
                wios: 0,
            }]),
            ..Metrics::default()
        };
        m.hugetlb.insert("2MB".into(), HugeTlb::default());
        let v = stats_json(&m);
        assert_eq!(
            v["cpu"],
            json!({"usage": {"total": 5, "percpu": [4, 1], "kernel": 2, "user": 3}})
        );
        assert_eq!(v["memory"]["cache"], 7);
        assert_eq!(
            v["memory"]["usage"],
            json!({"limit": u64::MAX, "usage": 10, "max": 20, "failcnt": 1})
        );
        assert!(v["memory"].get("swap").is_none());
        assert_eq!(v["memory"]["raw"]["rss"], 3);
        assert_eq!(v["pids"], json!({"current": 3, "limit": 50}));
        assert_eq!(
            v["blkio"]["ioServiceBytesRecursive"][0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        assert_eq!(
            v["hugetlb"]["2MB"],
            json!({"usage": 0, "max": 0, "failcnt": 0})
        );
        // no controllers: the shape stays
        let none = stats_json(&Metrics::default());
        assert_eq!(none["pids"], json!({"current": 0}));
        assert_eq!(none["memory"], json!({"cache": 0, "raw": {}}));
    }

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
