//! A start's network, before and after the CNI ADD: the namespace, the
//! host ports, config.json pointing at the namespace; then the attachment
//! recorded and the container's /etc files. The containers of a user
//! network name each other in their /etc/hosts, rewritten as they come and
//! go.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::cni::{self, Cni, NetNs, Network};
use super::etc_files;
use super::ports;
use super::usernet;
use crate::bundle;
use crate::container::error::{io_err, ContainerError, Result};
use crate::container::lookup::{find, list};
use crate::container::record::{Container, LiveStatus, NetMode, RunState, Status};
use crate::container::task::live_status;
use crate::image::short_id;
use crate::store::Store;
use cni_types::{NetConfList, PortMapping};

/// A start's network, prepared (namespace made with `lo` up, host ports
/// reserved, config.json pointing at the namespace); the CNI ADD, which
/// needs no store, can then run while the shim creates the container.
pub(crate) struct NetPlan {
    mode: NetMode,
    /// the CNI chain to ADD, if any (bridge and user networks)
    add: Option<(Cni, NetConfList, NetNs)>,
    ports: Vec<PortMapping>,
}

impl NetPlan {
    /// The CNI ADD (none for --net none/host/container:).
    pub(crate) fn attach(&self, id: &str) -> Option<cni::Result<cni::Attachment>> {
        self.add
            .as_ref()
            .map(|(cni, conflist, ns)| cni.attach(conflist, id, ns, &self.ports))
    }
}

/// The network for a start, before the CNI ADD: the namespace (recorded
/// in `state`, so a failure tears it down), the host ports taken.
pub(crate) fn plan_network(store: &Store, c: &Container, state: &mut RunState) -> Result<NetPlan> {
    let mode = c.spec.net.clone().unwrap_or(NetMode::Bridge);
    let mut plan = NetPlan {
        mode: mode.clone(),
        add: None,
        ports: Vec::new(),
    };
    match &mode {
        NetMode::Host => return Ok(plan),
        NetMode::Container(target) => {
            join_network_of(store, target)?;
            return Ok(plan);
        }
        _ => {}
    }
    let conflist = match &mode {
        NetMode::User(n) => Some(usernet::find(store, n)?.conflist(store)),
        NetMode::Bridge => Some(default_conflist()),
        _ => None,
    };
    let mut ports = c.spec.ports.clone();
    // taken host ports: by a socket of the host (port 0 picks a free one)
    cni::reserve_host_ports(&mut ports)?;
    let cni = Cni::new(cni::plugin_dirs());
    if conflist.is_some() {
        cni.check_installed()?;
    }
    // or by another container: checked and claimed under one host-wide
    // lock, so of concurrent starts publishing a port exactly one wins
    let claims = if ports.is_empty() {
        None
    } else {
        let lock = ports::lock()?;
        lock.check(&ports, &c.id, &c.name)?;
        Some(lock)
    };
    let ns = NetNs::create(&netns_name(&c.id))?;
    state.netns = Some(ns.path.clone());
    if let Some(lock) = claims {
        lock.claim(&ports, &c.id, &ns.path)?;
    }
    plan.ports = ports;
    plan.add = conflist.map(|conflist| (cni, conflist, ns));
    Ok(plan)
}

