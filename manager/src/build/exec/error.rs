//! What running a build step can fail with, naming the step's object.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::bundle::BundleError;
use crate::container::ContainerError;
use crate::cp::CopyError;
use crate::image::ImageError;
use crate::store::StoreError;

use super::copy::CopyStepError;
use super::layer::DiffError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("process \"{}\" did not complete successfully: exit code: {code}{}", argv.join(" "), tail_text(tail))]
    RunFailed {
        argv: Vec<String>,
        code: i32,
        tail: Vec<String>,
    },
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the build is stopping")]
    Stopped,
    #[error("RUN --mount: source {path:?} is not in {from}")]
    MountSource { path: String, from: String },
    #[error("secret {0:?} is required but was not given (--secret id={0},src=FILE)")]
    MissingSecret(String),
    #[error("RUN with an empty command")]
    EmptyCommand,
    #[error("mount the step's overlay at {target}: {source}")]
    Mount { target: PathBuf, source: Errno },
    #[error("unmount the step's overlay at {target}: {source}")]
    Umount { target: PathBuf, source: Errno },
    #[error("a mount namespace for the step: {0}")]
    Unshare(#[source] Errno),
    #[error("overlayfs paths cannot hold ',' or ':': {0}")]
    OverlayPath(PathBuf),
    #[error("{0} layers are too many for one overlay mount")]
    TooManyLayers(usize),
    #[error("the step's thread panicked")]
    Panicked,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error(transparent)]
    CopyStep(#[from] CopyStepError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, ExecError>;

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nits last lines:");
    for l in tail {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}
