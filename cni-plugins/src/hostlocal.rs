//! host-local IPAM: address ranges from the config, leases on disk in the
//! reference plugin's layout, so either plugin can release what the other
//! allocated:
//!
//! ```text
//! <dataDir>/<network>/lock                  flock'ed while allocating
//! <dataDir>/<network>/<ip>                  "<containerID>\r\n<ifname>"
//! <dataDir>/<network>/last_reserved_ip.<N>  last address given from range set N
//! ```

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cni_types::{CniResult, Dns, IpConfig, IpRange, Ipam, Route};
use ipnet::IpNet;
use serde::Deserialize;

use crate::error::{code, CniError, Result};

const LINE_BREAK: &str = "\r\n";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// One range: addresses `start..=end` of `subnet`, `gateway` excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
}

/// The `ipam` section.
#[derive(Debug, Clone)]
pub struct Config {
    pub network: String,
    pub data_dir: PathBuf,
    /// One address is allocated from each set.
    pub range_sets: Vec<Vec<Range>>,
    pub routes: Vec<Route>,
    pub resolv_conf: Option<PathBuf>,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

/// What host-local reads of its network configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostLocalConf {
    #[serde(default)]
    pub ipam: Option<Ipam>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Requested,
    #[serde(default)]
    pub args: ConfArgs,
}

/// `runtimeConfig`'s `ips` and `ipRanges` (the capabilities host-local
/// takes).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Requested {
    /// Addresses, with or without a prefix length.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(rename = "ipRanges", default)]
    pub ip_ranges: Vec<Vec<IpRange>>,
}

/// `args.cni.ips`: addresses asked for in the configuration's `args`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfArgs {
    #[serde(default)]
    pub cni: Option<CniArgs>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CniArgs {
    #[serde(default)]
    pub ips: Vec<String>,
}

fn parse_range(r: &IpRange, field: &str) -> Result<Range> {
    let subnet = r.subnet.trunc();
    let net = to_u128(subnet.network());
    let last = to_u128(subnet.broadcast());
    let (first_host, last_host) = match subnet {
        IpNet::V4(_) => (net + 1, last.saturating_sub(1)),
        IpNet::V6(_) => (net + 1, last),
    };
    if first_host > last_host {
        return Err(CniError::config(format!(
            "ipam: {field}.subnet {subnet} is too small to allocate from"
        )));
    }
    let inside = |ip: IpAddr, what: &str| -> Result<IpAddr> {
        if !subnet.contains(&ip) {
            return Err(CniError::config(format!(
                "ipam: {field}.{what} {ip} is not in {subnet}"
            )));
        }
        Ok(ip)
    };
    let start = match r.range_start {
        Some(ip) => inside(ip, "rangeStart")?,
        None => from_u128(first_host, subnet.addr()),
    };
    let end = match r.range_end {
        Some(ip) => inside(ip, "rangeEnd")?,
        None => from_u128(last_host, subnet.addr()),
    };
    if to_u128(start) > to_u128(end) {
        return Err(CniError::config(format!(
            "ipam: {field}: rangeStart {start} is after rangeEnd {end}"
        )));
    }
    let gateway = match r.gateway {
        Some(ip) => Some(inside(ip, "gateway")?),
        None => Some(from_u128(net + 1, subnet.addr())),
    };
    Ok(Range {
        subnet,
        start,
        end,
        gateway,
    })
}

/// Range sets from a list of lists of ranges (`ipam.ranges`,
/// `runtimeConfig.ipRanges`); `field` names it in errors.
fn parse_range_sets(sets: &[Vec<IpRange>], field: &str) -> Result<Vec<Vec<Range>>> {
    let mut range_sets = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let mut ranges = Vec::new();
        for (j, r) in set.iter().enumerate() {
            ranges.push(parse_range(r, &format!("{field}[{i}][{j}]"))?);
        }
        if ranges.is_empty() {
            return Err(CniError::config(format!("ipam: {field}[{i}] is empty")));
        }
        range_sets.push(ranges);
    }
    Ok(range_sets)
}

