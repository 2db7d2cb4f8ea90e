//! `exec`: a new process in a running container, given as an OCI process
//! JSON (`--process`) or as arguments over the container's own process.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use oci_spec::runtime::{Capability, Process};

use crate::exec::{self, ExecOptions};
use crate::state::State;

#[derive(clap::Args)]
pub struct ExecArgs {
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Process JSON (an OCI process object) instead of ARGS
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Detach
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Add a capability (e.g. CAP_NET_ADMIN)
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    pub ignore_paused: bool,
    pub container_id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs the process; returns its exit status (0 when detached).
pub fn exec(root: &Path, a: &ExecArgs) -> anyhow::Result<i32> {
    // the state read for the defaults is handed on, not read again
    let mut state = None;
    let process = match &a.process {
        Some(p) => {
            let data = std::fs::read(p).with_context(|| p.display().to_string())?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de)
                .map_err(|e| anyhow::anyhow!("{}: {}: {}", p.display(), e.path(), e.inner()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: give a command after the container id, or --process");
            }
            let st = state.insert(State::load(root, &a.container_id)?);
            process(st.spec.process().clone().unwrap_or_default(), a)?
        }
    };
    Ok(exec::exec(ExecOptions {
        root,
        id: &a.container_id,
        state,
        process,
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    })?)
}

/// The container's process `p` with the command line's changes: the
/// command, terminal, environment (a KEY given replaces the container's),
/// cwd, user, groups, no_new_privs and added capabilities.
fn process(mut p: Process, a: &ExecArgs) -> anyhow::Result<Process> {
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let (uid, gid) = u
            .split_once(':')
            .map(|(u, g)| (u, Some(g)))
            .unwrap_or((u.as_str(), None));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: uid must be numeric"))?,
        );
        user.set_gid(match gid {
            Some(g) => g
                .parse()
                .with_context(|| format!("--user {u:?}: gid must be numeric"))?,
            None => 0,
        });
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(c.to_uppercase()))
                    .with_context(|| format!("--cap {c:?}: unknown capability"))?;
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(cap);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(cap);
            caps.set_effective(Some(e));
            let mut pm = caps.permitted().clone().unwrap_or_default();
            pm.insert(cap);
            caps.set_permitted(Some(pm));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecArgs,
    }

    fn args(line: &[&str]) -> ExecArgs {
        Cli::parse_from(std::iter::once("exec").chain(line.iter().copied())).exec
    }

    #[test]
    fn the_command_line_changes_the_containers_process() {
        let mut base = Process::default();
        base.set_env(Some(vec!["PATH=/bin".into(), "A=1".into()]));
        let a = args(&[
            "-t",
            "-e",
            "A=2",
            "-e",
            "B=3",
            "--cwd",
            "/w",
            "-u",
            "7:8",
            "-g",
            "9",
            "--cap",
            "cap_net_admin",
            "--no-new-privs",
            "c1",
            "sh",
            "-c",
            "true",
        ]);
        let p = process(base, &a).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["sh", "-c", "true"]);
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/w"));
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[9][..]));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetAdmin));
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetAdmin));
    }

    #[test]
    fn bad_users_and_capabilities_are_named() {
        let e = process(Process::default(), &args(&["-u", "bob", "c1", "true"])).unwrap_err();
        assert!(e.to_string().contains("\"bob\""), "{e}");
        let e = process(
            Process::default(),
            &args(&["--cap", "CAP_NOPE", "c1", "true"]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("CAP_NOPE"), "{e}");
    }
}
