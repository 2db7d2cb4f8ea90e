//! Recording an image in the store: its blobs, layers and names under one
//! write lock (`commit_image`), or more names for one it has (`add_refs`).

use std::collections::BTreeSet;
use std::fs;

use oci_spec::image::{
    DescriptorBuilder, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
};

use super::layer::NewLayer;
use super::{ImageError, Result};
use crate::reference::Reference;
use crate::store::{io_err, NewImage, PendingBlob, Store, StoreError, Undo};

/// The media type a manifest's layers are recorded with: the first
/// layer's (gzip when there is none).
pub fn layer_media_type(manifest: &oci_client::manifest::OciImageManifest) -> MediaType {
    manifest
        .layers
        .first()
        .map(|l| MediaType::from(l.media_type.as_str()))
        .unwrap_or(MediaType::ImageLayerGzip)
}

/// Write the config and manifest blobs and record an image whose layers
/// are unpacked (or already in the store), all under one write lock.
/// `config_bytes` is `config` as stored (the image id is its digest);
/// `manifest` is the registry's manifest bytes (pull), None makes an OCI
/// manifest. Returns the image id.
pub fn commit_image(
    store: &Store,
    config_bytes: Vec<u8>,
    config: &ImageConfiguration,
    layer_media_type: MediaType,
    layers: Vec<NewLayer>,
    refs: &[Reference],
    manifest: Option<Vec<u8>>,
) -> Result<String> {
    let config_blob = store.pending_blob(&config_bytes)?;
    let image_id = config_blob.digest.clone();
    let manifest_bytes = match manifest {
        Some(m) => m,
        None => oci_manifest(store, &config_blob, layer_media_type, &layers)?,
    };
    let manifest_blob = store.pending_blob(&manifest_bytes)?;
    let manifest_digest = manifest_blob.digest.clone();
    let size: u64 = layers.iter().map(|l| l.size).sum();
    let created = config.created().clone().unwrap_or_default();
    // the snapshots and blobs on disk before any of them has a name: one
    // sync for the whole image, none per file or layer
    store.sync()?;

    let lock = store.lock()?;
    store.sweep_orphans();
    let mut undo = Undo::default();
    if store.image(&image_id)?.is_none() {
        place_snapshots(store, &layers, &mut undo)?;
        let rows: Vec<(&str, &str)> = layers
            .iter()
            .map(|l| (l.diff_id.as_str(), l.blob_digest.as_str()))
            .collect();
        store.insert_image(
            &NewImage {
                id: &image_id,
                manifest_digest: &manifest_digest,
                created: &created,
                size,
            },
            &rows,
        )?;
        for l in layers {
            if let Some(b) = l.blob {
                let dest = store.blob_path(&b.digest);
                undo.push(b.place(&dest)?);
            }
        }
        undo.push(config_blob.place(&store.blob_path(&image_id))?);
        undo.push(manifest_blob.place(&store.blob_path(&manifest_digest))?);
    }
    for r in refs {
        add_ref(store, r, &image_id)?;
    }
    lock.commit()?;
    undo.commit();
    Ok(image_id)
}

/// The OCI manifest of an image made here (import, load of a
/// docker-archive): the config blob and each layer's blob.
fn oci_manifest(
    store: &Store,
    config_blob: &PendingBlob,
    layer_media_type: MediaType,
    layers: &[NewLayer],
) -> Result<Vec<u8>> {
    let m: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(
                    config_blob
                        .digest
                        .parse::<oci_spec::image::Digest>()
                        .map_err(ImageError::Oci)?,
                )
                .size(config_blob.size)
                .build()?,
        )
        .layers(
            layers
                .iter()
                .map(|l| {
                    DescriptorBuilder::default()
                        .media_type(layer_media_type.clone())
                        .digest(l.blob_digest.parse::<oci_spec::image::Digest>()?)
                        .size(l.blob.as_ref().map_or(0, |b| b.size))
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
        )
        .build()?;
    Ok(serde_json::to_vec(&m).map_err(|e| StoreError::BadJson {
        path: store.root().to_path_buf(),
        source: e,
    })?)
}

/// Under the write lock: each new layer's temp snapshot renamed to its
/// final name and recorded (once per diff_id); a layer the store has
/// gets one more user.
fn place_snapshots(store: &Store, layers: &[NewLayer], undo: &mut Undo) -> Result<()> {
    let mut seen = BTreeSet::new();
    for l in layers {
        if !seen.insert(l.diff_id.clone()) {
            continue;
        }
        if store.has_layer(&l.diff_id)? {
            store.add_layer_user(&l.diff_id)?;
            continue;
        }
        let Some(tmp) = &l.snapshot else {
            return Err(ImageError::LayerGone(l.diff_id.clone()));
        };
        let dest = store.snapshot_path(&l.diff_id);
        if dest.exists() {
            // left by a crashed rmi: no row names it
            fs::remove_dir_all(&dest).map_err(io_err("remove stale snapshot", &dest))?;
        }
        fs::rename(tmp.path(), &dest).map_err(io_err("rename", &dest))?;
        undo.push(Some(dest));
        store.insert_layer(&l.diff_id, l.size)?;
    }
    Ok(())
}

/// Name an existing image (under the write lock).
pub fn add_refs(store: &Store, refs: &[Reference], image_id: &str) -> Result<()> {
    let lock = store.lock()?;
    if store.image(image_id)?.is_none() {
        return Err(StoreError::NoSuchImage(image_id.to_string()).into());
    }
    for r in refs {
        add_ref(store, r, image_id)?;
    }
    lock.commit()?;
    Ok(())
}

pub(super) fn add_ref(store: &Store, r: &Reference, image_id: &str) -> Result<()> {
    Ok(store.put_ref(r, image_id)?)
}
