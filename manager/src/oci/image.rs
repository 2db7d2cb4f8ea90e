//! The spec an image gives a container before any flag: Docker's
//! defaults around the image's config.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::caps::{process_caps, DEFAULT_CAPS};
use super::error::{Result, SpecError};
use crate::image::short_id;
use crate::rootfs::IdFiles;
use crate::user;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The runtime spec of container `id` of this image, with Docker's
/// defaults: the image's command (`args` replaces its Cmd when not empty),
/// env, working dir and user (resolved against the image's `files`),
/// Docker's capabilities, namespaces (a cgroup namespace with `cgroup_ns`),
/// mounts, device rules, masked and read-only paths, the cgroup at
/// `cgroups_path`.
pub fn from_image(
    image: &ImageConfiguration,
    image_id: &str,
    id: &str,
    args: &[String],
    files: &IdFiles,
    cgroup_ns: bool,
    cgroups_path: &str,
) -> Result<Spec> {
    let empty = oci_spec::image::Config::default();
    let c = image.config().as_ref().unwrap_or(&empty);
    let mut argv: Vec<String> = c.entrypoint().clone().unwrap_or_default();
    if args.is_empty() {
        argv.extend(c.cmd().clone().unwrap_or_default());
    } else {
        argv.extend(args.iter().cloned());
    }
    if argv.is_empty() {
        return Err(SpecError::NoCommand(short_id(image_id).to_string()));
    }
    let u = user::resolve(
        c.user().as_deref().unwrap_or(""),
        files.passwd.as_deref(),
        files.group.as_deref(),
    )
    .map_err(|source| SpecError::ImageUser {
        image: short_id(image_id).to_string(),
        source,
    })?;
    let hostname: String = id.chars().take(12).collect();
    let image_env = c.env().clone().unwrap_or_default();
    let has = |k: &str| image_env.iter().any(|e| e.split('=').next() == Some(k));
    let mut env = Vec::new();
    if !has("PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    env.extend(image_env.iter().cloned());
    // no HOME unless the image sets one: the runtime takes it from the
    // container's /etc/passwd for the process's uid (runc's rule, as with
    // Docker), so `-u` and `exec -u` get their own user's
    let cwd = c
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let caps = process_caps(DEFAULT_CAPS.into_iter().collect(), u.uid, &HashSet::new())?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(argv)
        .env(env)
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(u.uid)
                .gid(u.gid)
                .additional_gids(u.additional_gids)
                .build()?,
        )
        .capabilities(caps)
        .build()?;
    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?);
    }
    if cgroup_ns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }
    let mut mounts: Vec<Mount> = oci_spec::runtime::get_default_mounts();
    // read-only, as Docker has it (unless oci-spec's defaults have one)
    if !mounts
        .iter()
        .any(|m| m.destination() == Path::new("/sys/fs/cgroup"))
    {
        mounts.push(
            MountBuilder::default()
                .destination("/sys/fs/cgroup")
                .typ("cgroup")
                .source("cgroup")
                .options(
                    ["ro", "nosuid", "noexec", "nodev"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(
            LinuxResourcesBuilder::default()
                .devices(crate::devices::default_rules())
                .build()?,
        )
        .cgroups_path(PathBuf::from(cgroups_path))
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()?;
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .hostname(hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}
