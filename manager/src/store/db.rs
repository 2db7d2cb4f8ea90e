//! The store's handle: the root directory and its open database.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::Connection;

use super::error::{io_err, Result, StoreError};
use super::files::{mark_topdir, open_nofollow};
use super::schema;

pub const DEFAULT_ROOT: &str = "/var/lib/rbox";

/// Where volume `name` of the store at `root` keeps its data:
/// ROOT/volumes/NAME/_data, like Docker's.
pub fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Store {
    root: PathBuf,
    db_path: PathBuf,
    pub(super) db: Connection,
}

impl Store {
    /// Open (and create on first use) the store under `root`; its tables
    /// are made or brought up to date (schema.rs).
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "snapshots", "containers"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        mark_topdir(&root.join("snapshots"));
        let db_path = root.join("rbox.db");
        let db_err = |source| StoreError::Db {
            path: db_path.clone(),
            source,
        };
        let db = Connection::open(&db_path).map_err(db_err)?;
        db.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        schema::migrate(&db).map_err(db_err)?;
        Ok(Store {
            root: root.to_path_buf(),
            db_path,
            db,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn db_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(super::hex(digest))
    }

    pub fn snapshot_path(&self, diff_id: &str) -> PathBuf {
        self.root.join("snapshots").join(super::hex(diff_id))
    }

    /// The directory overlayfs uses as a lowerdir for this layer.
    pub fn snapshot_fs(&self, diff_id: &str) -> PathBuf {
        self.snapshot_path(diff_id).join("fs")
    }

    /// The snapshot dirs of layers (bottom first) as overlayfs's `lowerdir`
    /// takes them: top first, and a layer in the list twice (an image with
    /// two empty layers, BuildKit's `RUN true` and `WORKDIR /tmp`) only at
    /// its topmost place. overlayfs refuses a directory given twice (ELOOP),
    /// and a layer again on top leaves nothing of its lower copy visible.
    pub fn lower_dirs<'a>(
        &self,
        diff_ids: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Vec<PathBuf> {
        let mut seen = std::collections::HashSet::new();
        diff_ids
            .rev()
            .filter(|d| seen.insert(*d))
            .map(|d| self.snapshot_fs(d))
            .collect()
    }

    /// A write transaction (`BEGIN IMMEDIATE`): takes the database write
    /// lock now, waiting up to the busy timeout for another rbox, so the
    /// store's files may change under it. Rolled back on drop unless
    /// committed.
    pub fn lock(&self) -> Result<WriteLock<'_>> {
        self.db
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.db_err())?;
        Ok(WriteLock {
            store: self,
            done: false,
        })
    }

    /// Flush everything written to the store's filesystem to disk (one
    /// syncfs): what unpacks and blob writes left in the page cache.
    pub fn sync(&self) -> Result<()> {
        let f = open_nofollow(&self.root).map_err(io_err("open", &self.root))?;
        // SAFETY: syncfs on a descriptor we own; no memory is passed.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(StoreError::Io {
                op: "sync",
                path: self.root.clone(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// While the returned guard lives, a thread flushes the store's
    /// filesystem again and again (syncfs, then a short pause), so that
    /// the one `sync` that makes an image durable finds the data and the
    /// inode tables of its layers mostly written. Best effort.
    pub fn flush_in_background(&self) -> Flusher {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dir = open_nofollow(&self.root).ok();
        let thread = dir.map(|dir| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: syncfs on a descriptor the thread owns.
                    unsafe { libc::syncfs(dir.as_raw_fd()) };
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        });
        Flusher { stop, thread }
    }
}

/// An open write transaction.
pub struct WriteLock<'a> {
    store: &'a Store,
    done: bool,
}

impl WriteLock<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.store
            .db
            .execute_batch("COMMIT")
            .map_err(self.store.db_err())
    }
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.store.db.execute_batch("ROLLBACK");
        }
    }
}

/// The background flush of `Store::flush_in_background`; stops on drop.
pub struct Flusher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_dirs_are_top_first_each_at_its_topmost_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ids = ["sha256:aa", "sha256:bb", "sha256:aa", "sha256:cc"];
        let want: Vec<PathBuf> = ["sha256:cc", "sha256:aa", "sha256:bb"]
            .iter()
            .map(|d| store.snapshot_fs(d))
            .collect();
        assert_eq!(store.lower_dirs(ids.into_iter()), want);
    }
}
