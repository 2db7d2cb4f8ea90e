//! Host ports published by containers, claimed host-wide when a container
//! starts (as Docker allocates them at start, not at create) and released
//! when its network is torn down. A published port is a DNAT rule, not a
//! socket, so the kernel cannot refuse a second container the same port:
//! the claims do, one start at a time.
//!
//! ```text
//! /run/rbox/ports/lock                 flock'ed while claims are checked, made or released
//! /run/rbox/ports/<proto>-<port>-<ip>  "<container id>\n<its network namespace>\n"
//! ```
//!
//! Host-wide (every rbox root on the host shares the host's ports), under
//! /run (gone at reboot, like the namespaces). A claim is live while the
//! namespace it names exists: a container whose rbox was killed before its
//! teardown leaves a claim that the next check finds dead and removes.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::cni::{NetError, Result};
use cni_types::PortMapping;

pub const DIR: &str = "/run/rbox/ports";

/// The host-wide lock on the claims; released when dropped.
pub struct Lock {
    dir: PathBuf,
    _lock: nix::fcntl::Flock<fs::File>,
}

/// One claim file: the port and its holder.
struct ClaimFile {
    path: PathBuf,
    proto: String,
    port: u16,
    ip: IpAddr,
    id: String,
    netns: PathBuf,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_path_buf();
    move |source| NetError::Io { op, path, source }
}

fn unspecified(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn file_name(p: &PortMapping) -> String {
    format!(
        "{}-{}-{}",
        p.protocol.as_str(),
        p.host_port,
        unspecified(p.host_ip)
    )
}

/// Two host addresses of one port collide when equal or when either is
/// unspecified (every address).
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// Take the lock on the claims in the host-wide directory.
pub fn lock() -> Result<Lock> {
    lock_in(Path::new(DIR))
}

/// [`lock`] on the claims in `dir`.
pub fn lock_in(dir: &Path) -> Result<Lock> {
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io_err("lock", &path)(e.into()))?;
    Ok(Lock {
        dir: dir.to_path_buf(),
        _lock: lock,
    })
}

impl Lock {
    /// The claims, dead ones removed.
    fn live(&self) -> Result<Vec<ClaimFile>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '-');
            let (Some(proto), Some(port), Some(ip)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(port), Ok(ip)) = (port.parse::<u16>(), ip.parse::<IpAddr>()) else {
                continue;
            };
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            let mut lines = text.lines();
            let claim = ClaimFile {
                path: e.path(),
                proto: proto.to_string(),
                port,
                ip,
                id: lines.next().unwrap_or_default().to_string(),
                netns: PathBuf::from(lines.next().unwrap_or_default()),
            };
            if claim.id.is_empty() || !claim.netns.exists() {
                // its container's network is gone: nobody holds the port
                let _ = fs::remove_file(&claim.path);
                continue;
            }
            out.push(claim);
        }
        Ok(out)
    }

    /// Refuse `ports` when a live claim of another container than `id`
    /// holds one of them, with Docker's message (`name`: the container).
    pub fn check(&self, ports: &[PortMapping], id: &str, name: &str) -> Result<()> {
        let claims = self.live()?;
        for p in ports.iter().filter(|p| p.host_port != 0) {
            let ip = unspecified(p.host_ip);
            if claims.iter().any(|c| {
                c.id != id
                    && c.proto == p.protocol.as_str()
                    && c.port == p.host_port
                    && overlaps(c.ip, ip)
            }) {
                let addr = std::net::SocketAddr::new(ip, p.host_port);
                return Err(NetError::PortTaken(format!(
                    "driver failed programming external connectivity on endpoint {name}: \
                     Bind for {addr} failed: port is already allocated"
                )));
            }
        }
        Ok(())
    }

    /// Claim `ports` for container `id`, whose network namespace is
    /// `netns` (after [`Lock::check`], under the same lock).
    pub fn claim(&self, ports: &[PortMapping], id: &str, netns: &Path) -> Result<()> {
        for p in ports.iter().filter(|p| p.host_port != 0) {
            let path = self.dir.join(file_name(p));
            let tmp = self.dir.join(format!(".{}.{id}", file_name(p)));
            let written = fs::File::create(&tmp)
                .and_then(|mut f| write!(f, "{id}\n{}\n", netns.display()))
                .and_then(|()| fs::rename(&tmp, &path));
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("write", &path)(e));
            }
        }
        Ok(())
    }

    /// Release container `id`'s claims (idempotent).
    pub fn release(&self, id: &str) -> Result<()> {
        for c in self.live()?.into_iter().filter(|c| c.id == id) {
            match fs::remove_file(&c.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &c.path)(e)),
            }
        }
        Ok(())
    }
}

/// Release container `id`'s host-wide claims, if there is anything to
/// release (no directory: no claim was ever made).
pub fn release(id: &str) -> Result<()> {
    if !Path::new(DIR).exists() {
        return Ok(());
    }
    lock()?.release(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(specs: &[&str]) -> Vec<PortMapping> {
        specs
            .iter()
            .map(|s| crate::net::cni::parse_port(s).unwrap())
            .collect()
    }

    #[test]
    fn one_container_holds_a_port_until_released_or_its_namespace_goes() {
        let dir = tempfile::tempdir().unwrap();
        let claims = dir.path().join("ports");
        let ns_a = dir.path().join("ns-a");
        fs::write(&ns_a, "").unwrap();
        let lock = lock_in(&claims).unwrap();
        lock.check(&ports(&["8080:80"]), "a", "web-a").unwrap();
        lock.claim(&ports(&["8080:80", "127.0.0.1:9090:90/udp"]), "a", &ns_a)
            .unwrap();
        // the same port, any address: refused, Docker's words
        for spec in ["8080:80", "127.0.0.1:8080:81"] {
            let e = lock.check(&ports(&[spec]), "b", "web-b").unwrap_err();
            assert!(
                e.to_string().contains("port is already allocated")
                    && e.to_string().contains("web-b"),
                "{e}"
            );
        }
        // another protocol or address, or the holder itself: fine
        lock.check(
            &ports(&["8080:80/udp", "127.0.0.2:9090:90/udp"]),
            "b",
            "web-b",
        )
        .unwrap();
        lock.check(&ports(&["8080:80"]), "a", "web-a").unwrap();
        lock.release("a").unwrap();
        lock.check(&ports(&["8080:80"]), "b", "web-b").unwrap();
        // a claim whose namespace is gone is dead, and removed
        lock.claim(&ports(&["8080:80"]), "a", &ns_a).unwrap();
        fs::remove_file(&ns_a).unwrap();
        lock.check(&ports(&["8080:80"]), "b", "web-b").unwrap();
        let left: Vec<_> = fs::read_dir(&claims)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
