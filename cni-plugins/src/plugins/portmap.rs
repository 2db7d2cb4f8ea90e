//! CNI `portmap`: host ports forwarded to the container
//! (`runtimeConfig.portMappings`), as nftables DNAT rules made over netlink
//! (nft.rs). A chained plugin: it needs the previous plugin's result for
//! the container's addresses and passes that result on. Without port
//! mappings it does nothing at all.

use crate::conntrack;
use crate::error::{CniError, Result};
use crate::nft::{self, Condition, PortMapping, PortmapOpts};
use crate::skel::{self, Args, Plugin};
use crate::types::CniResult;
use serde_json::Value;

/// The plugin, for [`crate::skel::run`].
pub struct Portmap;

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

/// `conditionsV4`/`conditionsV6`: iptables match arguments in the reference
/// plugin; the ones that make sense before routing are translated.
fn conditions(conf: &Value, key: &str) -> Result<Vec<Condition>> {
    let words: Vec<&str> = match &conf[key] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|w| {
                w.as_str()
                    .ok_or_else(|| CniError::config(format!("{key}: {w} is not a string")))
            })
            .collect::<Result<_>>()?,
        v => {
            return Err(CniError::config(format!(
                "{key}: {v} is not a list of strings"
            )))
        }
    };
    let v4 = key == "conditionsV4";
    let mut out = Vec::new();
    let mut it = words.iter().flat_map(|w| w.split_whitespace());
    while let Some(mut word) = it.next() {
        let negate = word == "!";
        if negate {
            word = it
                .next()
                .ok_or_else(|| CniError::config(format!("{key}: \"!\" at the end")))?;
        }
        let value = it
            .next()
            .ok_or_else(|| CniError::config(format!("{key}: {word} needs a value")))?;
        let net = || -> Result<ipnet::IpNet> {
            let net = value
                .parse::<ipnet::IpNet>()
                .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    CniError::config(format!(
                        "{key}: {word} {value:?} is not an address or subnet"
                    ))
                })?;
            if net.addr().is_ipv4() != v4 {
                return Err(CniError::config(format!(
                    "{key}: {word} {value} is not an IPv{} address",
                    if v4 { 4 } else { 6 }
                )));
            }
            Ok(net)
        };
        out.push(match word {
            "-s" | "--source" | "--src" => Condition::Source { net: net()?, negate },
            "-d" | "--destination" | "--dst" => Condition::Destination { net: net()?, negate },
            "-i" | "--in-interface" => {
                if value.is_empty() || value.len() > 15 {
                    return Err(CniError::config(format!(
                        "{key}: {value:?} is not an interface name"
                    )));
                }
                Condition::InInterface { name: value.to_string(), negate }
            }
            other => {
                return Err(CniError::new(
                    crate::error::code::UNSUPPORTED_FIELD,
                    format!("{key}: the match {other:?} is not supported (only -s, -d and -i, optionally negated with !)"),
                ))
            }
        });
    }
    Ok(out)
}

fn options(conf: &Value) -> Result<PortmapOpts> {
    if conf["externalSetMarkChain"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(CniError::new(
            crate::error::code::UNSUPPORTED_FIELD,
            "portmap: externalSetMarkChain names an iptables chain, which these nftables rules \
             cannot jump to; set markMasqBit to the bit that chain sets instead (kube-proxy: 14)",
        ));
    }
    let mark_bit =
        match &conf["markMasqBit"] {
            Value::Null => 13,
            v => v.as_u64().filter(|b| *b <= 31).ok_or_else(|| {
                CniError::config(format!("portmap: markMasqBit {v} is not in 0..31"))
            })? as u32,
        };
    Ok(PortmapOpts {
        snat: conf["snat"].as_bool().unwrap_or(true),
        mark_bit,
        conditions_v4: conditions(conf, "conditionsV4")?,
        conditions_v6: conditions(conf, "conditionsV6")?,
    })
}

/// Forget the UDP flows to the mapped host ports (see conntrack.rs), in the
/// families the container has.
fn flush_udp(maps: &[PortMapping], v6s: &[bool]) -> Result<()> {
    let ports: Vec<u16> = maps
        .iter()
        .filter(|m| m.proto == libc::IPPROTO_UDP as u8)
        .map(|m| m.host_port)
        .collect();
    for v6 in v6s {
        conntrack::delete_by_dport(*v6, libc::IPPROTO_UDP as u8, &ports)?;
    }
    Ok(())
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
        let opts = options(conf)?;
        if maps.is_empty() {
            return prev.to_version(&version);
        }
        // 127.0.0.1:hostPort reaches the container only if the host side
        // may route loopback addresses
        if opts.snat {
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
            if let Err(e) = nft::add_portmaps(&maps, ip.address, &opts, &tag) {
                let _ = nft::remove_tagged(&tag);
                return Err(e);
            }
        }
        if let Err(e) = flush_udp(
            &maps,
            &conntrack::families(prev.ips.iter().map(|i| i.address.addr())),
        ) {
            let _ = nft::remove_tagged(&tag);
            return Err(e);
        }
        prev.to_version(&version)
    }

    /// By tag: no netns, prevResult or readable mappings needed (a DEL
    /// that fails on a mapping it cannot read leaves the runtime unable to
    /// remove the sandbox).
    fn del(&self, args: &Args, conf: &Value) -> Result<()> {
        nft::remove_tagged(&tag(conf, args))?;
        let maps = mappings(conf);
        if maps.as_ref().map_or(true, |m| !m.is_empty()) {
            // and what the reference plugin's ADD made, if it did
            crate::iptcompat::remove_reference_rules(
                conf["name"].as_str().unwrap_or_default(),
                &args.container_id,
            )?;
        }
        // best effort: the rules are gone, which is what DEL promises
        if let Ok(maps) = maps {
            let _ = flush_udp(&maps, &[false, true]);
        }
        Ok(())
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
