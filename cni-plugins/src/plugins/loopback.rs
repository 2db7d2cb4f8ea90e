//! CNI `loopback`: brings `lo` up in the container's network namespace
//! (down on DEL). Drop-in for the reference plugin.

use cni_types::{CniResult, Interface, IpConfig};
use serde_json::Value;

use crate::error::{CniError, Result};
use crate::skel::{Args, Conf, Plugin};
use crate::{netns, nl};

/// The plugin, for [`crate::skel::run`].
pub struct Loopback;

fn netns_of(args: &Args) -> Result<&std::path::Path> {
    args.netns
        .as_deref()
        .ok_or_else(|| CniError::new(crate::error::code::INVALID_ENV, "CNI_NETNS is missing"))
}

impl Plugin for Loopback {
    fn add(&self, args: &Args, conf: &Conf) -> Result<Value> {
        let ns = netns_of(args)?;
        netns::run_in(ns, || {
            nl::with_handle(|h| async move { nl::set_up(&h, "lo", true).await })
        })?;
        // a prevResult is passed through; otherwise lo and its addresses
        let result = match conf.prev_result()? {
            Some(prev) => prev,
            None => CniResult {
                interfaces: vec![Interface {
                    name: "lo".into(),
                    mac: "00:00:00:00:00:00".into(),
                    mtu: None,
                    sandbox: ns.display().to_string(),
                }],
                ips: vec![
                    IpConfig {
                        interface: Some(0),
                        address: "127.0.0.1/8".parse().expect("literal"),
                        gateway: None,
                    },
                    IpConfig {
                        interface: Some(0),
                        address: "::1/128".parse().expect("literal"),
                        gateway: None,
                    },
                ],
                ..Default::default()
            },
        };
        Ok(result.to_version(&conf.version)?)
    }

    fn del(&self, args: &Args, _conf: &Conf) -> Result<()> {
        // nothing to undo when the namespace is already gone
        let Some(ns) = args.netns.as_deref().filter(|p| p.exists()) else {
            return Ok(());
        };
        netns::run_in(ns, || {
            nl::with_handle(|h| async move { nl::set_up(&h, "lo", false).await })
        })
    }

    fn check(&self, args: &Args, _conf: &Conf) -> Result<()> {
        let ns = netns_of(args)?;
        let up = netns::run_in(ns, || {
            nl::with_handle(|h| async move { nl::link_is_up(&h, "lo").await })
        })?;
        if !up {
            return Err(CniError::internal("loopback interface lo is down"));
        }
        Ok(())
    }
}
