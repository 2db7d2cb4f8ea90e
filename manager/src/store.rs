//! The image store under ROOT.
//!
//! ```text
//! ROOT/rbox.db                 SQLite (WAL): images, refs, layers, image_layers, containers
//! ROOT/blobs/sha256/<hex>      content-addressed blobs (manifests, configs, layer tars)
//! ROOT/snapshots/<hex>/fs      one unpacked layer, <hex> = its diff_id
//! ROOT/containers/<id>/        overlay upper and work dirs of a bundle
//! ```
//!
//! Blobs and snapshots are made under temp names in their own directory,
//! outside any lock, then renamed into place inside an `IMMEDIATE`
//! transaction: the database write lock also serializes every change to
//! the files, so two rbox processes never see a row without its files or
//! remove files another one has just referenced. Files are removed only
//! after the transaction that dropped their last reference has committed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::reference::Reference;

pub const DEFAULT_ROOT: &str = "/var/lib/rbox";
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("blob {path}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("{0} is ambiguous: it is the prefix of several image ids")]
    Ambiguous(String),
    #[error("blob {digest} of image {image} is missing from {path}")]
    MissingBlob {
        digest: String,
        image: String,
        path: PathBuf,
    },
    #[error("blob {path}: {source}")]
    BadJson {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    pub(crate) fn from_db(store: &Store, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: store.db_path.clone(),
            source,
        }
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other process or thread uses: `.tmp-<pid>-<nanos>-<n>`.
pub(crate) fn temp_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        ".tmp-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The hex part of `sha256:<hex>`.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// An image row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub manifest_digest: String,
    pub created: String,
    pub size: u64,
}

/// A reference row: `repo:tag` or `repo@digest` naming an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRow {
    pub name: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub image_id: String,
}

/// A layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub diff_id: String,
    pub blob_digest: String,
    pub size: u64,
}

pub struct Store {
    root: PathBuf,
    db_path: PathBuf,
    pub(crate) db: Connection,
}

impl Store {
    /// Open (and create on first use) the store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "snapshots", "containers"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
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
        db.execute_batch(SCHEMA).map_err(db_err)?;
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
        self.root.join("blobs/sha256").join(hex(digest))
    }

    pub fn snapshot_path(&self, diff_id: &str) -> PathBuf {
        self.root.join("snapshots").join(hex(diff_id))
    }

    /// The directory overlayfs uses as a lowerdir for this layer.
    pub fn snapshot_fs(&self, diff_id: &str) -> PathBuf {
        self.snapshot_path(diff_id).join("fs")
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
                source: io::Error::last_os_error(),
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

    /// A new blob writer: a temp file in blobs/sha256, hashed as written.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let path = self.root.join("blobs/sha256").join(temp_name());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let mut tmp = TempPath::new(path);
        let lock = file.try_clone().map_err(io_err("dup", tmp.path()))?;
        flock(&lock, false).map_err(io_err("lock", tmp.path()))?;
        tmp._lock = Some(lock.into());
        Ok(BlobWriter {
            tmp,
            file: io::BufWriter::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
            size: 0,
            unflushed: 0,
        })
    }

    /// Write `data` as a pending blob (a temp file until placed).
    pub fn pending_blob(&self, data: &[u8]) -> Result<PendingBlob> {
        let mut w = self.blob_writer()?;
        w.write_all(data).map_err(io_err("write", &w.path()))?;
        w.finish(None)
    }

    pub fn read_blob(&self, digest: &str, image: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.to_string(),
                    image: image.to_string(),
                    path: path.clone(),
                }
            } else {
                StoreError::Io {
                    op: "read",
                    path: path.clone(),
                    source: e,
                }
            }
        })
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        digest: &str,
        image: &str,
    ) -> Result<T> {
        let data = self.read_blob(digest, image)?;
        serde_json::from_slice(&data).map_err(|source| StoreError::BadJson {
            path: self.blob_path(digest),
            source,
        })
    }

    /// Resolve what the user typed: a reference (`busybox`, `app:1`,
    /// `repo@sha256:…`), a full image id (`sha256:…`) or an id prefix.
    pub fn resolve(&self, what: &str) -> Result<ImageRow> {
        let not_found = || StoreError::NoSuchImage(what.to_string());
        if let Some(h) = what.strip_prefix("sha256:") {
            return self.by_id_prefix(h, what)?.ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse(what) {
            if let Some(id) = self.ref_image(&r.to_string())? {
                return self.image(&id)?.ok_or_else(not_found);
            }
        }
        let is_hex = !what.is_empty() && what.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            if let Some(img) = self.by_id_prefix(&what.to_ascii_lowercase(), what)? {
                return Ok(img);
            }
        }
        Err(not_found())
    }

    fn by_id_prefix(&self, hex_prefix: &str, what: &str) -> Result<Option<ImageRow>> {
        let mut stmt = self
            .db
            .prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1 LIMIT 2")
            .map_err(self.db_err())?;
        let ids: Vec<String> = stmt
            .query_map(params![hex_prefix, hex_prefix.len()], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.db_err())?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => self.image(id),
            _ => Err(StoreError::Ambiguous(what.to_string())),
        }
    }

    pub fn ref_image(&self, name: &str) -> Result<Option<String>> {
        self.db
            .query_row("SELECT image_id FROM refs WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.db_err())
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        self.db
            .query_row(
                "SELECT id, manifest_digest, created, size FROM images WHERE id = ?1",
                [id],
                image_row,
            )
            .optional()
            .map_err(self.db_err())
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, manifest_digest, created, size FROM images ORDER BY created DESC, id",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([], image_row)
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The references of one image, tags first.
    pub fn refs(&self, image_id: &str) -> Result<Vec<RefRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT name, repository, tag, digest, image_id FROM refs WHERE image_id = ?1
                 ORDER BY tag IS NULL, name",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| {
                Ok(RefRow {
                    name: r.get(0)?,
                    repository: r.get(1)?,
                    tag: r.get(2)?,
                    digest: r.get(3)?,
                    image_id: r.get(4)?,
                })
            })
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The layers of one image, bottom first.
    pub fn layers(&self, image_id: &str) -> Result<Vec<LayerRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT il.diff_id, il.blob_digest, l.size FROM image_layers il
                 JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id = ?1 ORDER BY il.idx",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| {
                Ok(LayerRow {
                    diff_id: r.get(0)?,
                    blob_digest: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The unpacked size of a layer the store has.
    pub fn layer_size(&self, diff_id: &str) -> Result<Option<u64>> {
        self.db
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|s| s as u64))
            .map_err(self.db_err())
    }

    pub fn has_layer(&self, diff_id: &str) -> Result<bool> {
        self.db
            .query_row("SELECT 1 FROM layers WHERE diff_id = ?1", [diff_id], |_| {
                Ok(())
            })
            .optional()
            .map(|o| o.is_some())
            .map_err(self.db_err())
    }

    /// Containers (bundles) made from an image.
    pub fn containers_of(&self, image_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare("SELECT id FROM containers WHERE image_id = ?1 ORDER BY id")
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }
}

