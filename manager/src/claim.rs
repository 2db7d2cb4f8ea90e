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
//!
//! The CNI plugins rbox runs for a claimed container inherit the locked
//! descriptor ([`fd_of`]), and so do the IPAM plugins they run: a plugin
//! that outlives a killed rbox for a moment (the SIGKILL of its parent's
//! death not yet taken, an IPAM plugin, which gets no such signal) keeps
//! the claim held, and the reconciler waits for it ([`abandoned`]) instead
//! of running its DEL while the ADD still makes things. The file names its
//! maker ([`Process`]), which tells a claim held by a live rbox from one
//! held only by what a dead one left running.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::ThreadId;

use crate::liveness::Process;
use crate::store::{temp_name, Store};

/// How long a reconciler waits for the plugins a dead rbox left running to
/// finish (each is killed with it; an IPAM plugin runs on for a moment).
const DEAD_OWNER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let mut file = File::create(&tmp)?;
    let owner = Process::this().map(|p| p.to_line()).unwrap_or_default();
    let placed = lock(&file, true)
        .and_then(|()| file.write_all(owner.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path(store, id)));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Claim {
        path: path(store, id),
        _file: file,
    })
}

/// The claims this process holds until the work is done, each with the
/// thread that took it: in `rbox serve` several requests work at once, and
/// one request's claim must not pass for another's (a second `rm` of the
/// same container would skip the claim and run beside the first, a `start`
/// would release a `rm`'s claim). A thread holds, checks and releases its
/// own claims; [`fd_of`] finds any thread's (the CNI thread of a start
/// passes its container's claim to the plugins).
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

struct Held {
    id: String,
    thread: ThreadId,
    claim: Claim,
}

fn held_claims() -> std::sync::MutexGuard<'static, Vec<Held>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keep a claim (for this thread) until [`release`].
pub fn hold(id: &str, claim: Claim) {
    held_claims().push(Held {
        id: id.to_string(),
        thread: std::thread::current().id(),
        claim,
    });
}

/// A claim kept (as by [`hold`]) until the guard is dropped.
pub struct Scoped(String);

impl Drop for Scoped {
    fn drop(&mut self) {
        release(&self.0);
    }
}

/// Keep a claim until the returned guard is dropped.
pub fn hold_scoped(id: &str, claim: Claim) -> Scoped {
    hold(id, claim);
    Scoped(id.to_string())
}

/// The locked descriptor of a claim this process holds on `id` (any
/// thread's), for a plugin working on the container to inherit (it stays
/// open, close-on-exec, in this process until the claim is released).
pub fn fd_of(id: &str) -> Option<RawFd> {
    held_claims()
        .iter()
        .find(|h| h.id == id)
        .map(|h| h.claim._file.as_raw_fd())
}

/// Release this thread's claim on `id`, if it holds one.
pub fn release(id: &str) {
    let me = std::thread::current().id();
    held_claims().retain(|h| h.id != id || h.thread != me);
}

/// Whether this thread holds a claim on `id`.
pub fn held(id: &str) -> bool {
    let me = std::thread::current().id();
    held_claims().iter().any(|h| h.id == id && h.thread == me)
}

/// For a claim found locked: if the rbox that made it is dead, what it left
/// running (its plugins) holds the lock; wait until they are done (true:
/// locked by us now). A live owner, or an owner not named: false at once.
fn await_dead_owner(file: &File) -> bool {
    let owner = fs::read_to_string(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()
        .and_then(|s| Process::parse(&s));
    match owner {
        Some(owner) if !owner.alive() => {}
        _ => return false,
    }
    let begin = std::time::Instant::now();
    while begin.elapsed() < DEAD_OWNER_WAIT {
        std::thread::sleep(std::time::Duration::from_millis(5));
        if lock(file, false).is_ok() {
            return true;
        }
    }
    false
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
        if lock(&file, false).is_err() && !await_dead_owner(&file) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_the_holding_threads_own() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = "claim-test-threads";
        hold(id, take(&store, id).unwrap());
        assert!(held(id));
        std::thread::scope(|s| {
            s.spawn(|| {
                // another request of `rbox serve`: not its claim to skip or drop
                assert!(!held(id));
                release(id);
                // the plugins of a start still inherit it
                assert!(fd_of(id).is_some());
            })
            .join()
            .unwrap()
        });
        assert!(held(id) && exists(&store, id));
        release(id);
        assert!(!held(id) && !exists(&store, id) && fd_of(id).is_none());
    }
}
