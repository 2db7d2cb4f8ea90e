//! `create` and `run`.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::container::{self, CreateOptions};

#[derive(clap::Args, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container process's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for ramdisk roots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (rrun makes no session keyring)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub container_id: String,
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach: return once the container runs
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
}

fn options<'a>(root: &'a Path, a: &'a CreateArgs) -> CreateOptions<'a> {
    CreateOptions {
        root,
        id: &a.container_id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        foreground: false,
        start_now: false,
    }
}

/// `create`: the container's process waits for `start`.
pub fn create(root: &Path, a: &CreateArgs) -> anyhow::Result<()> {
    container::create(&options(root, a))?;
    Ok(())
}

/// `run`: create and start; without -d, wait and return the exit status.
pub fn run(root: &Path, a: &RunArgs) -> anyhow::Result<i32> {
    if a.keep {
        bail!("run --keep is not implemented in rrun yet");
    }
    Ok(container::run(&options(root, &a.create), a.detach)?)
}