fn image_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        manifest_digest: r.get(1)?,
        created: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
    })
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- sha256 of the config blob
    manifest_digest TEXT NOT NULL,
    created TEXT NOT NULL,            -- the config's created, RFC 3339
    size INTEGER NOT NULL             -- unpacked bytes of all layers
);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,            -- docker.io/library/busybox:latest or repo@sha256:…
    repository TEXT NOT NULL,
    tag TEXT,
    digest TEXT,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,         -- sha256 of the uncompressed tar; snapshots/<hex>
    size INTEGER NOT NULL,            -- unpacked bytes
    refcount INTEGER NOT NULL         -- images using the layer
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id),
    idx INTEGER NOT NULL,             -- 0 = bottom
    diff_id TEXT NOT NULL REFERENCES layers(diff_id),
    blob_digest TEXT NOT NULL,        -- the (compressed) layer blob of the manifest
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob_digest);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    bundle TEXT NOT NULL,
    created TEXT NOT NULL
);
";

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

/// A temp path (`.tmp-…` in blobs/sha256 or snapshots), removed on drop
/// unless kept. While it lives it holds an flock, which tells
/// `Store::sweep_orphans` in other rbox processes that it is in use.
#[derive(Debug)]
pub struct TempPath {
    path: Option<PathBuf>,
    _lock: Option<OwnedFd>,
}

impl TempPath {
    /// Take charge of `p` without locking it (it is removed on drop).
    pub fn new(p: PathBuf) -> TempPath {
        TempPath {
            path: Some(p),
            _lock: None,
        }
    }

    /// Take charge of the existing `p` and lock it.
    pub fn locked(p: PathBuf) -> Result<TempPath> {
        let mut t = TempPath::new(p);
        let f = open_nofollow(t.path()).map_err(io_err("open", t.path()))?;
        flock(&f, false).map_err(io_err("lock", t.path()))?;
        t._lock = Some(f.into());
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Keep the path: it was renamed away or is now owned by the store.
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if let Err(e) = remove_any(&p) {
                eprintln!("rbox: warning: remove {}: {e}", p.display());
            }
        }
    }
}

