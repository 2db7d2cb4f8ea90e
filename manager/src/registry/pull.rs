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

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::ImageConfiguration;
use sha2::{Digest, Sha256};

use super::auth::AuthError;
use super::client::{
    chain, client_config, oci_reference_at, plain_http, registry_message, short,
    MAX_CONCURRENT_DOWNLOADS,
};
use super::config::Config;
use crate::image::unpack::UnpackError;
use crate::image::{self, ImageError, NewLayer};
use crate::media::{self, LayerKind, UnsupportedLayer};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

const ACCEPT: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// The largest manifest or index read: Docker's registry refuses to store
/// bigger ones, and Docker and containerd to read them (4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest image config read: containers/image's limit (Podman, CRI-O
/// and skopeo read configs under it), 4 MiB. Configs are a few KiB; even
/// images of hundreds of layers stay far below.
pub const MAX_CONFIG: u64 = 4 << 20;
/// At most this much of an error response is read (its message).
const MAX_ERROR_BODY: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pull {reference}: {what}: {message}")]
    Registry {
        reference: String,
        what: &'static str,
        message: String,
    },
    #[error("pull {reference}: no manifest for platform {platform} (the index has {available})")]
    Platform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("pull {reference}: {why}")]
    BadImage { reference: String, why: String },
    /// No source served the manifest: what each one answered
    #[error("pull {reference}: {}", answers(.tried))]
    Manifest {
        reference: String,
        tried: Vec<Answer>,
    },
    /// A descriptor's size, or a blob that does not keep to it
    #[error("pull {reference}: {what} {digest}: {problem}")]
    Size {
        reference: String,
        what: &'static str,
        digest: String,
        problem: SizeProblem,
    },
    #[error(
        "pull {reference}: the manifest gives the layers to download {total} bytes in all, more than the {free} bytes free in {}",
        root.display()
    )]
    NoSpace {
        reference: String,
        total: u64,
        free: u64,
        root: PathBuf,
    },
    #[error("pull {reference}: {source}")]
    MediaType {
        reference: String,
        source: UnsupportedLayer,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("pull {reference}: layer {layer}: {source}")]
    Layer {
        reference: String,
        layer: String,
        source: UnpackError,
    },
    #[error("pull {reference}: layer {layer}: {source}")]
    LayerStore {
        reference: String,
        layer: String,
        source: Box<StoreError>,
    },
    #[error("invalid platform {0:?}: use os/arch[/variant]")]
    BadPlatform(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("pull: starting the I/O runtime: {0}")]
    Runtime(io::Error),
}

type Result<T> = std::result::Result<T, PullError>;

/// How a descriptor's size, or the blob sent for it, is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SizeProblem {
    #[error("the manifest gives it a negative size ({0})")]
    Negative(i64),
    #[error("the manifest gives it {size} bytes, more than the {limit}-byte limit for {kind}")]
    OverLimit {
        size: i64,
        limit: u64,
        kind: &'static str,
    },
    #[error("the manifest gives it {size} bytes, more than the {free} bytes free in {}", root.display())]
    NoSpace { size: u64, free: u64, root: PathBuf },
    #[error(
        "the registry announces {announced} bytes (Content-Length), the manifest gives it {size}"
    )]
    Announced { announced: u64, size: u64 },
    #[error("the registry sent more than the {0} bytes the manifest gives it (the download stopped there)")]
    Longer(u64),
    #[error("the registry sent {got} bytes, the manifest gives it {size}")]
    Shorter { got: u64, size: u64 },
}

/// What one source answered when asked for the manifest.
#[derive(Debug)]
pub struct Answer {
    /// `http://host:port` or `https://host`
    pub source: String,
    pub mirror: bool,
    pub error: ManifestError,
}

/// Why a manifest could not be had from one source.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Request(String),
    #[error("Not authorized (401 from {url}): log in with `rbox login` or pass --user")]
    Unauthorized { url: String },
    #[error("GET {url}: {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        url: String,
        status: reqwest::StatusCode,
        /// the registry's own words (its `errors` array)
        message: Option<String>,
    },
    #[error("GET {url}: the registry sent more than {limit} bytes, the limit for a manifest (Docker's and containerd's, 4 MiB)")]
    TooBig { url: String, limit: u64 },
}

