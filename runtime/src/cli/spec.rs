//! `spec`: a default config.json in the bundle.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct SpecArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long)]
    pub rootless: bool,
}

pub fn spec(a: &SpecArgs) -> anyhow::Result<()> {
    write_default(&a.bundle, a.rootless)
}

fn write_default(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{}: file exists; remove it first", path.display());
    }
    let spec = crate::features::default_spec(rootless);
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
        .with_context(|| path.display().to_string())?;
    Ok(())
}
