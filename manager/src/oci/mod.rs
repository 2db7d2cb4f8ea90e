//! The container's OCI runtime spec (its config.json), made by one pure
//! function, [`build`], from the image's config, what the command line
//! asked ([`RunSpec`]), where the container's files are ([`Paths`]), the
//! image's /etc/passwd and /etc/group, and what the host answered
//! ([`Host`], read once by host.rs). Nothing here touches the
//! filesystem: what the spec needs made on the host (bind sources,
//! volumes) the caller makes.
//!
//! image.rs has the image's spec with Docker's defaults (what `rbox bundle
//! create` writes as it is); caps.rs the capability sets, process.rs what
//! `run` and `exec` change of a process, ulimit.rs `--ulimit`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capability, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceType,
    LinuxPidsBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::container::record::RunSpec;
use crate::devices;
use crate::mounts::Source;
use crate::rootfs::IdFiles;
use crate::store::volume_dir;

pub mod caps;
pub mod error;
pub mod host;
pub mod image;
pub mod process;
pub mod security;
pub mod ulimit;

pub use caps::{added_caps, all_caps, process_caps, ALL_CAPS, DEFAULT_CAPS};
pub use error::{Result, SpecError};
pub use host::Host;
pub use image::from_image;
pub use process::{override_process, Overrides};
pub use security::SecurityOptions;
pub use ulimit::{parse_ulimit, Ulimit};

/// Where `--init` puts rbox-init in the container.
pub const INIT_PATH: &str = "/sbin/rbox-init";

/// The network namespace a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// `--net host`: the host's network and UTS namespaces
    Host,
    /// the namespace bind-mounted at this path: the container's own, which
    /// rbox makes at start under a name its id gives, or another container's
    /// (`--net container:`)
    At(PathBuf),
    /// the host's network namespace, that of the `--net host` container it
    /// shares (`--net container:`); its own UTS namespace
    HostNetwork,
}

/// Where the container's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// the store's root: named volumes are ROOT/volumes/NAME/_data
    pub root: PathBuf,
    /// the directory of the /etc/hosts, /etc/hostname and /etc/resolv.conf
    /// bind-mounted into the container
    pub etc: PathBuf,
    pub netns: NetNs,
}

/// What [`build`] makes a spec of.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// the container's id
    pub id: &'a str,
    /// the image's id (for errors) and config
    pub image_id: &'a str,
    pub image: &'a ImageConfiguration,
    pub run: &'a RunSpec,
    pub paths: &'a Paths,
    /// the image's /etc/passwd and /etc/group
    pub files: &'a IdFiles,
    pub host: &'a Host,
}

