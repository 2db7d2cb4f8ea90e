//! `rbox pull`: the OCI distribution protocol through oci-client
//! (anonymous, bearer-token and basic auth; OCI and Docker schema2
//! manifests and indexes/lists), one platform picked from an index.
//!
//! Layers the store has (by diff_id) are not downloaded ("Already exists").
//! The others download concurrently; each is streamed through a channel to a
//! blocking task that writes the compressed blob (hashed, verified against
//! the manifest digest) and unpacks it in the same pass (diff_id verified
//! against the config). The image is recorded only when every layer is in.

use std::io::{self, IsTerminal, Read, Write};
use std::time::Duration;

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_spec::image::ImageConfiguration;
use sha2::{Digest, Sha256};

use crate::image::{self, ImageError, NewLayer};
use crate::reference::Reference;
use crate::store::{hex, Store, StoreError};
use crate::unpack::UnpackError;

const ACCEPT: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MAX_CONCURRENT_DOWNLOADS: usize = 3;
/// Non-distributable layers: served from elsewhere (`urls`), never pulled.
pub(crate) const FOREIGN_LAYERS: [&str; 5] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];

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
}

impl Endpoint {
    /// The image's own registry, plain HTTP only when on loopback.
    pub fn direct(domain: &str, auth: RegistryAuth) -> Endpoint {
        Endpoint {
            domain: domain.to_string(),
            plain_http: plain_http(domain),
            auth,
        }
    }
}

/// Registries spoken to over plain HTTP, like Docker's default insecure
/// range: loopback only.
pub(crate) fn plain_http(domain: &str) -> bool {
    let host = domain
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(domain, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// A distribution client's settings.
pub(crate) fn client_config(plain_http: bool) -> ClientConfig {
    let protocol = if plain_http {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        max_concurrent_download: MAX_CONCURRENT_DOWNLOADS,
        ..Default::default()
    }
}

/// The oci-client form of a reference (tag `latest` when it has neither).
pub(crate) fn oci_reference(r: &Reference) -> oci_client::Reference {
    oci_reference_at(r, r.domain())
}

/// `r`'s repository at another registry (a mirror).
fn oci_reference_at(r: &Reference, domain: &str) -> oci_client::Reference {
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(
            domain.into(),
            r.path().into(),
            t.into(),
            d.into(),
        ),
        (_, Some(d)) => {
            oci_client::Reference::with_digest(domain.into(), r.path().into(), d.into())
        }
        (t, None) => oci_client::Reference::with_tag(
            domain.into(),
            r.path().into(),
            t.unwrap_or(crate::reference::DEFAULT_TAG).into(),
        ),
    }
}

/// One line for a registry error; a 401 says what to do about it.
pub(crate) fn registry_message(e: &oci_client::errors::OciDistributionError) -> String {
    match e {
        oci_client::errors::OciDistributionError::UnauthorizedError { url } => {
            format!("Not authorized (401 from {url}): log in with `rbox login` or pass --user")
        }
        e => chain(e),
    }
}

/// One line from an error and all its sources.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s = format!("{s}: {m}");
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}

/// Pull `r` into the store, printing Docker-like progress lines to `out`.
/// Returns the image id.
pub fn pull(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PullError::Runtime)?;
    // rustls needs one crypto provider for the process; ring it is
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(pull_async(store, r, opts, out))
}

