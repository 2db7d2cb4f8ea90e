//! `rbox start` (and `run`): the network, then the container under its
//! own shim.

use super::discard::remove_stopped;
use super::error::{ContainerError, Result};
use super::lookup::{find, save_state};
use super::record::{Container, RunState, Status};
use super::runtime::delete_task;
use super::task::live_status;
use crate::claim;
use crate::net::plan::{finish_network, plan_network, refresh_hosts_of};
use crate::net::teardown::teardown_network;
use crate::store::Store;
use crate::supervisor;

/// `rbox start` (and `run`): the network, then the container under its
/// own shim; rbox can exit while it runs.
pub fn start(store: &Store, what: &str) -> Result<Container> {
    start_inner(store, what, false)
}

pub(crate) fn start_inner(store: &Store, what: &str, attached: bool) -> Result<Container> {
    let c = find(store, what)?;
    if live_status(&c).is_up() {
        return Err(ContainerError::AlreadyRunning(c.name));
    }
    let mut state = c.state.clone();
    if state.netns.is_some() || state.status == Status::Running || state.status == Status::Exiting {
        // what an earlier run left (its rbox or shim killed)
        let _ = supervisor::release(store, &c);
        delete_task(store, &c.id);
        let _ = teardown_network(store, &c, &mut state);
    }
    let started = start_task(store, &c, &mut state, attached);
    if let Err(e) = started {
        // a runtime left at work by a killed shim would make the
        // container after the delete below
        supervisor::kill_workers_of(store, &c.id);
        let _ = teardown_network(store, &c, &mut state);
        // what a runtime killed half-way through its create left: its
        // state dir, and the cgroups, perhaps with processes in them
        delete_task(store, &c.id);
        crate::cgroups::remove(&c.spec.cgroups_path(&c.id));
        state.status = Status::Created;
        let _ = save_state(store, &c.id, &state);
        let _ = refresh_hosts_of(store, &c);
        // back to what `create` made, as Docker leaves the container of a
        // failed `run` created (--rm: removed)
        if c.spec.rm {
            let _ = remove_stopped(store, &c.id);
        }
        claim::release(&c.id);
        return Err(e);
    }
    claim::release(&c.id);
    Ok(c)
}

/// The network and the task: the CNI ADD runs while the shim creates the
/// container (the network is there before its process starts). On error
/// the shim is gone; the network is the caller's to tear down.
fn start_task(store: &Store, c: &Container, state: &mut RunState, attached: bool) -> Result<()> {
    let plan = plan_network(store, c, state)?;
    let (attachment, shim) = std::thread::scope(|s| {
        let add = s.spawn(|| plan.attach(&c.id));
        let shim = supervisor::create(store, c, attached);
        (add.join().expect("the CNI thread does not panic"), shim)
    });
    let shim = shim?;
    state.shim = supervisor::ShimPid::of_client(&shim);
    let started = attachment
        .transpose()
        .map_err(ContainerError::from)
        .and_then(|a| finish_network(store, c, state, plan, a))
        .and_then(|()| {
            state.status = Status::Running;
            state.started_at = Some(chrono::Utc::now().to_rfc3339());
            state.finished_at = None;
            state.stopping = false;
            state.attached_pid = attached.then(|| std::process::id() as i32);
            save_state(store, &c.id, state)
        })
        .and_then(|()| refresh_hosts_of(store, c))
        // from here on the shim's exit hook (`exited`) owns the state
        .and_then(|()| supervisor::start(&shim).map(drop));
    if started.is_err() {
        supervisor::abandon(shim);
    }
    started
}
