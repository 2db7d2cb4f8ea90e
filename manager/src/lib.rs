//! rbox: a Docker-like container manager. This part: the image store
//! (import, tag, rmi, inspect, history) and OCI bundles made from images.
//!
//! The library carries typed errors that name what failed and where; the
//! binary (`main.rs`) only parses arguments and prints.

pub mod bundle;
pub mod format;
pub mod image;
pub mod network;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;
pub mod user;
