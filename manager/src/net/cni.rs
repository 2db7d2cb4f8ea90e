//! Container networking through CNI plugins, the way a CNI runtime drives
//! them: a network namespace per container (bind-mounted under
//! /run/netns, so `ip netns` sees it) with `lo` up (set by rbox, like
//! Docker), then the chain `bridge`+`host-local`, `portmap` with ADD (DEL
//! in reverse order, also for what a failed ADD made). The plugins are ours (cni-plugins/) or the
//! reference ones: rbox only speaks the CNI contract.
//!
//! The result of ADD is kept next to the container's state so DEL gets its
//! `prevResult`; DEL without it still works (the plugins tag their rules
//! and leases with the container id).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cni_types::{
    BridgeConf, CniResult, ErrorReply, IpRange, Ipam, NetConf, NetConfList, PluginConf,
    PortMapping, PortmapConf, Protocol, RouteConf, RuntimeConfig,
};
use serde_json::Value;

/// CNI spec version rbox speaks to the plugins.
pub const CNI_VERSION: &str = "1.0.0";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("CNI plugin {plugin:?} not found in {dirs} (install the CNI plugins: make install, or Debian's containernetworking-plugins)")]
    NoPlugin { plugin: String, dirs: String },
    #[error("CNI {plugin} {command} for container {container}: {msg}")]
    Plugin {
        plugin: String,
        command: String,
        container: String,
        msg: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("port spec {spec:?}: {why}")]
    BadPort { spec: String, why: String },
    #[error("{0}")]
    PortTaken(String),
}

pub type Result<T> = std::result::Result<T, NetError>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_path_buf();
    move |source| NetError::Io { op, path, source }
}

/// Where CNI plugin binaries are looked for: `$RBOX_CNI_PATH` (colon
/// separated) when set, else the install locations of ours and of the
/// reference.
pub fn plugin_dirs() -> Vec<PathBuf> {
    match std::env::var_os("RBOX_CNI_PATH") {
        Some(p) if !p.is_empty() => std::env::split_paths(&p).collect(),
        _ => ["/usr/local/lib/cni", "/usr/lib/cni", "/opt/cni/bin"]
            .map(PathBuf::from)
            .to_vec(),
    }
}

/// A bridge network: one Linux bridge, one subnet, host-local addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnet: ipnet::Ipv4Net,
    /// The bridge's address; the subnet's first address when None.
    pub gateway: Option<Ipv4Addr>,
}

impl Network {
    /// Docker's default network, on `rbox0` and 10.88.0.0/16.
    pub fn default_bridge() -> Network {
        Network {
            name: "rbox".into(),
            bridge: "rbox0".into(),
            subnet: "10.88.0.0/16".parse().expect("literal"),
            gateway: None,
        }
    }

    /// The gateway, on the bridge: the subnet's first address unless
    /// given.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
            .unwrap_or_else(|| self.subnet.hosts().next().expect("a subnet with hosts"))
    }

    /// The conflist (as a CNI runtime would read it from a file): bridge
    /// with host-local IPAM whose leases live under `data_dir`, then
    /// portmap.
    pub fn conflist(&self, data_dir: &Path) -> NetConfList {
        let bridge = BridgeConf {
            bridge: Some(self.bridge.clone()),
            is_gateway: true,
            ip_masq: true,
            hairpin_mode: true,
            ..BridgeConf::default()
        };
        let ipam = Ipam {
            plugin: "host-local".into(),
            data_dir: Some(data_dir.to_path_buf()),
            ranges: vec![vec![IpRange::of(
                ipnet::IpNet::V4(self.subnet),
                Some(IpAddr::V4(self.gateway())),
            )]],
            routes: vec![RouteConf {
                dst: "0.0.0.0/0".parse().expect("literal"),
                gw: None,
            }],
            ..Ipam::default()
        };
        let portmap = PortmapConf {
            snat: Some(true),
            ..PortmapConf::default()
        };
        NetConfList {
            cni_version: CNI_VERSION.into(),
            name: self.name.clone(),
            plugins: vec![
                PluginConf::new("bridge", &bridge).with_ipam(&ipam),
                PluginConf::new("portmap", &portmap).with_capability("portMappings"),
            ],
        }
    }
}