async fn pull_async(
    store: &Store,
    r: &Reference,
    opts: &PullOptions,
    out: &mut dyn Write,
) -> Result<String> {
    let name = r.familiar();
    let reg_err = |what: &'static str| {
        let reference = name.clone();
        move |e: oci_client::errors::OciDistributionError| PullError::Registry {
            reference,
            what,
            message: registry_message(&e),
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
    let mut last_err = None;
    for ep in &opts.endpoints {
        let client = Client::new(client_config(ep.plain_http));
        let oref = oci_reference_at(r, &ep.domain);
        match client.pull_manifest_raw(&oref, &ep.auth, &ACCEPT).await {
            Ok(m) => {
                found = Some((client, oref, &ep.auth, m));
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((client, oref, auth, (top, top_digest))) = found else {
        return Err(match last_err {
            Some(e) => reg_err("manifest")(e),
            None => bad("no registry to pull from".into()),
        });
    };
    check_digest(&top, &top_digest).map_err(bad)?;
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
        let digest = select(&index, &opts.platform).ok_or_else(|| PullError::Platform {
            reference: name.clone(),
            platform: opts.platform.to_string(),
            available: available(&index),
        })?;
        let mref = oref.clone_with_digest(digest.clone());
        let (bytes, got) = client
            .pull_manifest_raw(&mref, auth, &ACCEPT)
            .await
            .map_err(reg_err("manifest"))?;
        check_digest(&bytes, &digest).map_err(bad)?;
        if got != digest {
            return Err(bad(format!(
                "the registry sent manifest {got}, not {digest}"
            )));
        }
        bytes.to_vec()
    } else {
        top.to_vec()
    };
    let manifest: OciImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(format!("manifest: {e}")))?;

    let mut config_bytes = Vec::new();
    client
        .pull_blob(&oref, &manifest.config, &mut config_bytes)
        .await
        .map_err(reg_err("config"))?;
    check_digest(&config_bytes, &manifest.config.digest).map_err(bad)?;
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

    // "Already exists" or a download per layer, concurrently; progress
    // bars on a terminal, one line per step otherwise
    let bars = std::io::stdout()
        .is_terminal()
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
    let done_style = ProgressStyle::with_template("{prefix}: {msg}").ok();
    let bar_style =
        ProgressStyle::with_template("{prefix}: {msg:<14} [{bar:30}] {bytes}/{total_bytes}")
            .ok()
            .map(|s| s.progress_chars("=> "));
    let mut jobs = Vec::new();
    for (desc, diff_id) in manifest.layers.iter().zip(&diff_ids) {
        let short = short(&desc.digest);
        if FOREIGN_LAYERS.contains(&desc.media_type.as_str()) {
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
                    let pb = b.add(
                        ProgressBar::new(u64::try_from(desc.size).unwrap_or(0))
                            .with_style(st.clone()),
                    );
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
                &client, store, &oref, desc, diff_id, &name, pb,
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

pub(crate) fn short(digest: &str) -> &str {
    let h = hex(digest);
    &h[..h.len().min(12)]
}

pub(crate) fn check_digest(data: &[u8], digest: &str) -> std::result::Result<(), String> {
    let got = format!("sha256:{:x}", Sha256::digest(data));
    if digest.starts_with("sha256:") && got != digest {
        return Err(format!("content of {digest} hashes to {got}"));
    }
    Ok(())
}

pub(crate) fn select(index: &OciImageIndex, want: &Platform) -> Option<String> {
    index
        .manifests
        .iter()
        .find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os.to_string() == want.os
                    && p.architecture.to_string() == want.arch
                    && want
                        .variant
                        .as_ref()
                        .is_none_or(|v| p.variant.as_deref() == Some(v.as_str()))
            })
        })
        .map(|m| m.digest.clone())
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
    let mut stream = client
        .pull_blob_stream(oref, desc)
        .await
        .map_err(|e| PullError::Registry {
            reference: name.to_string(),
            what: "layer",
            message: registry_message(&e),
        })?
        .stream;
    let mut net_err = None;
    if let Some(pb) = &bar {
        pb.set_message("Downloading");
    }
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
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
    drop(tx);
    let (res, blob) = unpacker.await.map_err(|e| PullError::BadImage {
        reference: name.to_string(),
        why: format!("layer {}: unpack task: {e}", desc.digest),
    })?;
    if let Some(e) = net_err {
        // oci-client checks the digest at the end of the stream too
        let verification = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>());
        if let Some(oci_client::errors::DigestError::VerificationError { actual, .. }) =
            verification
        {
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
    fn loopback_registries_speak_http() {
        assert!(plain_http("127.0.0.1:5000"));
        assert!(plain_http("localhost"));
        assert!(plain_http("localhost:5000"));
        assert!(plain_http("[::1]:5000"));
        assert!(!plain_http("docker.io"));
        assert!(!plain_http("registry.example.com:5000"));
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
