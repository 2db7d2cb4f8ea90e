//! RUN: the command in a container made from the step's parent image,
//! through the same shim and rrun as `rbox run`; what the command changed
//! in the container's writable layer becomes the step's layer.
//!
//! The runtime makes the mount points the container needs (/etc/hosts,
//! /etc/resolv.conf, /proc, a RUN --mount target…) where the image has
//! none: those stubs are taken out of the layer again, as BuildKit does,
//! and so is a parent directory copied up only to hold them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::bundle;
use crate::container::{self, NetMode, Output, RunSpec};
use crate::image::NewLayer;
use crate::logs;
use crate::mounts::MountSpec;
use crate::names::random_hex;
use crate::rootfs::resolve_in_root;
use crate::store::Store;
use crate::supervisor;

use super::error::{ExecError, Result};
use super::layer::{commit_upper, get_xattr};
use super::running::Running;

/// The label of a build's containers: the pid of the rbox that runs the
/// build (a later build removes those of a build that died).
pub const BUILD_LABEL: &str = "rbox.build.pid";

/// How many lines of a failed RUN's output its error repeats.
const TAIL_LINES: usize = 10;

/// A RUN step, its values expanded and its command made (the stage's
/// SHELL applied to a shell form).
#[derive(Debug, Clone)]
pub struct RunStep {
    /// the image whose layers and config the command runs on
    pub parent: String,
    pub argv: Vec<String>,
    /// the stage's ENV and the build args in scope
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub network: NetMode,
    pub mounts: Vec<MountSpec>,
    /// `RUN --security=insecure`
    pub privileged: bool,
}

/// Runs `step` and returns its layer (an empty one when it changed
/// nothing: BuildKit's RUN always makes a layer, `docker history` shows
/// it, and the image has it in its rootfs). On
/// error (the command's exit status too) the container is removed and
/// nothing of the step is left. The container is in `running` while it
/// runs (a stopping build kills it), and its output goes to `output`.
pub fn run(
    store: &Store,
    step: &RunStep,
    epoch: Option<u64>,
    running: &Running,
    output: Output,
) -> Result<Option<NewLayer>> {
    let Some((program, args)) = step.argv.split_first() else {
        return Err(ExecError::EmptyCommand);
    };
    let mut labels = BTreeMap::new();
    labels.insert(BUILD_LABEL.to_string(), std::process::id().to_string());
    let rs = RunSpec {
        image: step.parent.clone(),
        name: Some(format!("rbox-build-{}", random_hex(6))),
        entrypoint: Some(program.clone()),
        cmd: args.to_vec(),
        env: step.env.clone(),
        workdir: step.workdir.clone(),
        user: step.user.clone(),
        net: Some(step.network.clone()),
        mounts: step.mounts.clone(),
        privileged: step.privileged,
        labels,
        ..Default::default()
    };
    let c = container::create(store, &rs)?;
    let remove = Remove { store, id: &c.id };
    let stubs = stubs_to_be(store, &c.id)?;
    let Some(entered) = running.enter(&c.id) else {
        return Err(ExecError::Stopped);
    };
    let code = container::run_attached_to(store, &c.id, false, output)?;
    drop(entered);
    if code != 0 {
        return Err(ExecError::RunFailed {
            argv: step.argv.clone(),
            code,
            tail: tail(store, &c.id),
        });
    }
    let upper = bundle::unmount_upper(store, &c.id)?;
    remove_stubs(&upper, &stubs)?;
    let layer = commit_upper(store, &upper, epoch)?;
    drop(remove);
    Ok(Some(layer))
}

/// Removes the build's container, whatever happened to the step.
struct Remove<'a> {
    store: &'a Store,
    id: &'a str,
}

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        if let Err(e) = container::remove(self.store, self.id, true) {
            eprintln!("rbox: warning: remove the build container {}: {e}", self.id);
        }
    }
}