/// One `-p` in Docker's syntax: `containerPort`, `hostPort:containerPort`,
/// `ip:hostPort:containerPort`, `ip::containerPort`, each with an optional
/// `/tcp` or `/udp`. A missing host port is 0 (pick one).
pub fn parse_port(spec: &str) -> Result<PortMapping> {
    let bad = |why: &str| NetError::BadPort {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (ports, protocol) = match spec.rsplit_once('/') {
        Some((p, "tcp")) => (p, Protocol::Tcp),
        Some((p, "udp")) => (p, Protocol::Udp),
        Some((_, other)) => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
        None => (spec, Protocol::Tcp),
    };
    // an IPv6 host IP is bracketed: [::1]:8080:80
    let (host_ip, rest) = if let Some(r) = ports.strip_prefix('[') {
        let (ip, rest) = r
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 address is written [addr]:hostPort:containerPort"))?;
        (Some(ip), rest)
    } else {
        match ports.matches(':').count() {
            0 | 1 => (None, ports),
            2 => {
                let (ip, rest) = ports.split_once(':').expect("two colons");
                (Some(ip), rest)
            }
            _ => return Err(bad("too many ':'")),
        }
    };
    let host_ip = host_ip
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| bad(&format!("{ip:?} is not an IP address")))
        })
        .transpose()?;
    let port = |p: &str, what: &str, zero_ok: bool| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) if !zero_ok => Err(bad(&format!("{what} 0 is not a port"))),
            Ok(n) => Ok(n),
            Err(_) => Err(bad(&format!("{what} {p:?} is not a port number (1-65535)"))),
        }
    };
    let (host_port, container_port) = match rest.split_once(':') {
        None => (0, port(rest, "container port", false)?),
        Some(("", c)) => (0, port(c, "container port", false)?),
        Some((h, c)) => (
            port(h, "host port", true)?,
            port(c, "container port", false)?,
        ),
    };
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// Give every host port 0 a free port, and refuse a host port that is in
/// use on the host, before anything is made: binding it is the test the
/// kernel would apply to a server started there. (Ports other containers
/// publish are DNAT rules, not sockets: the caller checks those against
/// its own records.)
pub fn reserve_host_ports(ports: &mut [PortMapping]) -> Result<()> {
    for i in 0..ports.len() {
        let p = ports[i].clone();
        let ip = p.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, p.host_port);
        let taken = |e: std::io::Error| {
            NetError::PortTaken(format!(
                "host port {}/{} is not available: {e}",
                addr,
                p.protocol.as_str()
            ))
        };
        let port = match p.protocol {
            Protocol::Tcp => TcpListener::bind(addr)
                .and_then(|l| l.local_addr())
                .map_err(taken)?
                .port(),
            Protocol::Udp => UdpSocket::bind(addr)
                .and_then(|s| s.local_addr())
                .map_err(taken)?
                .port(),
            // `-p` makes none
            Protocol::Sctp => {
                return Err(NetError::BadPort {
                    spec: p.to_string(),
                    why: "sctp is not supported".into(),
                })
            }
        };
        if ports[..i]
            .iter()
            .any(|q| q.host_port == port && q.protocol == p.protocol && (q.host_ip == p.host_ip))
        {
            return Err(NetError::PortTaken(format!(
                "host port {addr}/{} is published twice",
                p.protocol.as_str()
            )));
        }
        ports[i].host_port = port;
    }
    Ok(())
}

/// A persistent network namespace: /run/netns/NAME, a bind mount of the
/// namespace a helper thread made. Removed explicitly ([`NetNs::remove`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetNs {
    pub path: PathBuf,
}

impl NetNs {
    pub const DIR: &'static str = "/run/netns";

    pub fn path_for(name: &str) -> PathBuf {
        Path::new(Self::DIR).join(name)
    }

