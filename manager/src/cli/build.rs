//! `rbox build` (also `image build`): a Dockerfile and its context to an
//! image, daemonless (build/ does the work); `builder prune`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};

use super::Ctx;
use rbox::build::context::Context;
use rbox::build::dockerfile;
use rbox::build::executor::{self, BuildError, BuildOptions};
use rbox::build::output::{self, Output};
use rbox::build::plan::{self, build_args, Platform};
use rbox::container::NetMode;
use rbox::reference::Reference;
use rbox::registry::pull::{self, Need, Policy};

#[derive(Args)]
pub struct BuildArgs {
    /// The Dockerfile (default: CONTEXT/Dockerfile; - for stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name the image NAME[:TAG] (several allowed)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Set a build argument (KEY=VALUE, or KEY from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Build this stage (default: the last)
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, the cache unread (what is built is still cached)
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images even when they are present
    #[arg(long)]
    pub pull: bool,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image id to this file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set a label on the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The network of RUN steps: default (the bridge), none or host
    #[arg(long, default_value = "default")]
    pub network: String,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Progress output: auto, plain or tty (one plain style here), quiet
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet", "rawjson"])]
    pub progress: String,
    /// The target platform: one this host runs (no emulation)
    #[arg(long)]
    pub platform: Option<String>,
    /// Export the target's files: type=local,dest=DIR, type=tar,dest=FILE
    /// (dest=- for stdout), DIR or - (no image is made unless -t names one)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// The build context: a directory, or - for a tar on stdin
    pub context: String,
}

