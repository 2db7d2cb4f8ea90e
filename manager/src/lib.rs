//! rbox: a Docker-like container manager: the image store (import, tag,
//! rmi, inspect, history), registries (pull, push, login, mirrors), image
//! archives (save, load), OCI bundles made from images, and containers
//! (create, run, exec, logs, stop, rm, ps, inspect) under
//! containerd-shim-rrun-v2, with CNI networking; and `rbox serve`, the
//! Docker Engine API over the same calls (api/).
//!
//! The library carries typed errors that name what failed and where; the
//! binary (`main.rs`) only parses arguments and prints.

pub mod api;
pub mod archive;
pub mod build;
pub mod bundle;
pub mod cgroups;
pub mod claim;
pub mod container;
pub mod cp;
pub mod devices;
pub mod exitcode;
pub mod filter;
pub mod format;
pub mod host;
pub mod image;
pub mod info;
pub mod listing;
pub mod liveness;
pub mod locate;
pub mod logs;
pub mod media;
pub mod mounts;
pub mod names;
pub mod net;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod runconfig;
pub mod seccomp;
pub mod signals;
pub mod stats;
pub mod stdio;
pub mod store;
pub mod supervisor;
pub mod system;
pub mod template;
pub mod user;
pub mod volume;
