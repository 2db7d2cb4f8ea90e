//! Docker's exit statuses for what rbox could not do itself: 125 when
//! rbox fails (a bad flag, no such image, a runtime error) in `run` and
//! `create`, 126 when the container's command cannot be invoked
//! (permission denied, a directory), 127 when it is not found. `exec`
//! uses 126 and 127 the same way; the other verbs exit 1, as Docker's do.
//!
//! The runtime's reason crosses the shim as text (as runc's does to
//! Docker): `exec: "x": executable file not found in $PATH` (rrun, runc),
//! `exec /etc: EISDIR: Is a directory` (rrun), `exec: "/etc": is a
//! directory` (runc). [`command_failure`] reads it back.

/// `run`/`create` failed in rbox (or the runtime), not in the container.
pub const FAILED: u8 = 125;
/// The container's command exists but cannot be run.
pub const CANNOT_INVOKE: u8 = 126;
/// The container's command does not exist.
pub const NOT_FOUND: u8 = 127;

/// Why the runtime could not start a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandFailure {
    /// ENOENT, or not in the container's PATH: 127
    NotFound,
    /// EACCES, EISDIR: 126
    CannotInvoke,
}

impl CommandFailure {
    pub fn status(self) -> u8 {
        match self {
            CommandFailure::NotFound => NOT_FOUND,
            CommandFailure::CannotInvoke => CANNOT_INVOKE,
        }
    }
}

/// The reason in a runtime error that failed to start a command: the part
/// after its `exec: "PROGRAM"` (runc, rrun) or `exec /PATH` (rrun) step.
/// Other failures (a mount, a cgroup, a missing cwd) are `None`.
pub fn command_failure(msg: &str) -> Option<CommandFailure> {
    let lower = msg.to_lowercase();
    let steps: Vec<&str> = lower.split(": ").collect();
    let at = steps
        .iter()
        .position(|s| *s == "exec" || s.strip_prefix("exec ").is_some_and(|p| p.contains('/')))?;
    let why = steps[at + 1..].join(": ");
    if why.contains("executable file not found") || why.contains("no such file or directory") {
        Some(CommandFailure::NotFound)
    } else if why.contains("permission denied") || why.contains("is a directory") {
        Some(CommandFailure::CannotInvoke)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrun_and_runc_reasons() {
        use CommandFailure::*;
        for (msg, want) in [
            (
                "runtime /x/shim: create 84c8: /x/rrun create 84c8: config.json: process.args: exec: \"nosuch\": executable file not found in $PATH",
                Some(NotFound),
            ),
            ("rrun create c: exec /no/such: ENOENT: No such file or directory", Some(NotFound)),
            ("rrun create c: exec /etc/passwd: EACCES: Permission denied", Some(CannotInvoke)),
            ("rrun create c: exec /etc: EISDIR: Is a directory", Some(CannotInvoke)),
            (
                "OCI runtime create failed: unable to start container process: exec: \"/etc\": is a directory: unknown",
                Some(CannotInvoke),
            ),
            (
                "unable to start container process: exec: \"/nope\": stat /nope: no such file or directory",
                Some(NotFound),
            ),
            // not the command: the cwd, a mount, rbox's own wording
            ("exec failed: /x/rrun exec c: chdir to cwd /nope: ENOENT: No such file or directory", None),
            ("rrun create c: mount /src to /dst: ENOENT: No such file or directory", None),
            ("rrun create c: exec: cgroup: EACCES", None),
        ] {
            assert_eq!(command_failure(msg), want, "{msg}");
        }
        assert_eq!(CommandFailure::NotFound.status(), 127);
        assert_eq!(CommandFailure::CannotInvoke.status(), 126);
    }
}
