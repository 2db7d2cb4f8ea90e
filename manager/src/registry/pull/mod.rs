//! `rbox pull`: the OCI distribution protocol through oci-client
//! (anonymous, bearer-token and basic auth; OCI and Docker schema2
//! manifests and indexes/lists), one platform picked from an index.
//!
//! Layers the store has (by diff_id) are not downloaded ("Already exists").
//! The others download concurrently; each is streamed through a channel to a
//! blocking task that writes the compressed blob (hashed, verified against
//! the manifest digest) and unpacks it in the same pass (diff_id verified
//! against the config). The image is recorded only when every layer is in.
//!
//! Nothing the registry says about sizes is trusted: manifests are read by
//! rbox itself (oci-client reads whole bodies) and refused past 4 MiB, the
//! config past 4 MiB; a descriptor size that is negative, or more than the
//! store's free space, is refused before anything is downloaded; a blob is
//! counted as it streams and the download stops at its descriptor's size
//! plus one byte. Layer media types are checked against `media`'s list.
//! Each pull first sweeps the temp files of dead rbox processes
//! (`Store::sweep_orphans`).
//!
//! With mirrors (`config`), the first source that serves the manifest
//! serves the whole pull; when none does, the error says what each one
//! answered.
//!
//! A pull in stages, as `pull_async` reads: the first source that serves
//! the manifest (remote.rs), the manifest for the platform (manifest.rs,
//! platform.rs), the image config (image_config.rs), the layers to
//! download (plan.rs) and the space for them (size.rs), the downloads
//! (layer.rs), and the image recorded (`image::commit_image`). error.rs
//! has what it refuses, progress.rs what it says, need.rs what `run` and
//! `create` pull.

mod digest;
mod error;
mod image_config;
mod layer;
mod manifest;
mod need;
mod plan;
mod platform;
mod progress;
mod remote;
mod size;

use std::io::{self, IsTerminal, Write};

use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::image;
use crate::reference::Reference;
use crate::store::Store;
use error::Result;
use image_config::ImageConfig;
use manifest::Manifest;
use progress::Progress;

pub(crate) use digest::check_digest;
pub use error::{Answer, ManifestError, PullError, SizeProblem};
pub use need::{need, Need, Policy};
pub(crate) use platform::select;
pub use platform::Platform;
pub use remote::{endpoints, Endpoint};
pub use size::{MAX_CONFIG, MAX_MANIFEST};

pub struct PullOptions {
    pub platform: Platform,
    /// Where to pull from, in order: the registry's mirrors, then itself
    pub endpoints: Vec<Endpoint>,
}

/// Where the pull's progress goes: `rbox pull` writes it to stdout, `run`
/// and `create` to stderr (their stdout is the container's id or output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

/// Pull `r` into the store, printing Docker-like progress lines to `out`.
/// Returns the image id.
pub fn pull(store: &Store, r: &Reference, opts: &PullOptions, out: Out) -> Result<String> {
    let (mut w, bars): (Box<dyn Write>, _) = match out {
        Out::Stdout => (
            Box::new(io::stdout()),
            io::stdout()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
        ),
        Out::Stderr => (
            Box::new(io::stderr()),
            io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        ),
    };
    pull_with(store, r, opts, &mut w, bars)
}

/// [`pull`] with its progress as plain lines (`ID: status`, no bars) to
/// `out`: what `rbox serve` turns into Docker's JSON progress messages.
pub fn pull_to(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
) -> Result<String> {
    pull_with(store, r, opts, out, None)
}

fn pull_with(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
    bars: Option<MultiProgress>,
) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PullError::Runtime)?;
    // rustls needs one crypto provider for the process; ring it is
    let _ = rustls::crypto::ring::default_provider().install_default();
    // what killed pulls left (a pull that fails again never reaches the
    // sweep at commit)
    store.sweep()?;
    rt.block_on(pull_async(store, r, opts, out, bars))
}

/// The stages of a pull, each in its own file.
async fn pull_async(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
    bars: Option<MultiProgress>,
) -> Result<String> {
    let name = r.familiar();
    let mut progress = Progress::new(out, bars);
    progress.line(&format!(
        "{}: Pulling from {}",
        r.tag().or(r.digest()).unwrap_or_default(),
        crate::reference::familiar_repository(&format!("{}/{}", r.domain(), r.path()))
    ));
    let (remote, top) = remote::first_to_serve(&opts.endpoints, r, &name).await?;
    let manifest = Manifest::select(&remote, top, r, &opts.platform, &name).await?;
    let kinds = manifest.layer_kinds(&name)?;
    let config = ImageConfig::fetch(&remote, &manifest.manifest, &name).await?;
    let image_id = manifest.manifest.config.digest.clone();
    let refs = names(r, &manifest.top_digest);
    if store.image(&image_id)?.is_some() {
        image::add_refs(store, &refs, &image_id)?;
        let status = format!("Image is up to date for {name}");
        progress.status(&manifest.top_digest, &status);
        return Ok(image_id);
    }

    let layers = &manifest.manifest.layers;
    size::check_free_space(store, layers, &config.diff_ids, &kinds, &name)?;
    let steps = plan::plan(store, layers, &config.diff_ids, &kinds, &mut progress)?;
    let layers = layer::download(&remote, store, steps, &name, &mut progress).await?;
    let id = image::commit_image(
        store,
        config.bytes,
        &config.config,
        image::layer_media_type(&manifest.manifest),
        layers,
        &refs,
        Some(manifest.bytes),
    )?;
    progress.end_bars();
    let status = format!("Downloaded newer image for {name}");
    progress.status(&manifest.top_digest, &status);
    Ok(id)
}

/// The names a pulled image gets: its tag (`latest` when the reference
/// has neither tag nor digest) and its digest.
fn names(r: &Reference, top_digest: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    if let Some(t) = r.tag() {
        refs.push(r.with_tag(t));
    } else if r.digest().is_none() {
        refs.push(r.with_tag(crate::reference::DEFAULT_TAG));
    }
    refs.push(r.with_digest(top_digest));
    refs
}
