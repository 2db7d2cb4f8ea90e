//! cgroup v2: which containers live in a pure cgroup2 hierarchy, and
//! their metrics as containerd's `io.containerd.cgroups.v2.Metrics`.
//!
//! The choice is made per container, from its init's `/proc/PID/cgroup`:
//! if only the unified line (`0::/path`) names the container's cgroup (no
//! v1 controller is mounted), it is a cgroup v2 container and its files are
//! read here; otherwise (a v1 or hybrid host) rrun reports v1 stats.

use std::fs;
use std::path::{Path, PathBuf};

use containerd_shim_protos::cgroups_v2::metrics;
use containerd_shim_protos::protobuf::MessageField;

/// The container's cgroup2 directory, when `pid` is in a pure cgroup v2
/// hierarchy; None on a v1 or hybrid host (or when `pid` is gone).
pub fn dir_of(pid: i32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    dir_from(&text, &mount_point(&mounts)?)
}

/// From `/proc/PID/cgroup`: the unified path below `mount`, unless a v1
/// hierarchy with controllers is listed too (named-only hierarchies such
/// as `name=systemd` do not count).
pub fn dir_from(proc_cgroup: &str, mount: &Path) -> Option<PathBuf> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if controllers.is_empty() {
            unified = Some(path);
        } else if controllers.split(',').any(|c| !c.starts_with("name=")) {
            return None;
        }
    }
    Some(mount.join(unified?.trim_start_matches('/')))
}

/// Where cgroup2 is mounted, from `/proc/self/mountinfo` (/sys/fs/cgroup
/// first if there are several).
pub fn mount_point(mountinfo: &str) -> Option<PathBuf> {
    let mut found: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2").then_some(())?;
            left.split_whitespace().nth(4)
        })
        .collect();
    found.sort_by_key(|p| *p != "/sys/fs/cgroup");
    found.first().map(PathBuf::from)
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single number; "max" (no limit) is u64::MAX, as containerd reports it.
fn number(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .map(|t| match t.trim() {
            "max" => u64::MAX,
            v => v.parse().unwrap_or(0),
        })
        .unwrap_or(0)
}

/// `key value` lines (cpu.stat, memory.stat, memory.events).
pub fn flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

/// io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`.
pub fn io_entries(text: &str) -> Vec<metrics::IOEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let mut e = metrics::IOEntry::new();
            e.major = major.parse().ok()?;
            e.minor = minor.parse().ok()?;
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

/// The cgroup's metrics; files of controllers that are not enabled there
/// read as zero.
pub fn metrics(dir: &Path) -> metrics::Metrics {
    let mut m = metrics::Metrics::new();

    let mut pids = metrics::PidsStat::new();
    pids.current = number(dir, "pids.current");
    pids.limit = match read(dir, "pids.max").as_deref().map(str::trim) {
        Some("max") | None => 0,
        Some(v) => v.parse().unwrap_or(0),
    };
    m.pids = MessageField::some(pids);

    let mut cpu = metrics::CPUStat::new();
    for (k, v) in flat_keyed(&read(dir, "cpu.stat").unwrap_or_default()) {
        match k {
            "usage_usec" => cpu.usage_usec = v,
            "user_usec" => cpu.user_usec = v,
            "system_usec" => cpu.system_usec = v,
            "nr_periods" => cpu.nr_periods = v,
            "nr_throttled" => cpu.nr_throttled = v,
            "throttled_usec" => cpu.throttled_usec = v,
            "nr_bursts" => cpu.nr_bursts = v,
            "burst_usec" => cpu.burst_usec = v,
            _ => {}
        }
    }
    m.cpu = MessageField::some(cpu);

    let mut mem = metrics::MemoryStat::new();
    for (k, v) in flat_keyed(&read(dir, "memory.stat").unwrap_or_default()) {
        let field = match k {
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
    mem.usage = number(dir, "memory.current");
    mem.usage_limit = number(dir, "memory.max");
    mem.swap_usage = number(dir, "memory.swap.current");
    mem.swap_limit = number(dir, "memory.swap.max");
    mem.max_usage = number(dir, "memory.peak");
    mem.swap_max_usage = number(dir, "memory.swap.peak");
    m.memory = MessageField::some(mem);

    let mut events = metrics::MemoryEvents::new();
    for (k, v) in flat_keyed(&read(dir, "memory.events").unwrap_or_default()) {
        match k {
            "low" => events.low = v,
            "high" => events.high = v,
            "max" => events.max = v,
            "oom" => events.oom = v,
            "oom_kill" => events.oom_kill = v,
            "oom_group_kill" => events.oom_group_kill = v,
            _ => {}
        }
    }
    m.memory_events = MessageField::some(events);

    let mut io = metrics::IOStat::new();
    io.usage = io_entries(&read(dir, "io.stat").unwrap_or_default());
    m.io = MessageField::some(io);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_or_hybrid_process_is_not_v2() {
        let hybrid = "9:name=systemd:/\n4:memory:/ns/c1\n1:cpu,cpuacct:/ns/c1\n0::/ns/c1\n";
        assert_eq!(dir_from(hybrid, Path::new("/sys/fs/cgroup/unified")), None);
        let unified = "0::/ns/c1\n";
        assert_eq!(
            dir_from(unified, Path::new("/sys/fs/cgroup")),
            Some(PathBuf::from("/sys/fs/cgroup/ns/c1"))
        );
        // only a named (controller-less) v1 hierarchy next to cgroup2
        let named = "1:name=systemd:/x\n0::/ns/c1\n";
        assert_eq!(
            dir_from(named, Path::new("/sys/fs/cgroup")),
            Some(PathBuf::from("/sys/fs/cgroup/ns/c1"))
        );
    }

    #[test]
    fn the_cgroup2_mount_is_found() {
        let mi = "30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                  31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                  32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            mount_point(mi),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(mount_point("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn files_in_the_kernel_format() {
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
        let m = metrics(dir.path());
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        assert_eq!((m.memory.usage, m.memory.usage_limit), (1048576, u64::MAX));
        assert_eq!((m.memory.anon, m.memory.file), (4096, 8192));
        assert_eq!(m.memory.workingset_refault, 3);
        assert_eq!((m.memory_events.max, m.memory_events.oom_kill), (5, 1));
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (10, 6, 4)
        );
        assert!(m.io.usage.is_empty());
    }

    #[test]
    fn io_stat_lines() {
        let e = io_entries("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (
                e[0].major,
                e[0].minor,
                e[0].rbytes,
                e[0].wbytes,
                e[0].rios,
                e[0].wios
            ),
            (8, 0, 4096, 8192, 1, 2)
        );
    }
}