/// The container's spec: the image's (image.rs), then what the command
/// line asked: command, env, user, capabilities, seccomp, limits, init,
/// hostname, mounts, namespaces, resources and devices.
pub fn build(i: &Inputs<'_>) -> Result<Spec> {
    let rs = i.run;
    // with --entrypoint the command is that and the arguments given
    // (process_of sets it): an image with neither ENTRYPOINT nor CMD runs it
    let args: Vec<String> = match &rs.entrypoint {
        Some(ep) => std::iter::once(ep.clone())
            .chain(rs.cmd.iter().cloned())
            .collect(),
        None => rs.cmd.clone(),
    };
    let mut spec = from_image(
        i.image,
        i.image_id,
        i.id,
        &args,
        i.files,
        i.host.cgroup_ns,
        &rs.cgroups_path(i.id),
    )?;
    let hostname = rs
        .hostname
        .clone()
        .unwrap_or_else(|| i.id.chars().take(12).collect());
    let (process, init) = process_of(&spec, i, &hostname)?;
    spec.set_process(Some(process));
    let host_net = i.paths.netns == NetNs::Host;
    spec.set_hostname((!host_net).then_some(hostname));
    if let Some(mut root) = spec.root().clone() {
        root.set_readonly(Some(rs.read_only));
        spec.set_root(Some(root));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    add_mounts(&mut mounts, rs, i.paths, init)?;
    spec.set_mounts(Some(mounts));
    let seccomp = seccomp_of(&spec, i)?;
    if let Some(mut linux) = spec.linux().clone() {
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        join_netns(&mut ns, &i.paths.netns);
        linux.set_namespaces(Some(ns));
        if rs.privileged {
            linux.set_masked_paths(None);
            linux.set_readonly_paths(None);
        }
        linux.set_seccomp(seccomp);
        let mut res = linux.resources().clone().unwrap_or_default();
        if let Some(m) = rs.memory {
            res.set_memory(Some(LinuxMemoryBuilder::default().limit(m).build()?));
        }
        if let Some(p) = rs.pids_limit {
            res.set_pids(Some(LinuxPidsBuilder::default().limit(p).build()?));
        }
        if let Some(c) = rs.cpus {
            res.set_cpu(Some(
                LinuxCpuBuilder::default()
                    .quota((c * 100_000.0) as i64)
                    .period(100_000u64)
                    .build()?,
            ));
        }
        // devices: Docker's rules (image.rs), then what the flags add
        let mut rules = res.devices().clone().unwrap_or_else(devices::default_rules);
        let mut nodes = linux.devices().clone().unwrap_or_default();
        if rs.privileged {
            nodes.extend(i.host.devices.iter().cloned());
            rules.push(devices::allow_all());
        }
        for (d, r) in &i.host.mapped {
            nodes.extend(d.iter().cloned());
            rules.extend(r.iter().cloned());
        }
        rules.extend(
            rs.device_cgroup_rules
                .iter()
                .map(devices::CgroupRule::to_oci),
        );
        // one node per path: the last one asked for
        let mut seen = HashSet::new();
        nodes.reverse();
        nodes.retain(|d| seen.insert(d.path().clone()));
        nodes.reverse();
        res.set_devices(Some(rules));
        linux.set_resources(Some(res));
        linux.set_devices((!nodes.is_empty()).then_some(nodes));
        spec.set_linux(Some(linux));
    }
    Ok(spec)
}

/// The container's process: the image's with the command, env, user,
/// capabilities, `no_new_privileges`, rlimits and init asked for; and the
/// mount of the init, if any.
fn process_of(
    spec: &Spec,
    i: &Inputs<'_>,
    hostname: &str,
) -> Result<(oci_spec::runtime::Process, Option<Mount>)> {
    let rs = i.run;
    let mut process = spec.process().clone().unwrap_or_default();
    if let Some(ep) = &rs.entrypoint {
        let mut args = vec![ep.clone()];
        args.extend(rs.cmd.iter().cloned());
        process.set_args(Some(args));
    }
    let mut env = process.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with("HOSTNAME="));
    env.insert(0, format!("HOSTNAME={hostname}"));
    process.set_env(Some(env));
    let overrides = Overrides {
        env: &rs.env,
        tty: rs.tty,
        workdir: rs.workdir.as_deref(),
        user: rs.user.as_deref(),
        group_add: &rs.group_add,
    };
    override_process(&mut process, &overrides, i.files, i.host.env)?;
    // capabilities: the bounding set from the image's defaults and the
    // flags, the others by user (caps::process_caps)
    if let Some(c) = process.capabilities().clone() {
        let mut set: HashSet<Capability> = c.bounding().clone().unwrap_or_default();
        if rs.privileged {
            set = i.host.capabilities.clone();
        }
        let added = added_caps(&rs.cap_add, &i.host.capabilities)?;
        set.extend(added.iter().copied());
        for d in &rs.cap_drop {
            if d.eq_ignore_ascii_case("ALL") {
                set.clear();
            } else {
                set.remove(&caps::cap(d)?);
            }
        }
        let uid = process.user().uid();
        process.set_capabilities(Some(process_caps(set, uid, &added)?));
    }
    let security = &rs.security_opt.asked;
    // Docker's default: setuid programs work unless asked otherwise
    process.set_no_new_privileges(Some(security.no_new_privileges));
    process.set_rlimits(Some(rlimits(rs, i.host.nofile_hard)?));
    let init = match (&i.host.init, rs.init) {
        (Some(bin), true) => {
            let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
            args.extend(process.args().clone().unwrap_or_default());
            process.set_args(Some(args));
            Some(
                MountBuilder::default()
                    .destination(INIT_PATH)
                    .typ("bind")
                    .source(bin)
                    .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
                    .build()?,
            )
        }
        (None, true) => return Err(SpecError::NoInit(crate::locate::NoInit)),
        _ => None,
    };
    Ok((process, init))
}