    /// Make namespace `name` (fails if it exists).
    pub fn create(name: &str) -> Result<NetNs> {
        let dir = Path::new(Self::DIR);
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let path = Self::path_for(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create netns file", &path))?;
        let target = path.clone();
        // unshare on a thread of its own: the caller's thread keeps its
        // namespace, and the thread ends with the namespace pinned by the
        // bind mount
        let made = std::thread::spawn(move || -> std::io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            loopback_up()?;
            let me = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
            nix::mount::mount(
                Some(me.as_str()),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .expect("the netns thread does not panic");
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(NetError::Io {
                op: "make network namespace",
                path,
                source: e,
            });
        }
        Ok(NetNs { path })
    }

    /// Unmount and remove (idempotent). The kernel destroys the namespace
    /// and its devices (the container's end of a veth pair, and so the
    /// pair) once nothing else holds it.
    pub fn remove(&self) -> Result<()> {
        match nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(NetError::Io {
                    op: "unmount netns",
                    path: self.path.clone(),
                    source: e.into(),
                })
            }
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.path)(e)),
        }
    }
}

/// CNI_ARGS key of a DEL whose network namespace the runtime has removed
/// (before the DEL, so that the kernel destroys it while the plugins run):
/// our bridge plugin then leaves the container's veth to the kernel, which
/// destroys the pair with the namespace, in the background (deleting it in
/// the plugin waits 20-40 ms for RCU grace periods), also should the
/// namespace still be there. Other plugins ignore it (`IgnoreUnknown=1`)
/// and find the namespace gone.
pub const NETNS_GOES: &str = "RBOX_NETNS_REMOVED";

/// The host ends of the result's veth pairs (bridge ports, no sandbox).
pub fn host_veths(result: &Value) -> Vec<String> {
    let Ok(r) = cni_types::decode::<CniResult>(result) else {
        return Vec::new();
    };
    r.interfaces
        .into_iter()
        .filter(|i| i.sandbox.is_empty())
        .map(|i| i.name)
        .filter(|n| {
            !n.is_empty()
                && !n.contains('/')
                && Path::new("/sys/class/net").join(n).join("brport").exists()
        })
        .collect()
}

