//! The four plugins, one module each; their binaries (src/bin/) only hand
//! them to [`crate::skel::run`].

pub mod bridge;
pub mod host_local;
pub mod loopback;
pub mod portmap;
