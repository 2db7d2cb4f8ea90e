//! `rbox push`: upload an image's blobs and manifest to a registry.
//!
//! Each blob (layers, then the config) is first asked for with `HEAD`: one
//! the repository has is skipped ("Layer already exists"). One that another
//! repository of the same registry has (the store knows which repositories
//! its images came from or went to) is mounted across (`POST
//! …/uploads/?mount=…&from=…`, "Mounted from …"). The rest are uploaded:
//! blobs up to the chunk size in one `PUT` (monolithic), bigger ones as
//! `PATCH` chunks of that size read from the blob file, so memory stays
//! bounded. Then the manifest, byte for byte as stored, so the image keeps
//! its digest; the store records `repo@digest` like Docker's RepoDigests.

use std::fs::File;
use std::io::{self, Read, Write};

use futures::StreamExt;
use oci_client::client::{ClientConfig, PushBlobStreamChunkedResponse};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::client::{client_config, oci_reference, registry_message, short};
use crate::image::{self, ImageError};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// Blobs up to this size go in one request; bigger ones in chunks of it.
pub const DEFAULT_CHUNK_SIZE: usize = 32 << 20;
const MAX_CONCURRENT_UPLOADS: usize = 3;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push {reference}: {what}: {message}")]
    Registry {
        reference: String,
        what: String,
        message: String,
    },
    #[error("push {reference}: blob {digest} is not in the store (its layer came with another image) and the registry does not have it")]
    MissingBlob { reference: String, digest: String },
    #[error("push {reference}: manifest {digest}: {why}")]
    BadManifest {
        reference: String,
        digest: String,
        why: String,
    },
    #[error("push {reference}: the registry computed {got} for blob {digest}")]
    DigestMismatch {
        reference: String,
        digest: String,
        got: String,
    },
    #[error("push {reference}: reading {path}: {source}")]
    Read {
        reference: String,
        path: String,
        source: io::Error,
    },
    #[error("push: the chunk size must be at least 1 byte")]
    ChunkSize,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("push: starting the I/O runtime: {0}")]
    Runtime(io::Error),
}

type Result<T> = std::result::Result<T, PushError>;

pub struct PushOptions {
    pub auth: RegistryAuth,
    /// Speak plain HTTP (loopback and insecure registries)
    pub plain_http: bool,
    /// Blobs up to this size are sent in one request, bigger ones in chunks.
    pub chunk_size: usize,
}

/// What happened to one blob.
enum Outcome {
    Exists,
    Mounted(String),
    Pushed,
}

