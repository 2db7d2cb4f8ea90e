//! Claims on containers being made or removed: `ROOT/containers/ID.claim`,
//! flock'ed by the rbox process at work for as long as the container is
//! half-made (from the bundle to a started shim) or half-removed. A claim
//! file nobody holds locked means its rbox died (`kill -9`) half-way: the
//! next rbox that looks ([`abandoned`]) finishes the job.
//!
//! A claim is made as a locked temp file renamed into place, so it is never
//! seen unlocked while its maker lives; the maker unlinks it before it
//! closes it, and a reconciler checks that the file it locked is still the
//! one at the path.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::store::{temp_name, Store};

const SUFFIX: &str = ".claim";

/// A held claim; dropped, it is released (unlinked, then unlocked).
pub struct Claim {
    path: PathBuf,
    _file: File,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

fn path(store: &Store, id: &str) -> PathBuf {
    dir(store).join(format!("{id}{SUFFIX}"))
}

/// flock(LOCK_EX) on `f`, waiting for it or not.
pub(crate) fn lock(f: &File, wait: bool) -> std::io::Result<()> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor we hold; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether some rbox claims container `id` (at work on it, or killed
/// half-way: [`abandoned`] then finds it).
pub fn exists(store: &Store, id: &str) -> bool {
    path(store, id).exists()
}

/// Claim container `id` for this process.
pub fn take(store: &Store, id: &str) -> std::io::Result<Claim> {
    let tmp = dir(store).join(format!("{}{SUFFIX}", temp_name()));
    let file = File::create(&tmp)?;
    let placed = lock(&file, true).and_then(|()| fs::rename(&tmp, path(store, id)));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Claim {
        path: path(store, id),
        _file: file,
    })
}

/// The claims this process holds until the work is done.
static HELD: Mutex<Vec<(String, Claim)>> = Mutex::new(Vec::new());

/// Keep a claim until [`release`].
pub fn hold(id: &str, claim: Claim) {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id.to_string(), claim));
}

/// Release this process's claim on `id`, if it holds one.
pub fn release(id: &str) {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| i != id);
}

/// Whether this process holds a claim on `id`.
pub fn held(id: &str) -> bool {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|(i, _)| i == id)
}

/// Claims whose rbox died: (container id, or None for a temp file that
/// never got its name, and the claim, now ours). The caller finishes the
/// work and drops the claim.
pub fn abandoned(store: &Store) -> Vec<(Option<String>, Claim)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir(store)) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(SUFFIX) else {
            continue;
        };
        let p = e.path();
        // a temp file is locked just after it is made: only an old one
        // is a leftover
        let young = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < std::time::Duration::from_secs(60));
        if stem.starts_with('.') && young {
            continue;
        }
        let Ok(file) = File::open(&p) else { continue };
        if lock(&file, false).is_err() {
            continue; // its rbox is at work
        }
        // still the file at that path (not one its owner just unlinked)
        let same = match (file.metadata(), fs::metadata(&p)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        let id = (!stem.starts_with('.')).then(|| stem.to_string());
        out.push((
            id,
            Claim {
                path: p,
                _file: file,
            },
        ));
    }
    out
}
