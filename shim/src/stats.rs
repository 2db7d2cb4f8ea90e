//! containerd's `Stats` for a container, from the cgroup-metrics reader:
//! `io.containerd.cgroups.v2.Metrics` for a container in a pure cgroup2
//! hierarchy, `io.containerd.cgroups.v1.Metrics` on a v1 or hybrid host
//! (where containerd's v1 decoder expects it). Counters the cgroup lacks
//! read as zero.

use cgroup_metrics::{Cgroup, Metrics};
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::{MessageDyn, MessageField};

/// The type URL and the metrics of the container in `cgroup`.
pub fn of(cgroup: &Cgroup) -> (&'static str, Box<dyn MessageDyn>) {
    let m = cgroup.read();
    if cgroup.is_v2_only() {
        ("io.containerd.cgroups.v2.Metrics", Box::new(cgroup2(&m)))
    } else {
        ("io.containerd.cgroups.v1.Metrics", Box::new(cgroup1(&m)))
    }
}

/// containerd's v1 metrics (times in nanoseconds).
pub fn cgroup1(m: &Metrics) -> v1::Metrics {
    let mut out = v1::Metrics::new();

    let mut pids = v1::PidsStat::new();
    if let Some(p) = &m.pids {
        pids.current = p.current;
        pids.limit = p.limit.unwrap_or(0);
    }
    out.pids = MessageField::some(pids);

    let mut cpu = v1::CPUStat::new();
    let mut usage = v1::CPUUsage::new();
    if let Some(u) = &m.cpu {
        usage.total = u.total_ns;
        usage.kernel = u.system_ns;
        usage.user = u.user_ns;
        usage.per_cpu = u.per_cpu_ns.clone();
    }
    cpu.usage = MessageField::some(usage);
    if let Some(t) = &m.throttling {
        let mut th = v1::Throttle::new();
        th.periods = t.periods;
        th.throttled_periods = t.throttled_periods;
        th.throttled_time = t.throttled_ns;
        cpu.throttling = MessageField::some(th);
    }
    out.cpu = MessageField::some(cpu);

    let mut mem = v1::MemoryStat::new();
    if let Some(mm) = &m.memory {
        for (k, v) in &mm.stat {
            let field = match k.as_str() {
                "cache" => &mut mem.cache,
                "rss" => &mut mem.rss,
                "rss_huge" => &mut mem.rss_huge,
                "mapped_file" => &mut mem.mapped_file,
                "dirty" => &mut mem.dirty,
                "writeback" => &mut mem.writeback,
                "pgpgin" => &mut mem.pg_pg_in,
                "pgpgout" => &mut mem.pg_pg_out,
                "pgfault" => &mut mem.pg_fault,
                "pgmajfault" => &mut mem.pg_maj_fault,
                "inactive_anon" => &mut mem.inactive_anon,
                "active_anon" => &mut mem.active_anon,
                "inactive_file" => &mut mem.inactive_file,
                "active_file" => &mut mem.active_file,
                "unevictable" => &mut mem.unevictable,
                "hierarchical_memory_limit" => &mut mem.hierarchical_memory_limit,
                "hierarchical_memsw_limit" => &mut mem.hierarchical_swap_limit,
                "total_cache" => &mut mem.total_cache,
                "total_rss" => &mut mem.total_rss,
                "total_rss_huge" => &mut mem.total_rss_huge,
                "total_mapped_file" => &mut mem.total_mapped_file,
                "total_dirty" => &mut mem.total_dirty,
                "total_writeback" => &mut mem.total_writeback,
                "total_pgpgin" => &mut mem.total_pg_pg_in,
                "total_pgpgout" => &mut mem.total_pg_pg_out,
                "total_pgfault" => &mut mem.total_pg_fault,
                "total_pgmajfault" => &mut mem.total_pg_maj_fault,
                "total_inactive_anon" => &mut mem.total_inactive_anon,
                "total_active_anon" => &mut mem.total_active_anon,
                "total_inactive_file" => &mut mem.total_inactive_file,
                "total_active_file" => &mut mem.total_active_file,
                "total_unevictable" => &mut mem.total_unevictable,
                _ => continue,
            };
            *field = *v;
        }
        mem.usage = memory_entry(Some(&mm.usage));
        mem.swap = memory_entry(mm.swap.as_ref());
        mem.kernel = memory_entry(mm.kernel.as_ref());
        let mut oom = v1::MemoryOomControl::new();
        oom.oom_kill = mm.events.get("oom_kill").copied().unwrap_or(0);
        oom.under_oom = mm.events.get("under_oom").copied().unwrap_or(0);
        oom.oom_kill_disable = mm.events.get("oom_kill_disable").copied().unwrap_or(0);
        out.memory_oom_control = MessageField::some(oom);
    }
    out.memory = MessageField::some(mem);

    if let Some(b) = &m.blkio {
        let list = |v: &[cgroup_metrics::BlkioEntry]| -> Vec<v1::BlkIOEntry> {
            v.iter()
                .map(|e| {
                    let mut x = v1::BlkIOEntry::new();
                    x.major = e.major;
                    x.minor = e.minor;
                    x.op = e.op.clone();
                    x.value = e.value;
                    x
                })
                .collect()
        };
        let mut blkio = v1::BlkIOStat::new();
        blkio.io_service_bytes_recursive = list(&b.service_bytes);
        blkio.io_serviced_recursive = list(&b.serviced);
        blkio.io_queued_recursive = list(&b.queued);
        blkio.io_service_time_recursive = list(&b.service_time);
        blkio.io_wait_time_recursive = list(&b.wait_time);
        blkio.io_merged_recursive = list(&b.merged);
        blkio.io_time_recursive = list(&b.time);
        blkio.sectors_recursive = list(&b.sectors);
        out.blkio = MessageField::some(blkio);
    }

    out.hugetlb = m
        .hugetlb
        .iter()
        .map(|(size, h)| {
            let mut x = v1::HugetlbStat::new();
            x.pagesize = size.clone();
            x.usage = h.usage;
            x.max = h.max_usage;
            x.failcnt = h.failcnt;
            x
        })
        .collect();
    out
}