/// One source's answer alone keeps the old form (`manifest: …`); with
/// mirrors, each is named: `mirror http://m answered: …; then docker.io: …`.
fn answers(tried: &[Answer]) -> String {
    match tried {
        [] => "no registry to pull from".into(),
        [one] if !one.mirror => format!("manifest: {}", one.error),
        _ => tried
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let then = if i == 0 { "" } else { "then " };
                if a.mirror {
                    format!("{then}mirror {} answered: {}", a.source, a.error)
                } else {
                    format!("{then}{} answered: {}", a.source, a.error)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `os/arch[/variant]`, `linux/amd64` by default on x86_64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: image::host_arch().to_string(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(PullError::BadPlatform(s.to_string())),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

pub struct PullOptions {
    pub platform: Platform,
    /// Where to pull from, in order: the registry's mirrors, then itself
    pub endpoints: Vec<Endpoint>,
}

/// A registry to pull from: the image's own or one of its mirrors.
pub struct Endpoint {
    /// host[:port]
    pub domain: String,
    pub plain_http: bool,
    pub auth: RegistryAuth,
    pub mirror: bool,
}

impl Endpoint {
    /// The image's own registry, plain HTTP only when on loopback.
    pub fn direct(domain: &str, auth: RegistryAuth) -> Endpoint {
        Endpoint {
            domain: domain.to_string(),
            plain_http: plain_http(domain),
            auth,
            mirror: false,
        }
    }

    /// `http://host:port` or `https://host`, for messages.
    fn url(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}", self.domain)
    }
}

/// Where `r` is pulled from under `config`: the mirrors of its registry
/// (with the credentials stored for each), then the registry itself (with
/// `user`, else its stored credentials).
pub fn endpoints(
    config: &Config,
    r: &Reference,
    user: Option<(String, String)>,
) -> Result<Vec<Endpoint>> {
    config
        .sources(r.domain())
        .into_iter()
        .map(|s| {
            // --user is for the image's registry, not its mirrors
            let u = if s.mirror { None } else { user.clone() };
            Ok(Endpoint {
                auth: crate::registry::auth::registry_auth(&s.host, u)?,
                domain: s.host,
                plain_http: s.plain_http,
                mirror: s.mirror,
            })
        })
        .collect()
}

/// Where the pull's progress goes: `rbox pull` writes it to stdout, `run`
/// and `create` to stderr (their stdout is the container's id or output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

/// Docker's `--pull` of `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Pull when the store does not have the image (the default)
    Missing,
    /// Pull every time (the layers the store has are not downloaded)
    Always,
    /// Never pull: a missing image is an error
    Never,
}

/// Whether `run`/`create` must pull `image` first under `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The store has it (or `never`)
    Nothing,
    /// Not in the store: Docker says "Unable to find image 'X' locally"
    Missing(Reference),
    /// `--pull always`
    Always(Reference),
}

/// What `run`/`create` do about `image` before creating the container.
/// `--pull never` with a missing image is Docker's "No such image: X".
pub fn need(store: &Store, image: &str, policy: Policy) -> Result<Need> {
    let present = match store.resolve(image) {
        Ok(_) => true,
        Err(StoreError::NoSuchImage(_)) => false,
        Err(e) => return Err(e.into()),
    };
    match (policy, present) {
        (Policy::Always, _) => Ok(Need::Always(
            Reference::parse(image).map_err(ImageError::from)?,
        )),
        (_, true) => Ok(Need::Nothing),
        (Policy::Never, false) => {
            let name = Reference::parse(image)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| image.to_string());
            Err(StoreError::NoSuchImage(name).into())
        }
        (Policy::Missing, false) => {
            // an image id is not pulled: Docker has no registry to ask either
            if image.starts_with("sha256:") {
                return Err(StoreError::NoSuchImage(image.to_string()).into());
            }
            Ok(Need::Missing(
                Reference::parse(image).map_err(ImageError::from)?,
            ))
        }
    }
}

/// Pull `r` into the store, printing Docker-like progress lines to `out`.
/// Returns the image id.
pub fn pull(store: &Store, r: &Reference, opts: &PullOptions, out: Out) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PullError::Runtime)?;
    // rustls needs one crypto provider for the process; ring it is
    let _ = rustls::crypto::ring::default_provider().install_default();
    // what killed pulls left (a pull that fails again never reaches the
    // sweep at commit)
    store.sweep()?;
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
    rt.block_on(pull_async(store, r, opts, &mut w, bars))
}