/// Docker's open-files limit (within the host's), then `--ulimit`'s.
fn rlimits(rs: &RunSpec, nofile_hard: u64) -> Result<Vec<PosixRlimit>> {
    let nofile = ulimit::default_nofile(nofile_hard);
    let mut rlimits = vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(nofile)
        .hard(nofile)
        .build()?];
    for l in &rs.ulimits {
        rlimits.retain(|r| r.typ() != l.typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(l.typ)
                .soft(l.soft)
                .hard(l.hard)
                .build()?,
        );
    }
    Ok(rlimits)
}

/// The seccomp filter of the process's bounding set: none with
/// `--privileged` or `seccomp=unconfined`.
fn seccomp_of(spec: &Spec, i: &Inputs<'_>) -> Result<Option<oci_spec::runtime::LinuxSeccomp>> {
    let security = &i.run.security_opt.asked;
    if i.run.privileged {
        return Ok(None);
    }
    let cap_names: HashSet<String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
        .collect();
    Ok((i.host.seccomp)(&security.seccomp, &cap_names)?)
}

/// The image's mounts, then the user's (a volume is its directory under
/// ROOT/volumes), the init, and the /etc files (`paths.etc`: another
/// container's with `--net container:`) but where the user mounted one.
fn add_mounts(
    mounts: &mut Vec<Mount>,
    rs: &RunSpec,
    paths: &Paths,
    init: Option<Mount>,
) -> Result<()> {
    for m in &rs.mounts {
        let mut options = vec!["rbind".to_string()];
        let (typ, source) = match &m.source {
            Source::Bind(p) => ("bind", p.clone()),
            Source::Volume(Some(name)) => ("bind", volume_dir(&paths.root, name)),
            Source::Volume(None) => return Err(SpecError::UnnamedVolume(m.target.clone())),
            Source::Tmpfs { size, mode } => {
                options = vec!["nosuid".into(), "nodev".into()];
                if let Some(s) = size {
                    options.push(format!("size={s}"));
                }
                if let Some(md) = mode {
                    options.push(format!("mode={md:o}"));
                }
                ("tmpfs", PathBuf::from("tmpfs"))
            }
            Source::Overlay { lower, upper } => {
                let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
                options = vec![format!("lowerdir={}", lower.join(":"))];
                if let Some((upper, work)) = upper {
                    options.push(format!("upperdir={}", upper.display()));
                    options.push(format!("workdir={}", work.display()));
                }
                ("overlay", PathBuf::from("overlay"))
            }
        };
        if m.readonly {
            options.push("ro".into());
        }
        if typ == "bind" {
            options.push(m.propagation.clone().unwrap_or_else(|| "rprivate".into()));
        }
        mounts.retain(|x| x.destination() != &m.target);
        mounts.push(
            MountBuilder::default()
                .destination(&m.target)
                .typ(typ)
                .source(source)
                .options(options)
                .build()?,
        );
    }
    mounts.extend(init);
    for f in ["hosts", "hostname", "resolv.conf"] {
        let dest = Path::new("/etc").join(f);
        if rs.mounts.iter().any(|m| m.target == dest) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(paths.etc.join(f))
                .options(vec!["rbind".into(), "rprivate".into()])
                .build()?,
        );
    }
    Ok(())
}

/// The network namespace (and, for `--net host`, the UTS one) as `netns`
/// has it.
fn join_netns(ns: &mut Vec<LinuxNamespace>, netns: &NetNs) {
    match netns {
        NetNs::Host => ns.retain(|n| {
            n.typ() != LinuxNamespaceType::Network && n.typ() != LinuxNamespaceType::Uts
        }),
        NetNs::HostNetwork => ns.retain(|n| n.typ() != LinuxNamespaceType::Network),
        NetNs::At(path) => {
            for n in ns.iter_mut() {
                if n.typ() == LinuxNamespaceType::Network {
                    n.set_path(Some(path.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
