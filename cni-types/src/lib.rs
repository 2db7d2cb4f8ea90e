//! The CNI contract's data, written once for both of its sides: rbox
//! builds network configurations and reads results, the plugins
//! (cni-plugins) read configurations and write results.
//!
//! - [`conf`]: the network configuration list and each plugin's
//!   configuration (the common fields, `bridge`, `portmap`, host-local's
//!   `ipam`), `runtimeConfig` and its [`PortMapping`], the one port-mapping
//!   type of rbox and the plugins;
//! - [`result`]: what ADD returns (interfaces, IPs, routes, DNS), rendered
//!   for the caller's `cniVersion`, and a plugin's error reply;
//! - [`keys`]: the reference plugins read their configuration with Go's
//!   encoding/json, which matches keys case-insensitively; runtimes rely on
//!   it (containerd sends `HostPort`). [`decode`] applies the same matching
//!   before it reads a configuration into these types.
//!
//! serde (with field paths in errors) and ipnet only: the plugins are
//! small static binaries.

pub mod conf;
pub mod keys;
pub mod result;

pub use conf::{
    Attachment, BridgeConf, IpRange, Ipam, NetConf, NetConfList, PluginConf, PortMapping,
    PortmapConf, Protocol, RouteConf, RuntimeConfig, VlanTrunk,
};
pub use result::{CniResult, Dns, ErrorReply, Interface, IpConfig, Route};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A configuration value that does not fit its type: the JSON path of the
/// field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub path: String,
    pub msg: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.path, self.msg)
        }
    }
}

impl std::error::Error for DecodeError {}

/// `v` as `T`; an error names the field (`mtu`, `ipam.ranges[0][0].subnet`).
/// The keys are expected in their spelling already (see [`keys`]).
pub fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(v).map_err(|e| DecodeError {
        path: e.path().to_string(),
        msg: e.inner().to_string(),
    })
}