/// Waits (at most `limit`) until these network devices are gone.
pub fn wait_gone(devices: &[String], limit: std::time::Duration) {
    let begin = std::time::Instant::now();
    for d in devices {
        let p = Path::new("/sys/class/net").join(d);
        while p.exists() && begin.elapsed() < limit {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// Sets `lo` up in the calling thread's network namespace, as Docker
/// does for every container (no plugin needed: one ioctl).
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass,
    // whose name is NUL-terminated; the flags are the union's active field.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What ADD gave the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub ip: ipnet::IpNet,
    pub gateway: Option<IpAddr>,
    pub mac: String,
    /// The chain's final result (CNI JSON), for DEL and `inspect`.
    pub result: Value,
}

impl Attachment {
    fn from_result(result: Value) -> Option<Attachment> {
        let r: CniResult = cni_types::decode(&result).ok()?;
        let (ip, iface) = r.first_ip()?;
        Some(Attachment {
            ip: ip.address,
            gateway: ip.gateway,
            mac: iface.map(|i| i.mac.clone()).unwrap_or_default(),
            result,
        })
    }
}

/// Runs CNI plugins for one container.
pub struct Cni {
    pub dirs: Vec<PathBuf>,
}

impl Cni {
    pub fn new(dirs: Vec<PathBuf>) -> Cni {
        Cni { dirs }
    }

    fn find(&self, plugin: &str) -> Result<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| NetError::NoPlugin {
                plugin: plugin.to_string(),
                dirs: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            })
    }

    /// Whether the chain can be deleted after its network namespace is
    /// gone without leaving anything behind: rbox's fast teardown order,
    /// where the kernel destroys the namespace (and the veth pair in it)
    /// while the plugins run. Only the bridge plugin's DEL needs the
    /// namespace: the reference one finds the addresses whose masquerade
    /// rules it removes on the container's interface (without it, its
    /// rules stay); ours finds its rules by tag and honours [`NETNS_GOES`],
    /// which is how it is told apart: the binary names that CNI_ARGS key.
    pub fn deletes_without_netns(&self, conflist: &NetConfList) -> bool {
        if !conflist.has("bridge") {
            return true;
        }
        let Ok(bin) = self.find("bridge") else {
            return false;
        };
        std::fs::read(&bin)
            .is_ok_and(|code| memchr::memmem::find(&code, NETNS_GOES.as_bytes()).is_some())
    }

    /// Check that every plugin of the chain is installed.
    pub fn check_installed(&self) -> Result<()> {
        for p in ["bridge", "host-local", "portmap"] {
            self.find(p)?;
        }
        Ok(())
    }

    /// One plugin call: config on stdin, result (or error) on stdout.
    fn exec(
        &self,
        command: &str,
        conf: &NetConf,
        container: &str,
        netns: &Path,
        ifname: &str,
        cni_args: Option<&str>,
    ) -> Result<Value> {
        let plugin = conf.plugin.plugin.clone();
        let bin = self.find(&plugin)?;
        let cni_path = std::env::join_paths(&self.dirs).unwrap_or_default();
        let fail = |msg: String| NetError::Plugin {
            plugin: plugin.clone(),
            command: command.to_string(),
            container: container.to_string(),
            msg,
        };
        let mut cmd = Command::new(&bin);
        // a plugin dies with rbox: a killed rbox's next one runs DEL, and
        // an orphaned ADD must not go on making things after it; until it
        // (and an IPAM plugin it runs) is gone, it holds the container's
        // claim, which that next rbox waits for (claim.rs)
        let rbox = std::process::id() as libc::pid_t;
        let claim = crate::claim::fd_of(container);
        // SAFETY: prctl, getppid, _exit and fcntl only, all async-signal-safe,
        // between fork and exec; `claim` is a descriptor this process keeps
        // open until the container's claim is released, after the plugin.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // rbox died between the fork and the prctl: no signal comes
                if libc::getppid() != rbox {
                    libc::_exit(1);
                }
                if let Some(fd) = claim {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &cni_path)
            .env("CNI_ARGS", cni_args.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err("run CNI plugin", &bin))?;
        let mut stdin = child.stdin.take().expect("piped");
        let text = serde_json::to_string(conf).expect("plain data");
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
        let out = child
            .wait_with_output()
            .map_err(io_err("run CNI plugin", &bin))?;
        let _ = writer.join();
        if !out.status.success() {
            let msg = serde_json::from_slice::<ErrorReply>(&out.stdout)
                .ok()
                .filter(|e| !e.msg.is_empty())
                .map(|e| e.message())
                .unwrap_or_else(|| {
                    let err = String::from_utf8_lossy(&out.stderr);
                    format!("{} {}", out.status, err.trim())
                });
            return Err(fail(msg));
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    /// The conflist's plugin `i` as a network configuration (name,
    /// cniVersion, the published ports if it takes `portMappings`,
    /// prevResult added).
    fn plugin_conf(
        conflist: &NetConfList,
        i: usize,
        ports: &[PortMapping],
        prev: Option<&Value>,
    ) -> NetConf {
        let runtime = RuntimeConfig {
            port_mappings: ports.to_vec(),
            ..RuntimeConfig::default()
        };
        conflist
            .plugin_conf(i, &runtime, prev)
            .expect("a plugin of the list")
    }

    /// ADD: `lo` up, then the conflist's plugins in order as `eth0`. On
    /// failure the plugins already run get DEL, and the error is the
    /// failing plugin's.
    pub fn attach(
        &self,
        conflist: &NetConfList,
        container: &str,
        netns: &NetNs,
        ports: &[PortMapping],
    ) -> Result<Attachment> {
        let mut prev: Option<Value> = None;
        let n = conflist.plugins.len();
        for i in 0..n {
            let conf = Self::plugin_conf(conflist, i, ports, prev.as_ref());
            match self.exec("ADD", &conf, container, &netns.path, "eth0", None) {
                Ok(r) => prev = Some(r),
                Err(e) => {
                    let _ = self.detach(conflist, container, netns, ports, prev.as_ref(), false);
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        Attachment::from_result(result.clone()).ok_or_else(|| NetError::Plugin {
            plugin: "bridge".into(),
            command: "ADD".into(),
            container: container.to_string(),
            msg: format!("the result has no IP address: {result}"),
        })
    }

    /// DEL in reverse order; every plugin is asked even if one fails (the
    /// first error is returned). Idempotent. `netns_goes`: the caller
    /// removes the namespace right after (CNI_ARGS [`NETNS_GOES`]).
    pub fn detach(
        &self,
        conflist: &NetConfList,
        container: &str,
        netns: &NetNs,
        ports: &[PortMapping],
        prev: Option<&Value>,
        netns_goes: bool,
    ) -> Result<()> {
        let mut first = None;
        let n = conflist.plugins.len();
        let args = format!("IgnoreUnknown=1;{NETNS_GOES}=1");
        let args = netns_goes.then_some(args.as_str());
        for i in (0..n).rev() {
            let conf = Self::plugin_conf(conflist, i, ports, prev);
            if let Err(e) = self.exec("DEL", &conf, container, &netns.path, "eth0", args) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_specs_follow_docker() {
        let p = |s| parse_port(s).unwrap();
        assert_eq!(
            p("8080:80"),
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(p("80").host_port, 0);
        assert_eq!(
            p("127.0.0.1:8080:80/udp").host_ip,
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(p("127.0.0.1:8080:80/udp").protocol, Protocol::Udp);
        assert_eq!(p("127.0.0.1::80").host_port, 0);
        assert_eq!(p("[::1]:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p("8080:80").to_string(), "0.0.0.0:8080->80/tcp");
        for bad in [
            "http",
            "80:http",
            "1.2.3:80:80",
            "80/sctp2",
            "80/sctp",
            "8080:0",
            "a:b:c:d",
        ] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        let e = parse_port("80/icmp").unwrap_err().to_string();
        assert!(e.contains("80/icmp") && e.contains("icmp"), "{e}");
    }

    #[test]
    fn default_network_is_rbox0_on_10_88() {
        let n = Network::default_bridge();
        assert_eq!(n.gateway().to_string(), "10.88.0.1");
        let c = serde_json::to_value(n.conflist(Path::new("/x"))).unwrap();
        assert_eq!(
            c,
            json!({"cniVersion": "1.0.0", "name": "rbox", "plugins": [
                {"type": "bridge", "bridge": "rbox0", "isGateway": true, "ipMasq": true,
                 "hairpinMode": true,
                 "ipam": {"type": "host-local", "dataDir": "/x",
                          "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]})
        );
    }

    #[test]
    fn plugin_conf_carries_name_version_ports_and_prev_result() {
        let c = Network::default_bridge().conflist(Path::new("/x"));
        let ports = [parse_port("8080:80").unwrap()];
        let prev = json!({"cniVersion": "1.0.0"});
        let pm = serde_json::to_value(Cni::plugin_conf(&c, 1, &ports, Some(&prev))).unwrap();
        assert_eq!(pm["name"], "rbox");
        assert_eq!(pm["type"], "portmap");
        assert_eq!(pm["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert_eq!(pm["prevResult"], prev);
        let br = serde_json::to_value(Cni::plugin_conf(&c, 0, &ports, None)).unwrap();
        assert!(br.get("runtimeConfig").is_none());
    }

    #[test]
    fn the_attachment_is_the_first_ip_of_the_result() {
        let result = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "rbox0", "mac": "aa:00:00:00:00:01"},
                           {"name": "vethx", "mac": "aa:00:00:00:00:02"},
                           {"name": "eth0", "mac": "aa:00:00:00:00:03", "sandbox": "/run/netns/x"}],
            "ips": [{"interface": 2, "address": "10.88.0.7/16", "gateway": "10.88.0.1"}]});
        let a = Attachment::from_result(result.clone()).unwrap();
        assert_eq!(a.ip.to_string(), "10.88.0.7/16");
        assert_eq!(a.gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(a.mac, "aa:00:00:00:00:03");
        assert_eq!(a.result, result);
        assert_eq!(
            Attachment::from_result(json!({"cniVersion": "1.0.0"})),
            None
        );
        // only bridge ports count as host veths; none exists here
        assert!(host_veths(&result).is_empty());
    }
}