/// A mount point the runtime will make: its topmost missing component
/// (relative to the root), and the mtime of the directory it goes in.
#[derive(Debug, Clone)]
struct Stub {
    rel: PathBuf,
    parent_mtime: Option<(i64, i64)>,
}

/// The mount points of the created (not started) container `id` that its
/// image does not have: the runtime makes them in the writable layer.
fn stubs_to_be(store: &Store, id: &str) -> Result<Vec<Stub>> {
    let Some(dir) = store.bundle_of(id)? else {
        return Ok(Vec::new());
    };
    let rootfs = dir.join("rootfs");
    let config = dir.join("config.json");
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&fs::read(&config).map_err(|source| ExecError::Io {
            op: "read",
            path: config.clone(),
            source,
        })?)
        .map_err(|e| ExecError::Io {
            op: "parse",
            path: config,
            source: e.into(),
        })?;
    let mut stubs = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let Ok(resolved) = resolve_in_root(&rootfs, m.destination()) else {
            continue;
        };
        // the first component of the resolved path that is missing
        let mut rel = PathBuf::new();
        for c in resolved.components() {
            if let Component::Normal(n) = c {
                rel.push(n);
                if fs::symlink_metadata(rootfs.join(&rel)).is_err() {
                    let parent = rootfs.join(&rel).parent().map(Path::to_path_buf);
                    let parent_mtime = parent
                        .and_then(|p| fs::symlink_metadata(p).ok())
                        .map(|m| (m.mtime(), m.mtime_nsec()));
                    if !stubs.iter().any(|s: &Stub| rel.starts_with(&s.rel)) {
                        stubs.push(Stub { rel, parent_mtime });
                    }
                    break;
                }
            }
        }
    }
    Ok(stubs)
}

/// Takes the mount-point stubs out of the upper dir (only when they are
/// still empty: a command may have written there before a mount covered
/// it) and gives their parent directories their mtimes back; a parent that
/// was copied up only to hold a stub goes too.
fn remove_stubs(upper: &Path, stubs: &[Stub]) -> Result<()> {
    for s in stubs {
        let p = upper.join(&s.rel);
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        if !is_hollow(&p, &md) {
            continue;
        }
        let gone = if md.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        gone.map_err(|source| ExecError::Io {
            op: "remove",
            path: p.clone(),
            source,
        })?;
        let Some(parent) = p.parent().filter(|d| *d != upper) else {
            continue;
        };
        if let Some((sec, nsec)) = s.parent_mtime {
            let t = nix::sys::time::TimeSpec::new(sec, nsec);
            let _ = nix::sys::stat::utimensat(
                None,
                parent,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
        if is_empty_dir(parent)? && !is_opaque(parent) {
            let _ = fs::remove_dir(parent);
        }
    }
    Ok(())
}

/// An empty file, or a directory of nothing but hollow entries: what the
/// runtime makes for a mount point (and its missing parents).
fn is_hollow(p: &Path, md: &fs::Metadata) -> bool {
    if md.is_file() {
        return md.len() == 0;
    }
    if !md.is_dir() {
        return false;
    }
    let Ok(rd) = fs::read_dir(p) else {
        return false;
    };
    rd.flatten().all(|e| {
        let p = e.path();
        fs::symlink_metadata(&p).is_ok_and(|m| is_hollow(&p, &m))
    })
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))
    else {
        return false;
    };
    get_xattr(&c, c"trusted.overlay.opaque").is_ok_and(|v| v == b"y")
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    let mut rd = fs::read_dir(p).map_err(|source| ExecError::Io {
        op: "read",
        path: p.to_path_buf(),
        source,
    })?;
    Ok(rd.next().is_none())
}

/// The last lines of container `id`'s output, for the error of its RUN.
fn tail(store: &Store, id: &str) -> Vec<String> {
    let (entries, _) = logs::read_all(&supervisor::log_path(store, id));
    let lines: Vec<String> = entries
        .iter()
        .flat_map(|e| e.log.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}
