//! The CNI contract (spec 1.1, and 0.3.0 to 1.0.0 for older callers), the
//! plugins themselves ([`plugins`]: bridge, host-local, loopback, portmap)
//! and what they share: the error type, the command dispatcher and the
//! configuration as the plugins get it ([`skel`]), network-namespace entry
//! ([`netns`]), and the host-local address store ([`hostlocal`]). The
//! configuration and result types are the cni-types crate's, shared with
//! rbox.

pub mod conntrack;
pub mod error;
pub mod hostlocal;
pub mod ipam;
pub mod iptcompat;
pub mod netns;
pub mod nfnl;
pub mod nft;
pub mod nl;
pub mod plugins;
pub mod skel;

pub use error::{CniError, Result};
