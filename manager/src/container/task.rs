//! A live container's task, through its shim: the one control path to it,
//! as containerd has (the shim runs the runtime). Its status is read from
//! the record and what the shim keeps in the bundle (`task-status`: paused,
//! or exited before the exit hook has recorded it), with no process or
//! connection per container; the verbs that act on it ask the shim.

use nix::sys::signal::Signal;
use shim::client::{InitStatus, ShimClient};

use super::error::{ContainerError, Result};
use super::record::{Container, LiveStatus, Status};
use crate::store::Store;
use crate::supervisor;

/// The status shown to users and that the verbs go by: the record's, with
/// a running container's from its shim's record (a container whose shim was
/// killed is finished first by `recover_orphans`, which every command runs).
pub fn live_status(c: &Container) -> LiveStatus {
    match c.state.status {
        Status::Created => LiveStatus::Created,
        Status::Exiting | Status::Exited => LiveStatus::Exited,
        Status::Running => match InitStatus::of_bundle(&c.bundle) {
            InitStatus::Running => LiveStatus::Running,
            InitStatus::Paused => LiveStatus::Paused,
            InitStatus::Exited(_) => LiveStatus::Exited,
        },
    }
}

/// The shim serving `c` (not running without one).
fn shim(store: &Store, c: &Container) -> Result<ShimClient> {
    supervisor::connect(store, c).ok_or_else(|| ContainerError::NotRunning(c.name.clone()))
}

/// A signal to the container's init.
pub fn signal(store: &Store, c: &Container, sig: Signal) -> Result<()> {
    shim(store, c)?
        .kill("", sig as u32, false)
        .map_err(supervisor::map_err)
}

/// Freezes (`freeze`) or thaws the container's processes.
pub fn freeze(store: &Store, c: &Container, freeze: bool) -> Result<()> {
    let client = shim(store, c)?;
    match freeze {
        true => client.pause(),
        false => client.resume(),
    }
    .map_err(supervisor::map_err)
}

/// The pids of the container's processes.
pub fn pids(store: &Store, c: &Container) -> Result<Vec<u32>> {
    shim(store, c)?.pids().map_err(supervisor::map_err)
}

/// The running (or paused) container's init pid, as its shim knows it.
pub fn init_pid(store: &Store, c: &Container) -> Option<u32> {
    if !live_status(c).is_up() {
        return None;
    }
    let (pid, _) = supervisor::connect(store, c)?.state("").ok()?;
    (pid > 0).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::{RunSpec, RunState};

    #[test]
    fn the_status_comes_from_the_record_and_the_shims_file() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().to_path_buf();
        let c = |status| Container {
            id: "c".into(),
            name: "c".into(),
            image_id: String::new(),
            created: String::new(),
            bundle: bundle.clone(),
            spec: RunSpec::default(),
            state: RunState {
                status,
                ..Default::default()
            },
        };
        assert_eq!(live_status(&c(Status::Created)), LiveStatus::Created);
        assert_eq!(live_status(&c(Status::Exiting)), LiveStatus::Exited);
        assert_eq!(live_status(&c(Status::Running)), LiveStatus::Running);
        // what the shim writes (shim::client::STATUS_FILE)
        let file = bundle.join(shim::client::STATUS_FILE);
        std::fs::write(&file, "paused\n").unwrap();
        assert_eq!(live_status(&c(Status::Running)), LiveStatus::Paused);
        std::fs::write(&file, "exited 3\n").unwrap();
        assert_eq!(live_status(&c(Status::Running)), LiveStatus::Exited);
        // the record wins once the exit hook has written it
        assert_eq!(live_status(&c(Status::Created)), LiveStatus::Created);
    }
}
