//! rbox: parse the command line, run one verb, print. Errors are one line
//! on stderr (`rbox: …`) with Docker's exit status (status.rs).

// stdout through rbox::stdio (here and in the modules below): a reader that
// goes away (`rbox ps | head -1`) ends rbox quietly, as it ends Docker's CLI
macro_rules! print {
    ($($t:tt)*) => { rbox::stdio::print(format_args!($($t)*)) };
}
macro_rules! println {
    () => { rbox::stdio::print(format_args!("\n")) };
    ($($t:tt)*) => { rbox::stdio::print(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! eprintln {
    ($($t:tt)*) => { rbox::stdio::eprint(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! eprint {
    ($($t:tt)*) => { rbox::stdio::eprint(format_args!($($t)*)) };
}

mod alias;
mod ctr;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use rbox::archive::{self, ArchiveError};
use rbox::auth;
use rbox::bundle;
use rbox::config::{Config, DEFAULT_CONFIG};
use rbox::format::{human_since, human_size, seconds_since, table};
use rbox::image::{self, short_id};
use rbox::pull::{self, Platform, PullOptions};
use rbox::push::{self, PushOptions};
use rbox::reference::Reference;
use rbox::store::{Store, DEFAULT_ROOT};

#[derive(Parser)]
#[command(name = "rbox", version, about = "A Docker-like container manager")]
struct Cli {
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
enum Verb {
    /// Make a one-layer image from a rootfs tarball (plain, gzip or zstd)
    Import {
        /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
        tarball: PathBuf,
        /// NAME[:TAG]
        reference: Option<String>,
    },
    /// Download an image from a registry
    Pull {
        /// os/arch[/variant] to pick from a multi-platform image
        #[arg(long)]
        platform: Option<String>,
        /// USER:PASSWORD for the registry (basic auth, or the token service's)
        #[arg(long, env = "RBOX_REGISTRY_AUTH", hide_env_values = true)]
        user: Option<String>,
        /// NAME[:TAG|@DIGEST]
        image: String,
    },
    /// Upload an image to a registry
    Push {
        /// USER:PASSWORD for the registry (basic auth, or the token service's)
        #[arg(long, env = "RBOX_REGISTRY_AUTH", hide_env_values = true)]
        user: Option<String>,
        /// Blobs up to this many bytes go in one request, bigger ones in chunks of it
        #[arg(long, hide = true, default_value_t = push::DEFAULT_CHUNK_SIZE)]
        chunk_size: usize,
        /// NAME[:TAG]
        image: String,
    },
    /// Write images to a tar archive (stdout unless -o)
    Save {
        /// Write to this file instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
        format: ArchiveFormat,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from a docker-archive or OCI archive (stdin unless -i)
    Load {
        /// Read from this file instead of stdin
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Print only the image names (or ids)
        #[arg(short, long)]
        quiet: bool,
    },
    /// Log in to a registry (checks the credentials, then stores them)
    Login {
        #[arg(short, long)]
        username: Option<String>,
        #[arg(short, long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from stdin
        #[arg(long)]
        password_stdin: bool,
        /// host[:port]; docker.io when left out
        registry: Option<String>,
    },
    /// Forget the credentials of a registry
    Logout {
        /// host[:port]; docker.io when left out
        registry: Option<String>,
    },
    /// List images
    Images(ImagesArgs),
    /// Add a name to an image
    Tag { source: String, target: String },
    /// Remove images (untag; delete when no name is left)
    Rmi {
        /// Also untag an image that several repositories name
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Details of containers or images as a JSON array
    Inspect {
        /// A Go-template subset, like '{{.NetworkSettings.IPAddress}}'
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Create a container from an image (not started)
    Create(ctr::RunArgs),
    /// Create and run a container
    Run(ctr::RunArgs),
    /// Run a command in a running container
    Exec(ctr::ExecArgs),
    /// A container's output
    Logs(ctr::LogsArgs),
    /// Copy files between a container and the host (CONTAINER:PATH, or - for a tar stream)
    Cp {
        /// Keep the uid/gid of what is copied in
        #[arg(short, long)]
        archive: bool,
        src: String,
        dest: String,
    },
    /// Stop, then start containers
    Restart {
        /// Seconds to wait before KILL
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach to a running container's output (and input with -i)
    Attach { container: String },
    /// Wait for containers to stop; print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze the processes of containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Give a container a new name
    Rename { container: String, name: String },
    /// A container's published ports
    Port { container: String },
    /// A container's processes
    Top { container: String },
    /// Running containers' CPU, memory, network, block I/O and pids
    Stats {
        /// One reading, then exit
        #[arg(long)]
        no_stream: bool,
        /// table (default) or json
        #[arg(long)]
        format: Option<String>,
        containers: Vec<String>,
    },
    /// What this host has for containers
    Info,
    /// The versions of rbox and of the runtime, shim and CNI plugins it uses
    Version {
        /// `json`, or a template over the JSON (`{{.Client.Version}}`)
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Container housekeeping; `container ls|rm|run|exec|…` are the verbs
    /// of the same names (`container ls` is `ps`)
    #[command(subcommand)]
    Container(ContainerVerb),
    /// Image housekeeping; `image ls|rm|inspect|pull|push|tag|history|
    /// save|load|import` are the verbs of the same names (`image ls` is
    /// `images`, `image rm` is `rmi`)
    #[command(subcommand)]
    Image(ImageVerb),
    /// Named volumes
    #[command(subcommand)]
    Volume(VolumeVerb),
    /// User-defined bridge networks
    #[command(subcommand)]
    Network(NetworkVerb),
    /// Disk use and clean-up of the whole store
    #[command(subcommand)]
    System(SystemVerb),
    /// The shim's exit hook: a container's init exited
    #[command(name = "__exited", hide = true)]
    Exited {
        id: String,
        /// Nothing to do while this (attached `run --rm`) rbox lives
        #[arg(long)]
        unless_attached: Option<i32>,
    },
    /// Run a created or stopped container
    Start {
        /// Attach to its output and wait
        #[arg(short, long)]
        attach: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop running containers (TERM, then KILL after the timeout)
    Stop {
        /// Seconds to wait before KILL
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to running containers
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers
    Rm {
        /// Also running ones (killed first)
        #[arg(short, long)]
        force: bool,
        /// Also the container's anonymous volumes
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers
    Ps(ctr::PsArgs),
    /// The layers' history of an image
    History {
        #[arg(long)]
        no_trunc: bool,
        image: String,
    },
    /// OCI bundles from images (for the container verbs to come)
    #[command(hide = true, subcommand)]
    Bundle(BundleVerb),
}

#[derive(Subcommand)]
enum SystemVerb {
    /// Disk space used by images, containers, volumes and the build cache
    Df,
    /// Remove stopped containers, unused networks and dangling images
    Prune {
        /// Every image no container uses, not only untagged ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
        /// Also volumes no container uses
        #[arg(long)]
        volumes: bool,
    },
}

#[derive(Subcommand)]
enum ContainerVerb {
    /// Remove every stopped container
    Prune {
        /// Do not ask (rbox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum ImageVerb {
    /// Remove dangling images (untagged, unused); -a: every unused image
    Prune {
        /// Every image no container uses, not only untagged ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum VolumeVerb {
    /// Make a named volume
    Create { name: Option<String> },
    /// List volumes
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (not while a container uses them, unless -f)
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum NetworkVerb {
    /// Make a bridge network (a free /24 of 10.89.128.0/17 unless --subnet)
    Create {
        /// Only bridge
        #[arg(short, long)]
        driver: Option<String>,
        /// IPv4 CIDR, like 10.89.130.0/24
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address (the subnet's first by default)
        #[arg(long)]
        gateway: Option<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only ids
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show networks as JSON
    Inspect {
        /// A Go-template subset, like '{{.IPAM.Config}}'
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (not while a container uses them)
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every user network no container uses
    Prune {
        /// Do not ask (rbox never asks)
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    quiet: bool,
    /// Show the repository digests
    #[arg(long)]
    digests: bool,
    /// Full image ids
    #[arg(long)]
    no_trunc: bool,
    /// KEY=VALUE: reference (a glob), dangling, label, before, since
    #[arg(short, long)]
    filter: Vec<String>,
    /// `table`, `table TEMPLATE`, `json`, or a Go template such as
    /// '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    format: Option<String>,
    /// An image's REPOSITORY[:TAG] (a glob, like --filter reference=)
    reference: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArchiveFormat {
    /// docker save's format: manifest.json, repositories, layer tars
    DockerArchive,
    /// an OCI image layout: oci-layout, index.json, blobs
    OciArchive,
}

#[derive(Subcommand)]
enum BundleVerb {
    /// Mount IMAGE's layers at DIR/rootfs and write DIR/config.json
    Create {
        image: String,
        id: String,
        dir: PathBuf,
        /// Replaces the image's Cmd
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Unmount and remove the bundle of container ID
    Rm { id: String },
}

fn main() -> ExitCode {
    let cli: Cli = status::parse(alias::rewrite(std::env::args_os().collect()));
    let verb = match &cli.verb {
        Verb::Run(_) | Verb::Create(_) => status::Verb::Run,
        Verb::Exec(_) => status::Verb::Exec,
        _ => status::Verb::Other,
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // stdout's reader went away (`rbox save | head -c 1`, `cp - `)
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(rbox::stdio::closed)
            });
            if broken_pipe && rbox::stdio::stdout_closed() {
                rbox::stdio::exit_closed();
            }
            // library errors already name their cause: print each once
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("rbox: {msg}");
            verb.status(&e)
        }
    }
}

/// `http://host:port/` → `host:port`; none → docker.io.
fn registry_name(r: Option<String>) -> String {
    let r = r.unwrap_or_else(|| rbox::reference::DEFAULT_DOMAIN.into());
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(&r);
    let r = r.split('/').next().unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" => rbox::reference::DEFAULT_DOMAIN.into(),
        r => r.to_string(),
    }
}

fn login(
    config: &Config,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    registry: Option<String>,
) -> Result<()> {
    let registry = registry_name(registry);
    let user = username.context("login: give the user name with -u")?;
    let password = match (password, password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .read_line(&mut p)
                .context("login: read the password from stdin")?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => anyhow::bail!("login: give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        anyhow::bail!("login: the password is empty");
    }
    auth::verify(&registry, config.plain_http(&registry), &user, &password)?;
    auth::save(&registry, &user, &password)?;
    println!("Login Succeeded");
    Ok(())
}

fn open(root: &std::path::Path) -> Result<Store> {
    Store::open(root).with_context(|| format!("open the store in {}", root.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    // read by the verbs that talk to registries only
    let config = || -> Result<Config> {
        Ok(match &cli.config {
            Some(p) => Config::load(p, true)?,
            None => Config::load(std::path::Path::new(DEFAULT_CONFIG), false)?,
        })
    };
    // the credential verbs need no store
    let verb = match cli.verb {
        Verb::Login {
            username,
            password,
            password_stdin,
            registry,
        } => {
            login(&config()?, username, password, password_stdin, registry)?;
            return Ok(ExitCode::SUCCESS);
        }
        Verb::Version { format } => {
            ctr::version(format.as_deref())?;
            return Ok(ExitCode::SUCCESS);
        }
        Verb::Logout { registry } => {
            let registry = registry_name(registry);
            if auth::remove(&registry)? {
                println!("Removing login credentials for {registry}");
            } else {
                println!("Not logged in to {registry}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        v => v,
    };
    // the attached run finishes its container: wait for it, and open no
    // store for nothing (unless it left the container to us)
    if let Verb::Exited {
        id,
        unless_attached: Some(pid),
    } = &verb
    {
        if *pid != std::process::id() as i32
            && rbox::container::await_attached_run(&cli.root, id).is_none()
        {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let store = open(&cli.root)?;
    // containers whose shim was killed are finished first, as containerd does
    if let Err(e) = rbox::container::recover_orphans(&store) {
        eprintln!("rbox: warning: {e}");
    }
    match verb {
        Verb::Import {
            changes,
            tarball,
            reference,
        } => {
            let r = reference.as_deref().map(Reference::parse).transpose()?;
            let id = image::import(&store, &tarball, r.as_ref(), &changes)?;
            println!("{id}");
        }
        Verb::Pull {
            platform,
            user,
            image,
        } => {
            let r = Reference::parse(&image)?;
            let platform = match platform {
                Some(p) => Platform::parse(&p)?,
                None => Platform::host(),
            };
            let user = user_pass(user.as_deref())?;
            let endpoints = pull::endpoints(&config()?, &r, user)?;
            pull::pull(
                &store,
                &r,
                &PullOptions {
                    platform,
                    endpoints,
                },
                pull::Out::Stdout,
            )?;
            println!("{}", r.familiar());
        }
        Verb::Push {
            user,
            chunk_size,
            image,
        } => {
            let r = Reference::parse(&image)?;
            let auth = auth::registry_auth(r.domain(), user_pass(user.as_deref())?)?;
            let opts = PushOptions {
                auth,
                plain_http: config()?.plain_http(r.domain()),
                chunk_size,
            };
            push::push(&store, &r, &opts, &mut std::io::stdout())?;
        }
        Verb::Save {
            output,
            format,
            images,
        } => {
            let format = match format {
                ArchiveFormat::DockerArchive => archive::Format::DockerArchive,
                ArchiveFormat::OciArchive => archive::Format::OciArchive,
            };
            save(&store, &images, format, output.as_deref())?;
        }
        Verb::Load { input, quiet } => {
            for line in archive::load(&store, input.as_deref())? {
                if quiet {
                    println!("{}", line.rsplit(": ").next().unwrap_or_default());
                } else {
                    println!("{line}");
                }
            }
        }
        Verb::Images(a) => images(&store, &a)?,
        Verb::Tag { source, target } => image::tag(&store, &source, &target)?,
        Verb::Rmi { force, images } => {
            let mut failed = false;
            for i in &images {
                match image::rmi(&store, i, force) {
                    Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                    Err(e) => {
                        eprintln!("rbox: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Verb::Inspect { format, targets } => {
            let template = format
                .as_deref()
                .map(rbox::template::Template::parse)
                .transpose()?;
            let mut all = Vec::new();
            for t in &targets {
                match rbox::container::find(&store, t) {
                    Ok(c) => all.push(rbox::container::inspect(&store, &c)),
                    Err(rbox::container::ContainerError::NoSuch(_)) => all.push(
                        image::inspect(&store, t)
                            .with_context(|| format!("no such container or image: {t}"))?,
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
            match template {
                Some(t) => all.iter().for_each(|v| println!("{}", t.render(v))),
                None => println!("{}", serde_json::to_string_pretty(&all)?),
            }
        }
        Verb::Create(a) => return ctr::create(&store, &a, &config),
        Verb::Run(a) => return ctr::run(&store, &a, &config),
        Verb::Start { attach, containers } => return ctr::start(&store, attach, &containers),
        Verb::Exec(a) => return ctr::exec(&store, &a),
        Verb::Logs(a) => return ctr::logs(&store, &a),
        Verb::Cp { archive, src, dest } => ctr::cp(&store, &src, &dest, archive)?,
        Verb::Restart { time, containers } => {
            let t = std::time::Duration::from_secs(time);
            return Ok(ctr::each(&containers, |c| {
                rbox::container::restart(&store, c, t)
            }));
        }
        Verb::Attach { container } => return ctr::attach(&store, &container),
        Verb::Wait { containers } => {
            let mut failed = false;
            for c in &containers {
                match rbox::container::wait(&store, c) {
                    Ok(code) => println!("{code}"),
                    Err(e) => {
                        eprintln!("rbox: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        Verb::Pause { containers } => {
            return Ok(ctr::each(&containers, |c| {
                rbox::container::pause(&store, c, true)
            }))
        }
        Verb::Unpause { containers } => {
            return Ok(ctr::each(&containers, |c| {
                rbox::container::pause(&store, c, false)
            }))
        }
        Verb::Rename { container, name } => rbox::container::rename(&store, &container, &name)?,
        Verb::Port { container } => ctr::port(&store, &container)?,
        Verb::Top { container } => ctr::top(&store, &container)?,
        Verb::Stats {
            no_stream,
            format,
            containers,
        } => ctr::stats(&store, no_stream, format.as_deref(), &containers)?,
        Verb::Info => ctr::info(&store)?,
        Verb::System(SystemVerb::Df) => system_df(&store)?,
        Verb::System(SystemVerb::Prune {
            all,
            force,
            volumes,
        }) => return system_prune(&store, all, force, volumes),
        Verb::Image(ImageVerb::Prune { all, force }) => return image_prune(&store, all, force),
        Verb::Container(ContainerVerb::Prune { .. }) => {
            let gone = rbox::container::prune(&store)?;
            if !gone.is_empty() {
                println!("Deleted Containers:");
                gone.iter().for_each(|id| println!("{id}"));
            }
        }
        Verb::Volume(VolumeVerb::Create { name }) => {
            println!(
                "{}",
                rbox::container::volume_create(&store, name.as_deref())?
            )
        }
        Verb::Volume(VolumeVerb::Ls { quiet }) => {
            let vols = rbox::container::volumes(&store)?;
            if quiet {
                vols.iter().for_each(|(n, _)| println!("{n}"));
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                rows.extend(vols.into_iter().map(|(n, _)| vec!["local".to_string(), n]));
                print!("{}", table(&rows));
            }
        }
        Verb::Volume(VolumeVerb::Inspect { names }) => {
            let all = names
                .iter()
                .map(|n| rbox::container::volume_inspect(&store, n))
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Verb::Volume(VolumeVerb::Rm { force, names }) => {
            return Ok(ctr::each(&names, |n| {
                rbox::container::volume_remove(&store, n, force)
            }))
        }
        Verb::Volume(VolumeVerb::Prune { .. }) => {
            let gone = rbox::container::volume_prune(&store)?;
            if !gone.is_empty() {
                println!("Deleted Volumes:");
                gone.iter().for_each(|n| println!("{n}"));
            }
        }
        Verb::Network(v) => return network(&store, v),
        Verb::Exited { id, .. } => {
            let code = std::env::var("RRUN_SHIM_EXIT_STATUS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            rbox::container::exited(&store, &id, code)?;
        }
        Verb::Stop { time, containers } => {
            let t = std::time::Duration::from_secs(time);
            return Ok(ctr::each(&containers, |c| {
                rbox::container::stop(&store, c, t)
            }));
        }
        Verb::Kill { signal, containers } => {
            return Ok(ctr::each(&containers, |c| {
                rbox::container::kill(&store, c, &signal)
            }))
        }
        Verb::Rm {
            force,
            volumes,
            containers,
        } => {
            return Ok(ctr::each(&containers, |c| {
                let spec = rbox::container::find(&store, c)?.spec;
                rbox::container::remove(&store, c, force)?;
                if volumes {
                    rbox::container::remove_anonymous_volumes(&store, &spec);
                }
                Ok(())
            }))
        }
        Verb::Ps(a) => ctr::ps(&store, &a)?,
        Verb::History { no_trunc, image } => {
            let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
                .map(String::from)
                .to_vec()];
            for h in image::history(&store, &image)? {
                let id = if no_trunc || h.image == "<missing>" {
                    h.image
                } else {
                    short_id(&h.image).to_string()
                };
                let mut by = h.created_by;
                if !no_trunc && by.chars().count() > 45 {
                    by = by.chars().take(44).collect::<String>() + "…";
                }
                rows.push(vec![
                    id,
                    human_since(seconds_since(&h.created)),
                    by,
                    human_size(h.size),
                    h.comment,
                ]);
            }
            print!("{}", table(&rows));
        }
        Verb::Bundle(BundleVerb::Create {
            image,
            id,
            dir,
            args,
        }) => {
            bundle::create(&store, &image, &id, &dir, &args, false)?;
        }
        Verb::Bundle(BundleVerb::Rm { id }) => bundle::remove(&store, &id)?,
        Verb::Login { .. } | Verb::Logout { .. } | Verb::Version { .. } => {
            unreachable!("handled before the store opens")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox system df`: Docker's table.
fn system_df(store: &Store) -> Result<()> {
    use rbox::format::human_size;
    println!(
        "{:<16}{:<10}{:<10}{:<10}RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for r in rbox::system::df(store)? {
        let share = (r.reclaimable * 100)
            .checked_div(r.size)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default();
        println!(
            "{:<16}{:<10}{:<10}{:<10}{}{share}",
            r.kind,
            r.total,
            r.active,
            human_size(r.size),
            human_size(r.reclaimable)
        );
    }
    Ok(())
}

/// `rbox system prune`: asks first (a `y` on stdin) unless `-f`.
fn system_prune(store: &Store, all: bool, force: bool, volumes: bool) -> Result<ExitCode> {
    if !force {
        eprintln!("WARNING! This will remove:");
        eprintln!("  - all stopped containers");
        eprintln!("  - all networks not used by at least one container");
        if volumes {
            eprintln!("  - all volumes not used by at least one container");
        }
        eprintln!(
            "  - all {}",
            if all {
                "images without at least one container associated to them"
            } else {
                "dangling images"
            }
        );
        eprint!("Are you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("rbox: system prune: not confirmed, nothing removed (-f skips the question)");
            return Ok(ExitCode::FAILURE);
        }
    }
    let p = rbox::system::prune(store, all, volumes)?;
    for (title, items) in [
        ("Deleted Containers:", &p.containers),
        ("Deleted Networks:", &p.networks),
        ("Deleted Volumes:", &p.volumes),
        ("Deleted Images:", &p.images),
    ] {
        if !items.is_empty() {
            println!("{title}");
            items.iter().for_each(|i| println!("{i}"));
            println!();
        }
    }
    println!(
        "Total reclaimed space: {}",
        rbox::format::human_size(p.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

/// `rbox image prune`: asks first (a `y` on stdin) unless `-f`, like
/// Docker.
fn image_prune(store: &Store, all: bool, force: bool) -> Result<ExitCode> {
    if !force {
        eprintln!(
            "WARNING! This will remove all {}.",
            if all {
                "images without at least one container associated to them"
            } else {
                "dangling images"
            }
        );
        eprint!("Are you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("rbox: image prune: not confirmed, nothing removed (-f skips the question)");
            return Ok(ExitCode::FAILURE);
        }
    }
    let (lines, reclaimed) = rbox::system::prune_images(store, all)?;
    if !lines.is_empty() {
        println!("Deleted Images:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        rbox::format::human_size(reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

/// `rbox save`: to a temp file renamed into place at the end (no partial
/// archive is left), or to stdout unless it is a terminal.
fn save(
    store: &Store,
    images: &[String],
    format: archive::Format,
    output: Option<&std::path::Path>,
) -> Result<()> {
    use std::io::IsTerminal;
    let Some(path) = output else {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(ArchiveError::Terminal.into());
        }
        let w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        return Ok(archive::save(store, images, format, w)?);
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".rbox-tmp");
    let tmp = PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let res = archive::save(
        store,
        images,
        format,
        std::io::BufWriter::with_capacity(1 << 16, file),
    )
    .map_err(anyhow::Error::from)
    .and_then(|()| {
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// `rbox network …`.
fn network(store: &Store, verb: NetworkVerb) -> Result<ExitCode> {
    use rbox::usernet;
    match verb {
        NetworkVerb::Create {
            driver,
            subnet,
            gateway,
            name,
        } => {
            let n = usernet::create(
                store,
                &name,
                driver.as_deref(),
                subnet.as_deref(),
                gateway.as_deref(),
            )?;
            println!("{}", n.id);
        }
        NetworkVerb::Ls { quiet, no_trunc } => {
            let id = |full: String| {
                if no_trunc {
                    full
                } else {
                    short_id(&full).to_string()
                }
            };
            let all = usernet::summaries(store)?;
            if quiet {
                all.into_iter().for_each(|(i, _, _)| println!("{}", id(i)));
            } else {
                let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                    .map(String::from)
                    .to_vec()];
                rows.extend(
                    all.into_iter()
                        .map(|(i, n, d)| vec![id(i), n, d, "local".into()]),
                );
                print!("{}", table(&rows));
            }
        }
        NetworkVerb::Inspect { format, names } => {
            let template = format
                .as_deref()
                .map(rbox::template::Template::parse)
                .transpose()?;
            let containers = rbox::container::list(store)?;
            let all = names
                .iter()
                .map(|n| usernet::inspect(store, n, &containers))
                .collect::<Result<Vec<_>, _>>()?;
            match template {
                Some(t) => all.iter().for_each(|v| println!("{}", t.render(v))),
                None => println!("{}", serde_json::to_string_pretty(&all)?),
            }
        }
        NetworkVerb::Rm { names } => {
            let containers = rbox::container::list(store)?;
            return Ok(ctr::each(&names, |n| {
                usernet::remove(store, n, &containers)
                    .map(drop)
                    .map_err(Into::into)
            }));
        }
        NetworkVerb::Prune { .. } => {
            let gone = usernet::prune(store, &rbox::container::list(store)?)?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                gone.iter().for_each(|n| println!("{n}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--user USER:PASSWORD`.
fn user_pass(user: Option<&str>) -> Result<Option<(String, String)>> {
    user.map(|u| {
        let (name, pass) = u.split_once(':').context("--user must be USER:PASSWORD")?;
        Ok((name.to_string(), pass.to_string()))
    })
    .transpose()
}

/// `rbox images`: Docker's table, or `--format`, of the images `--filter`
/// (and a REPOSITORY[:TAG] argument) pick.
fn images(store: &Store, a: &ImagesArgs) -> Result<()> {
    use rbox::filter::{Filters, IMAGE_KEYS};
    use rbox::listing::{
        self, ImagesOptions, ListFormat, IMAGES_TABLE, IMAGES_TABLE_DIGESTS, IMAGE_FIELDS,
    };
    let mut filter = a.filter.clone();
    filter.extend(a.reference.iter().map(|r| format!("reference={r}")));
    let filters = Filters::parse(&filter, IMAGE_KEYS)?;
    let default = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let format = ListFormat::parse(a.format.as_deref(), default, "images", IMAGE_FIELDS)?;
    let rows = listing::images(
        store,
        &ImagesOptions {
            no_trunc: a.no_trunc,
            filters,
        },
    )?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let id = r.fields["ID"].as_str().unwrap_or_default();
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    print!("{}", format.render(IMAGE_FIELDS, &rows));
    Ok(())
}
