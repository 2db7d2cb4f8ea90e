//! rrun: a runc-compatible OCI runtime.
//!
//! The binary (`main.rs`) parses runc's command line and calls one function
//! per verb in [`cli`], which carries it out over [`container`], [`exec`]
//! and [`update`]. See docs/architecture.md for the process model.

pub mod attrs;
pub mod cgroups;
pub mod channel;
pub mod cli;
pub mod console;
pub mod container;
pub mod devfilter;
pub mod devices;
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
mod entry;
pub mod error;
pub mod exec;
pub mod features;
pub mod fsutil;
pub mod hierarchy;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod logging;
pub mod net;
pub mod process;
pub mod resources;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod sharedmount;
pub mod signal;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod update;
