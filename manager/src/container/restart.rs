//! The restart policy: `--restart no|always|unless-stopped|on-failure[:N]`.

use super::error::{ContainerError, Result};
use super::record::{RunSpec, RunState};

/// Whether a container is to run again after its init exited with `code`.
pub(crate) fn restarts(rs: &RunSpec, state: &RunState, code: i32) -> bool {
    if state.stopping {
        return false;
    }
    match rs
        .restart
        .split_once(':')
        .unwrap_or((rs.restart.as_str(), ""))
    {
        ("always" | "unless-stopped", _) => true,
        ("on-failure", max) => {
            code != 0 && max.parse::<u32>().map_or(true, |m| state.restart_count < m)
        }
        _ => false,
    }
}

/// Checks a `--restart` value: no, always, unless-stopped, on-failure[:N].
pub fn parse_restart(s: &str) -> Result<String> {
    let ok = match s.split_once(':') {
        None => matches!(s, "no" | "always" | "unless-stopped" | "on-failure"),
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        _ => false,
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(ContainerError::Invalid(format!(
            "--restart {s:?}: not no, always, unless-stopped or on-failure[:N]"
        )))
    }
}
