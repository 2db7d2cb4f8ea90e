//! The runtime (rrun, through its runc CLI, with its state under
//! ROOT/runtime/<namespace> where the shims keep it), run by rbox itself
//! only to clean up after a shim that is gone: its task killed and
//! deleted. A live container is driven through its shim (task.rs).

use std::process::Command;

use super::error::{io_err, ContainerError, Result};
use super::record::Container;
use crate::locate::runtime_bin;
use crate::store::Store;
use crate::supervisor;

/// rrun's state root: ROOT/runtime/<namespace>, where the shim (given
/// ROOT/runtime) puts it, like containerd's runc shim.
pub(crate) fn runtime(store: &Store) -> Command {
    let mut c = Command::new(runtime_bin());
    c.arg("--root")
        .arg(store.root().join("runtime").join(supervisor::NAMESPACE));
    c
}

/// The container's task deleted and its shim let go: by the shim, or, when
/// the shim cannot (killed after the init exited), through the runtime,
/// with whatever still works on the container killed first.
pub(crate) fn release_task(store: &Store, c: &Container) {
    if !supervisor::release(store, c) {
        supervisor::kill_workers_of(store, &c.id);
        delete_task(store, &c.id);
    }
}

/// `delete --force` through the runtime: the task killed and its state, its
/// cgroups and its mounts gone. A container being let go has no one left to
/// retry it, so a failure is said (with the runtime's words), not dropped.
pub(crate) fn delete_task(store: &Store, id: &str) {
    if let Err(e) = runtime_output(store, &["delete", "--force", id]) {
        eprintln!("rbox: warning: deleting the task of container {id}: {e}");
    }
}

/// Runs the runtime with `args`: its stdout, or its stderr as the error when
/// it fails.
pub(crate) fn runtime_output(store: &Store, args: &[&str]) -> Result<Vec<u8>> {
    let out = runtime(store)
        .args(args)
        .output()
        .map_err(io_err("run", &runtime_bin()))?;
    if !out.status.success() {
        return Err(ContainerError::Runtime {
            bin: runtime_bin().display().to_string(),
            what: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}
