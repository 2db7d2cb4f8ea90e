//! What a container's spec takes from the host, read once before the spec
//! is built: limits, capabilities, cgroup version, the init binary, device
//! nodes, and how to look up rbox's environment and seccomp profiles.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxDevice, LinuxDeviceCgroup, LinuxSeccomp};

use super::caps;
use super::error::Result;
use super::process;
use crate::container::record::RunSpec;
use crate::devices;
use crate::locate;
use crate::seccomp::{self, Seccomp};

/// The seccomp filter of `--security-opt seccomp=…` for a bounding set
/// (names like `CAP_SYS_ADMIN`): None for `unconfined`.
pub type SeccompFor = fn(&Seccomp, &HashSet<String>) -> seccomp::Result<Option<LinuxSeccomp>>;

/// The host's answers.
#[derive(Debug, Clone)]
pub struct Host {
    /// the hard limit of open files (Docker's default is clamped to it)
    pub nofile_hard: u64,
    /// every capability rbox may pass on (its own bounding set):
    /// `--privileged`'s and `--cap-add ALL`'s
    pub capabilities: HashSet<Capability>,
    /// cgroup v2: the container gets a cgroup namespace
    pub cgroup_ns: bool,
    /// rbox-init, for `--init`
    pub init: Option<PathBuf>,
    /// the host's devices, for `--privileged`
    pub devices: Vec<LinuxDevice>,
    /// each `--device`'s nodes and cgroup rules
    pub mapped: Vec<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)>,
    /// a variable of rbox's environment (`-e KEY`)
    pub env: fn(&str) -> Option<String>,
    pub seccomp: SeccompFor,
}

impl Host {
    /// What a container asking for `run` needs of this host (the init and
    /// the host's devices only when asked for).
    pub fn read(run: &RunSpec) -> Result<Host> {
        Ok(Host {
            nofile_hard: nofile_hard(),
            capabilities: caps::all_caps(),
            cgroup_ns: cgroup_ns(),
            init: run.init.then(locate::init_bin).transpose()?,
            devices: if run.privileged {
                devices::host_devices()?
            } else {
                Vec::new()
            },
            mapped: run
                .devices
                .iter()
                .map(devices::DeviceMapping::resolve)
                .collect::<devices::Result<_>>()?,
            env: process::host_env,
            seccomp: seccomp_for,
        })
    }
}

/// The host's hard limit for open files.
fn nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1024)
}

/// Whether the host has cgroup v2 (containers then get a cgroup namespace).
pub fn cgroup_ns() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The built-in profile, a profile file, or none.
fn seccomp_for(s: &Seccomp, caps: &HashSet<String>) -> seccomp::Result<Option<LinuxSeccomp>> {
    match s {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => Ok(Some(seccomp::default_profile(caps))),
        Seccomp::Profile(p) => seccomp::load_profile(p, caps).map(Some),
    }
}
