//! Containers: what `rbox create/run/start/stop/kill/rm/ps/inspect/logs` do,
//! one file a verb.
//!
//! A container is a bundle made from its image (bundle.rs: overlay rootfs
//! and config.json, made for the command line by spec/), a record in the
//! store (record.rs: what was asked, what happened) and, while it runs, a
//! network namespace with the CNI chain's attachment (net/).
//!
//! Every start goes through the container's own shim (supervisor.rs), so
//! rbox may exit while it runs; the shim calls back `rbox __exited ID` when
//! the init exits (exited.rs), which tears the network down, records the
//! exit status and applies `--rm` or the restart policy. Attached runs
//! follow the container's json-file log (attach.rs). What killed rbox
//! processes and shims leave behind is finished by the next rbox
//! (recover.rs).

pub mod attach;
pub mod create;
pub mod discard;
pub mod error;
pub mod exec;
pub mod exited;
pub mod inspect;
pub mod kill;
pub mod log_config;
pub mod logs;
pub mod lookup;
pub mod pause;
pub mod prune;
pub mod reconcile;
pub mod record;
pub mod recover;
pub mod remove;
pub mod rename;
pub mod restart;
pub mod runtime;
pub mod start;
pub mod stop;
pub mod task;
pub mod terminal;
pub mod top;
pub mod wait;

pub use attach::{attach, run_attached, run_attached_to, Output};
pub use create::{create, settle, MIN_MEMORY};
pub use error::{ContainerError, Result};
pub use exec::{exec, ExecSpec};
pub use exited::{await_attached_run, exited};
pub use inspect::inspect;
pub use kill::kill;
pub use logs::logs;
pub use lookup::{find, list};
pub use pause::pause;
pub use prune::prune;
pub use reconcile::reconcile;
pub use record::{Container, LiveStatus, NetMode, RunSpec, RunState, Status};
pub use recover::recover_orphans;
pub use remove::{remove, remove_with_volumes};
pub use rename::rename;
pub use restart::RestartPolicy;
pub use start::start;
pub use stop::{restart, stop};
pub use task::{init_pid, live_status};
pub use top::top;
pub use wait::{wait, wait_for, WaitCondition};
