//! `linux.resources` read as runc reads it, before cgroups.rs writes
//! anything:
//!
//! - **zero means unset.** dockerd sends `blockIO: {weight: 0}`,
//!   `cpu: {shares: 0}`, `memory: {disableOOMKiller: false}` and the like
//!   for what the user did not set; runc writes nothing for them, and
//!   neither does rrun (a kernel without blkio.weight refused them all).
//! - **hugepageLimits page sizes** are a power of two with a unit (`2MB`,
//!   `1GB`) that this kernel has (/sys/kernel/mm/hugepages); cgroups-rs
//!   skipped any other size without a word.
//! - **a knob whose file this kernel lacks** (blkio.weight without the CFQ
//!   or BFQ scheduler, memory.memsw.* without swap accounting...) is refused
//!   naming the field and the file, and only when a real value asks for it.
//! - **memory.kernelTCP** goes to v1's memory.kmem.tcp.limit_in_bytes (as
//!   crun does; cgroups-rs skipped it); cgroup v2 has no such limit, and
//!   there it is ignored with a warning as runc does. `memory.kernel` is
//!   ignored with runc's warning everywhere (the kernel deprecated it).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources,
    LinuxWeightDeviceBuilder,
};

/// v1's limit for `memory.kernelTCP`.
pub const KMEM_TCP: &str = "memory.kmem.tcp.limit_in_bytes";

/// Where the kernel lists the huge page sizes it has.
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("linux.resources.hugepageLimits[{index}].pageSize: {size:?} is not a page size (a power of two with a unit: 64KB, 2MB, 1GB)")]
    PageSize { index: usize, size: String },
    #[error("linux.resources.hugepageLimits[{index}].pageSize: this kernel has no {size} huge pages (it has: {have})")]
    PageSizeUnsupported {
        index: usize,
        size: String,
        have: String,
    },
    #[error("linux.resources.{field}: this kernel has no {} ({why})", file.display())]
    MissingFile {
        field: &'static str,
        file: PathBuf,
        why: &'static str,
    },
}

/// `resources` without the values that mean "not set" (zeros, empty
/// strings, `disableOOMKiller: false`), and without a section that is left
/// empty. What runc skips; nothing else changes.
pub fn normalized(resources: &LinuxResources) -> LinuxResources {
    let mut r = resources.clone();
    r.set_block_io(
        r.block_io()
            .clone()
            .map(block_io)
            .filter(|b| *b != LinuxBlockIo::default()),
    );
    r.set_cpu(
        r.cpu()
            .clone()
            .map(cpu)
            .filter(|c| *c != LinuxCpu::default()),
    );
    r.set_memory(
        r.memory()
            .map(memory)
            .filter(|m| *m != LinuxMemory::default()),
    );
    // runc: a pids limit of 0 leaves pids.max as it is
    r.set_pids(r.pids().filter(|p| p.limit() != 0));
    r
}

fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn block_io(mut b: LinuxBlockIo) -> LinuxBlockIo {
    b.set_weight(nonzero(b.weight()));
    b.set_leaf_weight(nonzero(b.leaf_weight()));
    let devices: Option<Vec<_>> = b.weight_device().clone().map(|ds| {
        ds.into_iter()
            .map(|d| {
                let mut w = LinuxWeightDeviceBuilder::default()
                    .major(d.major())
                    .minor(d.minor());
                if let Some(v) = nonzero(d.weight()) {
                    w = w.weight(v);
                }
                if let Some(v) = nonzero(d.leaf_weight()) {
                    w = w.leaf_weight(v);
                }
                w.build().expect("every field has a value")
            })
            .filter(|d| d.weight().is_some() || d.leaf_weight().is_some())
            .collect()
    });
    b.set_weight_device(devices.filter(|d| !d.is_empty()));
    let nonempty = |l: &Option<Vec<_>>| l.clone().filter(|l: &Vec<_>| !l.is_empty());
    b.set_throttle_read_bps_device(nonempty(b.throttle_read_bps_device()));
    b.set_throttle_write_bps_device(nonempty(b.throttle_write_bps_device()));
    b.set_throttle_read_iops_device(nonempty(b.throttle_read_iops_device()));
    b.set_throttle_write_iops_device(nonempty(b.throttle_write_iops_device()));
    b
}