/// After the ADD: the attachment recorded, the container's /etc files.
pub(crate) fn finish_network(
    store: &Store,
    c: &Container,
    state: &mut RunState,
    plan: NetPlan,
    attached: Option<cni::Attachment>,
) -> Result<()> {
    let cdir = bundle::container_dir(store, &c.id);
    if let NetMode::Container(_) = &plan.mode {
        // its /etc files are the target's
        return Ok(());
    }
    let own_ip = attached.as_ref().map(|a| a.ip.addr());
    if let Some(a) = attached {
        state.ip = Some(a.ip.addr().to_string());
        state.prefix_len = Some(a.ip.prefix_len());
        state.gateway = a.gateway.map(|g| g.to_string());
        state.mac = Some(a.mac.clone());
        state.cni_result = Some(a.result);
        state.ports = plan.ports;
    }
    let hostname = fs::read_to_string(cdir.join("hostname")).unwrap_or_default();
    let hosts = etc_files::hosts(
        hostname.trim(),
        own_ip,
        &[c.name.as_str()],
        &c.spec.add_hosts,
    );
    fs::write(cdir.join("hosts"), hosts).map_err(io_err("write", &cdir.join("hosts")))?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = etc_files::resolv_conf(&host_resolv, &c.spec.dns, plan.mode == NetMode::Host);
    fs::write(cdir.join("resolv.conf"), resolv)
        .map_err(io_err("write", &cdir.join("resolv.conf")))?;
    Ok(())
}

/// The name of container `id`'s network namespace (under /run/netns):
/// known from its id, so its config.json names it from the start.
fn netns_name(id: &str) -> String {
    format!("rbox-{}", short_id(id))
}

/// Where container `id`'s network namespace is mounted while it runs.
pub fn netns_path(id: &str) -> PathBuf {
    NetNs::path_for(&netns_name(id))
}

/// `--net container:ID`: the target must be running (its namespace, which
/// config.json names, exists only then); the container keeps no namespace
/// of its own to tear down, and shares the target's /etc files
/// (bind-mounted from the target's directory).
fn join_network_of(store: &Store, target: &str) -> Result<()> {
    let t = find(store, target).map_err(|e| match e {
        ContainerError::NoSuch(_) => ContainerError::NetTargetGone(target.to_string()),
        e => e,
    })?;
    match live_status(&t) {
        LiveStatus::Running => Ok(()),
        _ => Err(ContainerError::NetTargetStopped(t.name)),
    }
}

/// Rewrites (in place: they are bind-mounted) the /etc/hosts of every
/// running container of user network `name`: each names the others by
/// container name and short id. One rewrite at a time (the network's
/// lock), from the records as they are once the lock is held, so the last
/// one sees every container that joined or left before it.
fn refresh_network_hosts(store: &Store, name: &str) -> Result<()> {
    let net = match usernet::find(store, name) {
        Ok(n) => n,
        Err(usernet::UserNetError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let _lock = usernet::hosts_lock(store, &net)?;
    let members: Vec<(Container, IpAddr)> = list(store)?
        .into_iter()
        .filter(|c| c.state.status == Status::Running && usernet::uses(c, &net.name))
        .filter_map(|c| {
            let ip = c.state.ip.as_deref()?.parse().ok()?;
            Some((c, ip))
        })
        .collect();
    for (c, ip) in &members {
        let cdir = bundle::container_dir(store, &c.id);
        let hostname = fs::read_to_string(cdir.join("hostname")).unwrap_or_default();
        let mut hosts = etc_files::hosts(hostname.trim(), Some(*ip), &[&c.name], &c.spec.add_hosts);
        let peers: Vec<(IpAddr, &str, &str)> = members
            .iter()
            .filter(|(o, _)| o.id != c.id)
            .map(|(o, oip)| (*oip, o.name.as_str(), short_id(&o.id)))
            .collect();
        hosts.push_str(&etc_files::peers(&peers));
        let path = cdir.join("hosts");
        fs::write(&path, hosts).map_err(io_err("write", &path))?;
    }
    Ok(())
}

/// After a container of a user network started or stopped.
pub(crate) fn refresh_hosts_of(store: &Store, c: &Container) -> Result<()> {
    match &c.spec.net {
        Some(NetMode::User(n)) => refresh_network_hosts(store, n),
        _ => Ok(()),
    }
}

/// The default bridge network's conflist. host-local keeps its leases in
/// its default data dir, shared by every rbox root on the host: the
/// bridge and its subnet are the host's, not the store's.
pub fn default_conflist() -> NetConfList {
    Network::default_bridge().conflist(Path::new("/var/lib/cni/networks"))
}
