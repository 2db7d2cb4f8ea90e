//! runc's verbs as the `rrun` binary runs them: each file holds one verb's
//! command-line arguments (clap) and the function that carries it out over
//! the library ([`crate::container`], [`crate::exec`], [`crate::update`]),
//! printing what runc prints. `main.rs` parses the command line and calls
//! one of these per verb.

pub mod create;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod ps;
pub mod spec;
pub mod state;
pub mod update;

use std::path::PathBuf;

/// `--format` of `list` and `ps`.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

/// runc's defaults: /run/rrun as root, $XDG_RUNTIME_DIR/rrun rootless.
pub fn default_root() -> PathBuf {
    if !nix::unistd::geteuid().is_root() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("rrun");
        }
        return PathBuf::from(format!("/tmp/rrun-{}", nix::unistd::geteuid()));
    }
    PathBuf::from("/run/rrun")
}
