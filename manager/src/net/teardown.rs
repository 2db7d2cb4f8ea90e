//! Undoing a start's network: the CNI DEL, the namespace, the host ports.

use serde_json::Value;

use super::cni::{self, Cni, NetNs};
use super::plan::{default_conflist, netns_path};
use super::ports;
use super::usernet;
use crate::container::error::Result;
use crate::container::record::{Container, NetMode, RunState};
use crate::store::Store;
use cni_types::{NetConfList, PortMapping};

/// The part of a network teardown that needs no store (CNI DEL, the
/// namespace removed), so it can run on a thread of its own.
pub(crate) struct NetTeardown {
    ns: NetNs,
    /// the chain to DEL: none for --net none, or when no ADD ran
    del: Option<NetConfList>,
    id: String,
    ports: Vec<PortMapping>,
    prev: Option<Value>,
}

impl NetTeardown {
    pub(crate) fn run(self) -> Result<()> {
        let mut result = Ok(());
        // the namespace takes the container's veth end, and so the pair,
        // with it (our bridge plugin leaves it): gone when we return
        let veths = self.prev.as_ref().map(cni::host_veths).unwrap_or_default();
        // with our plugins the namespace goes first: the kernel starts
        // destroying it (and the veth pair in it) at once, while the
        // plugins run; they find it gone and leave the veth to the kernel.
        // Others (the reference bridge) need it for their DEL.
        let cni = Cni::new(cni::plugin_dirs());
        let ns_first = self
            .del
            .as_ref()
            .is_none_or(|conflist| cni.deletes_without_netns(conflist));
        let removed = if ns_first {
            Some(self.ns.remove())
        } else {
            None
        };
        if let Some(conflist) = &self.del {
            result = cni.detach(
                conflist,
                &self.id,
                &self.ns,
                &self.ports,
                self.prev.as_ref(),
                matches!(removed, Some(Ok(()))),
            );
        }
        removed.unwrap_or_else(|| self.ns.remove())?;
        // its host ports are free for others now
        ports::release(&self.id)?;
        cni::wait_gone(&veths, std::time::Duration::from_secs(2));
        result.map_err(Into::into)
    }
}

/// What undoing a start's network takes (None: nothing to undo); the
/// namespace is forgotten in `state`.
pub(crate) fn net_teardown(
    store: &Store,
    c: &Container,
    state: &mut RunState,
) -> Option<NetTeardown> {
    // a namespace not recorded: the rbox that made it was killed
    let made = netns_path(&c.id);
    let path = state
        .netns
        .take()
        .or_else(|| made.exists().then_some(made))?;
    let conflist = match c.spec.net.clone().unwrap_or(NetMode::Bridge) {
        NetMode::Bridge => Some(default_conflist()),
        NetMode::User(n) => usernet::find(store, &n).ok().map(|n| n.conflist(store)),
        _ => None,
    };
    // an ADD was run if it was recorded, or if the namespace is mounted
    // (rbox killed during the ADD); not if it was killed before the mount
    // (a teardown removes the namespace before its DEL)
    let added = state.cni_result.is_some()
        || nix::sys::statfs::statfs(&path)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    Some(NetTeardown {
        ns: NetNs { path },
        del: conflist.filter(|_| added),
        id: c.id.clone(),
        ports: state.ports.clone(),
        prev: state.cni_result.clone(),
    })
}

/// Undo a start's network (idempotent): CNI DEL, namespace removed.
pub(crate) fn teardown_network(store: &Store, c: &Container, state: &mut RunState) -> Result<()> {
    net_teardown(store, c, state).map_or(Ok(()), NetTeardown::run)
}
