//! `rbox serve` (`rbox system service`): the Docker Engine API on a unix
//! socket (the library's api/ module does the work).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use rbox::api::{self, Listen, ServeOptions};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: unix://PATH (tcp:// is not supported yet)
    #[arg(short = 'H', long = "host", value_name = "URI",
          default_value = concat!("unix://", "/run/rbox/docker.sock"))]
    pub host: String,
    /// The socket's group (a name or a number), which may then use it
    /// (mode 0660) [default: root]
    #[arg(long)]
    pub group: Option<String>,
    /// Exit after this many seconds with no connection open (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,
    /// Each request and its status on stderr
    #[arg(long)]
    pub debug: bool,
}

pub fn serve(root: &Path, config: Option<PathBuf>, a: ServeArgs) -> Result<ExitCode> {
    let opts = ServeOptions {
        listen: Listen::parse(&a.host)?,
        group: a.group,
        idle_timeout: (a.timeout > 0).then(|| Duration::from_secs(a.timeout)),
        root: root.to_path_buf(),
        config,
        debug: a.debug,
    };
    api::serve(&opts)?;
    Ok(ExitCode::SUCCESS)
}