impl Config {
    /// Network `name`'s lease directory below `data_dir` (host-local's
    /// default when none): all a DEL needs.
    pub fn dir_of(name: &str, data_dir: Option<&Path>) -> Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(CniError::config(format!(
                "network name {name:?} cannot be a directory name"
            )));
        }
        Ok(data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR)).join(name))
    }

    /// Network `name`'s configuration: `ipam` and `runtimeConfig.ipRanges`,
    /// which come first, as with the reference.
    pub fn parse(name: &str, conf: &HostLocalConf) -> Result<Config> {
        let ipam = conf
            .ipam
            .as_ref()
            .ok_or_else(|| CniError::config("ipam section is missing"))?;
        Self::dir_of(name, ipam.data_dir.as_deref())?;
        let mut range_sets = parse_range_sets(&ipam.ranges, "ranges")?;
        if let Some(r) = ipam.single_range() {
            range_sets.insert(0, vec![parse_range(&r, "ipam")?]);
        }
        let runtime = parse_range_sets(&conf.runtime_config.ip_ranges, "runtimeConfig.ipRanges")?;
        range_sets.splice(0..0, runtime);
        if range_sets.is_empty() {
            return Err(CniError::config("ipam: no ranges (set ranges or subnet)"));
        }
        Ok(Config {
            network: name.to_string(),
            data_dir: ipam
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            range_sets,
            routes: ipam
                .routes
                .iter()
                .map(|r| Route {
                    dst: r.dst,
                    gw: r.gw,
                })
                .collect(),
            resolv_conf: ipam.resolv_conf.clone(),
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.data_dir.join(&self.network)
    }
}

/// The network's lease directory, locked for the lifetime of the value.
pub struct Store {
    dir: PathBuf,
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir)
            .map_err(|e| CniError::io(format!("create {}", dir.display()), e))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| CniError::io(format!("open {}/lock", dir.display()), e))?;
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| CniError::io(format!("lock {}/lock", dir.display()), e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    fn path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    /// Take `ip` for the container; false if someone has it.
    pub fn reserve(&self, id: &str, ifname: &str, ip: IpAddr, set: usize) -> Result<bool> {
        let path = self.path(ip);
        let mut f = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(CniError::io(format!("create {}", path.display()), e)),
        };
        if let Err(e) = f.write_all(format!("{}{LINE_BREAK}{ifname}", id.trim()).as_bytes()) {
            let _ = fs::remove_file(&path);
            return Err(CniError::io(format!("write {}", path.display()), e));
        }
        let last = self.dir.join(format!("last_reserved_ip.{set}"));
        fs::write(&last, ip.to_string())
            .map_err(|e| CniError::io(format!("write {}", last.display()), e))?;
        Ok(true)
    }

    /// Every lease: (ip, container id, ifname).
    pub fn leases(&self) -> Vec<(IpAddr, String, String)> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let Ok(ip) = e.file_name().to_string_lossy().parse::<IpAddr>() else {
                continue;
            };
            let Ok(text) = fs::read_to_string(e.path()) else {
                continue;
            };
            let mut lines = text.trim().lines();
            let id = lines.next().unwrap_or_default().trim().to_string();
            let ifname = lines.next().unwrap_or_default().trim().to_string();
            out.push((ip, id, ifname));
        }
        out
    }

    /// The container's addresses (an empty ifname in a lease is the
    /// reference's old one-line format: it matches any ifname).
    pub fn find(&self, id: &str, ifname: &str) -> Vec<IpAddr> {
        self.leases()
            .into_iter()
            .filter(|(_, i, f)| i == id && (f == ifname || f.is_empty()))
            .map(|(ip, _, _)| ip)
            .collect()
    }

    pub fn release(&self, ip: IpAddr) -> Result<()> {
        let path = self.path(ip);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CniError::io(format!("remove {}", path.display()), e)),
        }
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        fs::read_to_string(self.dir.join(format!("last_reserved_ip.{set}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Allocate (or find) one address per range set for the container.
/// `requested` are addresses asked for (CNI_ARGS IP=, runtimeConfig ips).
pub fn allocate(cfg: &Config, id: &str, ifname: &str, requested: &[IpAddr]) -> Result<CniResult> {
    let store = Store::open(&cfg.dir())?;
    let existing = store.find(id, ifname);
    let mut taken: Vec<(IpAddr, usize)> = Vec::new();
    let result = (|| {
        let mut ips = Vec::new();
        for (set_idx, set) in cfg.range_sets.iter().enumerate() {
            let in_set = |ip: &IpAddr| {
                set.iter().any(|r| {
                    to_u128(*ip) >= to_u128(r.start)
                        && to_u128(*ip) <= to_u128(r.end)
                        && r.subnet.contains(ip)
                })
            };
            // an address this container already holds in the set: ADD again
            // returns it (idempotent)
            if let Some(ip) = existing.iter().find(|ip| in_set(ip)) {
                let r = set.iter().find(|r| r.subnet.contains(ip)).expect("in set");
                ips.push(ip_config(*ip, r));
                continue;
            }
            let ip = match requested
                .iter()
                .find(|ip| set.iter().any(|r| r.subnet.contains(*ip)))
            {
                Some(ip) => {
                    let r = set.iter().find(|r| r.subnet.contains(ip)).expect("in set");
                    if !in_set(ip) || r.gateway == Some(*ip) {
                        return Err(CniError::config(format!(
                            "requested IP {ip} is not allocatable in range set {set_idx}"
                        )));
                    }
                    if !store.reserve(id, ifname, *ip, set_idx)? {
                        return Err(CniError::internal(format!(
                            "requested IP {ip} is already allocated"
                        )));
                    }
                    *ip
                }
                None => next_free(&store, set, set_idx, id, ifname)?,
            };
            taken.push((ip, set_idx));
            let r = set.iter().find(|r| r.subnet.contains(&ip)).expect("in set");
            ips.push(ip_config(ip, r));
        }
        Ok(ips)
    })();
    let ips = match result {
        Ok(ips) => ips,
        Err(e) => {
            // nothing half-made: give back what this call took
            for (ip, _) in taken {
                let _ = store.release(ip);
            }
            return Err(e);
        }
    };
    Ok(CniResult {
        ips,
        routes: cfg.routes.clone(),
        dns: cfg
            .resolv_conf
            .as_deref()
            .map(read_resolv_conf)
            .unwrap_or_default(),
        ..Default::default()
    })
}

fn ip_config(ip: IpAddr, r: &Range) -> IpConfig {
    IpConfig {
        interface: None,
        address: IpNet::new(ip, r.subnet.prefix_len()).expect("prefix from a subnet"),
        gateway: r.gateway,
    }
}

/// Round-robin from after the last address given out in this set.
fn next_free(
    store: &Store,
    set: &[Range],
    set_idx: usize,
    id: &str,
    ifname: &str,
) -> Result<IpAddr> {
    let total: u128 = set
        .iter()
        .map(|r| to_u128(r.end) - to_u128(r.start) + 1)
        .sum();
    // position of the address after the last reserved one
    let mut pos: u128 = 0;
    if let Some(last) = store.last_reserved(set_idx) {
        let mut offset = 0;
        for r in set {
            let (s, e) = (to_u128(r.start), to_u128(r.end));
            if to_u128(last) >= s && to_u128(last) <= e && r.subnet.contains(&last) {
                pos = (offset + to_u128(last) - s + 1) % total;
                break;
            }
            offset += e - s + 1;
        }
    }
    let at = |mut p: u128| -> (IpAddr, &Range) {
        for r in set {
            let n = to_u128(r.end) - to_u128(r.start) + 1;
            if p < n {
                return (from_u128(to_u128(r.start) + p, r.start), r);
            }
            p -= n;
        }
        unreachable!("position within the set")
    };
    for i in 0..total.min(1 << 24) {
        let (ip, r) = at((pos + i) % total);
        if r.gateway == Some(ip) {
            continue;
        }
        if store.reserve(id, ifname, ip, set_idx)? {
            return Ok(ip);
        }
    }
    let ranges: Vec<String> = set
        .iter()
        .map(|r| format!("{}-{} in {}", r.start, r.end, r.subnet))
        .collect();
    Err(CniError::new(
        code::INTERNAL,
        format!(
            "no IP addresses available in range set {}",
            ranges.join(", ")
        ),
    ))
}

/// Give back the container's leases in this network (idempotent).
pub fn release(cfg: &Config, id: &str, ifname: &str) -> Result<()> {
    release_in(&cfg.dir(), id, ifname)
}

/// [`release`] in the network's lease directory `dir`.
pub fn release_in(dir: &Path, id: &str, ifname: &str) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let store = Store::open(dir)?;
    for ip in store.find(id, ifname) {
        store.release(ip)?;
    }
    Ok(())
}

/// CNI GC: release every lease whose (container id, ifname) is not in
/// `cni.dev/valid-attachments`.
pub fn gc(cfg: &Config, valid: &[(String, String)]) -> Result<()> {
    let dir = cfg.dir();
    if !dir.exists() {
        return Ok(());
    }
    let store = Store::open(&dir)?;
    for (ip, id, ifname) in store.leases() {
        let keep = valid
            .iter()
            .any(|(vid, vif)| *vid == id && (ifname.is_empty() || *vif == ifname));
        if !keep {
            store.release(ip)?;
        }
    }
    Ok(())
}

/// nameserver/domain/search/options from a resolv.conf.
pub fn read_resolv_conf(path: &Path) -> Dns {
    let mut dns = Dns::default();
    for line in fs::read_to_string(path).unwrap_or_default().lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => dns.nameservers.extend(w.next().map(String::from)),
            Some("domain") => dns.domain = w.next().unwrap_or_default().to_string(),
            Some("search") => dns.search = w.map(String::from).collect(),
            Some("options") => dns.options.extend(w.map(String::from)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A configuration read as the plugin reads it.
    fn parse(name: &str, v: Value) -> Result<Config> {
        let c: HostLocalConf =
            cni_types::decode(&v).map_err(|e| CniError::config(e.to_string()))?;
        Config::parse(name, &c)
    }

    fn conf(dir: &Path, ranges: Value) -> Config {
        parse(
            "net1",
            json!({"ipam": {"type": "host-local", "ranges": ranges, "dataDir": dir}}),
        )
        .unwrap()
    }

    #[test]
    fn allocates_round_robin_and_skips_the_gateway() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), json!([[{"subnet": "10.89.5.0/29"}]]));
        let a = allocate(&c, "c1", "eth0", &[]).unwrap();
        assert_eq!(a.ips[0].address.to_string(), "10.89.5.2/29");
        assert_eq!(a.ips[0].gateway.unwrap().to_string(), "10.89.5.1");
        let b = allocate(&c, "c2", "eth0", &[]).unwrap();
        assert_eq!(b.ips[0].address.to_string(), "10.89.5.3/29");
        release(&c, "c1", "eth0").unwrap();
        // after .3 comes .4, not the freed .2 (round robin)
        let e = allocate(&c, "c3", "eth0", &[]).unwrap();
        assert_eq!(e.ips[0].address.to_string(), "10.89.5.4/29");
        // the reference's file format
        let text = fs::read_to_string(d.path().join("net1/10.89.5.3")).unwrap();
        assert_eq!(text, "c2\r\neth0");
        assert_eq!(
            fs::read_to_string(d.path().join("net1/last_reserved_ip.0")).unwrap(),
            "10.89.5.4"
        );
    }

    #[test]
    fn exhausted_range_is_an_error_and_takes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(
            d.path(),
            json!([[{"subnet": "10.89.6.0/30"}], [{"subnet": "10.89.7.0/30"}]]),
        );
        allocate(&c, "c1", "eth0", &[]).unwrap();
        // set 0 (/30: only .2 besides the gateway) is full now
        let err = allocate(&c, "c2", "eth0", &[]).unwrap_err();
        assert!(err.msg.contains("no IP addresses available"), "{err}");
        assert!(Store::open(&c.dir()).unwrap().find("c2", "eth0").is_empty());
    }

    #[test]
    fn dual_stack_and_idempotent_add() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(
            d.path(),
            json!([[{"subnet": "10.89.8.0/24"}], [{"subnet": "fd00:89::/64"}]]),
        );
        let a = allocate(&c, "c1", "eth0", &[]).unwrap();
        assert_eq!(a.ips.len(), 2);
        assert_eq!(a.ips[1].address.to_string(), "fd00:89::2/64");
        assert_eq!(allocate(&c, "c1", "eth0", &[]).unwrap().ips, a.ips);
    }

    #[test]
    fn gc_keeps_only_valid_attachments() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), json!([[{"subnet": "10.89.9.0/24"}]]));
        allocate(&c, "keep", "eth0", &[]).unwrap();
        allocate(&c, "stale", "eth0", &[]).unwrap();
        gc(&c, &[("keep".into(), "eth0".into())]).unwrap();
        let store = Store::open(&c.dir()).unwrap();
        assert_eq!(store.find("keep", "eth0").len(), 1);
        assert!(store.find("stale", "eth0").is_empty());
    }

    #[test]
    fn bad_ranges_name_the_field() {
        let bad = |r: Value| parse("n", json!({"ipam": {"ranges": r}})).unwrap_err().msg;
        assert!(bad(json!([[{"subnet": "10.89.0.0/33"}]])).contains("ranges[0][0].subnet"));
        assert!(
            bad(json!([[{"subnet": "10.89.0.0/24", "gateway": "10.1.1.1"}]])).contains("gateway")
        );
        assert!(bad(json!([[{"subnet": "10.89.0.0/32"}]])).contains("too small"));
    }
}
