//! What the container verbs can fail with, naming the container or the
//! option and what is wrong.

use std::path::{Path, PathBuf};

use super::record::LiveStatus;
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
    #[error(transparent)]
    Restart(#[from] super::restart::BadRestart),
    #[error(transparent)]
    LogOpt(#[from] super::log_config::BadLogOpt),
    #[error(transparent)]
    SecurityOpt(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Copy(#[from] crate::cp::CopyError),
    #[error(transparent)]
    Signal(#[from] crate::signals::BadSignal),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("container {0} is paused, unpause it first")]
    Paused(String),
    #[error("cannot attach to container {name}: it is {status}, start it first")]
    CannotAttach { name: String, status: LiveStatus },
    #[error("--restart {0} and --rm: a removed container cannot restart")]
    RestartWithRm(String),
    #[error("container {0} did not stop")]
    DidNotStop(String),
    #[error("--memory {0}: Minimum memory limit allowed is 6MB")]
    MemoryTooLow(i64),
    #[error("--mount type=bind,source={},target={}: invalid mount config for type \"bind\": bind source path does not exist: {}", .path.display(), .target.display(), .path.display())]
    NoBindSource { path: PathBuf, target: PathBuf },
    #[error("{flag} needs the cgroup {controller} controller, which this host does not have (see rbox info)")]
    NoController {
        flag: &'static str,
        controller: &'static str,
    },
    #[error("-p {port}: published ports need the bridge network, not --net {net}")]
    PortsNeedBridge { port: String, net: String },
    #[error("conflicting options: {what} and the container type network mode (--net container:{target})")]
    ConflictsWithNetContainer { what: &'static str, target: String },
    #[error("--net container:{0}: no such container")]
    NoNetTarget(String),
    #[error("--net container:{target}: {name} shares another container's network itself")]
    NetTargetShares { target: String, name: String },
    #[error("cannot join the network of container {0}: it was removed")]
    NetTargetGone(String),
    #[error("cannot join the network of container {0}: it is not running")]
    NetTargetStopped(String),
    #[error("image {image}: {source}")]
    Image {
        image: String,
        source: Box<crate::image::ImageError>,
    },
    #[error("image {image}: ExposedPorts {port:?}: {source}")]
    ExposedPort {
        image: String,
        port: String,
        source: Box<cni::NetError>,
    },
    #[error("{path}: {source}")]
    BadConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid volume name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    BadVolumeName(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {name} is in use by {users}")]
    VolumeInUse { name: String, users: String },
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
