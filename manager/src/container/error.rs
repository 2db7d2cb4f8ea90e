//! What the container verbs can fail with, naming the container or the
//! option and what is wrong.

use std::path::{Path, PathBuf};

use crate::bundle::BundleError;
use crate::devices;
use crate::net::cni;
use crate::net::usernet;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Net(#[from] cni::NetError),
    #[error(transparent)]
    UserNet(#[from] usernet::UserNetError),
    #[error(transparent)]
    Device(#[from] devices::DeviceError),
    #[error("no such container: {0}")]
    NoSuch(String),
    #[error("{0} is ambiguous: several containers match")]
    Ambiguous(String),
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    BadName(String),
    #[error("container {0} is running: stop it first, or use -f")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(transparent)]
    NetMode(#[from] super::record::BadNetMode),
    #[error(transparent)]
    Spec(#[from] crate::oci::error::SpecError),
    #[error(transparent)]
    ImageFile(#[from] crate::rootfs::ReadError),
    #[error("{0}")]
    Invalid(String),
    #[error("exec failed: {0}")]
    ExecStart(String),
    #[error(transparent)]
    NotInstalled(#[from] crate::locate::NotInstalled),
    #[error("runtime {bin}: {what}")]
    Runtime { bin: String, what: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ContainerError>;

pub(crate) fn io_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io { op, path, source }
}