/// One source's side of a pull: oci-client for blobs (it keeps the token),
/// a plain HTTP client for the capped manifest reads.
struct Remote<'a> {
    client: Client,
    http: reqwest::Client,
    ep: &'a Endpoint,
    /// a bearer token for `ep`, when its registry wants one
    token: Option<String>,
}

impl<'a> Remote<'a> {
    /// Authenticate with `ep` for pulling `oref` (oci-client's token dance;
    /// it keeps the token for the blob requests).
    async fn connect(
        ep: &'a Endpoint,
        oref: &oci_client::Reference,
    ) -> std::result::Result<Remote<'a>, ManifestError> {
        let client = Client::new(client_config(ep.plain_http));
        let token = match client.auth(oref, &ep.auth, RegistryOperation::Pull).await {
            Ok(t) => t,
            // a token service that turns the credentials down: go on
            // anonymously, the registry's 401 says what to do
            Err(OciDistributionError::AuthenticationFailure(_)) => None,
            Err(e) => return Err(ManifestError::Request(registry_message(&e))),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ManifestError::Request(chain(&e)))?;
        Ok(Remote {
            client,
            http,
            ep,
            token,
        })
    }

    /// The manifest `oref` names, at most `limit` bytes (the read stops at
    /// `limit` + 1), and the sha256 digest of what came.
    async fn manifest(
        &self,
        oref: &oci_client::Reference,
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, String), ManifestError> {
        let scheme = if self.ep.plain_http { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{}",
            oref.resolve_registry(),
            oref.repository(),
            oref.digest()
                .or(oref.tag())
                .unwrap_or(crate::reference::DEFAULT_TAG)
        );
        let mut req = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, ACCEPT.join(", "));
        match (&self.token, &self.ep.auth) {
            (Some(t), _) => req = req.bearer_auth(t),
            (None, RegistryAuth::Basic(u, p)) => req = req.basic_auth(u, Some(p)),
            _ => {}
        }
        let request_err = |e: reqwest::Error| ManifestError::Request(chain(&e));
        let mut res = req.send().await.map_err(request_err)?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ManifestError::Unauthorized { url });
        }
        if !status.is_success() {
            let body = read_capped(&mut res, MAX_ERROR_BODY).await.ok().flatten();
            return Err(ManifestError::Status {
                url,
                status,
                message: body.as_deref().and_then(registry_errors),
            });
        }
        match read_capped(&mut res, limit).await.map_err(request_err)? {
            Some(body) => {
                let digest = format!("sha256:{:x}", Sha256::digest(&body));
                Ok((body, digest))
            }
            None => Err(ManifestError::TooBig { url, limit }),
        }
    }
}

