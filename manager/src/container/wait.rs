//! `rbox wait`: until the container stops; its exit code.

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::record::Status;
use super::recover::wait_exited;
use super::task::live_status;
use crate::store::Store;
use crate::supervisor;

/// `rbox wait`: blocks until the container stops; its exit code.
pub fn wait(store: &Store, what: &str) -> Result<i32> {
    let c = find(store, what)?;
    loop {
        match find(store, &c.id) {
            Ok(now) if now.state.status == Status::Running => {
                let status = live_status(&now);
                // stopped, or its shim killed meanwhile (then recovered)
                if !status.is_up() || supervisor::shim_gone(store, &now) {
                    wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
                }
            }
            Ok(now) => return Ok(now.state.exit_code),
            Err(ContainerError::NoSuch(_)) => return Ok(0),
            Err(e) => return Err(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
