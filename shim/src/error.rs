//! The shim's errors, mapped to ttrpc codes in one place.

use std::io;
use std::path::PathBuf;

use containerd_shim_protos::ttrpc::{self, Code};

use crate::rrun::RrunError;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("process {exec_id} of container {id} not found")]
    ExecNotFound { id: String, exec_id: String },
    #[error("container {0} already exists")]
    ContainerExists(String),
    #[error("process {exec_id} already exists in container {id}")]
    ExecExists { id: String, exec_id: String },
    #[error("process {0} already finished")]
    Finished(String),
    #[error("container {id}: {msg}")]
    Precondition { id: String, msg: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {msg}")]
    Invalid { what: &'static str, msg: String },
    #[error("runtime binary {name:?} not found next to the shim ({dir}) nor in PATH")]
    BinaryNotFound { name: String, dir: PathBuf },
    #[error("mount rootfs {target}: {msg}")]
    Mount { target: PathBuf, msg: String },
    #[error("{0}")]
    Rrun(#[from] RrunError),
    #[error("{0} is not implemented by containerd-shim-rrun-v2")]
    Unimplemented(&'static str),
}

pub type Result<T> = std::result::Result<T, ShimError>;

impl ShimError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ShimError {
        let path = path.into();
        move |source| ShimError::Io { what, path, source }
    }

    fn code(&self) -> Code {
        match self {
            ShimError::ContainerNotFound(_)
            | ShimError::ExecNotFound { .. }
            | ShimError::Finished(_) => Code::NOT_FOUND,
            ShimError::ContainerExists(_) | ShimError::ExecExists { .. } => Code::ALREADY_EXISTS,
            ShimError::Precondition { .. } => Code::FAILED_PRECONDITION,
            ShimError::Invalid { .. } | ShimError::BinaryNotFound { .. } => Code::INVALID_ARGUMENT,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Io { .. } | ShimError::Mount { .. } | ShimError::Rrun(_) => Code::UNKNOWN,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}
