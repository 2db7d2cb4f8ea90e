//! `rbox top`: a running container's processes, as its shim lists them.

use std::fs;

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::task::{live_status, pids};
use crate::store::Store;

/// The processes of a running container: (pid, user id, command line).
pub fn top(store: &Store, what: &str) -> Result<Vec<(i32, u32, String)>> {
    let c = find(store, what)?;
    if !live_status(&c).is_up() {
        return Err(ContainerError::NotRunning(c.name));
    }
    Ok(pids(store, &c)?
        .into_iter()
        .map(|pid| {
            let pid = pid as i32;
            let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|&x| x == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let uid = fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|l| l.split_whitespace().next().and_then(|u| u.parse().ok()))
                })
                .unwrap_or(0);
            (pid, uid, cmd)
        })
        .collect())
}
