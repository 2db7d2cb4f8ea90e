//! Per-process attributes beyond user and capabilities: I/O priority,
//! scheduling policy, personality, LSM labels (AppArmor, SELinux) and the
//! time namespace's clock offsets.

use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    Process,
};

use crate::error::{Error, Result};

/// Refuse what cannot work on this host before anything is made.
pub fn validate(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Error::config(
                "process.ioPriority.priority",
                format!("{} is not in 0..7", io.priority()),
            ));
        }
    }
    if let Some(s) = process.scheduler() {
        if let Some(n) = *s.nice() {
            if !(-20..=19).contains(&n) {
                return Err(Error::config(
                    "process.scheduler.nice",
                    format!("{n} is not in -20..19"),
                ));
            }
        }
        let rt = matches!(
            s.policy(),
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
        );
        if rt && !(1..=99).contains(&s.priority().unwrap_or(0)) {
            return Err(Error::config(
                "process.scheduler.priority",
                "SCHED_FIFO and SCHED_RR need a priority in 1..99",
            ));
        }
        if *s.policy() == LinuxSchedulerPolicy::SchedIso {
            return Err(Error::config(
                "process.scheduler.policy",
                "SCHED_ISO does not exist in Linux",
            ));
        }
    }
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(Error::config(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
        && !selinux_enabled()
    {
        return Err(Error::config(
            "process.selinuxLabel",
            "SELinux is not enabled on this host",
        ));
    }
    if let Some(l) = linux {
        if let Some(p) = l.personality() {
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(Error::config(
                    "linux.personality.flags",
                    "no personality flags are defined by the runtime spec",
                ));
            }
        }
        if let Some(offsets) = l.time_offsets() {
            for clock in offsets.keys() {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(Error::config(
                        format!("linux.timeOffsets.{clock}"),
                        "only monotonic and boottime can be offset",
                    ));
                }
            }
            let has_timens = l.namespaces().iter().flatten().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Time && n.path().is_none()
            });
            if !offsets.is_empty() && !has_timens {
                return Err(Error::config(
                    "linux.timeOffsets",
                    "needs a new time namespace in linux.namespaces",
                ));
            }
        }
    }
    Ok(())
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Offsets for a fresh time namespace: written by the process that
/// unshared it, before any process enters it.
pub fn write_time_offsets(linux: Option<&Linux>) -> Result<()> {
    let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) else {
        return Ok(());
    };
    let text: String = offsets
        .iter()
        .map(|(clock, o)| {
            format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect();
    std::fs::write("/proc/self/timens_offsets", &text).map_err(|e| {
        Error::config(
            "linux.timeOffsets",
            format!("write /proc/self/timens_offsets ({}): {e}", text.trim()),
        )
    })
}

/// personality(2), I/O priority and scheduler: applied by the process that
/// will exec the container's program, while it still has its capabilities.
pub fn apply(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        let persona = match p.domain() {
            LinuxPersonalityDomain::PerLinux => 0x0000,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        // SAFETY: personality takes an integer.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(Error::sys("personality", nix::errno::Errno::last()));
        }
    }
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        // SAFETY: ioprio_set with integer arguments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0,
                (class << 13) | io.priority(),
            )
        };
        if r < 0 {
            return Err(Error::sys(
                "process.ioPriority: ioprio_set",
                nix::errno::Errno::last(),
            ));
        }
    }
    if let Some(s) = process.scheduler() {
        set_scheduler(s)?;
    }
    Ok(())
}

/// `struct sched_attr` (linux/sched/types.h), first version.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn set_scheduler(s: &oci_spec::runtime::Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER,
        LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO,
        LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR,
        LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH,
        LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE,
        LinuxSchedulerPolicy::SchedDeadline => 6,
        LinuxSchedulerPolicy::SchedIso => 4,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy as u32,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr reads `size` bytes of a live, initialised struct.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r < 0 {
        return Err(Error::sys(
            format!("process.scheduler: sched_setattr {:?}", s.policy()),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// AppArmor profile and SELinux label for the next execve.
pub fn set_exec_labels(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let file = if std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(file, format!("exec {p}"))
            .map_err(|e| Error::config("process.apparmorProfile", format!("{file}: {e}")))?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        std::fs::write("/proc/self/attr/exec", l).map_err(|e| {
            Error::config("process.selinuxLabel", format!("/proc/self/attr/exec: {e}"))
        })?;
    }
    Ok(())
}
