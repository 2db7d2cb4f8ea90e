//! `rrun`: runc's command line over the rrun library: the arguments are
//! parsed here, each verb is one call into `rrun::cli`.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use rrun::{cli, container};

/// musl's allocator hands freed memory back to the kernel at once: a
/// `rrun run` made some 300 mmap/munmap calls and the page faults that go
/// with them (a sixth of its CPU time). dlmalloc keeps its segments.
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[derive(Parser)]
#[command(
    name = "rrun",
    version,
    about = "A runc-compatible OCI container runtime"
)]
struct Cli {
    /// Directory for container state (default: /run/rrun, rootless:
    /// $XDG_RUNTIME_DIR/rrun)
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write log messages to this file (default: stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Debug logging
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not implemented: rrun writes cgroupfs directly)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rootless mode is detected
    #[arg(long = "rootless", id = "global_rootless", value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported)
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// `defer`: a subcommand's arguments are built only when it is the one
/// invoked (building every command's was about a fifth of a start-up).
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Create a container (the process waits for `start`)
    Create(cli::create::CreateArgs),
    /// Start a created container
    Start { container_id: String },
    /// Create and start a container; without -d, wait and exit with its status
    Run(cli::create::RunArgs),
    /// Print the state of a container as JSON
    State { container_id: String },
    /// Send a signal (default SIGTERM) to the container's init
    Kill(cli::kill::KillArgs),
    /// Delete a stopped container (with --force, kill it first)
    Delete {
        #[arg(short, long)]
        force: bool,
        container_id: String,
    },
    /// List containers
    List(cli::list::ListArgs),
    /// Run a process in a running container
    Exec(cli::exec::ExecArgs),
    /// List the processes of a container
    Ps(cli::ps::PsArgs),
    /// Freeze every process of a container
    Pause { container_id: String },
    /// Thaw a paused container
    Resume { container_id: String },
    /// Write a default config.json
    Spec(cli::spec::SpecArgs),
    /// Print what this runtime supports (OCI features JSON)
    Features,
    /// Change the resource limits of a container
    Update(cli::update::UpdateArgs),
    /// Print resource usage (and OOM) events of a container as JSON lines
    Events(cli::events::EventsArgs),
}

fn main() {
    // Before the command line is parsed: the re-executed copy parses it
    // anyway. Any argument that names a command entering a container
    // counts (an id spelled `run` costs a needless re-exec, no more).
    if std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec")
    {
        if let Err(e) = rrun::seal::ensure_sealed() {
            let cli = Cli::parse();
            fail(&cli, &anyhow::anyhow!(e));
        }
    }
    let cli = Cli::parse();
    if cli.debug {
        let builder = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG);
        match cli.log.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .ok()
        }) {
            Some(f) => builder
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .init(),
            None => builder.with_writer(std::io::stderr).init(),
        }
    } else {
        // warnings (a failing poststart hook...) always, like runc's
        let _ = tracing::subscriber::set_global_default(rrun::logging::Warnings(sink(&cli)));
    }
    match run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&cli, &e),
    }
}

fn sink(cli: &Cli) -> rrun::logging::Sink {
    rrun::logging::Sink {
        log: cli.log.clone(),
        json: cli.log_format == LogFormat::Json,
    }
}

/// Report an error like runc: on stderr, and in the --log file (JSON lines
/// with `level`, `msg`, `time`, which containerd reads back).
fn fail(cli: &Cli, e: &anyhow::Error) -> ! {
    sink(cli).error(&format!("{e:#}"));
    std::process::exit(1)
}

/// One call per verb (runtime/src/cli/).
fn run(opts: &Cli) -> anyhow::Result<i32> {
    if opts.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not implemented in rrun yet; use the default cgroupfs driver");
    }
    let root_dir = opts.root.clone().unwrap_or_else(cli::default_root);
    let root = root_dir.as_path();
    match &opts.command {
        Command::Create(a) => cli::create::create(root, a)?,
        Command::Run(a) => return cli::create::run(root, a),
        Command::Update(a) => cli::update::update(root, a)?,
        Command::Events(a) => cli::events::events(root, a)?,
        Command::Start { container_id } => container::start(root, container_id)?,
        Command::State { container_id } => cli::state::state(root, container_id)?,
        Command::Kill(a) => cli::kill::kill(root, a)?,
        Command::Delete {
            force,
            container_id,
        } => container::delete(root, container_id, *force)?,
        Command::List(a) => cli::list::list(root, a)?,
        Command::Ps(a) => cli::ps::ps(root, a)?,
        Command::Pause { container_id } => container::pause(root, container_id)?,
        Command::Resume { container_id } => container::resume(root, container_id)?,
        Command::Exec(a) => return cli::exec::exec(root, a),
        Command::Spec(a) => cli::spec::spec(a)?,
        Command::Features => cli::features::features()?,
    }
    Ok(0)
}