fn cpu(mut c: LinuxCpu) -> LinuxCpu {
    c.set_shares(nonzero(c.shares()));
    c.set_quota(nonzero(c.quota()));
    c.set_period(nonzero(c.period()));
    c.set_realtime_runtime(nonzero(c.realtime_runtime()));
    c.set_realtime_period(nonzero(c.realtime_period()));
    c.set_cpus(c.cpus().clone().filter(|s| !s.is_empty()));
    c.set_mems(c.mems().clone().filter(|s| !s.is_empty()));
    c
}

fn memory(mut m: LinuxMemory) -> LinuxMemory {
    m.set_limit(nonzero(m.limit()));
    m.set_reservation(nonzero(m.reservation()));
    m.set_swap(nonzero(m.swap()));
    m.set_kernel(nonzero(m.kernel()));
    m.set_kernel_tcp(nonzero(m.kernel_tcp()));
    m.set_disable_oom_killer(m.disable_oom_killer().filter(|d| *d));
    m
}

/// A page size as runc and the kernel's hugetlb files spell it ("2MB",
/// "1GB", "64KB") in bytes; None if it is not a power of two with a unit.
pub fn page_size_bytes(size: &str) -> Option<u64> {
    let digits = size.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = size.split_at(digits);
    let shift = match unit {
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        "PB" => 50,
        _ => return None,
    };
    let n: u64 = num.parse().ok()?;
    n.is_power_of_two().then_some(n)?.checked_mul(1 << shift)
}

/// The kernel's page size name for a size in bytes ("2MB").
fn page_size_name(mut bytes: u64) -> String {
    let mut unit = 0;
    while bytes >= 1024 && bytes % 1024 == 0 && unit < 5 {
        bytes /= 1024;
        unit += 1;
    }
    format!("{bytes}{}", ["B", "KB", "MB", "GB", "TB", "PB"][unit])
}

/// The huge page sizes this kernel has, smallest first ("2MB", "1GB").
pub fn supported_page_sizes(dir: &Path) -> Vec<String> {
    let mut sizes: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(kb * 1024)
        })
        .collect();
    sizes.sort_unstable();
    sizes.into_iter().map(page_size_name).collect()
}

