//! The container verbs of the CLI: arguments as Docker spells them, into
//! `rbox::container` calls, and Docker's output shapes.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use rbox::config::Config;
use rbox::container::{self, NetMode, RunSpec};
use rbox::format::table;
use rbox::image::short_id;
use rbox::mounts::{parse_size, MountSpec};
use rbox::store::Store;
use rbox::template::Template;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// KEY=VALUE (or KEY, taken from this environment)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Files of KEY=VALUE lines
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP], names or numbers
    #[arg(short, long)]
    pub user: Option<String>,
    /// A supplementary group (name or number) for the container's processes
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// KEY=VALUE (or KEY) metadata, shown by inspect, matched by ps --filter label=
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// [SOURCE:]TARGET[:ro|rw]
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// type=bind|volume|tmpfs,source=…,target=…[,readonly]
    #[arg(long)]
    pub mount: Vec<String>,
    /// [IP:][HOSTPORT:]CONTAINERPORT[/udp]
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a random host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// NAME=SOFT[:HARD], like nofile=1024:2048
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// bridge (default), host, none, a network's name, or container:NAME|ID
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    #[arg(long)]
    pub read_only: bool,
    #[arg(long)]
    pub cap_add: Vec<String>,
    #[arg(long)]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    /// HOST[:CONTAINER][:PERMISSIONS]: a host device in the container
    /// (permissions: some of r, w, m; default rwm)
    #[arg(long)]
    pub device: Vec<String>,
    /// 'TYPE MAJOR:MINOR PERMISSIONS' (like 'c 1:3 mr' or 'a *:* m'): a rule
    /// of the container's device cgroup
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
    /// Memory limit (like 64m)
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// HOST:IP
    #[arg(long)]
    pub add_host: Vec<String>,
    #[arg(long)]
    pub dns: Vec<std::net::IpAddr>,
    /// no, always, unless-stopped, on-failure[:N]
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// json-file log options: max-size=SIZE, max-file=N
    #[arg(long)]
    pub log_opt: Vec<String>,
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Absolute cgroup path to put the container's cgroup under
    /// [default: $RBOX_CGROUP_PARENT, else /rbox]
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Pull the image before creating the container
    #[arg(long, value_enum, default_value_t = PullWhen::Missing)]
    pub pull: PullWhen,
    /// Pass the signals rbox receives (INT, TERM, HUP, QUIT) on to the
    /// container while attached (not with -t: ^C is then a key)
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub sig_proxy: bool,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

impl RunArgs {
    pub fn spec(&self) -> Result<RunSpec> {
        if self.restart != "no" && self.rm {
            bail!(
                "--restart {} and --rm: a removed container cannot restart",
                self.restart
            );
        }
        rbox::seccomp::parse_opts(&self.security_opt)?;
        let mut env = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("--env-file {}", f.display()))?;
            env.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        env.extend(self.env.iter().cloned());
        let mut mounts = Vec::new();
        for v in &self.volume {
            mounts.push(MountSpec::parse_volume(v)?);
        }
        for m in &self.mount {
            mounts.push(MountSpec::parse_mount(m)?);
        }
        let ports = self
            .publish
            .iter()
            .map(|p| rbox::network::parse_port(p))
            .collect::<Result<Vec<_>, _>>()?;
        let add_hosts = self
            .add_host
            .iter()
            .map(|h| rbox::etcfiles::parse_add_host(h).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let memory = self
            .memory
            .as_deref()
            .map(|m| {
                parse_size(m)
                    .map(|b| b as i64)
                    .with_context(|| format!("--memory {m:?} is not a size (like 64m)"))
            })
            .transpose()?;
        let cgroup_parent = match self.cgroup_parent.as_deref() {
            Some(p) if !p.is_empty() => Some(rbox::bundle::cgroup_parent("--cgroup-parent", p)?),
            _ => rbox::bundle::env_cgroup_parent()?,
        };
        Ok(RunSpec {
            image: self.image.clone(),
            name: self.name.clone(),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            tty: self.tty,
            interactive: self.interactive,
            ports,
            mounts,
            net: self.network.as_deref().map(NetMode::parse).transpose()?,
            rm: self.rm,
            read_only: self.read_only,
            add_hosts,
            dns: self.dns.clone(),
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            devices: self
                .device
                .iter()
                .map(|d| rbox::devices::DeviceMapping::parse(d))
                .collect::<Result<_, _>>()?,
            device_cgroup_rules: self
                .device_cgroup_rule
                .iter()
                .map(|r| rbox::devices::CgroupRule::parse(r))
                .collect::<Result<_, _>>()?,
            memory,
            pids_limit: self.pids_limit,
            cpus: self.cpus,
            restart: container::parse_restart(&self.restart)?,
            publish_all: self.publish_all,
            ulimits: {
                for u in &self.ulimit {
                    container::parse_ulimit(u)?;
                }
                self.ulimit.clone()
            },
            log_opts: {
                rbox::supervisor::log_options(&self.log_opt)?;
                self.log_opt.clone()
            },
            security_opt: self.security_opt.clone(),
            init: self.init,
            cgroup_parent,
            labels: rbox::runconfig::parse_labels(&self.label)?,
            group_add: self.group_add.clone(),
            config: None,
        })
    }
}

