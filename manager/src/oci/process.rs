//! What `run` and `exec` change of the image's process.

use std::path::{Path, PathBuf};

use oci_spec::runtime::UserBuilder;

use crate::bundle;
use crate::container::error::{ContainerError, Result};
use crate::user;

/// What `run` and `exec` may change of a process: `-e` (KEY=VALUE, or
/// KEY taken from rbox's environment), `-t` (and TERM), `-w`, `-u`
/// (names resolved in the container's /etc/passwd and /etc/group).
/// `group_add`: `--group-add`, applied to `-u`'s user, else to the
/// process's own.
pub fn override_process(
    process: &mut oci_spec::runtime::Process,
    vars: &[String],
    tty: bool,
    workdir: Option<&str>,
    usr: Option<&str>,
    group_add: &[String],
    rootfs: &Path,
) -> Result<()> {
    let mut env = process.env().clone().unwrap_or_default();
    for e in vars {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    process.set_env(Some(env));
    process.set_terminal(Some(tty));
    if let Some(w) = workdir {
        if !w.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "-w {w:?}: not an absolute path"
            )));
        }
        process.set_cwd(PathBuf::from(w));
    }
    if usr.is_none() && group_add.is_empty() {
        return Ok(());
    }
    // HOME is left to the runtime, which takes it from the container's
    // /etc/passwd for the process's uid (runc's rule, which Docker relies on)
    let group = bundle::read_in_root(rootfs, "etc/group")?;
    let mut eu = match usr {
        Some(u) => {
            let passwd = bundle::read_in_root(rootfs, "etc/passwd")?;
            user::resolve(u, passwd.as_deref(), group.as_deref())
                .map_err(|e| ContainerError::Invalid(format!("-u {u:?}: {e}")))?
        }
        None => user::ExecUser {
            uid: process.user().uid(),
            gid: process.user().gid(),
            additional_gids: process.user().additional_gids().clone().unwrap_or_default(),
            home: String::new(),
        },
    };
    eu.add_groups(group_add, group.as_deref())
        .map_err(|e| ContainerError::Invalid(e.to_string()))?;
    process.set_user(
        UserBuilder::default()
            .uid(eu.uid)
            .gid(eu.gid)
            .additional_gids(eu.additional_gids)
            .build()
            .map_err(|e| ContainerError::Invalid(format!("process.user: {e}")))?,
    );
    Ok(())
}
