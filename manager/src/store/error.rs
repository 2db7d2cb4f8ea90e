//! What can go wrong in the store, naming the file or database.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("blob {path}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("{0} is ambiguous: it is the prefix of several image ids")]
    Ambiguous(String),
    #[error("blob {digest} of image {image} is missing from {path}")]
    MissingBlob {
        digest: String,
        image: String,
        path: PathBuf,
    },
    #[error("blob {path}: {source}")]
    BadJson {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    pub fn is_constraint(&self) -> bool {
        matches!(
            self,
            StoreError::Db {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::ConstraintViolation
        )
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// The hex part of `sha256:<hex>`.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}
