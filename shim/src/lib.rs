//! containerd runtime v2 shim for rrun (task API v2, containerd 1.6/1.7).
//!
//! `service` answers containerd's `start`/`delete` and serves `task`, which
//! drives rrun through its runc-compatible command line (`rrun`). `reaper`
//! owns `waitpid`; `io` copies the standard streams; `stats` renders a
//! container's cgroup metrics (read by the cgroup-metrics crate) for
//! containerd; `oom` watches for OOM kills;
//! `retire` keeps used ttrpc clients open (their reader threads outlive them).

pub mod client;
pub mod error;
pub mod fds;
pub mod io;
pub mod jsonlog;
pub mod mount;
pub mod oom;
pub mod reaper;
pub mod retire;
pub mod rrun;
pub mod service;
pub mod stats;
pub mod task;
