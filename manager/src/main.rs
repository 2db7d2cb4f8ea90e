//! rbox: parse the command line, run one verb, print. Errors are one line
//! on stderr (`rbox: …`) and exit status 1.

mod ctr;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use oci_client::secrets::RegistryAuth;
use rbox::bundle;
use rbox::format::{human_since, human_size, seconds_since, table};
use rbox::image::{self, short_id};
use rbox::pull::{self, Platform, PullOptions};
use rbox::reference::Reference;
use rbox::store::{Store, DEFAULT_ROOT};

#[derive(Parser)]
#[command(name = "rbox", version, about = "A Docker-like container manager")]
struct Cli {
    /// Where images, layers and containers are stored
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
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
    /// Create and run a container (attached)
    Run(ctr::RunArgs),
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
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers
    Ps {
        /// Also stopped ones
        #[arg(short, long)]
        all: bool,
        /// Only ids
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
        /// A Go-template subset, like '{{.Names}} {{.Status}}'
        #[arg(long)]
        format: Option<String>,
    },
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
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // library errors already name their cause: print each once
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("rbox: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn open(root: &std::path::Path) -> Result<Store> {
    Store::open(root).with_context(|| format!("open the store in {}", root.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let store = open(&cli.root)?;
    match cli.verb {
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
            let auth = match user {
                None => RegistryAuth::Anonymous,
                Some(u) => {
                    let (name, pass) = u.split_once(':').context("--user must be USER:PASSWORD")?;
                    RegistryAuth::Basic(name.to_string(), pass.to_string())
                }
            };
            let mut out = std::io::stdout();
            pull::pull(&store, &r, &PullOptions { platform, auth }, &mut out)?;
            println!("{}", r.familiar());
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
        Verb::Create(a) => return ctr::create(&store, &a),
        Verb::Run(a) => return ctr::run(&store, &a),
        Verb::Start { attach, containers } => return ctr::start(&store, attach, &containers),
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
        Verb::Rm { force, containers } => {
            return Ok(ctr::each(&containers, |c| {
                rbox::container::remove(&store, c, force)
            }))
        }
        Verb::Ps {
            all,
            quiet,
            no_trunc,
            format,
        } => ctr::ps(&store, all, quiet, no_trunc, format.as_deref())?,
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
        }) => bundle::create(&store, &image, &id, &dir, &args)?,
        Verb::Bundle(BundleVerb::Rm { id }) => bundle::remove(&store, &id)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn images(store: &Store, a: &ImagesArgs) -> Result<()> {
    let lines = image::list(store)?;
    let id = |full: &str| {
        if a.no_trunc {
            full.to_string()
        } else {
            short_id(full).to_string()
        }
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for l in &lines {
            if seen.insert(&l.id) {
                println!("{}", id(&l.id));
            }
        }
        return Ok(());
    }
    match a.format {
        Format::Json => {
            for l in &lines {
                let created = chrono::DateTime::parse_from_rfc3339(&l.created)
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%d %H:%M:%S %z UTC")
                            .to_string()
                    })
                    .unwrap_or_default();
                let v = json!({
                    "Containers": "N/A",
                    "CreatedAt": created,
                    "CreatedSince": human_since(seconds_since(&l.created)),
                    "Digest": l.digest,
                    "ID": id(&l.id),
                    "Repository": l.repository,
                    "SharedSize": "N/A",
                    "Size": human_size(l.size),
                    "Tag": l.tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(l.size),
                });
                println!("{v}");
            }
        }
        Format::Table => {
            let mut head = vec!["REPOSITORY", "TAG"];
            if a.digests {
                head.push("DIGEST");
            }
            head.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
            for l in &lines {
                let mut r = vec![l.repository.clone(), l.tag.clone()];
                if a.digests {
                    r.push(l.digest.clone());
                }
                r.extend([
                    id(&l.id),
                    human_since(seconds_since(&l.created)),
                    human_size(l.size),
                ]);
                rows.push(r);
            }
            print!("{}", table(&rows));
        }
    }
    Ok(())
}
