//! What a container's spec cannot be made of, naming the option (or the
//! image) and what is wrong with it.

use std::path::PathBuf;

use crate::devices::DeviceError;
use crate::locate::NoInit;
use crate::seccomp::SeccompError;
use crate::user::UserError;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("image {0}: no command specified")]
    NoCommand(String),
    #[error("image {image}: {source}")]
    ImageUser { image: String, source: UserError },
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("--ulimit {spec:?}: {why}")]
    BadUlimit { spec: String, why: String },
    #[error("-w {0:?}: not an absolute path")]
    RelativeWorkdir(String),
    #[error("-u {user:?}: {source}")]
    User { user: String, source: UserError },
    #[error(transparent)]
    GroupAdd(UserError),
    #[error("process.user: {0}")]
    ProcessUser(oci_spec::OciSpecError),
    #[error("config.json: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    NoInit(#[from] NoInit),
    #[error("volume at {0}: it has no name")]
    UnnamedVolume(PathBuf),
}

pub type Result<T> = std::result::Result<T, SpecError>;