/// Remove a file or a directory tree; gone already is fine.
fn remove_any(p: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn open_nofollow(p: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// flock(LOCK_EX), or LOCK_EX|LOCK_NB with `try_only`.
pub(crate) fn flock(f: &impl AsRawFd, try_only: bool) -> io::Result<()> {
    let op = if try_only {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    // SAFETY: flock on a descriptor we hold; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `FS_TOPDIR_FL` (`chattr +T`): the top of unrelated directory trees.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Mark `dir` as the top of unrelated directory trees (ext2/3/4's
/// `chattr +T`): the Orlov allocator then puts each snapshot in a block
/// group of its own instead of next to its siblings. Without it, on ext4
/// without a journal, a new snapshot's inodes are allocated in the groups
/// of the snapshots removed in the last minutes, and every inode
/// allocation scans past each recently deleted inode there (1 to 2 ms a
/// file after a `rmi` of a large image). Best effort: other filesystems
/// have no such flag, and nothing depends on it.
fn mark_topdir(dir: &Path) {
    let Ok(f) = open_nofollow(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the live `flags`.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return;
    }
    if flags & FS_TOPDIR_FL != 0 {
        return;
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the live `flags`.
    let _ = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
}

/// Temp paths younger than this are never swept: their owner may not have
/// locked them yet.
const ORPHAN_AGE: Duration = Duration::from_secs(10);

impl Store {
    /// `sweep_orphans` under the write lock of its own: what `pull` does
    /// first (a pull that fails never reaches the sweep of a commit) and
    /// `system prune`.
    pub fn sweep(&self) -> Result<()> {
        let lock = self.lock()?;
        self.sweep_orphans();
        lock.commit()
    }

    /// Remove the temp blobs and snapshots of rbox processes that died.
    ///
    /// Every `.tmp-*` is flock'ed by the process that made it for as long
    /// as it lives (`TempPath`); the kernel drops the lock when that process
    /// dies, however it dies (kill -9 too). So a temp path is an orphan
    /// when nobody holds its lock and it is older than `ORPHAN_AGE` (its
    /// maker may not have locked it yet: create, then lock). A concurrent
    /// pull's files are locked and stay. Call under the write lock (`rmi`
    /// renames the files it removes to temp names and locks them under
    /// it); failures only warn.
    pub fn sweep_orphans(&self) {
        for dir in ["blobs/sha256", "snapshots"] {
            let Ok(rd) = fs::read_dir(self.root.join(dir)) else {
                continue;
            };
            for e in rd.flatten() {
                if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                    continue;
                }
                let p = e.path();
                let old = fs::symlink_metadata(&p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ORPHAN_AGE);
                if !old {
                    continue;
                }
                let Ok(f) = open_nofollow(&p) else { continue };
                if flock(&f, true).is_err() {
                    continue; // a live rbox is using it
                }
                if let Err(e) = remove_any(&p) {
                    eprintln!("rbox: warning: remove orphan {}: {e}", p.display());
                }
            }
        }
    }
}

/// A blob being written: hashed and counted on the way to its temp file.
pub struct BlobWriter {
    tmp: TempPath,
    file: io::BufWriter<File>,
    hasher: Sha256,
    size: u64,
    /// Bytes written since the disk was last asked to write the file out.
    unflushed: u64,
}

/// A blob being written goes to disk by this much, as it comes in.
const WRITEBACK_EVERY: u64 = 8 << 20;

impl BlobWriter {
    pub fn path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Flush; with `expected`, the content must have that digest.
    pub fn finish(self, expected: Option<&str>) -> Result<PendingBlob> {
        let path = self.path();
        let file = self.file.into_inner().map_err(|e| StoreError::Io {
            op: "write",
            path: path.clone(),
            source: e.into_error(),
        })?;
        crate::unpack::start_writeback(&file);
        drop(file);
        let digest = format!("sha256:{:x}", self.hasher.finalize());
        if let Some(exp) = expected {
            if exp != digest {
                return Err(StoreError::DigestMismatch {
                    path,
                    expected: exp.to_string(),
                    actual: digest,
                });
            }
        }
        Ok(PendingBlob {
            tmp: self.tmp,
            digest,
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        self.unflushed += n as u64;
        if self.unflushed >= WRITEBACK_EVERY {
            self.unflushed = 0;
            crate::unpack::start_writeback(self.file.get_ref());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A complete, verified blob still under its temp name.
#[derive(Debug)]
pub struct PendingBlob {
    tmp: TempPath,
    pub digest: String,
    pub size: u64,
}

impl PendingBlob {
    /// Rename into blobs/sha256/<hex> (call under the write lock). Returns
    /// the final path when the blob is new, None when it was already there.
    pub fn place(self, dest: &Path) -> Result<Option<PathBuf>> {
        let dest = dest.to_path_buf();
        if dest.exists() {
            return Ok(None); // same content: the temp file goes on drop
        }
        fs::rename(self.tmp.path(), &dest).map_err(io_err("rename", &dest))?;
        self.tmp.keep();
        Ok(Some(dest))
    }
}

/// Files placed during a transaction, removed again if it does not commit.
#[derive(Default)]
pub struct Undo(Vec<PathBuf>);

impl Undo {
    pub fn push(&mut self, p: Option<PathBuf>) {
        self.0.extend(p);
    }

    pub fn commit(mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for p in self.0.drain(..) {
            drop(TempPath::new(p));
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
