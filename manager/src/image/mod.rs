//! Images in the store: what makes one and what shows one.
//!
//! - import.rs: `rbox import`, a rootfs tarball as a one-layer image;
//!   changes.rs: the `--change` instructions applied to its config.
//! - unpack.rs: a layer tar into a snapshot directory, nothing outside it;
//!   layer.rs: a layer's one pass (blob, diff_id, snapshot) into a
//!   `NewLayer`.
//! - commit.rs: an image's blobs, layers and names recorded under one write
//!   lock (import, pull and load end there); tag.rs: `rbox tag`;
//!   remove.rs: `rbox rmi`.
//! - list.rs: `rbox images`; inspect.rs: an image's config, `image
//!   inspect` and `history`.

mod changes;
mod commit;
mod import;
mod inspect;
mod layer;
mod list;
mod remove;
mod tag;
pub mod unpack;

use std::path::PathBuf;

use oci_spec::image::Arch;

use crate::reference::ReferenceError;
use crate::store::{hex, StoreError};
use unpack::UnpackError;

pub use changes::apply_changes;
pub use commit::{add_refs, commit_image, layer_media_type};
pub use import::import;
pub use inspect::{config, history, inspect, HistoryLine};
pub use layer::{temp_snapshot, NewLayer};
pub(crate) use layer::{unpack_blob, GzipThread, Tee};
pub use list::{list, ImageLine};
pub use remove::{rmi, Removed};
pub use tag::tag;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("import {path}: {source}")]
    Unpack { path: PathBuf, source: UnpackError },
    #[error("--change {change:?}: {why}")]
    Change { change: String, why: &'static str },
    #[error("image config: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error("refusing to create a tag with a digest reference: {0}")]
    TagWithDigest(String),
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories(String),
    #[error("conflict: unable to delete {image} - image is used by container {container}")]
    InUse { image: String, container: String },
    #[error("layer {0} was removed while the image was being stored; try again")]
    LayerGone(String),
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// The short id `docker images` shows: 12 hex digits.
pub fn short_id(id: &str) -> &str {
    let h = hex(id);
    &h[..h.len().min(12)]
}

/// The OCI architecture name of this host.
pub fn host_arch() -> Arch {
    Arch::from(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    })
}
