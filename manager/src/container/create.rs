//! `rbox create`: the bundle, its config.json for what was asked, and the
//! records; nothing runs yet.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::error::{io_err, ContainerError, Result};
use super::lookup::{containers_dir, find, list};
use super::reconcile::reconcile;
use super::record::{Container, NetMode, RunSpec, RunState, Status};
use crate::bundle::{self, BundleError};
use crate::claim;
use crate::mounts::{MountSpec, Source};
use crate::names::{random_hex, random_name, valid_name};
use crate::net::cni::{self, Cni};
use crate::net::plan::netns_path;
use crate::net::usernet;
use crate::oci::{self, Host, Inputs, NetNs, Paths};
use crate::rootfs::IdFiles;
use crate::store::{volume_dir, Store};
use crate::volume;
use cni_types::PortMapping;

/// `rbox create`: the bundle with its config.json (oci::build) and the
/// records; nothing runs yet. On error nothing is left.
pub fn create(store: &Store, rs: &RunSpec) -> Result<Container> {
    check_before_create(rs)?;
    // what a killed rbox left (it may hold the name asked for)
    reconcile(store)?;
    if rs.net == Some(NetMode::Host) || rs.net == Some(NetMode::None) {
        if let Some(p) = rs.ports.first() {
            return Err(ContainerError::PortsNeedBridge {
                port: p.to_string(),
                net: rs.net.as_ref().map_or(String::new(), NetMode::name),
            });
        }
    }
    let mut rs = rs.clone();
    // the network mode of the container whose network this one shares
    let mut target_mode = None;
    match rs.net.clone() {
        Some(NetMode::User(n)) => {
            rs.net = Some(NetMode::User(usernet::find(store, &n)?.name));
        }
        Some(NetMode::Container(t)) => {
            let conflict = |what: &'static str| {
                Err(ContainerError::ConflictsWithNetContainer {
                    what,
                    target: t.clone(),
                })
            };
            if !rs.ports.is_empty() || rs.publish_all {
                return conflict("port publishing");
            }
            if rs.hostname.is_some() {
                return conflict("hostname");
            }
            if !rs.dns.is_empty() {
                return conflict("dns");
            }
            if !rs.add_hosts.is_empty() {
                return conflict("custom host-to-IP mapping (--add-host)");
            }
            let target = find(store, &t).map_err(|e| match e {
                ContainerError::NoSuch(_) => ContainerError::NoNetTarget(t.clone()),
                e => e,
            })?;
            if let Some(NetMode::Container(_)) = target.spec.net {
                return Err(ContainerError::NetTargetShares {
                    target: t,
                    name: target.name,
                });
            }
            // the target's hostname, like Docker (none for --net host)
            let h = bundle::container_dir(store, &target.id).join("hostname");
            let hostname = fs::read_to_string(&h).map_err(io_err("read", &h))?;
            rs.hostname = Some(hostname.trim().to_string()).filter(|h| !h.is_empty());
            rs.net = Some(NetMode::Container(target.id));
            target_mode = Some(target.spec.net.unwrap_or(NetMode::Bridge));
        }
        _ => {}
    }
    let missing = crate::host::missing_controllers(
        Path::new(crate::host::CGROUP_ROOT),
        rs.memory.is_some(),
        rs.cpus.is_some(),
        rs.pids_limit.is_some(),
    );
    if let Some(&(controller, flag)) = missing.first() {
        return Err(ContainerError::NoController { flag, controller });
    }
    if matches!(
        rs.net,
        None | Some(NetMode::Bridge) | Some(NetMode::User(_))
    ) {
        Cni::new(cni::plugin_dirs()).check_installed()?;
    }
    let name = match &rs.name {
        Some(n) if !valid_name(n) => return Err(ContainerError::BadName(n.clone())),
        Some(n) => n.clone(),
        None => loop {
            let n = random_name();
            if find(store, &n).is_err() {
                break n;
            }
        },
    };
    if list(store)?.iter().any(|c| c.name == name) {
        return Err(ContainerError::NameInUse(name));
    }
    if rs.publish_all {
        for p in exposed_ports(store, &rs.image)? {
            if !rs
                .ports
                .iter()
                .any(|q| q.container_port == p.container_port && q.protocol == p.protocol)
            {
                rs.ports.push(p);
            }
        }
    }
    // Docker's Config.Entrypoint/Cmd/Labels (inspect, ps), from the image
    let image_config = crate::image::inspect(store, &rs.image).map_err(BundleError::from)?;
    rs.config = Some(crate::runconfig::RunConfig::new(
        &image_config["Config"],
        rs.entrypoint.as_deref(),
        &rs.cmd,
        &rs.labels,
    ));
    // anonymous volumes are named now and kept with the container
    for m in &mut rs.mounts {
        if m.source == Source::Volume(None) {
            m.source = Source::Volume(Some(random_hex(32)));
            m.anonymous = true;
        }
    }
    let id = random_hex(32);
    let cdir = bundle::container_dir(store, &id);
    let bdir = cdir.join("bundle");
    // held until the container is started (or `settle`d by `rbox create`)
    let held = claim::take(store, &id).map_err(io_err("claim", &containers_dir(store)))?;
    claim::hold(&id, held);
    let paths = Paths {
        root: store.root().to_path_buf(),
        // --net container:ID shares that container's files
        etc: match &rs.net {
            Some(NetMode::Container(target)) => cdir.with_file_name(target),
            _ => cdir.clone(),
        },
        netns: match (&rs.net, &target_mode) {
            (Some(NetMode::Host), _) => NetNs::Host,
            (Some(NetMode::Container(_)), Some(NetMode::Host)) => NetNs::HostNetwork,
            (Some(NetMode::Container(target)), _) => NetNs::At(netns_path(target)),
            _ => NetNs::At(netns_path(&id)),
        },
    };
    let image = rs.image.clone();
    let made = bundle::create(store, &image, &id, &bdir, rs.rm, |m| -> Result<Spec> {
        add_image_volumes(&mut rs, m.volumes.to_vec());
        let files = IdFiles::read(m.rootfs)?;
        let host = Host::read(&rs)?;
        let spec = oci::build(&Inputs {
            id: &id,
            image_id: m.image_id,
            image: m.image,
            run: &rs,
            paths: &paths,
            files: &files,
            host: &host,
        })?;
        make_mount_sources(&rs, &paths.root, m.rootfs)?;
        write_etc_files(m.cdir, spec.hostname().as_deref())?;
        Ok(spec)
    })
    .and_then(|()| {
        let state = RunState {
            status: Status::Created,
            ..Default::default()
        };
        match store.insert_record(&id, &name, &rs.to_json(), &state.to_json()) {
            Ok(()) => {}
            Err(e) if e.is_constraint() => return Err(ContainerError::NameInUse(name.clone())),
            Err(e) => return Err(e.into()),
        }
        find(store, &id)
    });
    if made.is_err() {
        let _ = bundle::remove(store, &id);
        volume::remove_anonymous(store, &rs);
        claim::release(&id);
    }
    made
}

