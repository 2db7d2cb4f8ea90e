//! User-defined bridge networks: `rbox network create/ls/inspect/rm/prune`.
//!
//! A network is a row of the store (`networks`: name, subnet, gateway,
//! Linux bridge) and, once a container joins it, a bridge `rbox-<10 hex of
//! the id>` made by the CNI bridge plugin from the same conflist as the
//! default network (`Network::conflist`), with its host-local leases under
//! ROOT/networks/<id>. Containers of one user network find each other by
//! name through their /etc/hosts (container.rs rewrites them as containers
//! come and go). The predefined `bridge` (rbox0, 10.88.0.0/16), `host` and
//! `none` are listed like Docker's and cannot be made or removed.

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cni::Network;
use crate::container::record::{Container, NetMode, Status};
pub use crate::store::UserNetwork;
use crate::store::{Store, StoreError};
use cni_types::NetConfList;

#[derive(Debug, thiserror::Error)]
pub enum UserNetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("network {0} not found")]
    NoSuch(String),
    #[error("network {0} is ambiguous: several network ids start with it")]
    Ambiguous(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    BadName(String),
    #[error("{0} is a pre-defined network and cannot be {1}")]
    Predefined(String, &'static str),
    #[error("network {name} is in use by container(s) {users}: remove them first")]
    InUse { name: String, users: String },
    #[error("--subnet {0}: IPv6 networks are not supported yet")]
    Ipv6Subnet(String),
    #[error("--subnet {0:?} is not an IPv4 CIDR (like 10.89.128.0/24)")]
    BadSubnet(String),
    #[error("--subnet {given}: not a network address, it should be {network}")]
    NotNetworkAddress { given: String, network: Ipv4Net },
    #[error("--subnet {0}: too small for a gateway and a container (at most /30)")]
    SubnetTooSmall(String),
    #[error("--subnet {subnet} overlaps {what}")]
    Overlap { subnet: Ipv4Net, what: String },
    #[error("no free /24 left in {0}: give one with --subnet")]
    PoolExhausted(&'static str),
    #[error("--driver {0}: not supported (only bridge)")]
    BadDriver(String),
    #[error("network name {0} is reserved: --net {0} is the default network")]
    Reserved(String),
    #[error("--gateway needs --subnet")]
    GatewayNeedsSubnet,
    #[error("--gateway {0:?} is not an IPv4 address")]
    BadGateway(String),
    #[error("--gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutside { gateway: String, subnet: Ipv4Net },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, UserNetError>;

/// The predefined networks: name and driver, as Docker lists them.
pub const PREDEFINED: [(&str, &str); 3] =
    [("bridge", "bridge"), ("host", "host"), ("none", "null")];

/// Where automatic subnets come from, a /24 at a time. (The lower half of
/// 10.89.0.0/16 is left to the CNI tests' fixed subnets.)
const POOL: &str = "10.89.128.0/17";

impl UserNetwork {
    pub fn network(&self) -> Network {
        Network {
            name: self.name.clone(),
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            gateway: Some(self.gateway),
        }
    }

    /// ROOT/networks/<id>: host-local's leases, the hosts-file lock.
    pub fn data_dir(&self, store: &Store) -> PathBuf {
        store.root().join("networks").join(&self.id)
    }

    pub fn conflist(&self, store: &Store) -> NetConfList {
        self.network().conflist(&self.data_dir(store))
    }
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// A stable id for a predefined network.
pub fn predefined_id(name: &str) -> String {
    let d = Sha256::digest(format!("rbox predefined network {name}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every user-defined network, oldest first.
pub fn list(store: &Store) -> Result<Vec<UserNetwork>> {
    Ok(store.networks()?)
}

/// A user-defined network by name, full id or unique id prefix.
pub fn find(store: &Store, what: &str) -> Result<UserNetwork> {
    let all = list(store)?;
    if let Some(n) = all.iter().find(|n| n.name == what || n.id == what) {
        return Ok(n.clone());
    }
    let by_prefix: Vec<&UserNetwork> = all
        .iter()
        .filter(|n| !what.is_empty() && n.id.starts_with(what))
        .collect();
    match by_prefix.as_slice() {
        [n] => Ok((*n).clone()),
        [] => Err(UserNetError::NoSuch(what.to_string())),
        _ => Err(UserNetError::Ambiguous(what.to_string())),
    }
}

/// The IPv4 routes of the host (not the default route): a subnet that
/// overlaps one would not be reachable.
fn host_routes() -> Vec<(String, Ipv4Net)> {
    let text = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // the kernel prints the network-order words in host order
            let dest = Ipv4Addr::from(hex(f.get(1)?)?.to_le_bytes());
            let mask = hex(f.get(7)?)?;
            if mask == 0 {
                return None;
            }
            let net = Ipv4Net::new(dest, mask.count_ones() as u8).ok()?;
            Some((f[0].to_string(), net))
        })
        .collect()
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// What `subnet` would overlap: the default network, another network of
/// the store, a route of the host.
fn overlap(subnet: &Ipv4Net, others: &[UserNetwork]) -> Option<String> {
    let default = Network::default_bridge();
    if overlaps(subnet, &default.subnet) {
        return Some(format!("the default network bridge ({})", default.subnet));
    }
    if let Some(n) = others.iter().find(|n| overlaps(subnet, &n.subnet)) {
        return Some(format!("network {} ({})", n.name, n.subnet));
    }
    host_routes()
        .into_iter()
        .find(|(_, r)| overlaps(subnet, r))
        .map(|(dev, r)| format!("the host's route to {r} on {dev}"))
}

/// `--subnet`: an IPv4 network address with a prefix of at most /30.
fn parse_subnet(s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        if s.contains(':') {
            UserNetError::Ipv6Subnet(s.to_string())
        } else {
            UserNetError::BadSubnet(s.to_string())
        }
    })?;
    if net != net.trunc() {
        return Err(UserNetError::NotNetworkAddress {
            given: s.to_string(),
            network: net.trunc(),
        });
    }
    if net.prefix_len() > 30 {
        return Err(UserNetError::SubnetTooSmall(s.to_string()));
    }
    Ok(net)
}

/// `rbox network create`: checked, then one row; the bridge comes with
/// the first container.
pub fn create(
    store: &Store,
    name: &str,
    driver: Option<&str>,
    subnet: Option<&str>,
    gateway: Option<&str>,
) -> Result<UserNetwork> {
    if let Some(d) = driver.filter(|d| *d != "bridge") {
        return Err(UserNetError::BadDriver(d.to_string()));
    }
    if PREDEFINED.iter().any(|(n, _)| *n == name) {
        return Err(UserNetError::Predefined(name.to_string(), "created"));
    }
    if !valid_name(name) {
        return Err(UserNetError::BadName(name.to_string()));
    }
    if matches!(name, "default" | "rbox") {
        return Err(UserNetError::Reserved(name.to_string()));
    }
    let subnet = subnet.map(parse_subnet).transpose()?;
    if gateway.is_some() && subnet.is_none() {
        return Err(UserNetError::GatewayNeedsSubnet);
    }
    // one creation at a time: the database write lock
    let lock = store.lock()?;
    let others = list(store)?;
    if others.iter().any(|n| n.name == name) {
        return Err(UserNetError::Exists(name.to_string()));
    }
    let subnet = match subnet {
        Some(s) => {
            if let Some(what) = overlap(&s, &others) {
                return Err(UserNetError::Overlap { subnet: s, what });
            }
            s
        }
        None => {
            let pool: Ipv4Net = POOL.parse().expect("literal");
            pool.subnets(24)
                .expect("a /24 fits the pool")
                .find(|s| overlap(s, &others).is_none())
                .ok_or(UserNetError::PoolExhausted(POOL))?
        }
    };
    let gateway = match gateway {
        None => subnet.hosts().next().expect("at most /30"),
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| UserNetError::BadGateway(g.to_string()))?;
            if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
                return Err(UserNetError::GatewayOutside {
                    gateway: g.to_string(),
                    subnet,
                });
            }
            ip
        }
    };
    let id = crate::names::random_hex(32);
    let n = UserNetwork {
        bridge: format!("rbox-{}", &id[..10]),
        id,
        name: name.to_string(),
        driver: "bridge".into(),
        subnet,
        gateway,
        created: chrono::Utc::now().to_rfc3339(),
    };
    store.insert_network(&n)?;
    lock.commit()?;
    Ok(n)
}

/// Whether container `c` is (configured to be) on network `name`.
pub fn uses(c: &Container, name: &str) -> bool {
    c.spec.net.clone().unwrap_or(NetMode::Bridge).name() == name
}

/// `rbox network rm`: refused while a container uses it; the bridge and
/// the leases go, then the row. Returns the name.
pub fn remove(store: &Store, what: &str, containers: &[Container]) -> Result<String> {
    if PREDEFINED.iter().any(|(n, _)| *n == what) {
        return Err(UserNetError::Predefined(what.to_string(), "removed"));
    }
    let n = find(store, what)?;
    let users: Vec<&str> = containers
        .iter()
        .filter(|c| uses(c, &n.name))
        .map(|c| c.name.as_str())
        .collect();
    if !users.is_empty() {
        return Err(UserNetError::InUse {
            name: n.name,
            users: users.join(", "),
        });
    }
    delete_bridge(&n.bridge).map_err(|source| UserNetError::Io {
        op: "delete bridge",
        path: PathBuf::from(&n.bridge),
        source,
    })?;
    let dir = n.data_dir(store);
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(UserNetError::Io {
                op: "remove",
                path: dir,
                source,
            })
        }
    }
    store.delete_network(&n.id)?;
    Ok(n.name)
}

