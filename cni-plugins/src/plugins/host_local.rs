//! CNI `host-local` IPAM: addresses from configured ranges, leases on disk
//! in the reference plugin's format. Drop-in for the reference plugin.

use std::net::IpAddr;

use crate::error::{CniError, Result};
use crate::hostlocal::{self, Config};
use crate::skel::{self, Args, Plugin};
use serde_json::Value;

/// The plugin, for [`crate::skel::run`].
pub struct HostLocal;

/// Addresses asked for: CNI_ARGS `IP=a,b`, `runtimeConfig.ips`, `args.cni.ips`.
fn requested(args: &Args, conf: &Value) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    let mut push = |s: &str, from: &str| -> Result<()> {
        let ip = s.split('/').next().unwrap_or(s);
        out.push(
            ip.parse()
                .map_err(|_| CniError::config(format!("{from}: {s:?} is not an IP address")))?,
        );
        Ok(())
    };
    if let Some(list) = args.args.get("IP") {
        for s in list.split(',').filter(|s| !s.is_empty()) {
            push(s, "CNI_ARGS IP")?;
        }
    }
    for (v, from) in [
        (&conf["runtimeConfig"]["ips"], "runtimeConfig.ips"),
        (&conf["args"]["cni"]["ips"], "args.cni.ips"),
    ] {
        for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
            push(s, from)?;
        }
    }
    Ok(out)
}

impl Plugin for HostLocal {
    fn add(&self, args: &Args, conf: &Value) -> Result<Value> {
        let version = skel::conf_version(conf)?;
        let cfg = Config::parse(conf)?;
        let result = hostlocal::allocate(
            &cfg,
            &args.container_id,
            &args.ifname,
            &requested(args, conf)?,
        )?;
        result.to_version(&version)
    }

    /// Only the lease directory matters (the ranges may be anything):
    /// without a usable network name there is nothing this plugin made.
    fn del(&self, args: &Args, conf: &Value) -> Result<()> {
        let Ok(dir) = Config::dir_of(conf) else {
            return Ok(());
        };
        hostlocal::release_in(&dir, &args.container_id, &args.ifname)
    }

    fn check(&self, args: &Args, conf: &Value) -> Result<()> {
        let cfg = Config::parse(conf)?;
        let store = hostlocal::Store::open(&cfg.dir())?;
        if store.find(&args.container_id, &args.ifname).is_empty() {
            return Err(CniError::internal(format!(
                "host-local: no address is allocated to container {} ({}) in network {}",
                args.container_id, args.ifname, cfg.network
            )));
        }
        Ok(())
    }

    fn status(&self, conf: &Value) -> Result<()> {
        let cfg = Config::parse(conf)?;
        std::fs::create_dir_all(cfg.dir()).map_err(|e| {
            CniError::io(
                format!("host-local: {} is not usable", cfg.dir().display()),
                e,
            )
        })
    }

    fn gc(&self, conf: &Value) -> Result<()> {
        let cfg = Config::parse(conf)?;
        let valid: Vec<(String, String)> = conf["cni.dev/valid-attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    a["containerID"].as_str()?.to_string(),
                    a["ifname"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        hostlocal::gc(&cfg, &valid)
    }
}
