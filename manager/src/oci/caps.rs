//! Capabilities: Docker's names, `--cap-add`/`--cap-drop`, the sets of a
//! process by user.

use std::collections::HashSet;
use std::fs;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};
use serde_json::json;

use super::error::{Result, SpecError};

/// What `--cap-add` names (`ALL`: every capability rbox may pass on,
/// `all`).
pub fn added_caps(names: &[String], all: &HashSet<Capability>) -> Result<HashSet<Capability>> {
    let mut out = HashSet::new();
    for a in names {
        if a.eq_ignore_ascii_case("ALL") {
            out.extend(all.iter().copied());
        } else {
            out.insert(cap(a)?);
        }
    }
    Ok(out)
}

pub(crate) fn cap(name: &str) -> Result<Capability> {
    let n = name.to_ascii_uppercase();
    let n = if n.starts_with("CAP_") {
        n
    } else {
        format!("CAP_{n}")
    };
    serde_json::from_value(json!(n)).map_err(|_| SpecError::UnknownCapability(name.to_string()))
}

pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability rbox itself may pass on: its own bounding set (from
/// /proc/self/status).
pub fn all_caps() -> HashSet<Capability> {
    let bounding = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    in_mask(bounding)
}

/// The capabilities of a bounding-set mask (ALL_CAPS is in the kernel's
/// numbering; one outside rbox's bounding set would make capset fail).
pub fn in_mask(bounding: u64) -> HashSet<Capability> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .filter_map(|(_, c)| serde_json::from_value(json!(c)).ok())
        .collect()
}

/// The capability sets of a process whose bounding set is `bounding`, as
/// Docker and containerd have them since CVE-2022-24769: nothing
/// inheritable or ambient for root, whose effective and permitted sets are
/// the bounding set; a non-root user (who would lose them at execve
/// anyway) starts with none, but for what `--cap-add` asked (`added`),
/// which it gets in all four sets, so that they survive execve (Podman's
/// way). `added` is taken within `bounding`.
pub fn process_caps(
    bounding: HashSet<Capability>,
    uid: u32,
    added: &HashSet<Capability>,
) -> std::result::Result<LinuxCapabilities, oci_spec::OciSpecError> {
    let mut b = LinuxCapabilitiesBuilder::default()
        .bounding(bounding.clone())
        .inheritable(HashSet::new())
        .ambient(HashSet::new());
    if uid == 0 {
        b = b.effective(bounding.clone()).permitted(bounding);
    } else {
        let kept: HashSet<Capability> = added.intersection(&bounding).copied().collect();
        b = b
            .effective(kept.clone())
            .permitted(kept.clone())
            .inheritable(kept.clone())
            .ambient(kept);
    }
    b.build()
}

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_root_users_get_no_capabilities_unless_added() {
        let bounding: HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
        let root = process_caps(bounding.clone(), 0, &HashSet::new()).unwrap();
        assert_eq!(root.effective().as_ref(), Some(&bounding));
        assert_eq!(root.permitted().as_ref(), Some(&bounding));
        assert_eq!(root.inheritable().as_ref(), Some(&HashSet::new()));
        assert_eq!(root.ambient().as_ref(), Some(&HashSet::new()));
        let user = process_caps(bounding.clone(), 1000, &HashSet::new()).unwrap();
        assert_eq!(user.bounding().as_ref(), Some(&bounding));
        for set in [
            user.effective(),
            user.permitted(),
            user.inheritable(),
            user.ambient(),
        ] {
            assert_eq!(set.as_ref(), Some(&HashSet::new()));
        }
        let added = HashSet::from([Capability::NetBindService, Capability::SysAdmin]);
        let user = process_caps(bounding, 1000, &added).unwrap();
        let want = HashSet::from([Capability::NetBindService]);
        for set in [
            user.effective(),
            user.permitted(),
            user.inheritable(),
            user.ambient(),
        ] {
            assert_eq!(set.as_ref(), Some(&want));
        }
    }
}
