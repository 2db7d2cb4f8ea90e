//! The store under ROOT: one SQLite database and the files its rows name.
//!
//! ```text
//! ROOT/rbox.db                 SQLite (WAL): the tables of schema.rs
//! ROOT/blobs/sha256/<hex>      content-addressed blobs (manifests, configs, layer tars)
//! ROOT/snapshots/<hex>/fs      one unpacked layer, <hex> = its diff_id
//! ROOT/containers/<id>/        overlay upper and work dirs of a bundle, the /etc files, the log
//! ROOT/volumes/<name>/_data    named volumes
//! ROOT/networks/<id>/          a user network's host-local leases
//! ```
//!
//! Blobs and snapshots are made under temp names in their own directory,
//! outside any lock, then renamed into place inside an `IMMEDIATE`
//! transaction: the database write lock also serializes every change to
//! the files, so two rbox processes never see a row without its files or
//! remove files another one has just referenced. Files are removed only
//! after the transaction that dropped their last reference has committed.
//!
//! Every SQL statement of rbox is in this folder: db.rs opens the database
//! (schema.rs makes and migrates the tables), images.rs, containers.rs and
//! networks.rs and build_cache.rs read and write their rows, blobs.rs the
//! files.

mod blobs;
mod build_cache;
mod containers;
mod db;
mod error;
mod files;
mod images;
mod networks;
mod schema;

pub use blobs::{BlobWriter, PendingBlob, TempPath, Undo};
pub use build_cache::CacheRow;
pub use containers::ContainerRow;
pub use db::{volume_dir, Flusher, Store, WriteLock, DEFAULT_ROOT};
pub(crate) use error::io_err;
pub use error::{hex, Result, StoreError};
pub(crate) use files::{flock, start_writeback, temp_name};
pub use images::{ImageRow, LayerRow, NewImage, RefRow};
pub use networks::UserNetwork;
