//! What a COPY or ADD step can fail with, naming the source or the path;
//! the executor adds `Dockerfile:LINE`.

use std::io;
use std::path::PathBuf;

use crate::user::UserError;

#[derive(Debug, thiserror::Error)]
pub enum CopyStepError {
    /// BuildKit: `failed to calculate checksum of ref …: "/x": not found`
    #[error("failed to calculate checksum of {written:?}: \"{path}\": not found")]
    NotFound { written: String, path: String },
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
    #[error("When using COPY with more than one source file, the destination must be a directory and end with a /")]
    DestNotDirectory,
    /// fsutil's refusal to merge a directory into a file or symlink
    #[error("cannot copy to non-directory: {0}")]
    NotADirectory(String),
    #[error("cannot replace to directory {0} with file")]
    ReplaceDirectory(String),
    #[error("--chown={chown}: {source}")]
    Chown { chown: String, source: UserError },
    #[error("read /etc/passwd or /etc/group of the stage: {0}")]
    IdFiles(#[from] crate::rootfs::ReadError),
    #[error("ADD {url}: {why}")]
    Url { url: String, why: String },
    #[error("ADD {url}: digest mismatch: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("archive entry {entry:?}: {why}")]
    Archive { entry: String, why: &'static str },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{op} {path}: {source}")]
    Write {
        op: &'static str,
        path: String,
        source: io::Error,
    },
}