/// What the spec's mounts need on the host: a `-v` source that is missing
/// is made a directory, like Docker's (what exists, a directory, a file, a
/// device, is bound as it is); a volume's directory is made, and an empty
/// one gets what the image has at the mount path (Docker's copy-up).
fn make_mount_sources(rs: &RunSpec, root: &Path, rootfs: &Path) -> Result<()> {
    for m in &rs.mounts {
        match &m.source {
            Source::Bind(p) => {
                if fs::metadata(p).is_err() {
                    fs::create_dir_all(p).map_err(io_err("create host directory", p))?;
                }
            }
            Source::Volume(Some(name)) => {
                let dir = volume_dir(root, name);
                fs::create_dir_all(&dir).map_err(io_err("create volume", &dir))?;
                let empty = fs::read_dir(&dir)
                    .map_err(io_err("read volume", &dir))?
                    .next()
                    .is_none();
                if empty {
                    crate::cp::copy_up(rootfs, &m.target, &dir)?;
                }
            }
            Source::Volume(None) | Source::Tmpfs { .. } | Source::Overlay { .. } => {}
        }
    }
    Ok(())
}

/// The container's /etc/hostname (the spec's hostname), and the
/// /etc/hosts and /etc/resolv.conf that start fills in.
fn write_etc_files(cdir: &Path, hostname: Option<&str>) -> Result<()> {
    let file = cdir.join("hostname");
    fs::write(&file, format!("{}\n", hostname.unwrap_or_default()))
        .map_err(io_err("write", &file))?;
    for f in ["hosts", "resolv.conf"] {
        fs::write(cdir.join(f), "").map_err(io_err("write", &cdir.join(f)))?;
    }
    Ok(())
}

/// Docker's smallest memory limit: less cannot even start a process.
pub const MIN_MEMORY: i64 = 6 << 20;

/// What can be refused before anything is made: what [`RunSpec::check`]
/// refuses, a memory limit below
/// Docker's minimum, a `--mount type=bind` source that does not exist.
fn check_before_create(rs: &RunSpec) -> Result<()> {
    rs.check()?;
    if let Some(m) = rs.memory {
        if m < MIN_MEMORY {
            return Err(ContainerError::MemoryTooLow(m));
        }
    }
    for m in &rs.mounts {
        if let Source::Bind(p) = &m.source {
            if m.must_exist && fs::metadata(p).is_err() {
                return Err(ContainerError::NoBindSource {
                    path: p.clone(),
                    target: m.target.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Docker's image volumes: each VOLUME path no mount of the user's has as
/// its destination gets an anonymous volume, mounted before the mounts
/// below it.
fn add_image_volumes(rs: &mut RunSpec, paths: Vec<PathBuf>) {
    for target in paths {
        if rs.mounts.iter().any(|m| m.target == target) {
            continue;
        }
        let below = rs.mounts.iter().position(|m| m.target.starts_with(&target));
        let m = MountSpec {
            source: Source::Volume(Some(random_hex(32))),
            target,
            readonly: false,
            propagation: None,
            anonymous: true,
            must_exist: false,
        };
        rs.mounts.insert(below.unwrap_or(rs.mounts.len()), m);
    }
}

/// A created container is complete: `rbox create` is done with it.
pub fn settle(id: &str) {
    claim::release(id);
}

/// `-P`: the image's `ExposedPorts` (`80/tcp`), each on a random host port.
fn exposed_ports(store: &Store, image: &str) -> Result<Vec<PortMapping>> {
    let cfg = crate::image::inspect(store, image).map_err(|source| ContainerError::Image {
        image: image.to_string(),
        source: Box::new(source),
    })?;
    let mut out = Vec::new();
    if let Some(ports) = cfg["Config"]["ExposedPorts"].as_object() {
        for key in ports.keys() {
            let p = cni::parse_port(key).map_err(|source| ContainerError::ExposedPort {
                image: image.to_string(),
                port: key.clone(),
                source: Box::new(source),
            })?;
            out.push(p);
        }
    }
    Ok(out)
}