/// `rbox network prune`: every user network no container uses; the names.
pub fn prune(store: &Store, containers: &[Container]) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    for n in list(store)? {
        if !containers.iter().any(|c| uses(c, &n.name)) {
            gone.push(remove(store, &n.id, containers)?);
        }
    }
    Ok(gone)
}

/// `rbox network ls`: (id, name, driver), by name.
pub fn summaries(store: &Store) -> Result<Vec<(String, String, String)>> {
    let mut all: Vec<(String, String, String)> = PREDEFINED
        .iter()
        .map(|(n, d)| (predefined_id(n), n.to_string(), d.to_string()))
        .collect();
    all.extend(list(store)?.into_iter().map(|n| (n.id, n.name, n.driver)));
    all.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(all)
}

/// `rbox network inspect`, Docker's shape; `Containers` has the running
/// containers of the network.
pub fn inspect(store: &Store, what: &str, containers: &[Container]) -> Result<Value> {
    let (id, name, driver, created, ipam, options) = match PREDEFINED
        .iter()
        .find(|(n, _)| *n == what)
    {
        Some((n, d)) => {
            let (ipam, options) = if *n == "bridge" {
                let b = Network::default_bridge();
                (
                    vec![
                        json!({"Subnet": b.subnet.to_string(), "Gateway": b.gateway().to_string()}),
                    ],
                    json!({"com.docker.network.bridge.name": b.bridge}),
                )
            } else {
                (vec![], json!({}))
            };
            (
                predefined_id(n),
                n.to_string(),
                d.to_string(),
                String::new(),
                ipam,
                options,
            )
        }
        None => {
            let n = find(store, what)?;
            (
                n.id,
                n.name,
                n.driver,
                n.created,
                vec![json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()})],
                json!({"com.docker.network.bridge.name": n.bridge}),
            )
        }
    };
    let attached: serde_json::Map<String, Value> = containers
        .iter()
        .filter(|c| uses(c, &name) && c.state.status == Status::Running)
        .map(|c| {
            let ip = match (&c.state.ip, c.state.prefix_len) {
                (Some(ip), Some(p)) => format!("{ip}/{p}"),
                _ => String::new(),
            };
            (
                c.id.clone(),
                json!({"Name": c.name, "EndpointID": "",
                       "MacAddress": c.state.mac.clone().unwrap_or_default(),
                       "IPv4Address": ip, "IPv6Address": ""}),
            )
        })
        .collect();
    Ok(json!({
        "Name": name,
        "Id": id,
        "Created": created,
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": ipam},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "Containers": attached,
        "Options": options,
        "Labels": {},
    }))
}

