//! `kill`: a signal (default SIGTERM) to the init, or with --all to every
//! process of the container.

use std::path::Path;

#[derive(clap::Args)]
pub struct KillArgs {
    pub container_id: String,
    pub signal: Option<String>,
    /// Signal every process in the container
    #[arg(short, long)]
    pub all: bool,
}

pub fn kill(root: &Path, a: &KillArgs) -> anyhow::Result<()> {
    let sig = crate::signal::parse(a.signal.as_deref().unwrap_or("SIGTERM"))?;
    crate::container::kill_container(root, &a.container_id, sig, a.all)?;
    Ok(())
}
