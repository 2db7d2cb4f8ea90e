//! The runtime's error type. Every variant names the object it failed on, so
//! the message printed by `rrun` (and written to `--log`) says what and where.

use std::path::PathBuf;

use nix::errno::Errno;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {0:?}: ids must be non-empty and use only letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("config.json: {field}: {msg}")]
    InvalidConfig { field: String, msg: String },
    #[error("{op} {path}: {errno}")]
    Path {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("container {id:?} is {status}: {msg}")]
    BadStatus {
        id: String,
        status: String,
        msg: &'static str,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("config.json: {0}")]
    DeviceRule(#[from] crate::devices::RuleError),
    #[error("config.json: {0}")]
    Resource(#[from] crate::resources::ResourceError),
    #[error("{0}")]
    Init(String),
    #[error("{0} is not implemented in rrun yet")]
    Unsupported(String),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            msg: msg.into(),
        }
    }

    pub fn sys(op: impl Into<String>, source: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            errno: source,
        }
    }

    pub fn path(op: &'static str, path: impl Into<PathBuf>, source: Errno) -> Self {
        Error::Path {
            op,
            path: path.into(),
            errno: source,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }
}

/// Attach an operation (and optionally a path) to a bare errno.
pub trait ErrnoExt<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T>;
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> ErrnoExt<T> for std::result::Result<T, Errno> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(op(), e))
    }
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::path(op, path, e))
    }
}
