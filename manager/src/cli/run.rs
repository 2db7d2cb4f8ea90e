//! `rbox run` and `rbox create`: Docker's flags into one RunSpec, the
//! image pulled when missing, the container made (and started).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::{exit_code, Ctx};
use rbox::container::log_config::LogOpt;
use rbox::container::{self, NetMode, RestartPolicy, RunSpec};
use rbox::mounts::{parse_size, MountSpec};
use rbox::oci::{parse_ulimit, SecurityOptions};

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
        let security_opt = SecurityOptions::parse(&self.security_opt)?;
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
            .map(|p| rbox::net::cni::parse_port(p))
            .collect::<Result<Vec<_>, _>>()?;
        let add_hosts = self
            .add_host
            .iter()
            .map(|h| rbox::net::etc_files::parse_add_host(h).map_err(anyhow::Error::msg))
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
            Some(p) if !p.is_empty() => Some(rbox::cgroups::parent("--cgroup-parent", p)?),
            _ => rbox::cgroups::env_parent()?,
        };
        let spec = RunSpec {
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
            restart: RestartPolicy::parse(&self.restart)?,
            publish_all: self.publish_all,
            ulimits: self
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<_, _>>()?,
            log_opts: self
                .log_opt
                .iter()
                .map(|o| LogOpt::parse(o))
                .collect::<Result<_, _>>()?,
            security_opt,
            init: self.init,
            cgroup_parent,
            labels: rbox::runconfig::parse_labels(&self.label)?,
            group_add: self.group_add.clone(),
            config: None,
        };
        spec.check()?;
        Ok(spec)
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
/// goes to stderr; rbox.toml (mirrors) is read only when pulling.
fn pull_image(ctx: &Ctx, a: &RunArgs) -> Result<()> {
    use rbox::registry::pull::{self, Need, Policy};
    let policy = match a.pull {
        PullWhen::Missing => Policy::Missing,
        PullWhen::Always => Policy::Always,
        PullWhen::Never => Policy::Never,
    };
    let r = match pull::need(&ctx.store, &a.image, policy)? {
        Need::Nothing => return Ok(()),
        Need::Missing(r) => {
            eprintln!("Unable to find image '{}' locally", r.familiar());
            r
        }
        Need::Always(r) => r,
    };
    let opts = pull::PullOptions {
        platform: pull::Platform::host(),
        endpoints: pull::endpoints(&ctx.config()?, &r, None)?,
    };
    pull::pull(&ctx.store, &r, &opts, pull::Out::Stderr)?;
    Ok(())
}

pub fn create(ctx: &Ctx, a: RunArgs) -> Result<ExitCode> {
    let spec = a.spec()?;
    pull_image(ctx, &a)?;
    let c = container::create(&ctx.store, &spec)?;
    container::settle(&c.id);
    println!("{}", c.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    let spec = a.spec()?;
    // nothing is made (or pulled) when the shim or the runtime is missing
    rbox::locate::find(rbox::supervisor::SHIM_NAME, "RBOX_SHIM")?;
    rbox::locate::find("rrun", "RBOX_RUNTIME")?;
    pull_image(ctx, &a)?;
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
