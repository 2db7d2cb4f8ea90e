//! Work inside a network namespace: a short-lived thread enters it with
//! setns and runs the closure; the namespace is left when the thread ends,
//! so the calling thread never changes namespace.

use std::path::Path;

use crate::error::{code, CniError, Result};

/// Run `f` in the network namespace at `path` (e.g. CNI_NETNS).
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = std::fs::File::open(path).map_err(|e| {
        CniError::new(
            code::INVALID_ENV,
            format!("failed to open netns {:?}", path.display().to_string()),
        )
        .with_details(e)
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                CniError::new(
                    code::INVALID_ENV,
                    format!(
                        "{:?} is not a network namespace",
                        path.display().to_string()
                    ),
                )
                .with_details(e)
            })?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(CniError::internal("netns worker panicked")))
    })
}
