//! The image verbs: `import`, `save`, `load`, `images`, `tag`, `rmi`,
//! `history`, `image prune`, and the hidden `bundle`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::{confirmed, Ctx};
use rbox::archive::{self, ArchiveError};
use rbox::bundle;
use rbox::format::{human_since, human_size, seconds_since, table};
use rbox::image::{self, short_id};
use rbox::reference::Reference;
use rbox::store::Store;

#[derive(Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    pub tarball: PathBuf,
    /// NAME[:TAG]
    pub reference: Option<String>,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
    pub format: ArchiveFormat,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print only the image names (or ids)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Also untag an image that several repositories name
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub no_trunc: bool,
    pub image: String,
}

#[derive(Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the repository digests
    #[arg(long)]
    pub digests: bool,
    /// Full image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// KEY=VALUE: reference (a glob), dangling, label, before, since
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// `table`, `table TEMPLATE`, `json`, or a Go template such as
    /// '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    pub format: Option<String>,
    /// An image's REPOSITORY[:TAG] (a glob, like --filter reference=)
    pub reference: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ArchiveFormat {
    /// docker save's format: manifest.json, repositories, layer tars
    DockerArchive,
    /// an OCI image layout: oci-layout, index.json, blobs
    OciArchive,
}

#[derive(Subcommand)]
pub enum ImageVerb {
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
pub enum BundleVerb {
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

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<ExitCode> {
    let r = a.reference.as_deref().map(Reference::parse).transpose()?;
    let id = image::import(&ctx.store, &a.tarball, r.as_ref(), &a.changes)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn save(ctx: &Ctx, a: SaveArgs) -> Result<ExitCode> {
    let format = match a.format {
        ArchiveFormat::DockerArchive => archive::Format::DockerArchive,
        ArchiveFormat::OciArchive => archive::Format::OciArchive,
    };
    save_to(&ctx.store, &a.images, format, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `rbox save`: to a temp file renamed into place at the end (no partial
/// archive is left), or to stdout unless it is a terminal.
fn save_to(
    store: &Store,
    images: &[String],
    format: archive::Format,
    output: Option<&Path>,
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

pub fn load(ctx: &Ctx, a: LoadArgs) -> Result<ExitCode> {
    for line in archive::load(&ctx.store, a.input.as_deref())? {
        if a.quiet {
            println!("{}", line.rsplit(": ").next().unwrap_or_default());
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox images`: Docker's table, or `--format`, of the images `--filter`
/// (and a REPOSITORY[:TAG] argument) pick.
pub fn images(ctx: &Ctx, a: ImagesArgs) -> Result<ExitCode> {
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
        &ctx.store,
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
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", format.render(IMAGE_FIELDS, &rows));
    Ok(ExitCode::SUCCESS)
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> Result<ExitCode> {
    image::tag(&ctx.store, &a.source, &a.target)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<ExitCode> {
    let mut failed = false;
    for i in &a.images {
        match image::rmi(&ctx.store, i, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("rbox: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> Result<ExitCode> {
    let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for h in image::history(&ctx.store, &a.image)? {
        let id = if a.no_trunc || h.image == "<missing>" {
            h.image
        } else {
            short_id(&h.image).to_string()
        };
        let mut by = h.created_by;
        if !a.no_trunc && by.chars().count() > 45 {
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
    Ok(ExitCode::SUCCESS)
}

/// `rbox image …` (the verbs not spelled as rbox's own: see alias.rs).
pub fn image(ctx: &Ctx, v: ImageVerb) -> Result<ExitCode> {
    match v {
        ImageVerb::Prune { all, force } => prune(&ctx.store, all, force),
    }
}

/// `rbox image prune`: asks first (a `y` on stdin) unless `-f`, like
/// Docker.
fn prune(store: &Store, all: bool, force: bool) -> Result<ExitCode> {
    if !force {
        eprintln!(
            "WARNING! This will remove all {}.",
            if all {
                "images without at least one container associated to them"
            } else {
                "dangling images"
            }
        );
        if !confirmed("Are you sure you want to continue?") {
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

/// `rbox bundle create|rm`.
pub fn bundle(ctx: &Ctx, v: BundleVerb) -> Result<ExitCode> {
    match v {
        BundleVerb::Create {
            image,
            id,
            dir,
            args,
        } => {
            bundle::create_from_image(&ctx.store, &image, &id, &dir, &args)?;
        }
        BundleVerb::Rm { id } => bundle::remove(&ctx.store, &id)?,
    }
    Ok(ExitCode::SUCCESS)
}
