//! Registries: pull (pull/) and push (push.rs) through the distribution
//! API, credentials (auth.rs: `rbox login`, the token services), mirrors
//! and insecure registries (config.rs: /etc/rbox/rbox.toml), and what they
//! share (client.rs).

pub mod auth;
pub mod client;
pub mod config;
pub mod pull;
pub mod push;
