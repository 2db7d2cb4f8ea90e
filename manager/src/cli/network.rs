//! `rbox network …`: user-defined bridge networks.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{each, print_removed, Ctx};
use rbox::container;
use rbox::format::table;
use rbox::image::short_id;
use rbox::net::usernet;
use rbox::template::Template;

#[derive(Subcommand)]
pub enum NetworkVerb {
    /// Make a bridge network (a free /24 of 10.89.128.0/17 unless --subnet)
    Create {
        /// Only bridge
        #[arg(short, long)]
        driver: Option<String>,
        /// IPv4 CIDR, like 10.89.130.0/24
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address (the subnet's first by default)
        #[arg(long)]
        gateway: Option<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only ids
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show networks as JSON
    Inspect {
        /// A Go-template subset, like '{{.IPAM.Config}}'
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (not while a container uses them)
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every user network no container uses
    Prune {
        /// Do not ask (rbox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

/// `rbox network create|ls|inspect|rm|prune`.
pub fn network(ctx: &Ctx, verb: NetworkVerb) -> Result<ExitCode> {
    let store = &ctx.store;
    match verb {
        NetworkVerb::Create {
            driver,
            subnet,
            gateway,
            name,
        } => {
            let n = usernet::create(
                store,
                &name,
                driver.as_deref(),
                subnet.as_deref(),
                gateway.as_deref(),
            )?;
            println!("{}", n.id);
        }
        NetworkVerb::Ls { quiet, no_trunc } => {
            let id = |full: String| {
                if no_trunc {
                    full
                } else {
                    short_id(&full).to_string()
                }
            };
            let all = usernet::summaries(store)?;
            if quiet {
                all.into_iter().for_each(|(i, _, _)| println!("{}", id(i)));
            } else {
                let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                    .map(String::from)
                    .to_vec()];
                rows.extend(
                    all.into_iter()
                        .map(|(i, n, d)| vec![id(i), n, d, "local".into()]),
                );
                print!("{}", table(&rows));
            }
        }
        NetworkVerb::Inspect { format, names } => {
            let template = format.as_deref().map(Template::parse).transpose()?;
            let containers = container::list(store)?;
            let all = names
                .iter()
                .map(|n| usernet::inspect(store, n, &containers))
                .collect::<Result<Vec<_>, _>>()?;
            match template {
                Some(t) => all.iter().for_each(|v| println!("{}", t.render(v))),
                None => println!("{}", serde_json::to_string_pretty(&all)?),
            }
        }
        NetworkVerb::Rm { names } => {
            let containers = container::list(store)?;
            return Ok(each(&names, |n| {
                usernet::remove(store, n, &containers).map(drop)
            }));
        }
        NetworkVerb::Prune { .. } => {
            let gone = usernet::prune(store, &container::list(store)?)?;
            print_removed("Deleted Networks:", &gone);
        }
    }
    Ok(ExitCode::SUCCESS)
}
