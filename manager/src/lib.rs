//! rbox: a Docker-like container manager. This part: the image store
//! (import, tag, rmi, inspect, history) and OCI bundles made from images.
//!
//! The library carries typed errors that name what failed and where; the
//! binary (`main.rs`) only parses arguments and prints.

pub mod bundle;
pub mod container;
pub mod etcfiles;
pub mod format;
pub mod image;
pub mod mounts;
pub mod network;
pub mod pull;
pub mod reference;
pub mod signals;
pub mod store;
pub mod template;
pub mod unpack;
pub mod user;
