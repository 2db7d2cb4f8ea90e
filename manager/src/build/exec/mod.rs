//! The executor's steps: RUN in a container (run.rs), COPY and ADD into an
//! overlay of the stage's layers (overlay.rs), the layer a step leaves
//! (layer.rs) and the images of a stage (commit.rs).

pub mod commit;
pub mod config;
pub mod copy;
pub mod error;
pub mod layer;
pub mod mounts;
pub mod overlay;
pub mod run;
pub mod running;

pub use error::{ExecError, Result};