/// Docker's `--pull` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullWhen {
    /// when the image is not in the store
    Missing,
    /// every time
    Always,
    /// never: a missing image is an error
    Never,
}

/// `run`/`create` pull their image first as Docker does: when it is
/// missing ("Unable to find image 'X' locally"), or always; the progress
/// goes to stderr. `config` reads rbox.toml (mirrors), only when pulling.
fn pull_image(store: &Store, a: &RunArgs, config: &dyn Fn() -> Result<Config>) -> Result<()> {
    use rbox::pull::{self, Need, Policy};
    let policy = match a.pull {
        PullWhen::Missing => Policy::Missing,
        PullWhen::Always => Policy::Always,
        PullWhen::Never => Policy::Never,
    };
    let r = match pull::need(store, &a.image, policy)? {
        Need::Nothing => return Ok(()),
        Need::Missing(r) => {
            eprintln!("Unable to find image '{}' locally", r.familiar());
            r
        }
        Need::Always(r) => r,
    };
    let opts = pull::PullOptions {
        platform: pull::Platform::host(),
        endpoints: pull::endpoints(&config()?, &r, None)?,
    };
    pull::pull(store, &r, &opts, pull::Out::Stderr)?;
    Ok(())
}

pub fn create(store: &Store, a: &RunArgs, config: &dyn Fn() -> Result<Config>) -> Result<ExitCode> {
    let spec = a.spec()?;
    pull_image(store, a, config)?;
    let c = container::create(store, &spec)?;
    container::settle(&c.id);
    println!("{}", c.id);
    Ok(ExitCode::SUCCESS)
}

