//! A build's images: after each step that makes a layer, an image of the
//! stage so far (the parent of the next RUN's container, and what the
//! cache keeps), and at the end the stage's image with its names.
//!
//! The manifest lists the parent's layers as its manifest describes them
//! (Docker's layer media types become their OCI names: the blobs are the
//! same bytes) and the new layer as an OCI gzip layer.

use std::str::FromStr;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageConfiguration, ImageManifest, ImageManifestBuilder,
    MediaType,
};
use serde_json::{json, Value};

use crate::image::{commit_image, NewLayer};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

use super::error::{ExecError, Result};

/// The layers of a stage so far: diff_ids (bottom first), their manifest
/// descriptors and unpacked sizes.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub diff_ids: Vec<String>,
    pub descriptors: Vec<Descriptor>,
    pub sizes: Vec<u64>,
}

impl Layers {
    /// The layers of the stored image `image_id`.
    pub fn of_image(store: &Store, image_id: &str) -> Result<Layers> {
        let img = store
            .image(image_id)?
            .ok_or_else(|| StoreError::NoSuchImage(image_id.to_string()))?;
        let manifest: ImageManifest = store.read_json(&img.manifest_digest, &img.id)?;
        let rows = store.layers(&img.id)?;
        let descriptors: Vec<Descriptor> = manifest
            .layers()
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.set_media_type(oci_media_type(d.media_type()));
                d
            })
            .collect();
        Ok(Layers {
            diff_ids: rows.iter().map(|r| r.diff_id.clone()).collect(),
            sizes: rows.iter().map(|r| r.size).collect(),
            descriptors,
        })
    }
}

/// Docker's layer media types by their OCI names (the same blobs).
fn oci_media_type(m: &MediaType) -> MediaType {
    match m.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        _ => m.clone(),
    }
}

/// Stores the image of `config` (the config JSON as a whole: Docker's
/// fields that OCI's types do not know, Healthcheck, OnBuild and Shell,
/// are kept) whose layers are `layers` and then `new` (None: no new
/// layer), named `refs`. The config's rootfs is set from the layers.
/// Returns the image id and the layers of the image.
pub fn commit(
    store: &Store,
    layers: &Layers,
    new: Option<NewLayer>,
    config: &mut Value,
    refs: &[Reference],
) -> Result<(String, Layers)> {
    let mut all = layers.clone();
    let mut news: Vec<NewLayer> = layers
        .diff_ids
        .iter()
        .zip(&layers.descriptors)
        .zip(&layers.sizes)
        .map(|((diff_id, d), size)| NewLayer {
            diff_id: diff_id.clone(),
            size: *size,
            blob_digest: d.digest().to_string(),
            blob: None,
            snapshot: None,
        })
        .collect();
    if let Some(l) = new {
        let blob_size = l.blob.as_ref().map_or(0, |b| b.size);
        let digest = Digest::from_str(&l.blob_digest).map_err(image_err)?;
        all.descriptors.push(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayerGzip)
                .digest(digest)
                .size(blob_size)
                .build()
                .map_err(image_err)?,
        );
        all.diff_ids.push(l.diff_id.clone());
        all.sizes.push(l.size);
        news.push(l);
    }
    config["rootfs"] = json!({ "type": "layers", "diff_ids": all.diff_ids });
    let bad_json = |source| StoreError::BadJson {
        path: store.root().to_path_buf(),
        source,
    };
    let config_bytes = serde_json::to_vec(&*config).map_err(bad_json)?;
    let typed: ImageConfiguration = serde_json::from_value(config.clone()).map_err(bad_json)?;
    let config_digest = format!("sha256:{}", sha256_hex(&config_bytes));
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(Digest::from_str(&config_digest).map_err(image_err)?)
                .size(config_bytes.len() as u64)
                .build()
                .map_err(image_err)?,
        )
        .layers(all.descriptors.clone())
        .build()
        .map_err(image_err)?;
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(bad_json)?;
    let id = commit_image(
        store,
        config_bytes,
        &typed,
        MediaType::ImageLayerGzip,
        news,
        refs,
        Some(manifest_bytes),
    )?;
    Ok((id, all))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    format!("{:x}", Sha256::digest(data))
}

fn image_err(e: oci_spec::OciSpecError) -> ExecError {
    ExecError::Image(crate::image::ImageError::Oci(e))
}
