//! CNI `portmap`: host ports forwarded to the container
//! (`runtimeConfig.portMappings`), as nftables DNAT rules made over netlink
//! (nft.rs). A chained plugin: it needs the previous plugin's result for
//! the container's addresses and passes that result on. Without port
//! mappings it does nothing at all.

use cni_types::{CniResult, PortMapping, PortmapConf, Protocol};
use serde::Deserialize;
use serde_json::Value;

use crate::conntrack;
use crate::error::{CniError, Result};
use crate::nft::{self, Condition, PortmapOpts};
use crate::skel::{Args, Conf, Plugin};

/// The plugin, for [`crate::skel::run`].
pub struct Portmap;

fn tag(conf: &Conf, args: &Args) -> String {
    format!("rcni-pm {} {}", conf.name, args.container_id)
        .chars()
        .take(120)
        .collect()
}

/// What portmap reads of `runtimeConfig` (read apart from its own
/// fields: DEL needs it when they are unusable).
#[derive(Deserialize)]
struct Runtime {
    #[serde(rename = "runtimeConfig", default)]
    runtime_config: Mappings,
}

#[derive(Default, Deserialize)]
struct Mappings {
    #[serde(rename = "portMappings", default)]
    port_mappings: Vec<PortMapping>,
}

fn mappings(conf: &Conf) -> Result<Vec<PortMapping>> {
    let maps = conf
        .fields::<Runtime>("portmap")?
        .runtime_config
        .port_mappings;
    for (i, m) in maps.iter().enumerate() {
        for (k, port) in [
            ("hostPort", m.host_port),
            ("containerPort", m.container_port),
        ] {
            if port == 0 {
                return Err(CniError::config(format!(
                    "runtimeConfig.portMappings[{i}].{k} must be a port number (1-65535)"
                )));
            }
        }
    }
    Ok(maps)
}

/// `conditionsV4`/`conditionsV6`: iptables match arguments in the reference
/// plugin; the ones that make sense before routing are translated.
fn conditions(words: Option<&[String]>, key: &str) -> Result<Vec<Condition>> {
    let Some(words) = words else {
        return Ok(Vec::new());
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

fn options(conf: &Conf) -> Result<PortmapOpts> {
    let c: PortmapConf = conf.fields("portmap")?;
    if c.external_set_mark_chain
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(CniError::new(
            crate::error::code::UNSUPPORTED_FIELD,
            "portmap: externalSetMarkChain names an iptables chain, which these nftables rules \
             cannot jump to; set markMasqBit to the bit that chain sets instead (kube-proxy: 14)",
        ));
    }
    let mark_bit = match c.mark_masq_bit {
        None => 13,
        Some(b @ 0..=31) => b,
        Some(b) => {
            return Err(CniError::config(format!(
                "portmap: markMasqBit {b} is not in 0..31"
            )))
        }
    };
    Ok(PortmapOpts {
        snat: c.snat.unwrap_or(true),
        mark_bit,
        conditions_v4: conditions(c.conditions_v4.as_deref(), "conditionsV4")?,
        conditions_v6: conditions(c.conditions_v6.as_deref(), "conditionsV6")?,
    })
}

/// Forget the UDP flows to the mapped host ports (see conntrack.rs), in the
/// families the container has.
fn flush_udp(maps: &[PortMapping], v6s: &[bool]) -> Result<()> {
    let ports: Vec<u16> = maps
        .iter()
        .filter(|m| m.protocol == Protocol::Udp)
        .map(|m| m.host_port)
        .collect();
    for v6 in v6s {
        conntrack::delete_by_dport(*v6, libc::IPPROTO_UDP as u8, &ports)?;
    }
    Ok(())
}

fn prev_result(conf: &Conf) -> Result<CniResult> {
    conf.prev_result()?.ok_or_else(|| {
        CniError::config("portmap must be called as a chained plugin (no prevResult)")
    })
}

impl Plugin for Portmap {
    fn add(&self, args: &Args, conf: &Conf) -> Result<Value> {
        let prev = prev_result(conf)?;
        let maps = mappings(conf)?;
        let opts = options(conf)?;
        if maps.is_empty() {
            return Ok(prev.to_version(&conf.version)?);
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
        Ok(prev.to_version(&conf.version)?)
    }

    /// By tag: no netns, prevResult or readable mappings needed (a DEL
    /// that fails on a mapping it cannot read leaves the runtime unable to
    /// remove the sandbox).
    fn del(&self, args: &Args, conf: &Conf) -> Result<()> {
        nft::remove_tagged(&tag(conf, args))?;
        let maps = mappings(conf);
        if maps.as_ref().map_or(true, |m| !m.is_empty()) {
            // and what the reference plugin's ADD made, if it did
            crate::iptcompat::remove_reference_rules(&conf.name, &args.container_id)?;
        }
        // best effort: the rules are gone, which is what DEL promises
        if let Ok(maps) = maps {
            let _ = flush_udp(&maps, &[false, true]);
        }
        Ok(())
    }

    fn check(&self, args: &Args, conf: &Conf) -> Result<()> {
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
