//! CNI `host-local` IPAM: addresses from configured ranges, leases on disk
//! in the reference plugin's format. Drop-in for the reference plugin.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_types::Attachment;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{CniError, Result};
use crate::hostlocal::{self, Config, HostLocalConf};
use crate::skel::{Args, Conf, Plugin};

/// The plugin, for [`crate::skel::run`].
pub struct HostLocal;

/// What a DEL reads: where the leases are (the rest may be unusable).
#[derive(Deserialize)]
struct Leases {
    #[serde(default)]
    ipam: Option<LeaseDir>,
}

#[derive(Deserialize)]
struct LeaseDir {
    #[serde(rename = "dataDir", default)]
    data_dir: Option<PathBuf>,
}

/// What a GC reads besides the ranges.
#[derive(Deserialize)]
struct InUse {
    #[serde(rename = "cni.dev/valid-attachments", default)]
    valid: Vec<Attachment>,
}

/// Addresses asked for: CNI_ARGS `IP=a,b`, `runtimeConfig.ips`, `args.cni.ips`.
fn requested(args: &Args, conf: &HostLocalConf) -> Result<Vec<IpAddr>> {
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
    for s in &conf.runtime_config.ips {
        push(s, "runtimeConfig.ips")?;
    }
    for s in conf.args.cni.iter().flat_map(|c| &c.ips) {
        push(s, "args.cni.ips")?;
    }
    Ok(out)
}

fn config(conf: &Conf) -> Result<(HostLocalConf, Config)> {
    let c: HostLocalConf = conf.fields("host-local")?;
    let cfg = Config::parse(&conf.name, &c)?;
    Ok((c, cfg))
}

impl Plugin for HostLocal {
    fn add(&self, args: &Args, conf: &Conf) -> Result<Value> {
        let (c, cfg) = config(conf)?;
        let result = hostlocal::allocate(
            &cfg,
            &args.container_id,
            &args.ifname,
            &requested(args, &c)?,
        )?;
        Ok(result.to_version(&conf.version)?)
    }

    /// Only the lease directory matters (the ranges may be anything):
    /// without a usable network name there is nothing this plugin made.
    fn del(&self, args: &Args, conf: &Conf) -> Result<()> {
        let data_dir = conf
            .fields::<Leases>("host-local")
            .ok()
            .and_then(|l| l.ipam)
            .and_then(|i| i.data_dir);
        let Ok(dir) = Config::dir_of(&conf.name, data_dir.as_deref()) else {
            return Ok(());
        };
        hostlocal::release_in(&dir, &args.container_id, &args.ifname)
    }

    fn check(&self, args: &Args, conf: &Conf) -> Result<()> {
        let (_, cfg) = config(conf)?;
        let store = hostlocal::Store::open(&cfg.dir())?;
        if store.find(&args.container_id, &args.ifname).is_empty() {
            return Err(CniError::internal(format!(
                "host-local: no address is allocated to container {} ({}) in network {}",
                args.container_id, args.ifname, cfg.network
            )));
        }
        Ok(())
    }

    fn status(&self, conf: &Conf) -> Result<()> {
        let (_, cfg) = config(conf)?;
        std::fs::create_dir_all(cfg.dir()).map_err(|e| {
            CniError::io(
                format!("host-local: {} is not usable", cfg.dir().display()),
                e,
            )
        })
    }

    fn gc(&self, conf: &Conf) -> Result<()> {
        let (_, cfg) = config(conf)?;
        let valid: Vec<(String, String)> = conf
            .fields::<InUse>("host-local")?
            .valid
            .into_iter()
            .filter(|a| !a.container_id.is_empty())
            .map(|a| (a.container_id, a.ifname))
            .collect();
        hostlocal::gc(&cfg, &valid)
    }
}
