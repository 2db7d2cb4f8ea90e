//! CNI `portmap`: host ports forwarded to the container
//! (`runtimeConfig.portMappings`), as nftables DNAT rules made over netlink
//! (nft.rs). A chained plugin: it needs the previous plugin's result for
//! the container's addresses and passes that result on. Without port
//! mappings it does nothing at all.

use rcni::error::{CniError, Result};
use rcni::nft::{self, PortMapping};
use rcni::skel::{self, Args, Plugin};
use rcni::types::CniResult;
use serde_json::Value;

struct Portmap;

fn tag(conf: &Value, args: &Args) -> String {
    format!(
        "rcni-pm {} {}",
        conf["name"].as_str().unwrap_or_default(),
        args.container_id
    )
    .chars()
    .take(120)
    .collect()
}

fn mappings(conf: &Value) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for (i, m) in conf["runtimeConfig"]["portMappings"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("runtimeConfig.portMappings[{i}]");
        let port = |k: &str| -> Result<u16> {
            m[k].as_u64()
                .filter(|p| (1..=65535).contains(p))
                .map(|p| p as u16)
                .ok_or_else(|| {
                    CniError::config(format!("{field}.{k} must be a port number (1-65535)"))
                })
        };
        let proto = match m["protocol"]
            .as_str()
            .unwrap_or("tcp")
            .to_ascii_lowercase()
            .as_str()
        {
            "tcp" => libc::IPPROTO_TCP as u8,
            "udp" => libc::IPPROTO_UDP as u8,
            "sctp" => libc::IPPROTO_SCTP as u8,
            other => {
                return Err(CniError::config(format!(
                    "{field}.protocol {other:?} is not tcp, udp or sctp"
                )))
            }
        };
        let host_ip = match m["hostIP"].as_str().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| {
                CniError::config(format!("{field}.hostIP {s:?} is not an IP address"))
            })?),
        };
        out.push(PortMapping {
            host_ip,
            host_port: port("hostPort")?,
            container_port: port("containerPort")?,
            proto,
        });
    }
    Ok(out)
}

fn prev_result(conf: &Value) -> Result<CniResult> {
    conf.get("prevResult")
        .filter(|p| !p.is_null())
        .map(CniResult::from_value)
        .transpose()?
        .ok_or_else(|| {
            CniError::config("portmap must be called as a chained plugin (no prevResult)")
        })
}

impl Plugin for Portmap {
    fn add(&self, args: &Args, conf: &Value) -> Result<Value> {
        let version = skel::conf_version(conf)?;
        let prev = prev_result(conf)?;
        let maps = mappings(conf)?;
        if maps.is_empty() {
            return prev.to_version(&version);
        }
        let snat = conf["snat"].as_bool().unwrap_or(true);
        // 127.0.0.1:hostPort reaches the container only if the host side
        // may route loopback addresses
        if snat {
            for i in prev.interfaces.iter().filter(|i| i.sandbox.is_empty()) {
                let path = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", i.name);
                if std::path::Path::new(&path).exists() {
                    std::fs::write(&path, "1")
                        .map_err(|e| CniError::io(format!("write {path}"), e))?;
                }
            }
        }
        let tag = tag(conf, args);
        for ip in &prev.ips {
            if let Err(e) = nft::add_portmaps(&maps, ip.address, snat, &tag) {
                let _ = nft::remove_tagged(&tag);
                return Err(e);
            }
        }
        prev.to_version(&version)
    }

    fn del(&self, args: &Args, conf: &Value) -> Result<()> {
        mappings(conf)?;
        // by tag: no netns or prevResult needed
        nft::remove_tagged(&tag(conf, args))
    }

    fn check(&self, args: &Args, conf: &Value) -> Result<()> {
        let prev = prev_result(conf)?;
        if mappings(conf)?.is_empty() {
            return Ok(());
        }
        let tag = tag(conf, args);
        // only the families the container has (the reference looks for
        // IPv6 rules on IPv4-only containers)
        for v6 in [false, true] {
            if prev.ips.iter().any(|i| i.address.addr().is_ipv6() == v6)
                && !nft::has_tagged(nft::PORTMAP_PRE, &tag, v6)?
            {
                return Err(CniError::internal(format!(
                    "portmap: the rules for container {} are gone",
                    args.container_id
                )));
            }
        }
        Ok(())
    }
}

fn main() {
    skel::run(&Portmap)
}
