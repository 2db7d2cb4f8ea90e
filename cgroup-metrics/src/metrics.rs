//! Reading a cgroup's counters.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::{flat_keyed, Cgroup};

/// What the kernel reports in user-space clock ticks (cpuacct.stat) is
/// scaled with USER_HZ, 100 on Linux whatever the kernel's HZ.
const NS_PER_TICK: u64 = 1_000_000_000 / 100;

/// A cgroup's counters; `None` where the controller is not there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub cpu: Option<CpuUsage>,
    pub throttling: Option<Throttling>,
    pub memory: Option<Memory>,
    pub pids: Option<Pids>,
    /// v1's blkio controller.
    pub blkio: Option<Blkio>,
    /// cgroup2's io.stat.
    pub io: Option<Vec<IoStat>>,
    /// By page size as the files name it (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugeTlb>,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuUsage {
    pub total_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    /// Per CPU (v1's cpuacct.usage_percpu; cgroup2 has none).
    pub per_cpu_ns: Vec<u64>,
}

/// CFS bandwidth control: periods and the time throttled in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    /// cgroup2's burst counters.
    pub bursts: u64,
    pub burst_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub usage: MemoryEntry,
    /// Swap (v1: memory plus swap, memory.memsw.*; cgroup2: swap alone).
    pub swap: Option<MemoryEntry>,
    /// v1's kernel memory (memory.kmem.*).
    pub kernel: Option<MemoryEntry>,
    /// memory.stat as the kernel lists it.
    pub stat: BTreeMap<String, u64>,
    /// cgroup2's memory.events (`low`, `high`, `max`, `oom`, `oom_kill`,
    /// ...); on v1 the counters of memory.oom_control (`oom_kill`).
    pub events: BTreeMap<String, u64>,
}

/// A usage counter with its peak, limit (u64::MAX: none) and the times
/// the limit was hit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub usage: u64,
    pub max_usage: u64,
    pub limit: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    /// None: no limit.
    pub limit: Option<u64>,
}

/// v1's blkio files, one entry per device and operation as the kernel
/// lists them (`Read`, `Write`, `Sync`, `Async`, `Discard`; no totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blkio {
    pub service_bytes: Vec<BlkioEntry>,
    pub serviced: Vec<BlkioEntry>,
    pub queued: Vec<BlkioEntry>,
    pub service_time: Vec<BlkioEntry>,
    pub wait_time: Vec<BlkioEntry>,
    pub merged: Vec<BlkioEntry>,
    pub time: Vec<BlkioEntry>,
    pub sectors: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// Empty for the files without operations (time, sectors).
    pub op: String,
    pub value: u64,
}

