//! `rbox import`: a rootfs tarball becomes a one-layer image.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use oci_spec::image::{
    ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder,
};

use super::changes::apply_changes;
use super::commit::commit_image;
use super::layer::{temp_snapshot, GzipThread, NewLayer, Tee};
use super::unpack::{self, UnpackError};
use super::{host_arch, ImageError, Result};
use crate::reference::Reference;
use crate::store::{io_err, Store, StoreError};

/// `rbox import`: a rootfs tarball (plain, gzip or zstd) becomes a
/// one-layer image. One pass over the input unpacks the snapshot, hashes
/// the diff_id and writes the gzip layer blob. Returns the image id.
pub fn import(
    store: &Store,
    tarball: &Path,
    reference: Option<&Reference>,
    changes: &[String],
) -> Result<String> {
    let mut cfg = ConfigBuilder::default().build()?;
    apply_changes(&mut cfg, changes)?;
    let unpack_err = |source| ImageError::Unpack {
        path: tarball.to_path_buf(),
        source,
    };
    let file = File::open(tarball).map_err(io_err("open", tarball))?;
    let input = unpack::decompress(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| unpack_err(UnpackError::Tar(e)))?;
    let blob = store.blob_writer()?;
    let blob_path = blob.path();
    let mut tee = Tee {
        r: input,
        w: GzipThread::new(blob),
    };
    let snapshot = temp_snapshot(store)?;
    let unpacked =
        unpack::unpack(&mut tee, &snapshot.path().join("fs"), None).map_err(unpack_err)?;
    let blob = tee
        .w
        .finish()
        .map_err(io_err("write", &blob_path))?
        .finish(None)?;

    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("rbox import {}", tarball.display()))
        .comment(format!("Imported from {}", tarball.display()))
        .build()?;
    let config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(host_arch())
        .os(Os::Linux)
        .config(cfg)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![unpacked.diff_id.clone()])
                .build()?,
        )
        .history(vec![history])
        .build()?;
    let layer = NewLayer {
        diff_id: unpacked.diff_id,
        size: unpacked.size,
        blob_digest: blob.digest.clone(),
        blob: Some(blob),
        snapshot: Some(snapshot),
    };
    let refs: Vec<Reference> = reference.into_iter().cloned().collect();
    let config_bytes = serde_json::to_vec(&config).map_err(|e| StoreError::BadJson {
        path: store.root().to_path_buf(),
        source: e,
    })?;
    commit_image(
        store,
        config_bytes,
        &config,
        MediaType::ImageLayerGzip,
        vec![layer],
        &refs,
        None,
    )
}
