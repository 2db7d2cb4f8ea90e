//! The executor's steps: RUN in a container (run.rs), COPY and ADD into an
//! overlay of the stage's layers (overlay.rs), WORKDIR's directory
//! (workdir.rs), the layer a step leaves (layer.rs), the images of a stage
//! (commit.rs), their configs (config.rs) and history entries
//! (history.rs).

pub mod commit;
pub mod config;
pub mod copy;
pub mod error;
pub mod history;
pub mod layer;
pub mod mounts;
pub mod overlay;
pub mod run;
pub mod running;
pub mod workdir;

pub use error::{ExecError, Result};
