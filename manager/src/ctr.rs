//! The container verbs of the CLI: arguments as Docker spells them, into
//! `rbox::container` calls, and Docker's output shapes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use rbox::container::{self, NetMode, RunSpec};
use rbox::format::{human_since, seconds_since, table};
use rbox::image::short_id;
use rbox::mounts::{parse_size, MountSpec};
use rbox::network::PortMap;
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
    /// bridge (default), host or none
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
    /// no (the others need a supervisor, not there yet)
    #[arg(long, default_value = "no")]
    pub restart: String,
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub security_opt: Vec<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

impl RunArgs {
    pub fn spec(&self) -> Result<RunSpec> {
        if self.restart != "no" {
            bail!("--restart {}: restart policies need the shim supervisor, which rbox does not use yet", self.restart);
        }
        if self.init {
            bail!("--init is not implemented yet");
        }
        if let Some(o) = self.security_opt.first() {
            bail!("--security-opt {o}: not implemented yet");
        }
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
            .map(|p| PortMap::parse(p))
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
            memory,
            pids_limit: self.pids_limit,
            cpus: self.cpus,
        })
    }
}

fn refuse_unsupported(a: &RunArgs) -> Result<()> {
    if a.detach {
        bail!("-d: detached containers need the shim supervisor, which rbox does not use yet; run attached");
    }
    if a.tty {
        bail!("-t: terminals for attached runs are not implemented yet");
    }
    Ok(())
}

pub fn create(store: &Store, a: &RunArgs) -> Result<ExitCode> {
    let c = container::create(store, &a.spec()?)?;
    println!("{}", c.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run(store: &Store, a: &RunArgs) -> Result<ExitCode> {
    refuse_unsupported(a)?;
    let c = container::create(store, &a.spec()?)?;
    let code = container::run_attached(store, &c.id)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

pub fn start(store: &Store, attach: bool, containers: &[String]) -> Result<ExitCode> {
    if !attach {
        bail!("start without -a: detached containers need the shim supervisor, which rbox does not use yet");
    }
    let [one] = containers else {
        bail!("start -a takes one container");
    };
    let code = container::run_attached(store, one)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
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

pub fn ps(
    store: &Store,
    all: bool,
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> Result<()> {
    let template = format.map(Template::parse).transpose()?;
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in container::list(store)? {
        let status = container::live_status(store, &c);
        if !all && status != "running" && status != "paused" {
            continue;
        }
        let id = if no_trunc {
            c.id.clone()
        } else {
            short_id(&c.id).to_string()
        };
        if quiet {
            println!("{id}");
            continue;
        }
        let shown = match status.as_str() {
            "running" => format!(
                "Up {}",
                c.state
                    .started_at
                    .as_deref()
                    .map(|s| human_since(seconds_since(s)).replace(" ago", ""))
                    .unwrap_or_default()
            ),
            "paused" => "Up (Paused)".into(),
            "exited" => format!(
                "Exited ({}) {}",
                c.state.exit_code,
                c.state
                    .finished_at
                    .as_deref()
                    .map(|s| human_since(seconds_since(s)))
                    .unwrap_or_default()
            ),
            _ => "Created".into(),
        };
        let ports = if status == "running" {
            c.state
                .ports
                .iter()
                .map(PortMap::display)
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            String::new()
        };
        let mut command = if c.spec.cmd.is_empty() {
            String::new()
        } else {
            c.spec.cmd.join(" ")
        };
        if let Some(ep) = &c.spec.entrypoint {
            command = format!("{ep} {command}").trim().to_string();
        }
        if !no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        let command = format!("\"{command}\"");
        if let Some(t) = &template {
            let v = serde_json::json!({"ID": id, "Image": c.spec.image, "Command": command,
                "CreatedAt": c.created, "Status": shown, "Ports": ports, "Names": c.name, "State": status});
            println!("{}", t.render(&v));
            continue;
        }
        rows.push(vec![
            id,
            c.spec.image.clone(),
            command,
            human_since(seconds_since(&c.created)),
            shown,
            ports,
            c.name.clone(),
        ]);
    }
    if !quiet && template.is_none() {
        print!("{}", table(&rows));
    }
    Ok(())
}