fn memory_entry(e: Option<&cgroup_metrics::MemoryEntry>) -> MessageField<v1::MemoryEntry> {
    let Some(e) = e else {
        return MessageField::none();
    };
    let mut x = v1::MemoryEntry::new();
    x.limit = e.limit;
    x.usage = e.usage;
    x.max = e.max_usage;
    x.failcnt = e.failcnt;
    MessageField::some(x)
}

/// containerd's v2 metrics (times in microseconds, as cgroup2 counts them).
pub fn cgroup2(m: &Metrics) -> v2::Metrics {
    let mut out = v2::Metrics::new();

    let mut pids = v2::PidsStat::new();
    if let Some(p) = &m.pids {
        pids.current = p.current;
        pids.limit = p.limit.unwrap_or(0);
    }
    out.pids = MessageField::some(pids);

    let mut cpu = v2::CPUStat::new();
    if let Some(u) = &m.cpu {
        cpu.usage_usec = u.total_ns / 1000;
        cpu.user_usec = u.user_ns / 1000;
        cpu.system_usec = u.system_ns / 1000;
    }
    if let Some(t) = &m.throttling {
        cpu.nr_periods = t.periods;
        cpu.nr_throttled = t.throttled_periods;
        cpu.throttled_usec = t.throttled_ns / 1000;
        cpu.nr_bursts = t.bursts;
        cpu.burst_usec = t.burst_ns / 1000;
    }
    out.cpu = MessageField::some(cpu);

    let mut mem = v2::MemoryStat::new();
    let mut events = v2::MemoryEvents::new();
    if let Some(mm) = &m.memory {
        for (k, v) in &mm.stat {
            let field = match k.as_str() {
                "anon" => &mut mem.anon,
                "file" => &mut mem.file,
                "kernel_stack" => &mut mem.kernel_stack,
                "slab" => &mut mem.slab,
                "sock" => &mut mem.sock,
                "shmem" => &mut mem.shmem,
                "file_mapped" => &mut mem.file_mapped,
                "file_dirty" => &mut mem.file_dirty,
                "file_writeback" => &mut mem.file_writeback,
                "anon_thp" => &mut mem.anon_thp,
                "inactive_anon" => &mut mem.inactive_anon,
                "active_anon" => &mut mem.active_anon,
                "inactive_file" => &mut mem.inactive_file,
                "active_file" => &mut mem.active_file,
                "unevictable" => &mut mem.unevictable,
                "slab_reclaimable" => &mut mem.slab_reclaimable,
                "slab_unreclaimable" => &mut mem.slab_unreclaimable,
                "pgfault" => &mut mem.pgfault,
                "pgmajfault" => &mut mem.pgmajfault,
                "workingset_refault" | "workingset_refault_anon" | "workingset_refault_file" => {
                    &mut mem.workingset_refault
                }
                "workingset_activate" | "workingset_activate_anon" | "workingset_activate_file" => {
                    &mut mem.workingset_activate
                }
                "workingset_nodereclaim" => &mut mem.workingset_nodereclaim,
                "pgrefill" => &mut mem.pgrefill,
                "pgscan" => &mut mem.pgscan,
                "pgsteal" => &mut mem.pgsteal,
                "pgactivate" => &mut mem.pgactivate,
                "pgdeactivate" => &mut mem.pgdeactivate,
                "pglazyfree" => &mut mem.pglazyfree,
                "pglazyfreed" => &mut mem.pglazyfreed,
                "thp_fault_alloc" => &mut mem.thp_fault_alloc,
                "thp_collapse_alloc" => &mut mem.thp_collapse_alloc,
                _ => continue,
            };
            // the _anon and _file halves of newer kernels add up
            *field += v;
        }
        mem.usage = mm.usage.usage;
        mem.usage_limit = mm.usage.limit;
        mem.max_usage = mm.usage.max_usage;
        if let Some(s) = &mm.swap {
            mem.swap_usage = s.usage;
            mem.swap_limit = s.limit;
            mem.swap_max_usage = s.max_usage;
        }
        for (k, v) in &mm.events {
            match k.as_str() {
                "low" => events.low = *v,
                "high" => events.high = *v,
                "max" => events.max = *v,
                "oom" => events.oom = *v,
                "oom_kill" => events.oom_kill = *v,
                "oom_group_kill" => events.oom_group_kill = *v,
                _ => {}
            }
        }
    }
    out.memory = MessageField::some(mem);
    out.memory_events = MessageField::some(events);

    let mut io = v2::IOStat::new();
    io.usage =
        m.io.iter()
            .flatten()
            .map(|d| {
                let mut e = v2::IOEntry::new();
                e.major = d.major;
                e.minor = d.minor;
                e.rbytes = d.rbytes;
                e.wbytes = d.wbytes;
                e.rios = d.rios;
                e.wios = d.wios;
                e
            })
            .collect();
    out.io = MessageField::some(io);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn cgroup2_files_in_the_kernel_format() {
        // this host's cgroup2 has no memory, pids or io controller: their
        // files are written here as the kernel formats them
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| fs::write(dir.path().join(f), t).unwrap();
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w("memory.current", "1048576\n");
        w("memory.max", "max\n");
        w(
            "memory.stat",
            "anon 4096\nfile 8192\nworkingset_refault_anon 1\nworkingset_refault_file 2\n",
        );
        w(
            "memory.events",
            "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n",
        );
        w("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n");
        w(
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let cg = Cgroup {
            v2: Some(dir.path().to_path_buf()),
            ..Cgroup::default()
        };
        assert_eq!(of(&cg).0, "io.containerd.cgroups.v2.Metrics");
        let m = cgroup2(&cg.read());
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        assert_eq!((m.memory.usage, m.memory.usage_limit), (1048576, u64::MAX));
        assert_eq!((m.memory.anon, m.memory.file), (4096, 8192));
        assert_eq!(m.memory.workingset_refault, 3);
        assert_eq!((m.memory_events.max, m.memory_events.oom_kill), (5, 1));
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (10, 6, 4)
        );
        let e = &m.io.usage[0];
        assert_eq!(
            (e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios),
            (8, 0, 4096, 8192, 1, 2)
        );
    }

    #[test]
    fn v1_files_give_v1_metrics() {
        let root = tempfile::tempdir().unwrap();
        let w = |d: &str, f: &str, t: &str| {
            fs::create_dir_all(root.path().join(d)).unwrap();
            fs::write(root.path().join(d).join(f), t).unwrap();
        };
        w("cpu", "cpuacct.usage", "5000\n");
        w("cpu", "cpuacct.stat", "user 2\nsystem 1\n");
        w("memory", "memory.usage_in_bytes", "4096\n");
        w("memory", "memory.limit_in_bytes", "67108864\n");
        w("memory", "memory.stat", "cache 10\nrss 20\ntotal_rss 30\n");
        w(
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
        );
        w("pids", "pids.current", "2\n");
        w("pids", "pids.max", "10\n");
        let mut cg = Cgroup::default();
        for (c, d) in [("cpuacct", "cpu"), ("memory", "memory"), ("pids", "pids")] {
            cg.v1.insert(c.into(), root.path().join(d));
        }
        assert_eq!(of(&cg).0, "io.containerd.cgroups.v1.Metrics");
        let m = cgroup1(&cg.read());
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(
            (m.cpu.usage.user, m.cpu.usage.kernel),
            (20_000_000, 10_000_000)
        );
        assert_eq!(
            (m.memory.cache, m.memory.rss, m.memory.total_rss),
            (10, 20, 30)
        );
        assert_eq!(
            (m.memory.usage.usage, m.memory.usage.limit),
            (4096, 64 << 20)
        );
        assert_eq!(m.memory_oom_control.oom_kill, 4);
        assert_eq!((m.pids.current, m.pids.limit), (2, 10));
        assert!(m.blkio.is_none());
    }
}