/// `rbox attach`: exits with the container's code.
pub fn attach(store: &Store, container: &str) -> Result<ExitCode> {
    Ok(exit_code(container::attach(store, container)?))
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

pub fn run(store: &Store, a: &RunArgs, config: &dyn Fn() -> Result<Config>) -> Result<ExitCode> {
    let spec = a.spec()?;
    // nothing is made (or pulled) when the shim or the runtime is missing
    rbox::locate::find(rbox::supervisor::SHIM_NAME, "RBOX_SHIM")?;
    rbox::locate::find("rrun", "RBOX_RUNTIME")?;
    pull_image(store, a, config)?;
    let c = container::create(store, &spec)?;
    if a.detach {
        container::start(store, &c.id)?;
        println!("{}", c.id);
        return Ok(ExitCode::SUCCESS);
    }
    Ok(exit_code(container::run_attached(
        store,
        &c.id,
        a.sig_proxy,
    )?))
}

pub fn start(store: &Store, attach: bool, containers: &[String]) -> Result<ExitCode> {
    if !attach {
        return Ok(each(containers, |c| container::start(store, c).map(drop)));
    }
    let [one] = containers else {
        bail!("start -a takes one container");
    };
    Ok(exit_code(container::run_attached(store, one, true)?))
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

pub fn exec(store: &Store, a: &ExecArgs) -> Result<ExitCode> {
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
    Ok(exit_code(container::exec(store, &a.container, &es)?))
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

pub fn logs(store: &Store, a: &LogsArgs) -> Result<ExitCode> {
    use std::io::Write;
    let c = container::find(store, &a.container)?;
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
    let path = rbox::supervisor::log_path(store, &c.id);
    let (mut entries, end) = rbox::logs::read_all(&path);
    if let Some(t) = since {
        entries.retain(|e| chrono::DateTime::parse_from_rfc3339(&e.time).is_ok_and(|et| et >= t));
    }
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let stamps = a.timestamps;
    let print = move |e: &rbox::logs::Entry| {
        let line = if stamps {
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
    };
    entries.iter().for_each(&print);
    if a.follow {
        let id = c.id.clone();
        let mut last = std::time::Instant::now();
        let mut alive = true;
        rbox::logs::follow(
            &path,
            end,
            |poll| {
                std::thread::sleep(poll);
                // the container's state, now and then
                if last.elapsed() > std::time::Duration::from_millis(200) {
                    last = std::time::Instant::now();
                    // a container whose shim was killed is ended meanwhile
                    let _ = container::recover_orphans(store);
                    alive = container::find(store, &id)
                        .is_ok_and(|c| container::live_status(store, &c) == "running");
                }
                alive
            },
            print,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox cp SRC DEST`: one side is CONTAINER:PATH.
pub fn cp(store: &Store, src: &str, dest: &str, archive: bool) -> Result<()> {
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
    Ok(())
}

/// Apply `f` to each container, printing its name as given (Docker's
/// style); the exit status is 1 if any failed.
pub fn each(
    containers: &[String],
    mut f: impl FnMut(&str) -> Result<(), container::ContainerError>,
) -> ExitCode {
    let mut failed = false;
    for c in containers {
        match f(c) {
            Ok(()) => println!("{c}"),
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

/// `rbox ps`: Docker's table, or `--format`, of the containers `--filter`
/// picks.
pub fn ps(store: &Store, a: &PsArgs) -> Result<()> {
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
    let mut rows = listing::containers(store, &opts)?;
    if let Some(n) = a.last.filter(|&n| n >= 0) {
        rows.truncate(n as usize);
    } else if a.latest {
        rows.truncate(1);
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r.fields["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    print!("{}", format.render(PS_FIELDS, &rows));
    Ok(())
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

/// `rbox port CONTAINER`: Docker's `80/tcp -> 0.0.0.0:8080` lines.
pub fn port(store: &Store, what: &str) -> Result<()> {
    let c = container::find(store, what)?;
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
    Ok(())
}

/// `rbox top CONTAINER`: its processes.
pub fn top(store: &Store, what: &str) -> Result<()> {
    let mut rows = vec![vec!["PID".to_string(), "UID".into(), "CMD".into()]];
    for (pid, uid, cmd) in container::top(store, what)? {
        rows.push(vec![pid.to_string(), uid.to_string(), cmd]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `rbox stats`: Docker's table (or one JSON object a line), once with
/// `--no-stream`, else every second until interrupted.
pub fn stats(
    store: &Store,
    no_stream: bool,
    format: Option<&str>,
    containers: &[String],
) -> Result<()> {
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
            return Ok(());
        }
    }
}

/// `rbox info`: what this host has for containers.
/// `rbox version`: rbox's own version and what it runs containers with
/// (no daemon: Docker's Server section has no counterpart).
pub fn version(format: Option<&str>) -> Result<()> {
    let runtime = container::runtime_bin();
    let runtime_version = Command::new(&runtime)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(String::from)
        });
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let cni_dirs = rbox::network::plugin_dirs();
    let v = serde_json::json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": arch,
        },
        "Runtime": {
            "Path": runtime.display().to_string(),
            "Version": runtime_version,
        },
        "Shim": rbox::supervisor::shim_bin().display().to_string(),
        "CniPath": cni_dirs,
    });
    match format {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", Template::parse(t)?.render(&v)),
        None => {
            println!("Client: rbox");
            println!(" Version:      {}", env!("CARGO_PKG_VERSION"));
            println!(" OS/Arch:      {}/{arch}", std::env::consts::OS);
            println!(
                " Runtime:      {} ({})",
                runtime.display(),
                v["Runtime"]["Version"].as_str().unwrap_or("missing")
            );
            println!(" Shim:         {}", v["Shim"].as_str().unwrap_or_default());
            let dirs: Vec<String> = cni_dirs.iter().map(|d| d.display().to_string()).collect();
            println!(" CNI plugins:  {}", dirs.join(":"));
        }
    }
    Ok(())
}

pub fn info(store: &Store) -> Result<()> {
    let cgroot = std::path::Path::new(rbox::host::CGROUP_ROOT);
    let cgroup = match rbox::host::cgroup_version(cgroot) {
        "v2" => "v2 (unified)",
        "hybrid" => "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)",
        _ => "v1",
    };
    let containers = container::list(store)?;
    let running = containers
        .iter()
        .filter(|c| container::live_status(store, c) == "running")
        .count();
    let cni = rbox::network::plugin_dirs();
    let plugin = |name: &str| {
        cni.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map_or_else(|| "missing".to_string(), |p| p.display().to_string())
    };
    let (_, nofile) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((0, 0));
    let found = |p: std::path::PathBuf| {
        let ok = p.is_file()
            || std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(&p).is_file()));
        format!("{}{}", p.display(), if ok { "" } else { " (missing)" })
    };
    println!("Containers: {} (running: {running})", containers.len());
    println!(
        "Images: {}",
        rbox::image::list(store).map(|l| l.len()).unwrap_or(0)
    );
    println!("Root: {}", store.root().display());
    println!("Runtime: {}", found(container::runtime_bin()));
    println!("Shim: {}", found(rbox::supervisor::shim_bin()));
    println!(
        "Storage: overlay ({})",
        if rbox::host::has_filesystem("overlay") {
            "available"
        } else {
            "MISSING: modprobe overlay"
        }
    );
    println!("Cgroups: {cgroup}");
    println!(
        "Cgroup controllers: {}",
        rbox::host::cgroup_controllers(cgroot).join(" ")
    );
    println!(
        "Seccomp: {}",
        if rbox::host::has_seccomp() {
            "available"
        } else {
            "MISSING (kernel without CONFIG_SECCOMP)"
        }
    );
    println!("Open files hard limit: {nofile}");
    println!(
        "CNI plugin dirs: {}",
        cni.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    for name in ["bridge", "host-local", "portmap"] {
        println!("CNI {name}: {}", plugin(name));
    }
    println!(
        "Kernel: {}",
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    Ok(())
}
