//! `rrun`: runc's command line over the rrun library.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rrun::container::{self, CreateOptions};
use rrun::exec::{self, ExecOptions};
use rrun::state::State;

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

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Clone)]
struct CreateArgs {
    /// Path to the bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// File to write the container process's pid to
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for ramdisk roots)
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility (rrun makes no session keyring)
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    container_id: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container (the process waits for `start`)
    Create(CreateArgs),
    /// Start a created container
    Start { container_id: String },
    /// Create and start a container; without -d, wait and exit with its status
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach: return once the container runs
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Print the state of a container as JSON
    State { container_id: String },
    /// Send a signal (default SIGTERM) to the container's init
    Kill {
        container_id: String,
        signal: Option<String>,
        /// Signal every process in the container
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a stopped container (with --force, kill it first)
    Delete {
        #[arg(short, long)]
        force: bool,
        container_id: String,
    },
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Only print ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a process in a running container
    Exec(ExecArgs),
    /// List the processes of a container
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        container_id: String,
        /// Options passed to ps(1) (default: -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { container_id: String },
    /// Thaw a paused container
    Resume { container_id: String },
    /// Write a default config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Print what this runtime supports (OCI features JSON)
    Features,
    /// Change the resource limits of a container
    Update(UpdateArgs),
    /// Print resource usage (and OOM) events of a container as JSON lines
    Events {
        /// Print the stats once and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats events
        #[arg(long, default_value = "5s", value_parser = parse_interval)]
        interval: std::time::Duration,
        container_id: String,
    },
}

/// "5s", "500ms", "1m", or plain seconds.
fn parse_interval(v: &str) -> Result<std::time::Duration, String> {
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let secs: f64 = num
        .parse()
        .map_err(|_| format!("invalid interval {v:?} (e.g. 5s, 500ms)"))?;
    if secs <= 0.0 {
        return Err(format!("interval {v:?} must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs * mult))
}

#[derive(Args)]
struct UpdateArgs {
    /// Read the new resources (OCI linux.resources JSON) from FILE, or - for stdin
    #[arg(short, long)]
    resources: Option<String>,
    /// Memory limit (e.g. 64m, 1g; -1 for none)
    #[arg(long)]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for none)
    #[arg(long)]
    memory_swap: Option<String>,
    /// Kernel memory limit (accepted and ignored, like runc on new kernels)
    #[arg(long, hide = true)]
    kernel_memory: Option<String>,
    #[arg(long, hide = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long)]
    cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long)]
    cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    /// CPUs the container may use (e.g. 0-1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Maximum number of processes (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Intel RDT schemas (not supported)
    #[arg(long)]
    l3_cache_schema: Option<String>,
    #[arg(long)]
    mem_bw_schema: Option<String>,
    container_id: String,
}

#[derive(Args)]
struct ExecArgs {
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// Process JSON (an OCI process object) instead of ARGS
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Detach
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Add a capability (e.g. CAP_NET_ADMIN)
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    ignore_paused: bool,
    container_id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// runc's defaults: /run/rrun as root, $XDG_RUNTIME_DIR/rrun rootless.
fn default_root() -> PathBuf {
    if !nix::unistd::geteuid().is_root() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("rrun");
        }
        return PathBuf::from(format!("/tmp/rrun-{}", nix::unistd::geteuid()));
    }
    PathBuf::from("/run/rrun")
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

fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not implemented in rrun yet; use the default cgroupfs driver");
    }
    let root_dir = cli.root.clone().unwrap_or_else(default_root);
    let root = root_dir.as_path();
    match &cli.command {
        Command::Create(a) => {
            container::create(&create_options(root, a, false))?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => {
            if *keep {
                bail!("run --keep is not implemented in rrun yet");
            }
            Ok(container::run(
                &create_options(root, create, true),
                *detach,
            )?)
        }
        Command::Update(a) => {
            if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
                return Err(rrun::error::Error::Unsupported(
                    "Intel RDT (--l3-cache-schema, --mem-bw-schema)".into(),
                )
                .into());
            }
            let flags = rrun::update::UpdateFlags {
                resources_file: a.resources.clone(),
                memory: a.memory.clone(),
                memory_reservation: a.memory_reservation.clone(),
                memory_swap: a.memory_swap.clone(),
                cpu_shares: a.cpu_share,
                cpu_quota: a.cpu_quota,
                cpu_period: a.cpu_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpu_rt_period: a.cpu_rt_period,
                cpuset_cpus: a.cpuset_cpus.clone(),
                cpuset_mems: a.cpuset_mems.clone(),
                blkio_weight: a.blkio_weight,
                pids_limit: a.pids_limit,
            };
            rrun::update::update(root, &a.container_id, &flags)?;
            Ok(0)
        }
        Command::Events {
            stats,
            interval,
            container_id,
        } => {
            rrun::update::events(root, container_id, *stats, *interval)?;
            Ok(0)
        }
        Command::Start { container_id } => {
            container::start(root, container_id)?;
            Ok(0)
        }
        Command::State { container_id } => {
            let st = State::load(root, container_id)?;
            println!("{}", serde_json::to_string_pretty(&st.oci(root))?);
            Ok(0)
        }
        Command::Kill {
            container_id,
            signal,
            all,
        } => {
            let sig = rrun::signal::parse(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill_container(root, container_id, sig, *all)?;
            Ok(0)
        }
        Command::Delete {
            force,
            container_id,
        } => {
            container::delete(root, container_id, *force)?;
            Ok(0)
        }
        Command::List { format, quiet } => {
            list(root, *format, *quiet)?;
            Ok(0)
        }
        Command::Ps {
            format,
            container_id,
            ps_args,
        } => {
            ps(root, container_id, *format, ps_args)?;
            Ok(0)
        }
        Command::Pause { container_id } => {
            container::pause(root, container_id)?;
            Ok(0)
        }
        Command::Resume { container_id } => {
            container::resume(root, container_id)?;
            Ok(0)
        }
        Command::Exec(a) => exec_cmd(root, a),
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{}: file exists; remove it first", path.display());
            }
            let spec = rrun::features::default_spec(*rootless);
            std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
                .with_context(|| path.display().to_string())?;
            Ok(0)
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&rrun::features::features())?
            );
            Ok(0)
        }
    }
}

