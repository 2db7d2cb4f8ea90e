//! RUN's mounts (`--mount=type=…`) and heredoc scripts as the container's
//! mounts: a cache is a directory of the store kept between builds, a
//! secret the file `--secret` names, bind mounts read the context.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::dockerfile::Mount;
use crate::build::path;
use crate::build::plan::{InlineFile, Origin, RunMount};
use crate::mounts::{MountSpec, Source};
use crate::rootfs::resolve_in_root;
use crate::store::Store;

use super::error::{ExecError, Result};

/// Where a build finds what RUN's mounts name.
pub struct MountInputs<'a> {
    /// the build context's directory
    pub context: &'a Path,
    /// `--secret id=…,src=…`
    pub secrets: &'a [(String, PathBuf)],
    /// a directory of this build for the heredoc scripts
    pub scratch: &'a Path,
}

/// The directory of the cache mount `id`: ROOT/build-cache/<sha256(id)>.
pub fn cache_dir(store: &Store, id: &str) -> PathBuf {
    let h = format!("{:x}", Sha256::digest(id.as_bytes()));
    store.root().join("build-cache").join(h)
}

fn spec(source: Source, target: &str, readonly: bool) -> MountSpec {
    MountSpec {
        source,
        target: PathBuf::from(target),
        readonly,
        propagation: None,
        anonymous: false,
        must_exist: true,
    }
}

/// The container mounts of a RUN's `--mount`s and heredoc scripts, and the
/// environment variables of `env=` secrets.
pub fn run_mounts(
    store: &Store,
    mounts: &[RunMount],
    inline: &[InlineFile],
    inputs: &MountInputs<'_>,
) -> Result<(Vec<MountSpec>, Vec<String>)> {
    let mut out = Vec::new();
    let mut env = Vec::new();
    for m in mounts {
        match &m.mount {
            Mount::Bind {
                target,
                source,
                read_only: _,
                ..
            } => {
                if m.origin != Origin::Context {
                    return Err(ExecError::Unsupported(
                        "RUN --mount=type=bind,from=… (a stage or image) is not supported yet",
                    ));
                }
                // writes to a bind mount are thrown away in BuildKit; the
                // context must never change: read-only here. Symlinks of
                // the context resolve inside it, never to the host.
                let rel = inside(Path::new("/"), source);
                let resolved = resolve_in_root(inputs.context, &rel)
                    .map_err(io("resolve", &inputs.context.join(source)))?;
                let host = inside(inputs.context, &resolved.to_string_lossy());
                out.push(spec(Source::Bind(host), target, true));
            }
            Mount::Cache {
                target,
                id,
                mode,
                uid,
                gid,
                ..
            } => {
                let dir = cache_dir(store, id);
                if !dir.exists() {
                    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
                    let mode = mode.unwrap_or(0o755);
                    fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                        .map_err(io("chmod", &dir))?;
                    nix::unistd::chown(
                        &dir,
                        Some(nix::unistd::Uid::from_raw(uid.unwrap_or(0))),
                        Some(nix::unistd::Gid::from_raw(gid.unwrap_or(0))),
                    )
                    .map_err(|e| io("chown", &dir)(e.into()))?;
                }
                out.push(spec(Source::Bind(dir), target, false));
            }
            Mount::Tmpfs { target, size } => {
                out.push(spec(
                    Source::Tmpfs {
                        size: *size,
                        mode: None,
                    },
                    target,
                    false,
                ));
            }
            Mount::Secret {
                id,
                target,
                env: env_name,
                required,
                ..
            } => {
                let Some((_, src)) = inputs.secrets.iter().find(|(i, _)| i == id) else {
                    if *required {
                        return Err(ExecError::MissingSecret(id.clone()));
                    }
                    continue;
                };
                if let Some(name) = env_name {
                    let value = fs::read_to_string(src).map_err(io("read", src))?;
                    env.push(format!("{name}={}", value.trim_end_matches('\n')));
                }
                if target.is_some() || env_name.is_none() {
                    let t = target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{id}"));
                    out.push(spec(Source::Bind(src.clone()), &t, true));
                }
            }
            Mount::Ssh { .. } => {
                return Err(ExecError::Unsupported(
                    "RUN --mount=type=ssh is not supported yet",
                ))
            }
        }
    }
    for (i, f) in inline.iter().enumerate() {
        let p = inputs.scratch.join(format!("heredoc-{i}"));
        fs::write(&p, &f.content).map_err(io("write", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).map_err(io("chmod", &p))?;
        out.push(spec(Source::Bind(p), &f.path, true));
    }
    Ok((out, env))
}

/// `source` taken inside `root`, as BuildKit takes a bind source: `..`
/// stops at the root (Go's `path.Clean` of it made absolute).
fn inside(root: &Path, source: &str) -> PathBuf {
    let clean = path::clean(&format!("/{source}"));
    root.join(clean.trim_start_matches('/'))
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ExecError {
    let path = path.to_path_buf();
    move |source| ExecError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_stay_in_the_context() {
        let r = Path::new("/ctx");
        assert_eq!(inside(r, "a/../../../etc"), Path::new("/ctx/etc"));
        assert_eq!(inside(r, "/src/./x"), Path::new("/ctx/src/x"));
        assert_eq!(inside(r, "."), Path::new("/ctx"));
    }
}