#[derive(Subcommand)]
pub enum BuilderVerb {
    /// Remove the build cache
    Prune {
        /// Everything, not only what no image uses (the same here: the
        /// cache keeps untagged images only)
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

pub fn build(ctx: &Ctx, a: BuildArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    let stdin_dockerfile = a.file.as_deref() == Some(std::path::Path::new("-"));
    let context = if a.context == "-" {
        if stdin_dockerfile {
            bail!("-f - and a context on stdin (-) cannot both be read from stdin");
        }
        Context::from_tar(std::io::stdin().lock(), store.root())?
    } else {
        let file = a.file.as_deref().filter(|_| !stdin_dockerfile);
        Context::from_dir(std::path::Path::new(&a.context), file)?
    }
    .fetch_into(store.root().join("snapshots"));
    let (text, name) = if stdin_dockerfile {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read the Dockerfile from stdin")?;
        (s, "Dockerfile".to_string())
    } else {
        context.dockerfile_text(a.file.as_deref())?
    };
    let df = dockerfile::parse(&text, &name)?;
    let opts = options(&a)?;
    let outputs = outputs(&a)?;
    let config = ctx.config()?;
    let policy = if a.pull {
        Policy::Always
    } else {
        Policy::Missing
    };
    let pull_base = |reference: &str| -> executor::Result<String> {
        let base = |why: String| BuildError::Base {
            reference: reference.to_string(),
            why,
        };
        let r = match pull::need(store, reference, policy).map_err(|e| base(e.to_string()))? {
            Need::Nothing => {
                return Ok(store
                    .resolve(reference)
                    .map_err(|e| base(e.to_string()))?
                    .id)
            }
            Need::Missing(r) | Need::Always(r) => r,
        };
        let popts = pull::PullOptions {
            platform: pull::Platform::host(),
            endpoints: pull::endpoints(&config, &r, None).map_err(|e| base(e.to_string()))?,
        };
        pull::pull(store, &r, &popts, pull::Out::Stderr).map_err(|e| base(e.to_string()))
    };
    let built = executor::build(store, &df, &context, &opts, &pull_base)?;
    for out in &outputs {
        if !opts.quiet {
            eprintln!("exporting to {}", out.describe());
        }
        output::export(store, &built.layers, out, opts.epoch)?;
        if !opts.quiet {
            eprintln!("exporting to {} done", out.describe());
        }
    }
    let Some(id) = built.image else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("write {}", f.display()))?;
    }
    if a.quiet {
        // stdout may be the tar of `-o -`
        if !outputs.iter().any(Output::is_stdout) {
            println!("{id}");
        }
    } else {
        eprintln!("writing image {id} done");
        for t in &opts.tags {
            eprintln!("naming to {} done", t);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-o` values, checked against what is at their destinations before
/// anything runs.
fn outputs(a: &BuildArgs) -> Result<Vec<Output>> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let outs = a
        .outputs
        .iter()
        .map(|v| Output::parse(v, terminal))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if outs.iter().filter(|o| o.is_stdout()).count() > 1 {
        bail!("--output: only one output can go to stdout");
    }
    for o in &outs {
        o.check()?;
    }
    Ok(outs)
}

/// `--platform`: one platform, and one this host runs natively.
fn platform(p: &str) -> Result<Platform> {
    if p.contains(',') {
        bail!("--platform {p}: rbox build builds one platform at a time (multi-platform builds need emulation, which rbox build does not have)");
    }
    let want = Platform::parse(p).with_context(|| format!("invalid --platform {p:?}"))?;
    let native = plan::host_native();
    if !plan::runs_natively(&want, &native) {
        bail!(
            "--platform {want}: this host runs {} natively, and rbox build has no emulation for another platform",
            plan::describe_platforms(&native)
        );
    }
    Ok(want)
}

fn options(a: &BuildArgs) -> Result<BuildOptions> {
    let platform = a.platform.as_deref().map(platform).transpose()?;
    if a.progress == "rawjson" {
        bail!("--progress rawjson is not supported: use auto, plain, tty or quiet");
    }
    let tags = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<Result<Vec<_>>>()?;
    let labels = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid --label {l:?}: expected KEY=VALUE"),
        })
        .collect::<Result<Vec<_>>>()?;
    let network = match a.network.as_str() {
        "default" | "bridge" => None,
        "none" => Some(NetMode::None),
        "host" => Some(NetMode::Host),
        other => bail!("invalid --network {other:?}: use default, none or host"),
    };
    let secrets = a
        .secrets
        .iter()
        .map(|s| secret(s))
        .collect::<Result<Vec<_>>>()?;
    let build_args: BTreeMap<String, String> = build_args(&a.build_args, |k| std::env::var(k).ok());
    let epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .map(|e| {
            e.parse::<u64>()
                .with_context(|| format!("invalid SOURCE_DATE_EPOCH {e:?}: seconds since 1970"))
        })
        .transpose()?;
    Ok(BuildOptions {
        build_args,
        target: a.target.clone(),
        tags,
        labels,
        no_cache: a.no_cache,
        network,
        secrets,
        quiet: a.quiet || a.progress == "quiet",
        epoch,
        platform,
        // `-o` alone makes no image (BuildKit's local and tar exporters)
        no_image: !a.outputs.is_empty() && a.tags.is_empty(),
    })
}

/// `--secret id=ID,src=FILE` (also `source=`).
fn secret(s: &str) -> Result<(String, PathBuf)> {
    let (mut id, mut src) = (None, None);
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
            Some(("type", "file")) => {}
            _ => bail!("invalid --secret {s:?}: expected id=ID,src=FILE"),
        }
    }
    match (id, src) {
        (Some(id), Some(src)) if src.is_file() => Ok((id, src)),
        (Some(_), Some(src)) => bail!("--secret {s:?}: {} is not a file", src.display()),
        _ => bail!("invalid --secret {s:?}: expected id=ID,src=FILE"),
    }
}

pub fn builder(ctx: &Ctx, v: BuilderVerb) -> Result<ExitCode> {
    match v {
        BuilderVerb::Prune { all: _, force } => {
            if !force {
                eprintln!("WARNING! This will remove all dangling build cache.");
                if !super::confirmed("Are you sure you want to continue?") {
                    eprintln!("rbox: builder prune: not confirmed, nothing removed (-f skips the question)");
                    return Ok(ExitCode::FAILURE);
                }
            }
            let (entries, bytes) = rbox::build::prune::prune(&ctx.store)?;
            println!(
                "Total:\t{} ({entries} entries)",
                rbox::format::human_size(bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
