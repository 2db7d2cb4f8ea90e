//! The store's files: blobs written under temp names and placed under the
//! write lock, temp paths held by their maker (an flock) and swept once
//! their maker is gone.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::db::Store;
use super::error::{io_err, Result, StoreError};
use super::files::{flock, open_nofollow, remove_any, temp_name};

impl Store {
    /// A new blob writer: a temp file in blobs/sha256, hashed as written.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let path = self.root().join("blobs/sha256").join(temp_name());
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
            let Ok(rd) = fs::read_dir(self.root().join(dir)) else {
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
        super::files::start_writeback(&file);
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
            super::files::start_writeback(self.file.get_ref());
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
