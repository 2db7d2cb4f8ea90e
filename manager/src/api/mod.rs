//! `rbox serve`: the Docker Engine API on a unix socket, so that the docker
//! CLI, docker-compose and Docker's SDKs drive rbox. Every endpoint calls
//! the library functions the command line calls (no verb is implemented
//! twice); the server only translates HTTP and Docker's JSON to them and
//! back.
//!
//! - server.rs: the socket (its mode and group, a stale one replaced), the
//!   connections (HTTP/1.1, hyper), the idle timeout and the signals that
//!   end it; state.rs: what every request shares (the store's root, a pool
//!   of open stores) and `blocking`, which runs a library call on tokio's
//!   blocking pool, so requests are served concurrently;
//! - router.rs: the path (`/v1.41/…`, any `/vX.Y/`, or none) to a
//!   [`router::Route`], and the route to its handler;
//! - http.rs: query parameters, JSON bodies (size-capped), responses and the
//!   streaming body; error.rs: every failure as Docker's `{"message": …}`
//!   with its status code (404 no such container or image, 409 conflict,
//!   400 bad parameter, 304 nothing to do, 501 an endpoint of a later
//!   phase, 500 the rest);
//! - system.rs (`/_ping`, `/version`, `/info`), containers/ (one file a
//!   group: list, create, lifecycle, logs), images/ (list and history,
//!   inspect/tag/delete, pull).
//!
//! Endpoints not served yet (attach, exec, archive, build, events,
//! networks, volumes, …) answer 501 naming themselves (router.rs); an
//! unknown path answers 404.

pub mod containers;
pub mod error;
pub mod http;
pub mod images;
pub mod router;
pub mod server;
pub mod state;
pub mod system;

pub use error::ApiError;
pub use server::{serve, Listen, ServeError, ServeOptions, DEFAULT_SOCKET};

/// The API version rbox answers with (Docker 20.10's): clients newer than
/// it negotiate down to it, as Docker's 28 client does.
pub const API_VERSION: &str = "1.41";

/// The oldest API version rbox answers (Docker's own minimum).
pub const MIN_API_VERSION: &str = "1.12";
