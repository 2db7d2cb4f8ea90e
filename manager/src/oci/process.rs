//! What `run` and `exec` change of the image's process.

use std::path::PathBuf;

use oci_spec::runtime::{Process, UserBuilder};

use super::error::{Result, SpecError};
use crate::rootfs::IdFiles;
use crate::user;

/// What `run` and `exec` may change of a process: `-e` (KEY=VALUE, or KEY
/// taken from rbox's environment), `-t` (and TERM), `-w`, `-u` (names
/// resolved in the container's /etc/passwd and /etc/group), `--group-add`
/// (applied to `-u`'s user, else to the process's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub env: &'a [String],
    pub tty: bool,
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    pub group_add: &'a [String],
}

/// Applies `o` to `process`; `files` are the container's /etc/passwd and
/// /etc/group, `env_of` looks up a variable of rbox's environment.
pub fn override_process(
    process: &mut Process,
    o: &Overrides<'_>,
    files: &IdFiles,
    env_of: fn(&str) -> Option<String>,
) -> Result<()> {
    let mut env = process.env().clone().unwrap_or_default();
    for e in o.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match env_of(e) {
                Some(v) => (e.clone(), v),
                None => continue,
            },
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if o.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    process.set_env(Some(env));
    process.set_terminal(Some(o.tty));
    if let Some(w) = o.workdir {
        if !w.starts_with('/') {
            return Err(SpecError::RelativeWorkdir(w.to_string()));
        }
        process.set_cwd(PathBuf::from(w));
    }
    if o.user.is_none() && o.group_add.is_empty() {
        return Ok(());
    }
    // HOME is left to the runtime, which takes it from the container's
    // /etc/passwd for the process's uid (runc's rule, which Docker relies on)
    let group = files.group.as_deref();
    let mut eu = match o.user {
        Some(u) => {
            user::resolve(u, files.passwd.as_deref(), group).map_err(|source| SpecError::User {
                user: u.to_string(),
                source,
            })?
        }
        None => user::ExecUser {
            uid: process.user().uid(),
            gid: process.user().gid(),
            additional_gids: process.user().additional_gids().clone().unwrap_or_default(),
            home: String::new(),
        },
    };
    eu.add_groups(o.group_add, group)
        .map_err(SpecError::GroupAdd)?;
    process.set_user(
        UserBuilder::default()
            .uid(eu.uid)
            .gid(eu.gid)
            .additional_gids(eu.additional_gids)
            .build()
            .map_err(SpecError::ProcessUser)?,
    );
    Ok(())
}

/// A variable of rbox's own environment (`-e KEY`).
pub fn host_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}
