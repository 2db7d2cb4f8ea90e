//! The image manifest a pull settles on: what the reference names, or,
//! when that is an index, the entry for the platform asked for.

use oci_client::manifest::{OciImageIndex, OciImageManifest};

use super::error::{PullError, Result};
use super::platform::{available, select_entry, Platform};
use super::remote::Remote;
use super::size::{checked_size, MAX_MANIFEST};
use crate::media::{self, LayerKind};
use crate::reference::Reference;

/// The manifest of the image pulled.
pub(super) struct Manifest {
    /// The digest of what the reference names (the index, if it is one)
    pub(super) top_digest: String,
    /// The manifest as the registry sent it, to be stored as it is
    pub(super) bytes: Vec<u8>,
    pub(super) manifest: OciImageManifest,
}

impl Manifest {
    /// `top` (what `r` names, and its digest) must have the digest `r`
    /// gives, if any; an index gives way to its entry for `platform`.
    pub(super) async fn select(
        remote: &Remote<'_>,
        (top, top_digest): (Vec<u8>, String),
        r: &Reference,
        platform: &Platform,
        name: &str,
    ) -> Result<Manifest> {
        if let Some(d) = r.digest() {
            if d != top_digest {
                return Err(bad(
                    name,
                    format!("the registry sent manifest {top_digest}, not {d}"),
                ));
            }
        }
        let is_index = serde_json::from_slice::<serde_json::Value>(&top)
            .map(|v| v.get("manifests").is_some())
            .map_err(|e| bad(name, format!("manifest: {e}")))?;
        let bytes = if is_index {
            from_index(remote, &top, platform, name).await?
        } else {
            top
        };
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(name, format!("manifest: {e}")))?;
        Ok(Manifest {
            top_digest,
            bytes,
            manifest,
        })
    }

    /// Every layer's kind, its media type and size checked before anything
    /// is downloaded.
    pub(super) fn layer_kinds(&self, name: &str) -> Result<Vec<LayerKind>> {
        let mut kinds = Vec::new();
        for l in &self.manifest.layers {
            kinds.push(
                media::layer_kind(&l.media_type, &l.digest).map_err(|source| {
                    PullError::MediaType {
                        reference: name.to_string(),
                        source,
                    }
                })?,
            );
            checked_size(name, "layer", &l.digest, l.size, None)?;
        }
        Ok(kinds)
    }
}

/// The manifest the index `top` gives for `platform`, read under its
/// descriptor's size and checked against its digest.
async fn from_index(
    remote: &Remote<'_>,
    top: &[u8],
    platform: &Platform,
    name: &str,
) -> Result<Vec<u8>> {
    let index: OciImageIndex =
        serde_json::from_slice(top).map_err(|e| bad(name, format!("index: {e}")))?;
    let desc = select_entry(&index, platform).ok_or_else(|| PullError::Platform {
        reference: name.to_string(),
        platform: platform.to_string(),
        available: available(&index),
    })?;
    let size = checked_size(
        name,
        "manifest",
        &desc.digest,
        desc.size,
        Some((MAX_MANIFEST, "a manifest")),
    )?;
    let digest = desc.digest.clone();
    let mref = remote.oref.clone_with_digest(digest.clone());
    let (bytes, got) = remote
        .manifest(&mref, size)
        .await
        .map_err(|e| PullError::Registry {
            reference: name.to_string(),
            what: "manifest",
            message: e.to_string(),
        })?;
    if got != digest {
        return Err(bad(
            name,
            format!("the registry sent manifest {got}, not {digest}"),
        ));
    }
    Ok(bytes)
}

fn bad(name: &str, why: String) -> PullError {
    PullError::BadImage {
        reference: name.to_string(),
        why,
    }
}
