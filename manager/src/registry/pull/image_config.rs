//! The image config of a pull: its blob, read under its descriptor's size
//! and checked against its digest, and a diff_id for each layer.

use futures::StreamExt;
use oci_client::client::SizedStream;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::Client;
use oci_spec::image::ImageConfiguration;

use super::digest::{check_digest, verification_error};
use super::error::{PullError, Result, SizeProblem};
use super::remote::Remote;
use super::size::{checked_size, Counted, MAX_CONFIG};
use crate::registry::client::{chain, registry_message};

/// The config of the image pulled.
pub(super) struct ImageConfig {
    /// The blob as the registry sent it, to be stored as it is
    pub(super) bytes: Vec<u8>,
    pub(super) config: ImageConfiguration,
    /// One a layer of the manifest, bottom first
    pub(super) diff_ids: Vec<String>,
}

impl ImageConfig {
    /// The config `manifest` names, which must give each of its layers a
    /// diff_id.
    pub(super) async fn fetch(
        remote: &Remote<'_>,
        manifest: &OciImageManifest,
        name: &str,
    ) -> Result<ImageConfig> {
        let bad = |why: String| PullError::BadImage {
            reference: name.to_string(),
            why,
        };
        let bytes = fetch_config(&remote.client, &remote.oref, &manifest.config, name).await?;
        let config: ImageConfiguration =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("config: {e}")))?;
        let diff_ids = config.rootfs().diff_ids().clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(bad(format!(
                "the manifest has {} layers, the config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        Ok(ImageConfig {
            bytes,
            config,
            diff_ids,
        })
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
    let sized = client
        .pull_blob_stream(oref, desc)
        .await
        .map_err(|e| registry_err(name, registry_message(&e)))?;
    let data = read_config(sized, size, desc, name).await?;
    check_digest(&data, &desc.digest).map_err(|why| PullError::BadImage {
        reference: name.to_string(),
        why,
    })?;
    Ok(data)
}

/// The config's bytes, `size` of them: a Content-Length that is not
/// `size` reads nothing, a longer blob stops at `size` + 1 bytes.
async fn read_config(
    sized: SizedStream,
    size: u64,
    desc: &OciDescriptor,
    name: &str,
) -> Result<Vec<u8>> {
    let size_err = |problem| PullError::Size {
        reference: name.to_string(),
        what: "config",
        digest: desc.digest.clone(),
        problem,
    };
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
                    None => registry_err(name, chain(&e)),
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
    Ok(data)
}

fn registry_err(name: &str, message: String) -> PullError {
    PullError::Registry {
        reference: name.to_string(),
        what: "config",
        message,
    }
}