/// A response body of at most `limit` bytes; None when it is longer (the
/// read stops at `limit` + 1 bytes, or at once when Content-Length says so).
async fn read_capped(
    res: &mut reqwest::Response,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, reqwest::Error> {
    if res.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The messages of a distribution-spec error body
/// (`{"errors": [{"code", "message"}]}`).
fn registry_errors(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let msgs: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let m = e.get("message").and_then(|m| m.as_str());
            let c = e.get("code").and_then(|c| c.as_str());
            m.or(c).map(|m| m.replace('\n', " "))
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.join(", "))
}

/// A descriptor's size as a byte count: refused when negative or over
/// `limit` (None: no limit but the disk's).
fn checked_size(
    name: &str,
    what: &'static str,
    digest: &str,
    size: i64,
    limit: Option<(u64, &'static str)>,
) -> Result<u64> {
    let problem = |problem| PullError::Size {
        reference: name.to_string(),
        what,
        digest: digest.to_string(),
        problem,
    };
    let n = u64::try_from(size).map_err(|_| problem(SizeProblem::Negative(size)))?;
    if let Some((limit, kind)) = limit {
        if n > limit {
            return Err(problem(SizeProblem::OverLimit { size, limit, kind }));
        }
    }
    Ok(n)
}

/// Counts a blob's bytes as they stream against its descriptor's size.
struct Counted {
    size: u64,
    got: u64,
}

impl Counted {
    /// Whether `n` more bytes keep to the size (they are counted if so).
    fn take(&mut self, n: usize) -> std::result::Result<(), SizeProblem> {
        if self.got + n as u64 > self.size {
            return Err(SizeProblem::Longer(self.size));
        }
        self.got += n as u64;
        Ok(())
    }

    /// A Content-Length that is not the size is refused before any read.
    fn announced(&self, content_length: Option<u64>) -> std::result::Result<(), SizeProblem> {
        match content_length {
            Some(n) if n != self.size => Err(SizeProblem::Announced {
                announced: n,
                size: self.size,
            }),
            _ => Ok(()),
        }
    }
}

/// The digest mismatch oci-client reports at the end of a blob stream.
fn verification_error(e: &io::Error) -> Option<&str> {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>())
    {
        Some(oci_client::errors::DigestError::VerificationError { actual, .. }) => Some(actual),
        _ => None,
    }
}

/// The config blob, read under its descriptor's size (checked against
/// `MAX_CONFIG` first) and its digest.
async fn fetch_config(
    client: &Client,
    oref: &oci_client::Reference,
    desc: &OciDescriptor,
    name: &str,
) -> Result<Vec<u8>> {
    let size = checked_size(
        name,
        "config",
        &desc.digest,
        desc.size,
        Some((MAX_CONFIG, "an image config")),
    )?;
    let size_err = |problem| PullError::Size {
        reference: name.to_string(),
        what: "config",
        digest: desc.digest.clone(),
        problem,
    };
    let reg_err = |message| PullError::Registry {
        reference: name.to_string(),
        what: "config",
        message,
    };
    let sized = client
        .pull_blob_stream(oref, desc)
        .await
        .map_err(|e| reg_err(registry_message(&e)))?;
    let mut count = Counted { size, got: 0 };
    count.announced(sized.content_length).map_err(size_err)?;
    let mut stream = sized.stream;
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
                count.take(b.len()).map_err(size_err)?;
                data.extend_from_slice(&b);
            }
            Err(e) if verification_error(&e).is_some() && count.got != size => {
                return Err(size_err(SizeProblem::Shorter {
                    got: count.got,
                    size,
                }))
            }
            Err(e) => {
                return Err(match verification_error(&e) {
                    Some(actual) => PullError::BadImage {
                        reference: name.to_string(),
                        why: format!("content of {} hashes to {actual}", desc.digest),
                    },
                    None => reg_err(chain(&e)),
                })
            }
        }
    }
    if count.got != size {
        return Err(size_err(SizeProblem::Shorter {
            got: count.got,
            size,
        }));
    }
    check_digest(&data, &desc.digest).map_err(|why| PullError::BadImage {
        reference: name.to_string(),
        why,
    })?;
    Ok(data)
}

/// Bytes free (for root's use) in the store's filesystem; None when it
/// cannot be told.
fn free_space(store: &Store) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(store.root()).ok()?;
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