/// One device of cgroup2's io.stat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoStat {
    pub major: u64,
    pub minor: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugeTlb {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

impl Metrics {
    /// Bytes read and written, over every device.
    pub fn io_bytes(&self) -> (u64, u64) {
        let mut rw = (0, 0);
        if let Some(b) = &self.blkio {
            for e in &b.service_bytes {
                match e.op.as_str() {
                    "Read" => rw.0 += e.value,
                    "Write" => rw.1 += e.value,
                    _ => {}
                }
            }
        }
        for e in self.io.iter().flatten() {
            rw.0 += e.rbytes;
            rw.1 += e.wbytes;
        }
        rw
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single number; "max" is u64::MAX.
fn number(dir: &Path, file: &str) -> Option<u64> {
    match read(dir, file)?.trim() {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

fn keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .map(|t| flat_keyed(&t).map(|(k, v)| (k.to_string(), v)).collect())
        .unwrap_or_default()
}

impl Cgroup {
    /// Every counter of the cgroup; files missing or unreadable read as
    /// absent (a controller) or zero (a counter).
    pub fn read(&self) -> Metrics {
        Metrics {
            cpu: self.cpu(),
            throttling: self.throttling(),
            memory: self.memory(),
            pids: self.pids(),
            blkio: self.blkio(),
            io: self.io(),
            hugetlb: self.hugetlb(),
        }
    }

    /// How many processes the OOM killer killed in the cgroup (one file:
    /// memory.oom_control on v1, memory.events on cgroup2).
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        let file = if self.is_v1("memory") {
            "memory.oom_control"
        } else {
            "memory.events"
        };
        keyed(dir, file).get("oom_kill").copied().unwrap_or(0)
    }

    fn cpu(&self) -> Option<CpuUsage> {
        if let Some(dir) = self.v1.get("cpuacct") {
            let stat = keyed(dir, "cpuacct.stat");
            let ticks = |k: &str| stat.get(k).copied().unwrap_or(0) * NS_PER_TICK;
            return Some(CpuUsage {
                total_ns: number(dir, "cpuacct.usage")?,
                user_ns: ticks("user"),
                system_ns: ticks("system"),
                per_cpu_ns: read(dir, "cpuacct.usage_percpu")
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect(),
            });
        }
        let stat = keyed(self.v2.as_deref()?, "cpu.stat");
        let us = |k: &str| stat.get(k).map(|v| v * 1000);
        Some(CpuUsage {
            total_ns: us("usage_usec")?,
            user_ns: us("user_usec").unwrap_or(0),
            system_ns: us("system_usec").unwrap_or(0),
            per_cpu_ns: Vec::new(),
        })
    }

    fn throttling(&self) -> Option<Throttling> {
        let dir = self.dir("cpu")?;
        let stat = keyed(dir, "cpu.stat");
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        let periods = *stat.get("nr_periods")?;
        Some(if self.is_v1("cpu") {
            Throttling {
                periods,
                throttled_periods: get("nr_throttled"),
                throttled_ns: get("throttled_time"),
                bursts: get("nr_bursts"),
                burst_ns: get("burst_time"),
            }
        } else {
            Throttling {
                periods,
                throttled_periods: get("nr_throttled"),
                throttled_ns: get("throttled_usec") * 1000,
                bursts: get("nr_bursts"),
                burst_ns: get("burst_usec") * 1000,
            }
        })
    }

    fn memory(&self) -> Option<Memory> {
        if let Some(dir) = self.v1.get("memory") {
            let entry = |prefix: &str| -> Option<MemoryEntry> {
                Some(MemoryEntry {
                    usage: number(dir, &format!("{prefix}.usage_in_bytes"))?,
                    max_usage: number(dir, &format!("{prefix}.max_usage_in_bytes")).unwrap_or(0),
                    limit: number(dir, &format!("{prefix}.limit_in_bytes")).unwrap_or(u64::MAX),
                    failcnt: number(dir, &format!("{prefix}.failcnt")).unwrap_or(0),
                })
            };
            return Some(Memory {
                usage: entry("memory")?,
                swap: entry("memory.memsw"),
                kernel: entry("memory.kmem"),
                stat: keyed(dir, "memory.stat"),
                events: keyed(dir, "memory.oom_control"),
            });
        }
        let dir = self.v2.as_deref()?;
        let events = keyed(dir, "memory.events");
        let swap = number(dir, "memory.swap.current").map(|usage| MemoryEntry {
            usage,
            max_usage: number(dir, "memory.swap.peak").unwrap_or(0),
            limit: number(dir, "memory.swap.max").unwrap_or(u64::MAX),
            failcnt: keyed(dir, "memory.swap.events")
                .get("fail")
                .copied()
                .unwrap_or(0),
        });
        Some(Memory {
            usage: MemoryEntry {
                usage: number(dir, "memory.current")?,
                max_usage: number(dir, "memory.peak").unwrap_or(0),
                limit: number(dir, "memory.max").unwrap_or(u64::MAX),
                failcnt: events.get("max").copied().unwrap_or(0),
            },
            swap,
            kernel: None,
            stat: keyed(dir, "memory.stat"),
            events,
        })
    }

    fn pids(&self) -> Option<Pids> {
        let dir = self.dir("pids")?;
        Some(Pids {
            current: number(dir, "pids.current")?,
            limit: number(dir, "pids.max").filter(|l| *l != u64::MAX),
        })
    }

    fn blkio(&self) -> Option<Blkio> {
        let dir = self.v1.get("blkio")?;
        let list = |file: &str| blkio_entries(&read(dir, file).unwrap_or_default());
        // without CFQ/BFQ only the throttling files count (as runc reads them)
        let serviced = list("blkio.io_serviced_recursive");
        if serviced.is_empty() {
            return Some(Blkio {
                service_bytes: list("blkio.throttle.io_service_bytes"),
                serviced: list("blkio.throttle.io_serviced"),
                ..Blkio::default()
            });
        }
        Some(Blkio {
            service_bytes: list("blkio.io_service_bytes_recursive"),
            serviced,
            queued: list("blkio.io_queued_recursive"),
            service_time: list("blkio.io_service_time_recursive"),
            wait_time: list("blkio.io_wait_time_recursive"),
            merged: list("blkio.io_merged_recursive"),
            time: list("blkio.time_recursive"),
            sectors: list("blkio.sectors_recursive"),
        })
    }

    fn io(&self) -> Option<Vec<IoStat>> {
        if self.is_v1("blkio") {
            return None;
        }
        Some(io_stat(&read(self.v2.as_deref()?, "io.stat")?))
    }

    fn hugetlb(&self) -> BTreeMap<String, HugeTlb> {
        let Some(dir) = self.dir("hugetlb") else {
            return BTreeMap::new();
        };
        let v1 = self.is_v1("hugetlb");
        let usage_file = if v1 { ".usage_in_bytes" } else { ".current" };
        let mut out = BTreeMap::new();
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let Some(size) = name
                .to_str()
                .and_then(|n| n.strip_prefix("hugetlb."))
                .and_then(|n| n.strip_suffix(usage_file))
            else {
                continue;
            };
            let n = |suffix: &str| number(dir, &format!("hugetlb.{size}.{suffix}")).unwrap_or(0);
            let h = if v1 {
                HugeTlb {
                    usage: n("usage_in_bytes"),
                    max_usage: n("max_usage_in_bytes"),
                    failcnt: n("failcnt"),
                }
            } else {
                HugeTlb {
                    usage: n("current"),
                    max_usage: 0,
                    failcnt: keyed(dir, &format!("hugetlb.{size}.events"))
                        .get("max")
                        .copied()
                        .unwrap_or(0),
                }
            };
            out.insert(size.to_string(), h);
        }
        out
    }
}

/// v1 blkio lines: `MAJ:MIN OP VALUE` or `MAJ:MIN VALUE` (`Total` lines
/// left out).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f[..] {
                [dev, op, value] => (dev, op, value),
                [dev, value] => (dev, "", value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`.
fn io_stat(text: &str) -> Vec<IoStat> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let mut e = IoStat {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..IoStat::default()
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (f, t) in files {
            fs::write(dir.join(f), t).unwrap();
        }
    }

    /// A v1 host's files as the kernel formats them (cpu,cpuacct joined).
    fn v1_fixture(root: &Path) -> Cgroup {
        let cpu = root.join("cpu,cpuacct/c1");
        write(
            &cpu,
            &[
                ("cpuacct.usage", "5000000\n"),
                ("cpuacct.usage_percpu", "3000000 2000000 \n"),
                ("cpuacct.stat", "user 30\nsystem 10\n"),
                (
                    "cpu.stat",
                    "nr_periods 4\nnr_throttled 1\nthrottled_time 700\n",
                ),
            ],
        );
        let mem = root.join("memory/c1");
        write(
            &mem,
            &[
                ("memory.usage_in_bytes", "1048576\n"),
                ("memory.max_usage_in_bytes", "2097152\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.failcnt", "3\n"),
                ("memory.memsw.usage_in_bytes", "1048576\n"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                (
                    "memory.stat",
                    "cache 4096\nrss 8192\ntotal_inactive_file 1024\n",
                ),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
            ],
        );
        let pids = root.join("pids/c1");
        write(&pids, &[("pids.current", "3\n"), ("pids.max", "max\n")]);
        let blkio = root.join("blkio/c1");
        write(
            &blkio,
            &[
                (
                    "blkio.throttle.io_service_bytes",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
                ),
                ("blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 2\n"),
            ],
        );
        let mut cg = Cgroup::default();
        for (c, d) in [
            ("cpu", &cpu),
            ("cpuacct", &cpu),
            ("memory", &mem),
            ("pids", &pids),
            ("blkio", &blkio),
        ] {
            cg.v1.insert(c.into(), d.clone());
        }
        cg
    }

    #[test]
    fn v1_files() {
        let root = tempfile::tempdir().unwrap();
        let m = v1_fixture(root.path()).read();
        let cpu = m.cpu.clone().unwrap();
        assert_eq!(cpu.total_ns, 5_000_000);
        assert_eq!(cpu.per_cpu_ns, [3_000_000, 2_000_000]);
        assert_eq!((cpu.user_ns, cpu.system_ns), (300_000_000, 100_000_000));
        let t = m.throttling.clone().unwrap();
        assert_eq!(
            (t.periods, t.throttled_periods, t.throttled_ns),
            (4, 1, 700)
        );
        let mem = m.memory.clone().unwrap();
        assert_eq!(
            mem.usage,
            MemoryEntry {
                usage: 1 << 20,
                max_usage: 2 << 20,
                limit: 64 << 20,
                failcnt: 3
            }
        );
        assert_eq!(mem.swap.unwrap().limit, 9223372036854771712);
        assert_eq!(mem.kernel, None, "no kmem files");
        assert_eq!(mem.stat["total_inactive_file"], 1024);
        assert_eq!(mem.events["oom_kill"], 2);
        assert_eq!(
            m.pids,
            Some(Pids {
                current: 3,
                limit: None
            })
        );
        let b = m.blkio.clone().unwrap();
        assert_eq!(b.service_bytes.len(), 4, "Total lines are left out");
        assert_eq!(m.io, None);
        assert_eq!(m.io_bytes(), (4096, 8192));
        assert!(m.hugetlb.is_empty());
    }

    #[test]
    fn v1_oom_kills() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(v1_fixture(root.path()).oom_kills(), 2);
        assert_eq!(Cgroup::default().oom_kills(), 0);
    }

    #[test]
    fn cgroup2_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c1");
        write(
            &dir,
            &[
                (
                    "cpu.stat",
                    "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 5\nnr_throttled 2\n\
                     throttled_usec 3\nnr_bursts 0\nburst_usec 0\n",
                ),
                ("memory.current", "1048576\n"),
                ("memory.max", "max\n"),
                ("memory.peak", "2097152\n"),
                ("memory.swap.current", "0\n"),
                ("memory.swap.max", "max\n"),
                ("memory.stat", "anon 4096\nfile 8192\ninactive_file 100\n"),
                ("memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n"),
                ("pids.current", "2\n"),
                ("pids.max", "50\n"),
                (
                    "io.stat",
                    "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
                ),
                ("hugetlb.2MB.current", "0\n"),
                ("hugetlb.2MB.max", "max\n"),
                ("hugetlb.2MB.events", "max 7\n"),
            ],
        );
        let cg = Cgroup {
            v1: BTreeMap::new(),
            v2: Some(dir),
        };
        let m = cg.read();
        let cpu = m.cpu.clone().unwrap();
        assert_eq!(
            (cpu.total_ns, cpu.user_ns, cpu.system_ns),
            (10_000, 6_000, 4_000)
        );
        assert_eq!(m.throttling.clone().unwrap().throttled_ns, 3000);
        let mem = m.memory.clone().unwrap();
        assert_eq!(
            mem.usage,
            MemoryEntry {
                usage: 1 << 20,
                max_usage: 2 << 20,
                limit: u64::MAX,
                failcnt: 5
            }
        );
        assert_eq!(mem.swap.unwrap().limit, u64::MAX);
        assert_eq!(mem.stat["file"], 8192);
        assert_eq!(
            m.pids,
            Some(Pids {
                current: 2,
                limit: Some(50)
            })
        );
        assert_eq!(m.io.as_ref().unwrap()[0].wios, 2);
        assert_eq!(m.io_bytes(), (4096, 8192));
        assert_eq!(m.blkio, None);
        assert_eq!(m.hugetlb["2MB"].failcnt, 7);
        assert_eq!(cg.oom_kills(), 1);
    }

    #[test]
    fn a_cgroup2_without_controllers_has_cpu_usage_only() {
        // a hybrid host's unified side, or a cgroup2 with nothing enabled
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c1");
        write(
            &dir,
            &[("cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\n")],
        );
        let m = Cgroup {
            v1: BTreeMap::new(),
            v2: Some(dir),
        }
        .read();
        assert_eq!(m.cpu.unwrap().total_ns, 7000);
        assert_eq!(m.throttling, None);
        assert_eq!((m.memory, m.pids, m.io), (None, None, None));
    }

    #[test]
    fn hybrid_reads_each_controller_where_it_is_mounted() {
        let root = tempfile::tempdir().unwrap();
        let mut cg = v1_fixture(root.path());
        let unified = root.path().join("unified/c1");
        write(
            &unified,
            &[
                ("cpu.stat", "usage_usec 99\n"),
                ("memory.current", "1\n"),
                ("io.stat", "8:0 rbytes=1 wbytes=1\n"),
            ],
        );
        cg.v2 = Some(unified);
        let m = cg.read();
        assert_eq!(
            m.cpu.clone().unwrap().total_ns,
            5_000_000,
            "cpuacct, not cpu.stat"
        );
        assert_eq!(m.memory.clone().unwrap().usage.usage, 1 << 20);
        assert_eq!(m.io, None, "blkio is v1's");
        assert_eq!(m.io_bytes(), (4096, 8192));
        // a controller v1 lacks (hugetlb here) is looked for in cgroup2
        assert_eq!(
            cg.dir("hugetlb"),
            Some(root.path().join("unified/c1").as_path())
        );
    }

    #[test]
    fn a_gone_cgroup_reads_as_nothing() {
        let cg = Cgroup::below(
            &[crate::Mount {
                point: "/nonexistent".into(),
                v2: true,
                controllers: vec![],
            }],
            "c1",
        );
        assert_eq!(cg.read(), Metrics::default());
    }
}
