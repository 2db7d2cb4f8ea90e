//! How a layer is written: one pass over its tar unpacks the snapshot,
//! hashes the diff_id and writes the blob (`unpack_blob` for a compressed
//! blob as it arrives, `Tee` and `GzipThread` for a plain tar that is
//! compressed here), into a temp snapshot (`temp_snapshot`) that
//! `commit_image` renames into place. The result is a `NewLayer`.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::unpack::{self, UnpackError};
use super::Result;
use crate::store::{io_err, temp_name, BlobWriter, PendingBlob, Store, StoreError, TempPath};

/// Copies everything read from `r` into `w` (the layer blob being written).
pub(crate) struct Tee<R, W> {
    pub(crate) r: R,
    pub(crate) w: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The gzip of an import on its own thread, so unpacking and compressing
/// use two cores. Bytes go over in 256 KiB chunks.
pub(crate) struct GzipThread {
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<io::Result<BlobWriter>>>,
}

const GZIP_CHUNK: usize = 256 << 10;

impl GzipThread {
    pub(crate) fn new(blob: BlobWriter) -> GzipThread {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || {
            let mut gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
            for chunk in rx {
                gz.write_all(&chunk)?;
            }
            gz.finish()
        });
        GzipThread {
            buf: Vec::with_capacity(GZIP_CHUNK),
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // the thread stopped: its error says why
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the gzip thread stopped"))),
        }
    }

    fn join(&mut self) -> io::Result<BlobWriter> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the gzip thread panicked")),
            None => Err(io::Error::other("the gzip thread stopped")),
        }
    }

    /// The compressed blob, once everything is written.
    pub(crate) fn finish(mut self) -> io::Result<BlobWriter> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Write for GzipThread {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= GZIP_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for GzipThread {
    fn drop(&mut self) {
        // on error paths: stop the thread; its blob temp file goes with it
        let _ = self.join();
    }
}

/// A layer ready to be committed: its snapshot is unpacked under a temp
/// name (or None when the store had the layer already).
pub struct NewLayer {
    pub diff_id: String,
    pub size: u64,
    pub blob_digest: String,
    pub blob: Option<PendingBlob>,
    pub snapshot: Option<TempPath>,
}

impl NewLayer {
    /// A layer unpacked into the temp snapshot `snapshot`, with its blob.
    pub(crate) fn unpacked(u: unpack::Unpacked, blob: PendingBlob, snapshot: TempPath) -> NewLayer {
        NewLayer {
            diff_id: u.diff_id,
            size: u.size,
            blob_digest: blob.digest.clone(),
            blob: Some(blob),
            snapshot: Some(snapshot),
        }
    }
}

/// One pass over a compressed layer blob as it arrives (a download or an
/// archive member): its bytes are written to `blob` (hashed, checked
/// against `blob_digest`) while they are decompressed and unpacked into
/// `fs_dir` (the diff_id checked against `diff_id`). What follows the tar
/// (padding) still goes to the blob, also after an unpack error. Both
/// outcomes are returned: content corrupted on the way also fails to
/// unpack, and the blob's digest says why. On error the caller drops the
/// temp snapshot; the blob's temp file is gone already.
pub(crate) fn unpack_blob(
    r: impl Read + Send,
    blob: BlobWriter,
    fs_dir: &Path,
    blob_digest: &str,
    diff_id: &str,
) -> (
    std::result::Result<unpack::Unpacked, UnpackError>,
    std::result::Result<PendingBlob, StoreError>,
) {
    let blob_path = blob.path();
    let mut tee = Tee { r, w: blob };
    // two stages on two cores: this thread unpacks (tar, diff_id, file
    // writes) while a scoped thread stores, hashes and decompresses the
    // blob (perf: one thread did 87% of a pull's work)
    let unpacked = std::thread::scope(|s| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(INFLATE_AHEAD);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let input = &mut tee;
        let inflater = s.spawn(move || -> io::Result<()> {
            let mut d = unpack::decompress(BufReader::with_capacity(1 << 16, input))?;
            loop {
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(INFLATE_CHUNK));
                buf.resize(INFLATE_CHUNK, 0);
                let n = read_some(&mut d, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if full_tx.send(buf).is_err() {
                    return Ok(()); // the unpacker stopped: its error says why
                }
            }
        });
        let inflated = ChunkReader {
            rx: full_rx,
            back: empty_tx,
            cur: Vec::new(),
            pos: 0,
        };
        let unpacked = unpack::unpack(inflated, fs_dir, Some(diff_id));
        match inflater.join() {
            Ok(Ok(())) => unpacked,
            // a decompression error explains the tar's early end
            Ok(Err(e)) => Err(UnpackError::Tar(e)),
            Err(_) => Err(UnpackError::Tar(io::Error::other(
                "the decompression thread panicked",
            ))),
        }
    });
    let blob = match io::copy(&mut tee, &mut io::sink()) {
        Ok(_) => tee.w.finish(Some(blob_digest)),
        Err(e) => Err(StoreError::Io {
            op: "write",
            path: blob_path,
            source: e,
        }),
    };
    (unpacked, blob)
}

/// Decompressed bytes go from the inflate thread to the unpacker in chunks
/// of this size, at most `INFLATE_AHEAD` chunks ahead.
const INFLATE_CHUNK: usize = 256 << 10;
const INFLATE_AHEAD: usize = 8;

/// Fill `buf` as far as the reader gives (fewer channel messages than one
/// per decoder call); 0 only at the end.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The unpacker's end of the inflate thread's channel; spent buffers go
/// back for reuse.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            let Ok(next) = self.rx.recv() else {
                return Ok(0);
            };
            let spent = std::mem::replace(&mut self.cur, next);
            let _ = self.back.send(spent);
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A fresh temp snapshot dir `snapshots/.tmp-…/` with an empty `fs/`.
pub fn temp_snapshot(store: &Store) -> Result<TempPath> {
    let path = store.root().join("snapshots").join(temp_name());
    fs::create_dir(&path).map_err(io_err("create", &path))?;
    let dir = match TempPath::locked(path.clone()) {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_dir(&path);
            return Err(e.into());
        }
    };
    let fs_dir = dir.path().join("fs");
    fs::create_dir(&fs_dir).map_err(io_err("create", &fs_dir))?;
    Ok(dir)
}