/// Push the image named `r` (it must be in the store under that name).
/// Returns the manifest digest.
pub fn push(
    store: &Store,
    r: &Reference,
    opts: &PushOptions,
    out: &mut dyn Write,
) -> Result<String> {
    if opts.chunk_size == 0 {
        return Err(PushError::ChunkSize);
    }
    let img = store.resolve(&r.to_string())?;
    let name = r.familiar();
    let manifest_bytes = store.read_blob(&img.manifest_digest, &name)?;
    let bad = |why: String| PushError::BadManifest {
        reference: name.clone(),
        digest: img.manifest_digest.clone(),
        why,
    };
    let manifest: OciImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(e.to_string()))?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_string());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PushError::Runtime)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = writeln!(
        out,
        "The push refers to repository [{}]",
        crate::reference::familiar_repository(&r.repository())
    );
    let _ = out.flush();

    // layers top first (as Docker prints them), then the config
    // foreign layers are not pushed: they are served from elsewhere
    let mut blobs: Vec<(String, i64)> = manifest
        .layers
        .iter()
        .rev()
        .filter(|l| !crate::media::is_foreign(&l.media_type))
        .map(|l| (l.digest.clone(), l.size))
        .collect();
    blobs.push((manifest.config.digest.clone(), manifest.config.size));
    let config = ClientConfig {
        use_monolithic_push: true,
        max_concurrent_upload: MAX_CONCURRENT_UPLOADS,
        ..client_config(opts.plain_http)
    };
    let client = Client::new(config);
    let oref = oci_reference(r);
    let reg_err = |what: String| {
        let reference = name.clone();
        move |e: oci_client::errors::OciDistributionError| PushError::Registry {
            reference,
            what,
            message: registry_message(&e),
        }
    };
    let sources: Vec<Vec<String>> = blobs
        .iter()
        .map(|(d, _)| mount_sources(store, d, r))
        .collect::<Result<_>>()?;

    rt.block_on(async {
        client
            .auth(&oref, &opts.auth, RegistryOperation::Push)
            .await
            .map_err(reg_err("authentication".into()))?;
        let jobs = blobs.iter().zip(sources).map(|((digest, _), from)| {
            push_blob(store, &client, &oref, r, digest, from, opts.chunk_size)
        });
        let mut results = futures::stream::iter(jobs).buffered(MAX_CONCURRENT_UPLOADS);
        let mut first_err = None;
        while let Some(res) = results.next().await {
            match res {
                Ok((digest, outcome)) => {
                    let what = match outcome {
                        Outcome::Exists => "Layer already exists".to_string(),
                        Outcome::Mounted(from) => format!("Mounted from {from}"),
                        Outcome::Pushed => "Pushed".to_string(),
                    };
                    let _ = writeln!(out, "{}: {what}", short(&digest));
                    let _ = out.flush();
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let content_type = media_type
            .parse()
            .map_err(|_| bad(format!("media type {media_type:?}")))?;
        client
            .push_manifest_raw(&oref, manifest_bytes.clone(), content_type)
            .await
            .map_err(reg_err("manifest".into()))?;
        Ok(())
    })?;
    let digest = img.manifest_digest.clone();
    image::add_refs(store, &[r.with_digest(&digest)], &img.id)?;
    let _ = writeln!(
        out,
        "{}: digest: {digest} size: {}",
        r.tag().unwrap_or(crate::reference::DEFAULT_TAG),
        manifest_bytes.len()
    );
    Ok(digest)
}

/// Other repositories of `r`'s registry that the store knows to hold the
/// blob `digest` (images pulled from or pushed to them).
fn mount_sources(store: &Store, digest: &str, r: &Reference) -> Result<Vec<String>> {
    let repos = store.repositories_with_blob(digest)?;
    let prefix = format!("{}/", r.domain());
    Ok(repos
        .into_iter()
        .filter_map(|repo| repo.strip_prefix(&prefix).map(String::from))
        .filter(|path| path != r.path())
        .collect())
}

async fn push_blob(
    store: &Store,
    client: &Client,
    oref: &oci_client::Reference,
    r: &Reference,
    digest: &str,
    mount_from: Vec<String>,
    chunk_size: usize,
) -> Result<(String, Outcome)> {
    let name = r.familiar();
    let reg_err = |what: &str| {
        let reference = name.clone();
        let what = format!("{what} {digest}");
        move |e: oci_client::errors::OciDistributionError| PushError::Registry {
            reference,
            what,
            message: registry_message(&e),
        }
    };
    let done = |o| Ok((digest.to_string(), o));
    if client
        .blob_exists(oref, digest)
        .await
        .map_err(reg_err("blob"))?
    {
        return done(Outcome::Exists);
    }
    for path in mount_from {
        let source = oci_client::Reference::with_tag(r.domain().into(), path.clone(), "x".into());
        // a registry that will not mount starts a normal upload instead
        // (202): that is an error here, and the blob is uploaded below
        if client.mount_blob(oref, &source, digest).await.is_ok() {
            return done(Outcome::Mounted(path));
        }
    }
    let path = store.blob_path(digest);
    let read_err = |source| PushError::Read {
        reference: name.clone(),
        path: path.display().to_string(),
        source,
    };
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PushError::MissingBlob {
                reference: name.clone(),
                digest: digest.to_string(),
            })
        }
        Err(e) => return Err(read_err(e)),
    };
    let size = file.metadata().map_err(read_err)?.len();
    if size <= chunk_size as u64 {
        let mut data = Vec::with_capacity(size as usize);
        file.read_to_end(&mut data).map_err(read_err)?;
        client
            .push_blob(oref, data, digest)
            .await
            .map_err(reg_err("upload"))?;
        return done(Outcome::Pushed);
    }
    // chunks of chunk_size read from the file as the upload asks for them
    let chunks = futures::stream::unfold(Some(file), move |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; chunk_size];
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => {
                    let e = oci_client::errors::OciDistributionError::IoError(e);
                    return Some((Err(e), None));
                }
            }
        }
        if n == 0 {
            return None;
        }
        buf.truncate(n);
        Some((Ok(bytes::Bytes::from(buf)), Some(f)))
    });
    let PushBlobStreamChunkedResponse { blob_digest, .. } = client
        .push_blob_stream_chunked(oref, chunks)
        .await
        .map_err(reg_err("chunked upload"))?;
    if blob_digest != digest {
        return Err(PushError::DigestMismatch {
            reference: name.clone(),
            digest: digest.to_string(),
            got: blob_digest,
        });
    }
    done(Outcome::Pushed)
}