async fn pull_async(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
    bars: Option<MultiProgress>,
) -> Result<String> {
    let name = r.familiar();
    let reg_err = |what: &'static str| {
        let reference = name.clone();
        move |e: ManifestError| PullError::Registry {
            reference,
            what,
            message: e.to_string(),
        }
    };
    let bad = |why: String| PullError::BadImage {
        reference: name.clone(),
        why,
    };
    let _ = writeln!(
        out,
        "{}: Pulling from {}",
        r.tag().or(r.digest()).unwrap_or_default(),
        crate::reference::familiar_repository(&format!("{}/{}", r.domain(), r.path()))
    );

    // the first endpoint that has the manifest serves the whole pull
    let mut found = None;
    let mut tried = Vec::new();
    for ep in &opts.endpoints {
        let oref = oci_reference_at(r, &ep.domain);
        let got = match Remote::connect(ep, &oref).await {
            Ok(remote) => remote
                .manifest(&oref, MAX_MANIFEST)
                .await
                .map(|m| (remote, m)),
            Err(e) => Err(e),
        };
        match got {
            Ok((remote, m)) => {
                found = Some((remote, oref, m));
                break;
            }
            Err(error) => tried.push(Answer {
                source: ep.url(),
                mirror: ep.mirror,
                error,
            }),
        }
    }
    let Some((remote, oref, (top, top_digest))) = found else {
        return Err(PullError::Manifest {
            reference: name.clone(),
            tried,
        });
    };
    let client = &remote.client;
    if let Some(d) = r.digest() {
        if d != top_digest {
            return Err(bad(format!(
                "the registry sent manifest {top_digest}, not {d}"
            )));
        }
    }
    let is_index = serde_json::from_slice::<serde_json::Value>(&top)
        .map(|v| v.get("manifests").is_some())
        .map_err(|e| bad(format!("manifest: {e}")))?;
    let manifest_bytes = if is_index {
        let index: OciImageIndex =
            serde_json::from_slice(&top).map_err(|e| bad(format!("index: {e}")))?;
        let desc = select_entry(&index, &opts.platform).ok_or_else(|| PullError::Platform {
            reference: name.clone(),
            platform: opts.platform.to_string(),
            available: available(&index),
        })?;
        let size = checked_size(
            &name,
            "manifest",
            &desc.digest,
            desc.size,
            Some((MAX_MANIFEST, "a manifest")),
        )?;
        let digest = desc.digest.clone();
        let mref = oref.clone_with_digest(digest.clone());
        let (bytes, got) = remote
            .manifest(&mref, size)
            .await
            .map_err(reg_err("manifest"))?;
        if got != digest {
            return Err(bad(format!(
                "the registry sent manifest {got}, not {digest}"
            )));
        }
        bytes
    } else {
        top
    };
    let manifest: OciImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(format!("manifest: {e}")))?;
    // every layer's media type and size before anything is downloaded
    let mut kinds = Vec::new();
    for l in &manifest.layers {
        kinds.push(
            media::layer_kind(&l.media_type, &l.digest).map_err(|source| PullError::MediaType {
                reference: name.clone(),
                source,
            })?,
        );
        checked_size(&name, "layer", &l.digest, l.size, None)?;
    }

    let config_bytes = fetch_config(client, &oref, &manifest.config, &name).await?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| bad(format!("config: {e}")))?;
    let diff_ids = config.rootfs().diff_ids().clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(bad(format!(
            "the manifest has {} layers, the config {} diff_ids",
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let image_id = manifest.config.digest.clone();
    let mut refs = Vec::new();
    if let Some(t) = r.tag() {
        refs.push(r.with_tag(t));
    } else if r.digest().is_none() {
        refs.push(r.with_tag(crate::reference::DEFAULT_TAG));
    }
    refs.push(r.with_digest(&top_digest));

    if store.image(&image_id)?.is_some() {
        image::add_refs(store, &refs, &image_id)?;
        let _ = writeln!(out, "Digest: {top_digest}");
        let _ = writeln!(out, "Status: Image is up to date for {name}");
        return Ok(image_id);
    }

    // the compressed layers to download must fit in the store's filesystem
    if let Some(free) = free_space(store) {
        let mut total: u64 = 0;
        for ((desc, diff_id), kind) in manifest.layers.iter().zip(&diff_ids).zip(&kinds) {
            if *kind != LayerKind::Tar || store.has_layer(diff_id)? {
                continue;
            }
            let size = desc.size as u64; // not negative: checked above
            if size > free {
                return Err(PullError::Size {
                    reference: name.clone(),
                    what: "layer",
                    digest: desc.digest.clone(),
                    problem: SizeProblem::NoSpace {
                        size,
                        free,
                        root: store.root().to_path_buf(),
                    },
                });
            }
            total = total.saturating_add(size);
        }
        if total > free {
            return Err(PullError::NoSpace {
                reference: name.clone(),
                total,
                free,
                root: store.root().to_path_buf(),
            });
        }
    }

    // "Already exists" or a download per layer, concurrently; progress
    // bars on a terminal, one line per step otherwise
    let done_style = ProgressStyle::with_template("{prefix}: {msg}").ok();
    let bar_style =
        ProgressStyle::with_template("{prefix}: {msg:<14} [{bar:30}] {bytes}/{total_bytes}")
            .ok()
            .map(|s| s.progress_chars("=> "));
    let mut jobs = Vec::new();
    for ((desc, diff_id), kind) in manifest.layers.iter().zip(&diff_ids).zip(&kinds) {
        let short = short(&desc.digest);
        if *kind == LayerKind::Foreign {
            // like containerd: not downloaded, not part of the rootfs
            let line = format!(
                "{short}: Skipping foreign layer {} ({}{})",
                desc.digest,
                desc.media_type,
                desc.urls
                    .as_ref()
                    .and_then(|u| u.first())
                    .map(|u| format!(", from {u}"))
                    .unwrap_or_default()
            );
            match &bars {
                Some(b) => {
                    let _ = b.println(line);
                }
                None => {
                    let _ = writeln!(out, "{line}");
                }
            }
            continue;
        }
        if let Some(size) = store.layer_size(diff_id)? {
            match (&bars, &done_style) {
                (Some(b), Some(st)) => {
                    let pb = b.add(ProgressBar::new(0).with_style(st.clone()));
                    pb.set_prefix(short.to_string());
                    pb.finish_with_message("Already exists");
                }
                _ => {
                    let _ = writeln!(out, "{short}: Already exists");
                }
            }
            jobs.push(futures::future::Either::Left(futures::future::ready(Ok(
                NewLayer {
                    diff_id: diff_id.clone(),
                    size,
                    blob_digest: desc.digest.clone(),
                    blob: None,
                    snapshot: None,
                },
            ))));
        } else {
            let pb = match (&bars, &bar_style) {
                (Some(b), Some(st)) => {
                    let pb = b.add(ProgressBar::new(desc.size as u64).with_style(st.clone()));
                    pb.set_prefix(short.to_string());
                    pb.set_message("Waiting");
                    Some(pb)
                }
                _ => {
                    let _ = writeln!(out, "{short}: Pulling fs layer");
                    None
                }
            };
            jobs.push(futures::future::Either::Right(fetch_layer(
                client, store, &oref, desc, diff_id, &name, pb,
            )));
        }
    }
    let _ = out.flush();
    let flusher = (!jobs.is_empty()).then(|| store.flush_in_background());
    let mut layers = Vec::new();
    let mut results = futures::stream::iter(jobs).buffered(MAX_CONCURRENT_DOWNLOADS);
    let mut first_err = None;
    while let Some(res) = results.next().await {
        match res {
            Ok(l) => {
                if l.snapshot.is_some() && bars.is_none() {
                    let _ = writeln!(out, "{}: Pull complete", short(&l.blob_digest));
                }
                layers.push(l);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    drop(flusher);
    if let Some(e) = first_err {
        return Err(e);
    }
    let media = image::layer_media_type(&manifest);
    let id = image::commit_image(
        store,
        config_bytes,
        &config,
        media,
        layers,
        &refs,
        Some(manifest_bytes),
    )?;
    if bars.is_some() {
        let _ = writeln!(out); // the cursor is still on the last bar
    }
    let _ = writeln!(out, "Digest: {top_digest}");
    let _ = writeln!(out, "Status: Downloaded newer image for {name}");
    Ok(id)
}

fn digest_mismatch(reference: &str, layer: &str, actual: &str) -> PullError {
    PullError::BadImage {
        reference: reference.to_string(),
        why: format!(
            "layer {layer}: digest mismatch: the registry sent content that hashes to {actual}"
        ),
    }
}

pub(crate) fn check_digest(data: &[u8], digest: &str) -> std::result::Result<(), String> {
    let got = format!("sha256:{:x}", Sha256::digest(data));
    if digest.starts_with("sha256:") && got != digest {
        return Err(format!("content of {digest} hashes to {got}"));
    }
    Ok(())
}

pub(crate) fn select(index: &OciImageIndex, want: &Platform) -> Option<String> {
    select_entry(index, want).map(|m| m.digest.clone())
}

/// The index entry for `want`.
fn select_entry<'a>(
    index: &'a OciImageIndex,
    want: &Platform,
) -> Option<&'a oci_client::manifest::ImageIndexEntry> {
    index.manifests.iter().find(|m| {
        m.platform.as_ref().is_some_and(|p| {
            p.os.to_string() == want.os
                && p.architecture.to_string() == want.arch
                && want
                    .variant
                    .as_ref()
                    .is_none_or(|v| p.variant.as_deref() == Some(v.as_str()))
        })
    })
}

fn available(index: &OciImageIndex) -> String {
    let all: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os, p.architecture);
            if let Some(v) = &p.variant {
                s = format!("{s}/{v}");
            }
            s
        })
        .collect();
    if all.is_empty() {
        "no platforms".into()
    } else {
        all.join(", ")
    }
}

