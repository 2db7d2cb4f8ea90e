//! Containers whose shim is gone (killed): what containerd does when a
//! shim dies, done by the next rbox that looks; and waiting for an exit
//! to be recorded, by the hook or, its shim gone, by this rbox.

use super::error::{ContainerError, Result};
use super::exited::{attached_elsewhere, exited};
use super::lookup::{find, list};
use super::record::{Container, Status};
use super::runtime::{delete_task, runtime};
use crate::claim;
use crate::store::Store;
use crate::supervisor;

/// A container recorded as running whose shim is gone (killed): what
/// containerd does when a shim dies. The container is killed and deleted
/// through the runtime, its exit recorded as 137 (SIGKILL), its network torn
/// down, and its restart policy (or `--rm`) applied, as the exit hook would
/// have. Only one rbox does it (the one whose `running` to `exiting` change
/// lands); the exit code, if this one did.
pub(crate) fn recover(store: &Store, c: &Container) -> Result<Option<i32>> {
    let mut exiting = c.state.clone();
    exiting.status = Status::Exiting;
    let shim_pid = c.state.shim.map(|s| s.pid);
    if !store.replace_running_state(&c.id, &exiting.to_json(), shim_pid)? {
        return Ok(None);
    }
    let code = 128 + libc::SIGKILL;
    let _ = runtime(store).args(["kill", &c.id, "KILL"]).output();
    delete_task(store, &c.id);
    exited(store, &c.id, code)?;
    Ok(Some(code))
}

/// Finds the containers whose shim was killed and does what their exit hook
/// would have done ([`recover`]): run by every rbox command. Containers
/// another rbox is at work on (a claim) are left to it, and so is one an
/// attached `run --rm` follows (its wait on the shim fails, and it recovers
/// the container itself).
pub fn recover_orphans(store: &Store) -> Result<()> {
    for c in list(store)? {
        if c.state.status != Status::Running
            || claim::exists(store, &c.id)
            || (c.spec.rm && attached_elsewhere(&c.state))
            || !supervisor::shim_gone(store, &c)
        {
            continue;
        }
        if let Err(e) = recover(store, &c) {
            eprintln!("rbox: warning: container {} lost its shim: {e}", c.name);
        }
    }
    Ok(())
}

/// Waits until the exit hook has recorded the exit (or `--rm` removed the
/// container); if the shim is gone (killed), does the hook's work itself
/// ([`recover`]) and returns the exit code it recorded.
pub(crate) fn wait_exited(
    store: &Store,
    id: &str,
    limit: std::time::Duration,
) -> Result<Option<i32>> {
    let begin = std::time::Instant::now();
    loop {
        let c = match find(store, id) {
            Ok(c) => c,
            Err(ContainerError::NoSuch(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match c.state.status {
            // nobody will run the hook: the shim was killed
            Status::Running if supervisor::shim_gone(store, &c) => {
                if let Some(code) = recover(store, &c)? {
                    return Ok(Some(code));
                }
            }
            Status::Running => {}
            // another rbox recovers it and waits for us, the attached run
            // --rm that answers for it (see `exited`): we finish it
            Status::Exiting
                if c.spec.rm
                    && c.state.attached_pid == Some(std::process::id() as i32)
                    && supervisor::shim_gone(store, &c) =>
            {
                return exited(store, id, 128 + libc::SIGKILL).map(|()| Some(128 + libc::SIGKILL));
            }
            // the hook is at work; should it have been killed, finish its work
            Status::Exiting if begin.elapsed() > std::time::Duration::from_secs(20) => {
                return exited(store, id, c.state.exit_code).map(|()| None);
            }
            Status::Exiting => {}
            Status::Created | Status::Exited => return Ok(None),
        }
        if begin.elapsed() >= limit && c.state.status == Status::Running {
            return Err(ContainerError::DidNotStop(c.name));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
