//! The container's OCI spec: the image's (bundle.rs) adjusted for what the
//! command line asked.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::container::error::{invalid_opt, io_err, ContainerError, Result};
use crate::container::record::{NetMode, RunSpec};
use crate::container::runtime::{init_bin, INIT_PATH};
use crate::devices;
use crate::mounts::Source;
use crate::names::random_hex;
use crate::seccomp;
use crate::volume;

pub mod caps;
pub mod error;
mod process;
mod ulimit;

use caps::cap;
pub use caps::{added_caps, all_caps, process_caps, ALL_CAPS, DEFAULT_CAPS};
pub use error::SpecError;
pub use process::override_process;
use ulimit::nofile_hard;
pub use ulimit::parse_ulimit;

/// Adjust the image's config.json for what the command line asked.
pub fn adjust_spec(
    spec: &mut Spec,
    rs: &RunSpec,
    id: &str,
    cdir: &Path,
    rootfs: &Path,
) -> Result<()> {
    let invalid = |e: oci_spec::OciSpecError| ContainerError::Invalid(format!("config.json: {e}"));
    let mut process = spec.process().clone().unwrap_or_default();
    if let Some(ep) = &rs.entrypoint {
        let mut args = vec![ep.clone()];
        args.extend(rs.cmd.iter().cloned());
        process.set_args(Some(args));
    }
    let hostname = rs
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let mut env = process.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with("HOSTNAME="));
    env.insert(0, format!("HOSTNAME={hostname}"));
    process.set_env(Some(env));
    override_process(
        &mut process,
        &rs.env,
        rs.tty,
        rs.workdir.as_deref(),
        rs.user.as_deref(),
        &rs.group_add,
        rootfs,
    )?;
    // capabilities: the bounding set from the image's defaults and the
    // flags, the others by user (bundle::process_caps)
    if let Some(caps) = process.capabilities().clone() {
        let mut set: HashSet<Capability> = caps.bounding().clone().unwrap_or_default();
        if rs.privileged {
            set = all_caps();
        }
        let added = added_caps(&rs.cap_add)?;
        set.extend(added.iter().copied());
        for d in &rs.cap_drop {
            if d.eq_ignore_ascii_case("ALL") {
                set.clear();
            } else {
                set.remove(&cap(d)?);
            }
        }
        let uid = process.user().uid();
        process.set_capabilities(Some(caps::process_caps(set, uid, &added).map_err(invalid)?));
    }
    let security = seccomp::parse_opts(&rs.security_opt).map_err(invalid_opt)?;
    // Docker's default: setuid programs work unless asked otherwise
    process.set_no_new_privileges(Some(security.no_new_privileges));
    let cap_names: HashSet<String> = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
        .collect();
    let seccomp_profile = match &security.seccomp {
        _ if rs.privileged => None,
        seccomp::Seccomp::Unconfined => None,
        seccomp::Seccomp::Default => Some(seccomp::default_profile(&cap_names)),
        seccomp::Seccomp::Profile(p) => {
            Some(seccomp::load_profile(p, &cap_names).map_err(invalid_opt)?)
        }
    };
    let hard = nofile_hard();
    let mut rlimits = vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(hard.min(1_048_576))
        .hard(hard.min(1_048_576))
        .build()
        .map_err(invalid)?];
    for u in &rs.ulimits {
        let (typ, soft, hard) = parse_ulimit(u)?;
        rlimits.retain(|r| r.typ() != typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(invalid)?,
        );
    }
    process.set_rlimits(Some(rlimits));
    let init_mount = if rs.init {
        let bin = init_bin()?;
        let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
        args.extend(process.args().clone().unwrap_or_default());
        process.set_args(Some(args));
        Some(
            MountBuilder::default()
                .destination(INIT_PATH)
                .typ("bind")
                .source(bin)
                .options(vec![
                    "bind".into(),
                    "ro".into(),
                    "nosuid".into(),
                    "nodev".into(),
                ])
                .build()
                .map_err(invalid)?,
        )
    } else {
        None
    };
    spec.set_process(Some(process));

    let host_net = rs.net == Some(NetMode::Host);
    spec.set_hostname(if host_net {
        None
    } else {
        Some(hostname.clone())
    });
    if let Some(root) = spec.root().clone() {
        let mut root = root;
        root.set_readonly(Some(rs.read_only));
        spec.set_root(Some(root));
    }

    // mounts: the image's defaults, then the user's, then the /etc files
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &rs.mounts {
        let mut options = vec!["rbind".to_string()];
        let (typ, source) = match &m.source {
            Source::Bind(p) => {
                // -v makes a missing host directory, like Docker; what
                // exists (a directory, a file, a device) is bound as it is
                if fs::metadata(p).is_err() {
                    fs::create_dir_all(p).map_err(io_err("create host directory", p))?;
                }
                ("bind", p.clone())
            }
            Source::Volume(name) => {
                let name = name.clone().unwrap_or_else(|| random_hex(32));
                // cdir is ROOT/containers/<id>
                let root = cdir.parent().and_then(Path::parent).unwrap_or(cdir);
                let dir = volume::data_dir(root, &name);
                fs::create_dir_all(&dir).map_err(io_err("create volume", &dir))?;
                // Docker's copy-up: an empty volume gets what the image
                // has at the mount path
                let empty = fs::read_dir(&dir)
                    .map_err(io_err("read volume", &dir))?
                    .next()
                    .is_none();
                if empty {
                    crate::cp::copy_up(rootfs, &m.target, &dir)?;
                }
                ("bind", dir)
            }
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
                .build()
                .map_err(invalid)?,
        );
    }
    mounts.extend(init_mount);
    // --net container:ID shares that container's files
    let etc_dir = match &rs.net {
        Some(NetMode::Container(target)) => cdir.with_file_name(target),
        _ => cdir.to_path_buf(),
    };
    for f in ["hosts", "hostname", "resolv.conf"] {
        let dest = PathBuf::from("/etc").join(f);
        if rs.mounts.iter().any(|m| m.target == dest) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(etc_dir.join(f))
                .options(vec!["rbind".into(), "rprivate".into()])
                .build()
                .map_err(invalid)?,
        );
    }
    spec.set_mounts(Some(mounts));

    if let Some(mut linux) = spec.linux().clone() {
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        if host_net {
            ns.retain(|n| {
                n.typ() != LinuxNamespaceType::Network && n.typ() != LinuxNamespaceType::Uts
            });
        }
        linux.set_namespaces(Some(ns));
        if rs.privileged {
            linux.set_masked_paths(None);
            linux.set_readonly_paths(None);
        }
        linux.set_seccomp(seccomp_profile);
        linux.set_cgroups_path(Some(rs.cgroups_path(id).into()));
        let mut res = linux.resources().clone().unwrap_or_default();
        if let Some(m) = rs.memory {
            res.set_memory(Some(
                LinuxMemoryBuilder::default()
                    .limit(m)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        if let Some(p) = rs.pids_limit {
            res.set_pids(Some(
                LinuxPidsBuilder::default()
                    .limit(p)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        if let Some(c) = rs.cpus {
            res.set_cpu(Some(
                LinuxCpuBuilder::default()
                    .quota((c * 100_000.0) as i64)
                    .period(100_000u64)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        // devices: Docker's rules (bundle.rs), then what the flags add
        let mut rules = res.devices().clone().unwrap_or_else(devices::default_rules);
        let mut nodes = linux.devices().clone().unwrap_or_default();
        if rs.privileged {
            nodes.extend(devices::host_devices()?);
            rules.push(devices::allow_all());
        }
        for m in &rs.devices {
            let (d, r) = m.resolve()?;
            nodes.extend(d);
            rules.extend(r);
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
    Ok(())
}