/// The channel end the unpack task reads the download from.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

async fn fetch_layer(
    client: &Client,
    store: &Store,
    oref: &oci_client::Reference,
    desc: &OciDescriptor,
    diff_id: &str,
    name: &str,
    bar: Option<ProgressBar>,
) -> Result<NewLayer> {
    let layer_err = |source| PullError::Layer {
        reference: name.to_string(),
        layer: desc.digest.clone(),
        source,
    };
    let snapshot = image::temp_snapshot(store)?;
    let blob = store.blob_writer()?;
    let fs_dir = snapshot.path().join("fs");
    let expected = diff_id.to_string();
    let blob_digest = desc.digest.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let unpacker = tokio::task::spawn_blocking(move || {
        let download = ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        };
        image::unpack_blob(download, blob, &fs_dir, &blob_digest, &expected)
    });
    let size_err = |problem| PullError::Size {
        reference: name.to_string(),
        what: "layer",
        digest: desc.digest.clone(),
        problem,
    };
    // counted against the descriptor's size (not negative: checked)
    let mut count = Counted {
        size: desc.size as u64,
        got: 0,
    };
    let sized = client.pull_blob_stream(oref, desc).await;
    let sized = match sized {
        Ok(s) => s,
        Err(e) => {
            drop(tx);
            let _ = unpacker.await;
            return Err(PullError::Registry {
                reference: name.to_string(),
                what: "layer",
                message: registry_message(&e),
            });
        }
    };
    let mut size_problem = count.announced(sized.content_length).err();
    let mut stream = sized.stream;
    let mut net_err = None;
    if let Some(pb) = &bar {
        pb.set_message("Downloading");
    }
    while size_problem.is_none() {
        let Some(chunk) = stream.next().await else {
            // the whole blob came (its digest checked): it must be as long
            // as the descriptor says, too
            if count.got != count.size {
                size_problem = Some(SizeProblem::Shorter {
                    got: count.got,
                    size: count.size,
                });
            }
            break;
        };
        match chunk {
            Ok(b) => {
                // more than the descriptor says: stop at size + 1 bytes
                if let Err(p) = count.take(b.len()) {
                    size_problem = Some(p);
                    break;
                }
                if let Some(pb) = &bar {
                    pb.inc(b.len() as u64);
                }
                if tx.send(b).await.is_err() {
                    break; // the unpacker stopped: its error says why
                }
            }
            Err(e) => {
                net_err = Some(e);
                break;
            }
        }
    }
    // the connection goes now, not when the unpacker is done
    drop(stream);
    drop(tx);
    let (res, blob) = unpacker.await.map_err(|e| PullError::BadImage {
        reference: name.to_string(),
        why: format!("layer {}: unpack task: {e}", desc.digest),
    })?;
    // on any error below, the blob's and the snapshot's temp files go
    // with `blob`, `res` and `snapshot`
    if let Some(p) = size_problem {
        return Err(size_err(p));
    }
    if let Some(e) = net_err {
        // oci-client checks the digest at the end of the stream too
        if let Some(actual) = verification_error(&e) {
            if count.got < count.size {
                return Err(size_err(SizeProblem::Shorter {
                    got: count.got,
                    size: count.size,
                }));
            }
            return Err(digest_mismatch(name, &desc.digest, actual));
        }
        return Err(PullError::Registry {
            reference: name.to_string(),
            what: "layer download",
            message: chain(&e),
        });
    }
    // the digest first: content corrupted on the way also fails to unpack,
    // and the digest says why
    let blob = match blob {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { actual, .. }) => {
            return Err(digest_mismatch(name, &desc.digest, &actual))
        }
        // a full disk fails the unpack first: that error names the layer
        Err(e) => {
            return Err(match res {
                Err(u) => layer_err(u),
                Ok(_) => PullError::LayerStore {
                    reference: name.to_string(),
                    layer: desc.digest.clone(),
                    source: Box::new(e),
                },
            })
        }
    };
    let unpacked = res.map_err(layer_err)?;
    if let Some(pb) = &bar {
        pb.finish_with_message("Pull complete");
    }
    Ok(NewLayer::unpacked(unpacked, blob, snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform {
                os: "linux".into(),
                arch: "arm64".into(),
                variant: Some("v8".into())
            }
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blobs_are_held_to_their_descriptor_size() {
        let mut c = Counted { size: 1000, got: 0 };
        assert!(c.announced(Some(1000)).is_ok());
        assert!(c.announced(None).is_ok());
        assert_eq!(
            c.announced(Some(1001)).unwrap_err().to_string(),
            "the registry announces 1001 bytes (Content-Length), the manifest gives it 1000"
        );
        assert!(c.take(600).is_ok());
        assert!(c.take(400).is_ok());
        // one byte more is one too many, and is not counted
        assert_eq!(
            c.take(1).unwrap_err().to_string(),
            "the registry sent more than the 1000 bytes the manifest gives it (the download stopped there)"
        );
        assert_eq!(c.got, 1000);
        let e = checked_size("x:1", "layer", "sha256:ab", -1, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pull x:1: layer sha256:ab: the manifest gives it a negative size (-1)"
        );
        let e = checked_size(
            "x:1",
            "config",
            "sha256:ab",
            5 << 20,
            Some((MAX_CONFIG, "an image config")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "pull x:1: config sha256:ab: the manifest gives it 5242880 bytes, more than the 4194304-byte limit for an image config"
        );
        assert_eq!(
            checked_size("x:1", "layer", "d", 1 << 62, None).unwrap(),
            1 << 62
        );
    }

    #[test]
    fn manifest_errors_name_every_source_tried() {
        let err = |m: &str| ManifestError::Status {
            url: format!("http://{m}/v2/app/manifests/1"),
            status: reqwest::StatusCode::NOT_FOUND,
            message: Some("manifest unknown".into()),
        };
        let alone = PullError::Manifest {
            reference: "h:1/app:1".into(),
            tried: vec![Answer {
                source: "http://h:1".into(),
                mirror: false,
                error: err("h:1"),
            }],
        };
        assert_eq!(
            alone.to_string(),
            "pull h:1/app:1: manifest: GET http://h:1/v2/app/manifests/1: 404 Not Found: manifest unknown"
        );
        let both = PullError::Manifest {
            reference: "app:1".into(),
            tried: vec![
                Answer {
                    source: "http://m:5000".into(),
                    mirror: true,
                    error: err("m:5000"),
                },
                Answer {
                    source: "https://docker.io".into(),
                    mirror: false,
                    error: ManifestError::Request("dns error".into()),
                },
            ],
        };
        assert_eq!(
            both.to_string(),
            "pull app:1: mirror http://m:5000 answered: GET http://m:5000/v2/app/manifests/1: 404 Not Found: manifest unknown; then https://docker.io answered: dns error"
        );
        assert_eq!(
            registry_errors(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"X"}]}"#)
                .as_deref(),
            Some("manifest unknown, X")
        );
        assert_eq!(registry_errors(b"<html>"), None);
    }

    #[test]
    fn run_pulls_what_is_missing_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = Reference::parse("redis").unwrap();
        assert_eq!(
            need(&store, "redis", Policy::Missing).unwrap(),
            Need::Missing(r.clone())
        );
        assert_eq!(
            need(&store, "redis", Policy::Always).unwrap(),
            Need::Always(r)
        );
        assert_eq!(
            need(&store, "redis", Policy::Never)
                .unwrap_err()
                .to_string(),
            "no such image: redis:latest"
        );
        // an id is not a name to pull
        let id = format!("sha256:{}", "a".repeat(64));
        assert!(need(&store, &id, Policy::Missing).is_err());
        assert!(need(&store, "Upper", Policy::Missing).is_err());
    }

    #[test]
    fn index_selection_by_platform() {
        let index: OciImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bb", "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
            ]
        }))
        .unwrap();
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(
            select(&index, &p("linux/amd64")).as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(
            select(&index, &p("linux/arm64")).as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(
            select(&index, &p("linux/arm64/v8")).as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(select(&index, &p("linux/arm64/v7")), None);
        assert_eq!(select(&index, &p("linux/s390x")), None);
        assert_eq!(available(&index), "linux/amd64, linux/arm64/v8");
    }
}
