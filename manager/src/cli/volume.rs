//! `rbox volume …`: named volumes.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{each, print_removed, Ctx};
use rbox::format::table;
use rbox::volume;

#[derive(Subcommand)]
pub enum VolumeVerb {
    /// Make a named volume
    Create { name: Option<String> },
    /// List volumes
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (not while a container uses them, unless -f)
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

/// `rbox volume create|ls|inspect|rm|prune`.
pub fn volume(ctx: &Ctx, verb: VolumeVerb) -> Result<ExitCode> {
    let store = &ctx.store;
    match verb {
        VolumeVerb::Create { name } => println!("{}", volume::create(store, name.as_deref())?),
        VolumeVerb::Ls { quiet } => {
            let vols = volume::list(store)?;
            if quiet {
                vols.iter().for_each(|(n, _)| println!("{n}"));
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                rows.extend(vols.into_iter().map(|(n, _)| vec!["local".to_string(), n]));
                print!("{}", table(&rows));
            }
        }
        VolumeVerb::Inspect { names } => {
            let all = names
                .iter()
                .map(|n| volume::inspect(store, n))
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        VolumeVerb::Rm { force, names } => {
            return Ok(each(&names, |n| volume::remove(store, n, force)))
        }
        VolumeVerb::Prune { .. } => {
            print_removed("Deleted Volumes:", &volume::prune(store)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