/// Takes the network's hosts-file lock (flock on ROOT/networks/<id>/lock)
/// until dropped: rewrites of the members' /etc/hosts one at a time.
pub fn hosts_lock(store: &Store, n: &UserNetwork) -> Result<OwnedFd> {
    let dir = n.data_dir(store);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| UserNetError::Io { op, path, source }
    };
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let path = dir.join("lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))?;
    crate::store::flock(&f, false).map_err(io("lock", &path))?;
    Ok(f.into())
}

/// Delete a Linux bridge (down first), as brctl does; a missing one is
/// not an error.
fn delete_bridge(name: &str) -> std::io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    const SIOCBRDELBR: libc::c_ulong = 0x89a1;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let cname = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    if cname.as_bytes().len() >= libc::IFNAMSIZ {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(cname.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the
    // valid ifreq we pass.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) } != 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: the flags member is the one SIOCGIFFLAGS filled in.
    unsafe { ifr.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short) };
    // SAFETY: SIOCSIFFLAGS reads the valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCBRDELBR reads the NUL-terminated name.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCBRDELBR as _, cname.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENXIO) {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_network_addresses_of_ipv4_with_room() {
        assert_eq!(
            parse_subnet("10.89.130.0/24").unwrap().to_string(),
            "10.89.130.0/24"
        );
        let e = parse_subnet("10.89.130.1/24").unwrap_err().to_string();
        assert!(e.contains("10.89.130.0/24"), "{e}");
        assert!(parse_subnet("10.89.130.0/31")
            .unwrap_err()
            .to_string()
            .contains("too small"));
        assert!(parse_subnet("fd00::/64")
            .unwrap_err()
            .to_string()
            .contains("IPv6"));
        assert!(parse_subnet("ten").unwrap_err().to_string().contains("ten"));
    }

    #[test]
    fn overlap_finds_the_default_network_and_others() {
        let s = |x: &str| x.parse::<Ipv4Net>().unwrap();
        assert!(overlap(&s("10.88.5.0/24"), &[])
            .unwrap()
            .contains("default network"));
        let other = UserNetwork {
            id: "x".into(),
            name: "a".into(),
            driver: "bridge".into(),
            subnet: s("10.89.200.0/22"),
            gateway: "10.89.200.1".parse().unwrap(),
            bridge: "rbox-x".into(),
            created: String::new(),
        };
        assert!(overlap(&s("10.89.201.0/24"), std::slice::from_ref(&other))
            .unwrap()
            .contains("network a"));
        assert!(!overlaps(&s("10.89.204.0/24"), &other.subnet));
    }
}