fn create_options<'a>(root: &'a Path, a: &'a CreateArgs, _run: bool) -> CreateOptions<'a> {
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

fn list(root: &Path, format: ListFormat, quiet: bool) -> anyhow::Result<()> {
    let states = container::list(root)?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let v: Vec<_> = states.iter().map(|s| s.oci(root)).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    let o = s.oci(root);
                    [
                        o.id.to_string(),
                        o.pid.to_string(),
                        o.status,
                        o.bundle.display().to_string(),
                        o.created.to_string(),
                        if o.owner.is_empty() {
                            "root".into()
                        } else {
                            o.owner.to_string()
                        },
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = [0usize; 6];
            for r in std::iter::once(&header).chain(rows.iter()) {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(())
}

fn ps(root: &Path, id: &str, format: ListFormat, args: &[String]) -> anyhow::Result<()> {
    let pids = container::pids(root, id)?;
    if format == ListFormat::Json {
        if !args.is_empty() {
            bail!("ps: options cannot be combined with --format json");
        }
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        if let Some(pid) = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&pid) {
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn exec_cmd(root: &Path, a: &ExecArgs) -> anyhow::Result<i32> {
    // the state read for the defaults is handed on, not read again
    let mut state = None;
    let process: oci_spec::runtime::Process = match &a.process {
        Some(p) => {
            let data = std::fs::read(p).with_context(|| p.display().to_string())?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de)
                .map_err(|e| anyhow::anyhow!("{}: {}: {}", p.display(), e.path(), e.inner()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: give a command after the container id, or --process");
            }
            let st = state.insert(State::load(root, &a.container_id)?);
            let mut p = st.spec.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            let mut env = p.env().clone().unwrap_or_default();
            for e in &a.env {
                let key = e.split('=').next().unwrap_or("");
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            p.set_env(Some(env));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.clone());
            }
            if let Some(u) = &a.user {
                let mut user = p.user().clone();
                let (uid, gid) = u
                    .split_once(':')
                    .map(|(u, g)| (u, Some(g)))
                    .unwrap_or((u.as_str(), None));
                user.set_uid(
                    uid.parse()
                        .with_context(|| format!("--user {u:?}: uid must be numeric"))?,
                );
                user.set_gid(match gid {
                    Some(g) => g
                        .parse()
                        .with_context(|| format!("--user {u:?}: gid must be numeric"))?,
                    None => 0,
                });
                p.set_user(user);
            }
            if !a.additional_gids.is_empty() {
                let mut user = p.user().clone();
                user.set_additional_gids(Some(a.additional_gids.clone()));
                p.set_user(user);
            }
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities().clone().unwrap_or_default();
                for c in &a.cap {
                    let cap: oci_spec::runtime::Capability =
                        serde_json::from_value(serde_json::Value::String(c.to_uppercase()))
                            .with_context(|| format!("--cap {c:?}: unknown capability"))?;
                    let mut b = caps.bounding().clone().unwrap_or_default();
                    b.insert(cap);
                    caps.set_bounding(Some(b));
                    let mut e = caps.effective().clone().unwrap_or_default();
                    e.insert(cap);
                    caps.set_effective(Some(e));
                    let mut pm = caps.permitted().clone().unwrap_or_default();
                    pm.insert(cap);
                    caps.set_permitted(Some(pm));
                }
                p.set_capabilities(Some(caps));
            }
            p
        }
    };
    Ok(exec::exec(ExecOptions {
        root,
        id: &a.container_id,
        state,
        process,
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    })?)
}
