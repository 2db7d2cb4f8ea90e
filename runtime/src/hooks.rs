//! OCI lifecycle hooks. Where each kind runs (as runc does):
//!
//! | hook | who runs it | namespaces | when |
//! |---|---|---|---|
//! | prestart, createRuntime | `create` (parent) | runtime's | init built the mounts, before pivot_root |
//! | createContainer | the init | container's | right after, before pivot_root |
//! | startContainer | the init | container's | after `start`, before the user process execs |
//! | poststart | `start` / `run` | runtime's | once the user process runs |
//! | poststop | `delete` | runtime's | after the container is gone |
//!
//! Each hook gets the state JSON on stdin, its own args and env (nothing
//! inherited), and is killed when its `timeout` (seconds) passes. A failing
//! prestart, createRuntime, createContainer or startContainer hook fails the
//! operation with its exit status and output, and the later hooks do not
//! run. A failing poststart or poststop hook is a warning, as the spec says:
//! the other hooks still run and the lifecycle goes on as if it had
//! succeeded.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

pub const ALL: [Kind; 6] = [
    Kind::Prestart,
    Kind::CreateRuntime,
    Kind::CreateContainer,
    Kind::StartContainer,
    Kind::Poststart,
    Kind::Poststop,
];

/// The hooks of one kind in `spec` (empty when none).
pub fn of(spec: &Spec, kind: Kind) -> &[Hook] {
    let Some(h) = spec.hooks().as_ref() else {
        return &[];
    };
    #[allow(deprecated)]
    let list = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    list.as_deref().unwrap_or_default()
}

/// Refuse hooks whose path is not absolute or whose timeout is not positive.
pub fn validate(spec: &Spec) -> Result<()> {
    for kind in ALL {
        for (i, h) in of(spec, kind).iter().enumerate() {
            let field = format!("hooks.{}[{i}]", kind.name());
            if !h.path().is_absolute() {
                return Err(Error::config(
                    format!("{field}.path"),
                    format!("{} must be an absolute path", h.path().display()),
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::config(
                    format!("{field}.timeout"),
                    "must be a positive number of seconds",
                ));
            }
        }
    }
    Ok(())
}

/// The state JSON hooks get on stdin.
pub fn state_json(
    spec: &Spec,
    id: &str,
    pid: i32,
    status: &str,
    bundle: &std::path::Path,
) -> String {
    let mut v = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": status,
        "bundle": bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
        v["annotations"] = serde_json::to_value(a).unwrap_or_default();
    }
    v.to_string()
}

/// Run the hooks of `kind` in order; the first failure stops.
pub fn run(spec: &Spec, kind: Kind, state: &str) -> Result<()> {
    for (i, h) in of(spec, kind).iter().enumerate() {
        run_one(h, state).map_err(|msg| Error::Init(describe(kind, i, h, &msg)))?;
    }
    Ok(())
}

/// Run every hook of `kind` in order; a failing one is logged as a warning
/// and the next one runs (poststart, poststop).
pub fn run_warning(spec: &Spec, kind: Kind, state: &str) {
    for (i, h) in of(spec, kind).iter().enumerate() {
        if let Err(msg) = run_one(h, state) {
            tracing::warn!("{}", describe(kind, i, h, &msg));
        }
    }
}

fn describe(kind: Kind, i: usize, h: &Hook, msg: &str) -> String {
    format!("{} hook {i} ({}): {msg}", kind.name(), h.path().display())
}

fn run_one(h: &Hook, state: &str) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(arg0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(h.env().iter().flatten().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a hook that does not read its stdin is fine
        let _ = stdin.write_all(state.as_bytes());
    }
    let pid = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output());
    if let Some(secs) = h.timeout() {
        let deadline = Instant::now() + Duration::from_secs(secs as u64);
        while !waiter.is_finished() {
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = waiter.join();
                return Err(format!("timed out after {secs}s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let out = waiter
        .join()
        .map_err(|_| "waiting for the hook failed".to_string())?
        .map_err(|e| format!("wait: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = format!("{}", out.status);
    for stream in [&out.stderr, &out.stdout] {
        let text = String::from_utf8_lossy(stream);
        let text = text.trim();
        if !text.is_empty() {
            msg.push_str(": ");
            msg.push_str(text);
        }
    }
    Err(msg)
}
