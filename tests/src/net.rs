//! Networking on the host: the host's address, named network namespaces.

use std::path::Path;
use std::process::Command;

use crate::{stdout, unique};

/// A non-loopback IPv4 address of this host (traffic to it stays local):
/// the first global one of `ip -4 addr`.
pub fn host_ipv4() -> String {
    host_ipv4_if_any().expect("the host has a global IPv4 address")
}

/// [`host_ipv4`], or None on a host without one.
pub fn host_ipv4_if_any() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    stdout(&out).lines().find_map(|l| {
        l.split_whitespace()
            .nth(3)
            .map(|a| a.split('/').next().unwrap().to_string())
    })
}

/// A named network namespace (`ip netns add`), removed on drop.
pub struct NetNs(pub String);

/// `ip netns add` makes /run/netns a mount of itself; the last NetNs of a
/// test binary takes it away again. One lock so that no `ip netns add`
/// runs while that happens.
static NETNS_DIR: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl NetNs {
    pub fn new() -> NetNs {
        let name = unique("rrun-test-ns");
        let _dir = NETNS_DIR.lock().unwrap_or_else(|p| p.into_inner());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip (iproute2) is needed");
        assert!(ok.success(), "ip netns add {name}");
        NetNs(name)
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// `net:[inode]`, as /proc/self/ns/net reads inside it.
    pub fn ns_link(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        format!("net:[{}]", std::fs::metadata(self.path()).unwrap().ino())
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _dir = NETNS_DIR.lock().unwrap_or_else(|p| p.into_inner());
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
        let dir = Path::new("/run/netns");
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
            // not lazily: busy (another namespace mounted) means in use
            let _ = nix::mount::umount2(dir, nix::mount::MntFlags::empty());
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The body of `GET /` from addr:port, or "" when nothing answers (2 s
/// limits).
pub fn http_get(addr: &str, port: u16) -> String {
    use std::io::{Read, Write};
    use std::time::Duration;
    let Ok(sa) = format!("{addr}:{port}").parse::<std::net::SocketAddr>() else {
        return String::new();
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// A free TCP port on 127.0.0.1 (bound and released: nothing else in the
/// test machine's lock takes it meanwhile).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Names of the host's links that `ip -o link show SELECTOR` lists (e.g.
/// `type veth`, `master BRIDGE`).
pub fn host_links(selector: &[&str]) -> Vec<String> {
    let o = Command::new("ip")
        .args(["-o", "link", "show"])
        .args(selector)
        .output()
        .unwrap();
    stdout(&o)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The host's veth ends.
pub fn host_veths() -> Vec<String> {
    host_links(&["type", "veth"])
}
