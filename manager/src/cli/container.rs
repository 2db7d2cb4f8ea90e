//! The container verbs (but `run` and `create`: run.rs): `start`,
//! `exec`, `logs`, `cp`, `stop`, `kill`, `rm`, `ps`, …, and the shim's exit
//! hook `__exited`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::{each, each_line, exit_code, print_removed, Ctx};
use rbox::container;
use rbox::format::table;
use rbox::image::short_id;

#[derive(Args)]
pub struct CpArgs {
    /// Keep the uid/gid of what is copied in
    #[arg(short, long)]
    pub archive: bool,
    pub src: String,
    pub dest: String,
}

#[derive(Args)]
pub struct RestartArgs {
    /// Seconds to wait before KILL
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct StatsArgs {
    /// One reading, then exit
    #[arg(long)]
    pub no_stream: bool,
    /// table (default) or json
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct ExitedArgs {
    pub id: String,
    /// Nothing to do while this (attached `run --rm`) rbox lives
    #[arg(long)]
    pub unless_attached: Option<i32>,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach to its output and wait
    #[arg(short, long)]
    pub attach: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before KILL
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Also running ones (killed first)
    #[arg(short, long)]
    pub force: bool,
    /// Also the container's anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

// one container
#[derive(Args)]
pub struct ContainerArg {
    pub container: String,
}

// containers, at least one
#[derive(Args)]
pub struct ContainersArg {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct RenameArgs {
    pub container: String,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// KEY=VALUE (or KEY, taken from this environment)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP], names or numbers
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since a time (RFC 3339, Unix seconds, or 10m/2h ago)
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Also stopped ones
    #[arg(short, long)]
    pub all: bool,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Full ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// The writable layer's size (and the image's, "virtual")
    #[arg(short, long)]
    pub size: bool,
    /// The last N created containers (all states)
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// The last created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// KEY=VALUE: id, name, status, label, ancestor, exited, network,
    /// publish, volume, before, since
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// `table`, `table TEMPLATE`, `json`, or a Go template such as
    /// '{{.Names}}\t{{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Subcommand)]
pub enum ContainerVerb {
    /// Remove every stopped container
    Prune {
        /// Do not ask (rbox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

pub fn start(ctx: &Ctx, a: StartArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    if !a.attach {
        return Ok(each(&a.containers, |c| {
            container::start(store, c).map(drop)
        }));
    }
    let [one] = &a.containers[..] else {
        bail!("start -a takes one container");
    };
    Ok(exit_code(container::run_attached(store, one, true)?))
}

pub fn attach(ctx: &Ctx, a: ContainerArg) -> Result<ExitCode> {
    Ok(exit_code(container::attach(&ctx.store, &a.container)?))
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<ExitCode> {
    let es = container::ExecSpec {
        cmd: a.cmd.clone(),
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    // a command that cannot start: 126/127 (status.rs)
    Ok(exit_code(container::exec(&ctx.store, &a.container, &es)?))
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> Result<ExitCode> {
    use container::logs::{LogOptions, LogSink};
    let since = match &a.since {
        Some(s) => Some(
            rbox::logs::parse_since(s)
                .with_context(|| format!("--since {s:?}: not a time nor a duration like 10m"))?,
        ),
        None => None,
    };
    let tail = match a.tail.as_str() {
        "all" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("--tail {n:?}: not a number"))?,
        ),
    };
    /// stdout and stderr lines to rbox's own, `-t`: with their times
    struct Print {
        stamps: bool,
    }
    impl LogSink for Print {
        fn entry(&mut self, e: &rbox::logs::Entry) -> bool {
            use std::io::Write;
            let line = if self.stamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log.clone()
            };
            // a closed stdout ends rbox quietly (`logs -f | head -1`)
            let _ = if e.stream == "stderr" {
                std::io::stderr().write_all(line.as_bytes())
            } else {
                rbox::stdio::write_out(line.as_bytes())
            };
            true
        }
    }
    let opts = LogOptions {
        since,
        until: None,
        tail,
        follow: a.follow,
    };
    container::logs(
        &ctx.store,
        &a.container,
        &opts,
        &mut Print {
            stamps: a.timestamps,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `rbox cp SRC DEST`: one side is CONTAINER:PATH.
pub fn cp(ctx: &Ctx, a: CpArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    let (src, dest, archive) = (a.src.as_str(), a.dest.as_str(), a.archive);
    use rbox::cp::{copy_in, copy_out, Extract, Location};
    match (Location::parse(src), Location::parse(dest)) {
        (Location::Container { container, path }, to @ (Location::Host(_) | Location::Stdio)) => {
            let c = container::find(store, &container)?;
            copy_out(store, &c, &path, &to)?;
        }
        (from @ (Location::Host(_) | Location::Stdio), Location::Container { container, path }) => {
            let c = container::find(store, &container)?;
            copy_in(
                store,
                &from,
                &c,
                &path,
                &Extract {
                    keep_owner: archive,
                },
            )?;
        }
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("copying between containers is not supported: copy to the host first")
        }
        _ => bail!("one of SRC and DEST must be CONTAINER:PATH"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restart(ctx: &Ctx, a: RestartArgs) -> Result<ExitCode> {
    let t = std::time::Duration::from_secs(a.time);
    Ok(each(&a.containers, |c| {
        container::restart(&ctx.store, c, t)
    }))
}

pub fn wait(ctx: &Ctx, a: ContainersArg) -> Result<ExitCode> {
    Ok(each_line(&a.containers, |c| container::wait(&ctx.store, c)))
}

/// `rbox pause` (`freeze`), `rbox unpause`.
pub fn pause(ctx: &Ctx, a: ContainersArg, freeze: bool) -> Result<ExitCode> {
    Ok(each(&a.containers, |c| {
        container::pause(&ctx.store, c, freeze)
    }))
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> Result<ExitCode> {
    container::rename(&ctx.store, &a.container, &a.name)?;
    Ok(ExitCode::SUCCESS)
}

/// `rbox port CONTAINER`: Docker's `80/tcp -> 0.0.0.0:8080` lines.
pub fn port(ctx: &Ctx, a: ContainerArg) -> Result<ExitCode> {
    let c = container::find(&ctx.store, &a.container)?;
    for p in &c.state.ports {
        let ip = p
            .host_ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "0.0.0.0".into());
        println!(
            "{}/{} -> {ip}:{}",
            p.container_port,
            p.protocol.as_str(),
            p.host_port
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox top CONTAINER`: its processes.
pub fn top(ctx: &Ctx, a: ContainerArg) -> Result<ExitCode> {
    let mut rows = vec![vec!["PID".to_string(), "UID".into(), "CMD".into()]];
    for (pid, uid, cmd) in container::top(&ctx.store, &a.container)? {
        rows.push(vec![pid.to_string(), uid.to_string(), cmd]);
    }
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// `rbox stats`: Docker's table (or one JSON object a line), once with
/// `--no-stream`, else every second until interrupted.
pub fn stats(ctx: &Ctx, a: StatsArgs) -> Result<ExitCode> {
    let (store, no_stream, containers) = (&ctx.store, a.no_stream, &a.containers[..]);
    let format = a.format.as_deref();
    use rbox::format::human_size;
    use rbox::stats::{cgroup_of, sample, targets};
    let json = match format {
        None | Some("table") => false,
        Some("json") => true,
        Some(f) => bail!("--format {f:?}: stats prints table or json"),
    };
    let interval = std::time::Duration::from_millis(if no_stream { 500 } else { 1000 });
    loop {
        let list = targets(store, containers)?;
        let before: Vec<_> = list
            .iter()
            .map(|(c, pid)| sample(&cgroup_of(c), *pid))
            .collect();
        std::thread::sleep(interval);
        let mut rows = vec![[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ]
        .map(String::from)
        .to_vec()];
        let mut lines = Vec::new();
        for ((c, pid), b) in list.iter().zip(before) {
            let s = sample(&cgroup_of(c), *pid);
            let cpu = s.cpu_ns.saturating_sub(b.cpu_ns) as f64 / interval.as_nanos() as f64 * 100.0;
            let mem_pct = if s.mem_limit > 0 {
                s.mem_usage as f64 / s.mem_limit as f64 * 100.0
            } else {
                0.0
            };
            // Docker prints memory in binary units, I/O in decimal ones
            let mib = |b: u64| {
                let (v, u) = if b >= 1 << 30 {
                    (b as f64 / (1u64 << 30) as f64, "GiB")
                } else if b >= 1 << 20 {
                    (b as f64 / (1u64 << 20) as f64, "MiB")
                } else {
                    (b as f64 / 1024.0, "KiB")
                };
                format!("{v:.4}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
                    + u
            };
            let row = vec![
                short_id(&c.id).to_string(),
                c.name.clone(),
                format!("{cpu:.2}%"),
                format!("{} / {}", mib(s.mem_usage), mib(s.mem_limit)),
                format!("{mem_pct:.2}%"),
                format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
                format!("{} / {}", human_size(s.blk_read), human_size(s.blk_write)),
                s.pids.to_string(),
            ];
            if json {
                lines.push(
                    serde_json::json!({
                        "ID": row[0], "Container": row[0], "Name": row[1], "CPUPerc": row[2],
                        "MemUsage": row[3], "MemPerc": row[4], "NetIO": row[5], "BlockIO": row[6],
                        "PIDs": row[7],
                    })
                    .to_string(),
                );
            }
            rows.push(row);
        }
        if !no_stream {
            // Docker's refresh: clear the screen, cursor home
            print!("\x1b[2J\x1b[H");
        }
        if json {
            for l in &lines {
                println!("{l}");
            }
        } else {
            print!("{}", table(&rows));
        }
        if no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

pub fn stop(ctx: &Ctx, a: StopArgs) -> Result<ExitCode> {
    let t = std::time::Duration::from_secs(a.time);
    Ok(each(&a.containers, |c| container::stop(&ctx.store, c, t)))
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> Result<ExitCode> {
    Ok(each(&a.containers, |c| {
        container::kill(&ctx.store, c, &a.signal)
    }))
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    Ok(each(&a.containers, |c| {
        container::remove_with_volumes(store, c, a.force, a.volumes)
    }))
}

/// `rbox ps`: Docker's table, or `--format`, of the containers `--filter`
/// picks.
pub fn ps(ctx: &Ctx, a: PsArgs) -> Result<ExitCode> {
    use rbox::listing::{self, ListFormat, PsOptions, PS_FIELDS, PS_TABLE, PS_TABLE_SIZE};
    let filters = rbox::filter::Filters::parse(&a.filter, rbox::filter::CONTAINER_KEYS)?;
    // the format is checked before any container is looked at
    let default = if a.size { PS_TABLE_SIZE } else { PS_TABLE };
    let format = ListFormat::parse(a.format.as_deref(), default, "ps", PS_FIELDS)?;
    let opts = PsOptions {
        all: a.all || a.last.is_some() || a.latest,
        no_trunc: a.no_trunc,
        size: a.size,
        filters,
    };
    let mut rows = listing::containers(&ctx.store, &opts)?;
    if let Some(n) = a.last.filter(|&n| n >= 0) {
        rows.truncate(n as usize);
    } else if a.latest {
        rows.truncate(1);
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r.fields["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", format.render(PS_FIELDS, &rows));
    Ok(ExitCode::SUCCESS)
}

/// `rbox container …` (the verbs not spelled as rbox's own: see alias.rs).
pub fn container(ctx: &Ctx, v: ContainerVerb) -> Result<ExitCode> {
    match v {
        ContainerVerb::Prune { .. } => {
            print_removed("Deleted Containers:", &container::prune(&ctx.store)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether this `__exited` has the exit to handle: an attached `run --rm`
/// (`--unless-attached PID`, not this process) finishes its container
/// itself; the hook then waits for it, and has nothing to do unless it left
/// the container behind.
pub fn exit_is_ours(root: &Path, a: &ExitedArgs) -> bool {
    match a.unless_attached {
        Some(pid) if pid != std::process::id() as i32 => {
            container::await_attached_run(root, &a.id).is_some()
        }
        _ => true,
    }
}

/// `rbox __exited ID`: the shim's exit hook (the exit status in
/// `RRUN_SHIM_EXIT_STATUS`).
pub fn exited(ctx: &Ctx, a: ExitedArgs) -> Result<ExitCode> {
    let code = std::env::var("RRUN_SHIM_EXIT_STATUS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    container::exited(&ctx.store, &a.id, code)?;
    Ok(ExitCode::SUCCESS)
}
