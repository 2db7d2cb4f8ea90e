//! The command line: Docker's verbs and flags (clap), each verb one short
//! call into the library, and Docker's output shapes. One file per kind of
//! object: image.rs, registry.rs, run.rs and container.rs, volume.rs,
//! network.rs, system.rs, serve.rs (the Docker API server). alias.rs rewrites Docker's management-command
//! spellings (`image ls`), status.rs gives a failure Docker's exit status.

pub mod alias;
pub mod build;
pub mod container;
pub mod image;
pub mod network;
pub mod registry;
pub mod run;
pub mod serve;
pub mod status;
pub mod system;
pub mod volume;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use rbox::registry::config::{Config, DEFAULT_CONFIG};
use rbox::store::{Store, DEFAULT_ROOT};

#[derive(Parser)]
#[command(name = "rbox", version, about = "A Docker-like container manager")]
pub struct Cli {
    /// Where images, layers and containers are stored
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Registry mirrors and insecure registries (TOML)
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
pub enum Verb {
    /// Build an image from a Dockerfile and a context
    Build(build::BuildArgs),
    /// The build cache
    #[command(subcommand)]
    Builder(build::BuilderVerb),
    /// Make a one-layer image from a rootfs tarball (plain, gzip or zstd)
    Import(image::ImportArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Write images to a tar archive (stdout unless -o)
    Save(image::SaveArgs),
    /// Load images from a docker-archive or OCI archive (stdin unless -i)
    Load(image::LoadArgs),
    /// Log in to a registry (checks the credentials, then stores them)
    Login(registry::LoginArgs),
    /// Forget the credentials of a registry
    Logout(registry::LogoutArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Add a name to an image
    Tag(image::TagArgs),
    /// Remove images (untag; delete when no name is left)
    Rmi(image::RmiArgs),
    /// Details of containers or images as a JSON array
    Inspect(system::InspectArgs),
    /// Create a container from an image (not started)
    Create(run::RunArgs),
    /// Create and run a container
    Run(run::RunArgs),
    /// Run a command in a running container
    Exec(container::ExecArgs),
    /// A container's output
    Logs(container::LogsArgs),
    /// Copy files between a container and the host (CONTAINER:PATH, or - for a tar stream)
    Cp(container::CpArgs),
    /// Stop, then start containers
    Restart(container::RestartArgs),
    /// Attach to a running container's output (and input with -i)
    Attach(container::ContainerArg),
    /// Wait for containers to stop; print their exit codes
    Wait(container::ContainersArg),
    /// Freeze the processes of containers
    Pause(container::ContainersArg),
    /// Thaw paused containers
    Unpause(container::ContainersArg),
    /// Give a container a new name
    Rename(container::RenameArgs),
    /// A container's published ports
    Port(container::ContainerArg),
    /// A container's processes
    Top(container::ContainerArg),
    /// Running containers' CPU, memory, network, block I/O and pids
    Stats(container::StatsArgs),
    /// What this host has for containers
    Info,
    /// The versions of rbox and of the runtime, shim and CNI plugins it uses
    Version(system::VersionArgs),
    /// Container housekeeping; `container ls|rm|run|exec|…` are the verbs
    /// of the same names (`container ls` is `ps`)
    #[command(subcommand)]
    Container(container::ContainerVerb),
    /// Image housekeeping; `image ls|rm|inspect|pull|push|tag|history|
    /// save|load|import` are the verbs of the same names (`image ls` is
    /// `images`, `image rm` is `rmi`)
    #[command(subcommand)]
    Image(image::ImageVerb),
    /// Named volumes
    #[command(subcommand)]
    Volume(volume::VolumeVerb),
    /// User-defined bridge networks
    #[command(subcommand)]
    Network(network::NetworkVerb),
    /// Disk use and clean-up of the whole store
    #[command(subcommand)]
    System(system::SystemVerb),
    /// Serve the Docker Engine API on a unix socket (`system service`)
    Serve(serve::ServeArgs),
    /// The shim's exit hook: a container's init exited
    #[command(name = "__exited", hide = true)]
    Exited(container::ExitedArgs),
    /// Run a created or stopped container
    Start(container::StartArgs),
    /// Stop running containers (TERM, then KILL after the timeout)
    Stop(container::StopArgs),
    /// Send a signal to running containers
    Kill(container::KillArgs),
    /// Remove containers
    Rm(container::RmArgs),
    /// List containers
    Ps(container::PsArgs),
    /// The layers' history of an image
    History(image::HistoryArgs),
    /// OCI bundles from images (for the container verbs to come)
    #[command(hide = true, subcommand)]
    Bundle(image::BundleVerb),
}

impl Cli {
    /// How a failure of this verb maps to an exit status.
    pub fn status_kind(&self) -> status::Verb {
        match &self.verb {
            Verb::Run(_) | Verb::Create(_) => status::Verb::Run,
            Verb::Exec(_) => status::Verb::Exec,
            _ => status::Verb::Other,
        }
    }
}

/// What a verb works with: the store, and the registry settings (read only
/// by the verbs that talk to registries).
pub struct Ctx {
    pub store: Store,
    config: Option<PathBuf>,
}

impl Ctx {
    /// /etc/rbox/rbox.toml, or the file `--config` names (which must exist).
    pub fn config(&self) -> Result<Config> {
        load_config(self.config.as_deref())
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p, true)?,
        None => Config::load(Path::new(DEFAULT_CONFIG), false)?,
    })
}

/// Runs the verb; its exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // the credential verbs and version need no store
    let verb = match cli.verb {
        Verb::Login(a) => return registry::login(&load_config(cli.config.as_deref())?, a),
        Verb::Logout(a) => return registry::logout(a),
        Verb::Version(a) => return system::version(a),
        // each request opens the store (api/state.rs)
        Verb::Serve(a) => return serve::serve(&cli.root, cli.config, a),
        // the attached run finishes its container: wait for it, and open no
        // store for nothing (unless it left the container to us)
        Verb::Exited(a) if !container::exit_is_ours(&cli.root, &a) => return Ok(ExitCode::SUCCESS),
        v => v,
    };
    let store = Store::open(&cli.root)
        .with_context(|| format!("open the store in {}", cli.root.display()))?;
    // containers whose shim was killed are finished first, as containerd does
    if let Err(e) = rbox::container::recover_orphans(&store) {
        eprintln!("rbox: warning: {e}");
    }
    let ctx = Ctx {
        store,
        config: cli.config,
    };
    match verb {
        Verb::Build(a) => build::build(&ctx, a),
        Verb::Builder(v) => build::builder(&ctx, v),
        Verb::Import(a) => image::import(&ctx, a),
        Verb::Pull(a) => registry::pull(&ctx, a),
        Verb::Push(a) => registry::push(&ctx, a),
        Verb::Save(a) => image::save(&ctx, a),
        Verb::Load(a) => image::load(&ctx, a),
        Verb::Images(a) => image::images(&ctx, a),
        Verb::Tag(a) => image::tag(&ctx, a),
        Verb::Rmi(a) => image::rmi(&ctx, a),
        Verb::History(a) => image::history(&ctx, a),
        Verb::Image(v) => image::image(&ctx, v),
        Verb::Bundle(v) => image::bundle(&ctx, v),
        Verb::Inspect(a) => system::inspect(&ctx, a),
        Verb::Info => system::info(&ctx),
        Verb::System(v) => system::system(&ctx, v),
        Verb::Create(a) => run::create(&ctx, a),
        Verb::Run(a) => run::run(&ctx, a),
        Verb::Start(a) => container::start(&ctx, a),
        Verb::Exec(a) => container::exec(&ctx, a),
        Verb::Logs(a) => container::logs(&ctx, a),
        Verb::Cp(a) => container::cp(&ctx, a),
        Verb::Restart(a) => container::restart(&ctx, a),
        Verb::Attach(a) => container::attach(&ctx, a),
        Verb::Wait(a) => container::wait(&ctx, a),
        Verb::Pause(a) => container::pause(&ctx, a, true),
        Verb::Unpause(a) => container::pause(&ctx, a, false),
        Verb::Rename(a) => container::rename(&ctx, a),
        Verb::Port(a) => container::port(&ctx, a),
        Verb::Top(a) => container::top(&ctx, a),
        Verb::Stats(a) => container::stats(&ctx, a),
        Verb::Stop(a) => container::stop(&ctx, a),
        Verb::Kill(a) => container::kill(&ctx, a),
        Verb::Rm(a) => container::rm(&ctx, a),
        Verb::Ps(a) => container::ps(&ctx, a),
        Verb::Container(v) => container::container(&ctx, v),
        Verb::Exited(a) => container::exited(&ctx, a),
        Verb::Volume(v) => volume::volume(&ctx, v),
        Verb::Network(v) => network::network(&ctx, v),
        Verb::Login(_) | Verb::Logout(_) | Verb::Version(_) | Verb::Serve(_) => {
            unreachable!("handled before the store opens")
        }
    }
}

/// Applies `f` to each name, printing the name as given when it succeeds
/// (Docker's style) and the error when not; the exit status is 1 if any
/// failed.
pub fn each<E: std::fmt::Display>(
    names: &[String],
    mut f: impl FnMut(&str) -> std::result::Result<(), E>,
) -> ExitCode {
    each_line(names, |n| f(n).map(|()| n.to_string()))
}

/// Prints what `f` gives each name, or the error; the exit status is 1 if
/// any failed.
pub fn each_line<T: std::fmt::Display, E: std::fmt::Display>(
    names: &[String],
    mut f: impl FnMut(&str) -> std::result::Result<T, E>,
) -> ExitCode {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("rbox: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A container's (or rbox's) exit code as rbox's exit status.
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Asks on stderr, reads a line of stdin: whether it was yes.
pub fn confirmed(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Prints a prune's section: its title, then one name a line (nothing when
/// none).
pub fn print_removed(title: &str, names: &[String]) {
    if !names.is_empty() {
        println!("{title}");
        names.iter().for_each(|n| println!("{n}"));
    }
}
