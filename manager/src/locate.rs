//! The programs rbox runs containers with (the shim, the runtime), found
//! as `supervisor::shim_bin` and [`runtime_bin`] look for them:
//! the path in an environment variable, else next to rbox, else in PATH.
//! A missing one is an error that names every place looked at and how to
//! point rbox at it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} not found: looked for {places}; install it next to rbox (make install) or set {env} to its path")]
pub struct NotInstalled {
    pub name: &'static str,
    pub env: &'static str,
    /// what was tried, in order
    pub places: String,
}

/// The runtime binary: `$RBOX_RUNTIME`, else `rrun` next to rbox, else in PATH.
pub fn runtime_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RBOX_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join("rrun");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("rrun")
}

/// rbox-init was not found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--init: rbox-init not found next to rbox, next to the runtime, nor in PATH (or set RBOX_INIT)"
)]
pub struct NoInit;

/// `--init`'s binary: `$RBOX_INIT`, else `rbox-init` next to rbox, next to
/// the runtime, or in PATH (an absolute path: it is bind-mounted).
pub fn init_bin() -> Result<PathBuf, NoInit> {
    if let Some(p) = std::env::var_os("RBOX_INIT") {
        return Ok(PathBuf::from(p));
    }
    let name = "rbox-init";
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let runtime_dir = std::fs::canonicalize(runtime_bin())
        .ok()
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(runtime_bin()))
                    .find(|p| p.is_file())
            })
        })
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    exe_dir
        .into_iter()
        .chain(runtime_dir)
        .chain(path_dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(NoInit)
}

/// `name`, from `$env` (which must then name a file), next to the running
/// rbox, or in `PATH`.
pub fn find(name: &'static str, env: &'static str) -> Result<PathBuf, NotInstalled> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    find_in(
        name,
        env,
        std::env::var_os(env).map(PathBuf::from),
        exe_dir,
        std::env::var_os("PATH"),
    )
}

fn find_in(
    name: &'static str,
    env: &'static str,
    env_value: Option<PathBuf>,
    exe_dir: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf, NotInstalled> {
    let in_path = |file: &Path| {
        path.as_ref().and_then(|p| {
            std::env::split_paths(p)
                .map(|d| d.join(file))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = env_value {
        // a bare name (RBOX_RUNTIME=runc) is looked up in PATH
        let found = if p.components().count() == 1 && !p.is_absolute() {
            in_path(&p)
        } else {
            p.is_file().then(|| p.clone())
        };
        return found.ok_or_else(|| NotInstalled {
            name,
            env,
            places: format!("${env}={} (no such file)", p.display()),
        });
    }
    let mut places = vec![format!("${env} (not set)")];
    if let Some(dir) = exe_dir {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
        places.push(format!("{} (next to rbox)", p.display()));
    }
    if let Some(p) = in_path(Path::new(name)) {
        return Ok(p);
    }
    places.push(format!(
        "PATH ({})",
        path.map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "not set".into())
    ));
    Err(NotInstalled {
        name,
        env,
        places: places.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_every_place() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_in(
            "shim-x",
            "RBOX_SHIM",
            None,
            Some(dir.path().into()),
            Some("/nonexistent:/nope".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("shim-x not found"), "{e}");
        for want in [
            "$RBOX_SHIM (not set)",
            &format!("{}/shim-x (next to rbox)", dir.path().display()),
            "PATH (/nonexistent:/nope)",
            "set RBOX_SHIM",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = find_in("x", "RBOX_SHIM", Some("/no/x".into()), None, None).unwrap_err();
        assert_eq!(e.places, "$RBOX_SHIM=/no/x (no such file)");
    }

    #[test]
    fn found_next_to_rbox_then_in_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("prog"), "").unwrap();
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        let found = find_in("prog", "E", None, Some(a.path().into()), Some(path.clone()));
        assert_eq!(found, Ok(b.path().join("prog")));
        std::fs::write(a.path().join("prog"), "").unwrap();
        let found = find_in("prog", "E", None, Some(a.path().into()), Some(path.clone()));
        assert_eq!(found, Ok(a.path().join("prog")));
        // a bare name in the variable: from PATH
        let found = find_in("x", "E", Some("prog".into()), None, Some(path));
        assert_eq!(found, Ok(a.path().join("prog")));
    }
}