/// Refuse page sizes that are malformed or that this kernel lacks.
pub fn check_hugepage_limits(limits: &[LinuxHugepageLimit]) -> Result<(), ResourceError> {
    if limits.is_empty() {
        return Ok(());
    }
    let have = supported_page_sizes(Path::new(HUGEPAGES));
    for (index, l) in limits.iter().enumerate() {
        let size = l.page_size();
        let Some(bytes) = page_size_bytes(size) else {
            return Err(ResourceError::PageSize {
                index,
                size: size.clone(),
            });
        };
        if !have.contains(&page_size_name(bytes)) {
            return Err(ResourceError::PageSizeUnsupported {
                index,
                size: size.clone(),
                have: if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// A cgroup file a set value is written to: the `linux.resources` field,
/// the v1 controller, the file names that would do (any one), and what a
/// kernel without them lacks.
pub struct Knob {
    pub field: &'static str,
    pub controller: &'static str,
    pub files: &'static [&'static str],
    pub why: &'static str,
}

/// The v1 files the set values of `r` (already [`normalized`]) need.
pub fn v1_knobs(r: &LinuxResources) -> Vec<Knob> {
    let mut out = Vec::new();
    let mut need = |on: bool, field, controller, files, why| {
        if on {
            out.push(Knob {
                field,
                controller,
                files,
                why,
            });
        }
    };
    const NO_WEIGHT: &str = "proportional block I/O weights need the CFQ or BFQ I/O scheduler";
    if let Some(b) = r.block_io() {
        need(
            b.weight().is_some(),
            "blockIO.weight",
            "blkio",
            &["blkio.weight", "blkio.bfq.weight"],
            NO_WEIGHT,
        );
        need(
            b.leaf_weight().is_some(),
            "blockIO.leafWeight",
            "blkio",
            &["blkio.leaf_weight"],
            "leaf weights need the CFQ I/O scheduler",
        );
        need(
            b.weight_device().is_some(),
            "blockIO.weightDevice",
            "blkio",
            &["blkio.weight_device", "blkio.bfq.weight_device"],
            NO_WEIGHT,
        );
    }
    if let Some(c) = r.cpu() {
        need(
            c.quota().is_some() || c.period().is_some(),
            "cpu.quota",
            "cpu",
            &["cpu.cfs_quota_us"],
            "CPU bandwidth control needs CONFIG_CFS_BANDWIDTH",
        );
        need(
            c.realtime_runtime().is_some() || c.realtime_period().is_some(),
            "cpu.realtimeRuntime",
            "cpu",
            &["cpu.rt_runtime_us"],
            "real-time group scheduling needs CONFIG_RT_GROUP_SCHED",
        );
    }
    if let Some(m) = r.memory() {
        need(
            m.swap().is_some(),
            "memory.swap",
            "memory",
            &["memory.memsw.limit_in_bytes"],
            "swap limits need swap accounting (swapaccount=1)",
        );
        need(
            m.kernel_tcp().is_some(),
            "memory.kernelTCP",
            "memory",
            &[KMEM_TCP],
            "kernel TCP buffer limits need kernel memory accounting (CONFIG_MEMCG_KMEM)",
        );
    }
    out
}

/// Take `memory.kernel` and `memory.kernelTCP` out of `r` (already
/// [`normalized`]): cgroups-rs skips both, and a memory section left with
/// only them must not need a memory controller. Returns the warnings for
/// what is ignored and the kernel TCP limit to write to v1's [`KMEM_TCP`]
/// (`v1_memory`: the memory controller is a v1 one).
pub fn take_kernel_memory(
    r: &mut LinuxResources,
    v1_memory: bool,
) -> (Vec<&'static str>, Option<i64>) {
    let warnings = ignored(r, v1_memory);
    let Some(mut m) = r.memory() else {
        return (warnings, None);
    };
    let tcp = m.kernel_tcp().filter(|_| v1_memory);
    m.set_kernel(None);
    m.set_kernel_tcp(None);
    r.set_memory(Some(m).filter(|m| *m != LinuxMemory::default()));
    (warnings, tcp)
}

/// The set values of `r` (already [`normalized`]) this host ignores, as
/// runc does, each with its warning; `v1_memory`: the memory controller
/// is a v1 one, which has a kernel TCP limit.
fn ignored(r: &LinuxResources, v1_memory: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() {
            out.push("linux.resources.memory.kernel is ignored: kernel memory limits are deprecated by the kernel (runc ignores them too)");
        }
        if m.kernel_tcp().is_some() && !v1_memory {
            out.push("linux.resources.memory.kernelTCP is ignored: cgroup v2 has no kernel TCP buffer limit (TCP buffers count toward memory.max)");
        }
    }
    out
}

/// The first knob of `knobs` none of whose files is in its controller's
/// directory (`dir_of`; a missing controller is left to the caller).
pub fn missing_file(
    knobs: &[Knob],
    dir_of: impl Fn(&str) -> Option<PathBuf>,
) -> Result<(), ResourceError> {
    for k in knobs {
        let Some(dir) = dir_of(k.controller) else {
            continue;
        };
        if !k.files.iter().any(|f| dir.join(f).exists()) {
            return Err(ResourceError::MissingFile {
                field: k.field,
                file: dir.join(k.files[0]),
                why: k.why,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn dockerds_zeros_are_unset() {
        let r = normalized(&resources(serde_json::json!({
            "blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}], "throttleReadBpsDevice": []},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "disableOOMKiller": false},
            "pids": {"limit": 0}
        })));
        assert_eq!(r, LinuxResources::default());
        assert!(v1_knobs(&r).is_empty());
    }

    #[test]
    fn real_values_stay() {
        let before = resources(serde_json::json!({
            "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 10}]},
            "cpu": {"shares": 0, "quota": -1, "cpus": "0"},
            "memory": {"limit": -1, "swappiness": 0, "disableOOMKiller": true},
            "pids": {"limit": -1}
        }));
        let r = normalized(&before);
        let b = r.block_io().clone().unwrap();
        assert_eq!(b.weight(), Some(500));
        let d = &b.weight_device().clone().unwrap()[0];
        assert_eq!((d.weight(), d.leaf_weight()), (None, Some(10)));
        let c = r.cpu().clone().unwrap();
        assert_eq!((c.shares(), c.quota()), (None, Some(-1)));
        assert_eq!(c.cpus().as_deref(), Some("0"));
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(-1));
        assert_eq!(m.swappiness(), Some(0), "swappiness 0 is a value");
        assert_eq!(m.disable_oom_killer(), Some(true));
        assert_eq!(r.pids().unwrap().limit(), -1);
        let fields: Vec<&str> = v1_knobs(&r).iter().map(|k| k.field).collect();
        assert_eq!(
            fields,
            ["blockIO.weight", "blockIO.weightDevice", "cpu.quota"]
        );
    }

    #[test]
    fn kernel_memory_is_ignored_with_a_warning_and_tcp_only_on_v2() {
        let r = normalized(&resources(serde_json::json!({
            "memory": {"kernel": 1048576, "kernelTCP": 1048576}
        })));
        assert_eq!(ignored(&r, true).len(), 1);
        assert!(ignored(&r, true)[0].starts_with("linux.resources.memory.kernel is ignored"));
        assert_eq!(ignored(&r, false).len(), 2);
        assert!(ignored(&r, false)[1].contains("kernelTCP"));
        assert!(v1_knobs(&r).iter().any(|k| k.files == [KMEM_TCP]));
        let mut v1 = r.clone();
        assert_eq!(take_kernel_memory(&mut v1, true).1, Some(1048576));
        // nothing is left for cgroups-rs, which would want a controller
        assert_eq!(v1.memory(), &None);
        let mut v2 = r.clone();
        assert_eq!(take_kernel_memory(&mut v2, false).1, None);
        assert_eq!(v2.memory(), &None);
        // dockerd's zeros: nothing to say
        let r = normalized(&resources(serde_json::json!({
            "memory": {"kernel": 0, "kernelTCP": 0}
        })));
        assert!(ignored(&r, false).is_empty());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size_bytes("2MB"), Some(2 << 20));
        assert_eq!(page_size_bytes("1GB"), Some(1 << 30));
        assert_eq!(page_size_bytes("64KB"), Some(64 << 10));
        for bad in [
            "3MB",
            "2mb",
            "MB",
            "2",
            "2 MB",
            "-2MB",
            "0MB",
            "",
            "1048576PB",
        ] {
            assert_eq!(page_size_bytes(bad), None, "{bad}");
        }
        assert_eq!(page_size_name(2 << 20), "2MB");
        assert_eq!(page_size_name(1 << 30), "1GB");
    }

    #[test]
    fn kernel_page_sizes_are_read_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["hugepages-1048576kB", "hugepages-2048kB", "other"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        assert_eq!(supported_page_sizes(dir.path()), ["2MB", "1GB"]);
    }

    #[test]
    fn a_missing_file_is_named_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let r = normalized(&resources(serde_json::json!({"blockIO": {"weight": 300}})));
        let knobs = v1_knobs(&r);
        let e = missing_file(&knobs, |_| Some(dir.path().to_path_buf())).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("linux.resources.blockIO.weight: this kernel has no ")
                && msg.contains("blkio.weight (")
                && msg.contains("CFQ or BFQ"),
            "{msg}"
        );
        std::fs::write(dir.path().join("blkio.bfq.weight"), "").unwrap();
        missing_file(&knobs, |_| Some(dir.path().to_path_buf())).unwrap();
        // no controller at all: left to the caller's own error
        missing_file(&knobs, |_| None).unwrap();
    }
}
