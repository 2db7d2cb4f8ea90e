//! `rbox top`: a running container's processes.

use std::fs;

use super::error::{ContainerError, Result};
use super::lookup::find;
use super::runtime::{live_status, runtime_output};
use crate::store::Store;

/// The processes of a running container: (pid, user id, command line).
pub fn top(store: &Store, what: &str) -> Result<Vec<(i32, u32, String)>> {
    let c = find(store, what)?;
    if !live_status(store, &c).is_up() {
        return Err(ContainerError::NotRunning(c.name));
    }
    let out = runtime_output(store, &["ps", "--format", "json", &c.id])?;
    let pids: Vec<i32> = serde_json::from_slice(&out).unwrap_or_default();
    Ok(pids
        .into_iter()
        .map(|pid| {
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
