//! Image operations on the store: import, tag, rmi, and the views behind
//! `images`, `inspect` and `history`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Config, ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde_json::{json, Value};

use crate::reference::{Reference, ReferenceError};
use crate::store::{
    hex, io_err, temp_name, BlobWriter, ImageRow, NewImage, PendingBlob, Store, StoreError,
    TempPath, Undo,
};
use crate::unpack::{self, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("import {path}: {source}")]
    Unpack { path: PathBuf, source: UnpackError },
    #[error("--change {change:?}: {why}")]
    Change { change: String, why: &'static str },
    #[error("image config: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error("refusing to create a tag with a digest reference: {0}")]
    TagWithDigest(String),
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories(String),
    #[error("conflict: unable to delete {image} - image is used by container {container}")]
    InUse { image: String, container: String },
    #[error("layer {0} was removed while the image was being stored; try again")]
    LayerGone(String),
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// The short id `docker images` shows: 12 hex digits.
pub fn short_id(id: &str) -> &str {
    let h = hex(id);
    &h[..h.len().min(12)]
}

/// The OCI architecture name of this host.
pub fn host_arch() -> Arch {
    Arch::from(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    })
}

/// Apply Docker's `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR,
/// USER, EXPOSE, LABEL, VOLUME) to a config.
pub fn apply_changes(cfg: &mut Config, changes: &[String]) -> Result<()> {
    for change in changes {
        let bad = |why| ImageError::Change {
            change: change.clone(),
            why,
        };
        let (instr, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected INSTRUCTION ARGUMENTS"))?;
        let rest = rest.trim();
        let words = || -> Result<Vec<String>> {
            if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))
            } else {
                Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.set_cmd(Some(words()?));
            }
            "ENTRYPOINT" => {
                cfg.set_entrypoint(Some(words()?));
            }
            "WORKDIR" => {
                if !rest.starts_with('/') {
                    return Err(bad("WORKDIR must be an absolute path"));
                }
                cfg.set_working_dir(Some(rest.to_string()));
            }
            "USER" => {
                cfg.set_user(Some(rest.to_string()));
            }
            "EXPOSE" => {
                let mut ports = cfg.exposed_ports().clone().unwrap_or_default();
                for p in rest.split_whitespace() {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp") {
                        return Err(bad("EXPOSE needs PORT[/tcp|udp]"));
                    }
                    let p = format!("{num}/{proto}");
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
                cfg.set_exposed_ports(Some(ports));
            }
            "VOLUME" => {
                let paths: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))?
                } else {
                    rest.split_whitespace().map(String::from).collect()
                };
                if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/') || p == "/") {
                    return Err(bad("VOLUME needs absolute paths other than /"));
                }
                let mut vols = cfg.volumes().clone().unwrap_or_default();
                for p in paths {
                    if !vols.contains(&p) {
                        vols.push(p);
                    }
                }
                cfg.set_volumes(Some(vols));
            }
            "ENV" => {
                let (k, v) = match rest.split_once('=') {
                    Some((k, v)) if !k.contains(char::is_whitespace) => (k, v),
                    _ => rest
                        .split_once(char::is_whitespace)
                        .map(|(k, v)| (k, v.trim()))
                        .ok_or_else(|| bad("ENV needs KEY=VALUE"))?,
                };
                if k.is_empty() {
                    return Err(bad("ENV needs KEY=VALUE"));
                }
                let mut env = cfg.env().clone().unwrap_or_default();
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) != k);
                env.push(format!("{k}={v}"));
                cfg.set_env(Some(env));
            }
            "LABEL" => {
                let mut labels = cfg.labels().clone().unwrap_or_default();
                for pair in rest.split_whitespace() {
                    let (k, v) = pair
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| bad("LABEL needs KEY=VALUE pairs"))?;
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    labels.insert(k.to_string(), v.to_string());
                }
                cfg.set_labels(Some(labels));
            }
            _ => {
                return Err(bad(
                    "supported instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, VOLUME, WORKDIR, USER",
                ))
            }
        }
    }
    Ok(())
}

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
pub struct GzipThread {
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<io::Result<BlobWriter>>>,
}

const GZIP_CHUNK: usize = 256 << 10;

impl GzipThread {
    pub fn new(blob: BlobWriter) -> GzipThread {
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
    pub fn finish(mut self) -> io::Result<BlobWriter> {
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

/// `rbox import`: a rootfs tarball (plain, gzip or zstd) becomes a
/// one-layer image. One pass over the input unpacks the snapshot, hashes
/// the diff_id and writes the gzip layer blob. Returns the image id.
pub fn import(
    store: &Store,
    tarball: &Path,
    reference: Option<&Reference>,
    changes: &[String],
) -> Result<String> {
    let mut cfg = ConfigBuilder::default().build()?;
    apply_changes(&mut cfg, changes)?;
    let unpack_err = |source| ImageError::Unpack {
        path: tarball.to_path_buf(),
        source,
    };
    let file = File::open(tarball).map_err(io_err("open", tarball))?;
    let input = unpack::decompress(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| unpack_err(UnpackError::Tar(e)))?;
    let blob = store.blob_writer()?;
    let blob_path = blob.path();
    let mut tee = Tee {
        r: input,
        w: GzipThread::new(blob),
    };
    let snapshot = temp_snapshot(store)?;
    let unpacked =
        unpack::unpack(&mut tee, &snapshot.path().join("fs"), None).map_err(unpack_err)?;
    let blob = tee
        .w
        .finish()
        .map_err(io_err("write", &blob_path))?
        .finish(None)?;

    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("rbox import {}", tarball.display()))
        .comment(format!("Imported from {}", tarball.display()))
        .build()?;
    let config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(host_arch())
        .os(Os::Linux)
        .config(cfg)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![unpacked.diff_id.clone()])
                .build()?,
        )
        .history(vec![history])
        .build()?;
    let layer = NewLayer {
        diff_id: unpacked.diff_id,
        size: unpacked.size,
        blob_digest: blob.digest.clone(),
        blob: Some(blob),
        snapshot: Some(snapshot),
    };
    let refs: Vec<Reference> = reference.into_iter().cloned().collect();
    let config_bytes = serde_json::to_vec(&config).map_err(|e| StoreError::BadJson {
        path: store.root().to_path_buf(),
        source: e,
    })?;
    commit_image(
        store,
        config_bytes,
        &config,
        MediaType::ImageLayerGzip,
        vec![layer],
        &refs,
        None,
    )
}

/// The media type a manifest's layers are recorded with: the first
/// layer's (gzip when there is none).
pub fn layer_media_type(manifest: &oci_client::manifest::OciImageManifest) -> MediaType {
    manifest
        .layers
        .first()
        .map(|l| MediaType::from(l.media_type.as_str()))
        .unwrap_or(MediaType::ImageLayerGzip)
}

/// Write the config and manifest blobs and record an image whose layers
/// are unpacked (or already in the store), all under one write lock.
/// `config_bytes` is `config` as stored (the image id is its digest);
/// `manifest` is the registry's manifest bytes (pull), None makes an OCI
/// manifest. Returns the image id.
pub fn commit_image(
    store: &Store,
    config_bytes: Vec<u8>,
    config: &ImageConfiguration,
    layer_media_type: MediaType,
    layers: Vec<NewLayer>,
    refs: &[Reference],
    manifest: Option<Vec<u8>>,
) -> Result<String> {
    let config_blob = store.pending_blob(&config_bytes)?;
    let image_id = config_blob.digest.clone();
    let manifest_bytes = match manifest {
        Some(m) => m,
        None => {
            let m: ImageManifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(
                    DescriptorBuilder::default()
                        .media_type(MediaType::ImageConfig)
                        .digest(
                            image_id
                                .parse::<oci_spec::image::Digest>()
                                .map_err(ImageError::Oci)?,
                        )
                        .size(config_blob.size)
                        .build()?,
                )
                .layers(
                    layers
                        .iter()
                        .map(|l| {
                            DescriptorBuilder::default()
                                .media_type(layer_media_type.clone())
                                .digest(l.blob_digest.parse::<oci_spec::image::Digest>()?)
                                .size(l.blob.as_ref().map_or(0, |b| b.size))
                                .build()
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?,
                )
                .build()?;
            serde_json::to_vec(&m).map_err(|e| StoreError::BadJson {
                path: store.root().to_path_buf(),
                source: e,
            })?
        }
    };
    let manifest_blob = store.pending_blob(&manifest_bytes)?;
    let manifest_digest = manifest_blob.digest.clone();
    let size: u64 = layers.iter().map(|l| l.size).sum();
    let created = config.created().clone().unwrap_or_default();
    // the snapshots and blobs on disk before any of them has a name: one
    // sync for the whole image, none per file or layer
    store.sync()?;

    let lock = store.lock()?;
    store.sweep_orphans();
    let mut undo = Undo::default();
    if store.image(&image_id)?.is_none() {
        let mut seen = BTreeSet::new();
        for l in &layers {
            if !seen.insert(l.diff_id.clone()) {
                continue;
            }
            if store.has_layer(&l.diff_id)? {
                store.add_layer_user(&l.diff_id)?;
                continue;
            }
            let Some(tmp) = &l.snapshot else {
                return Err(ImageError::LayerGone(l.diff_id.clone()));
            };
            let dest = store.snapshot_path(&l.diff_id);
            if dest.exists() {
                // left by a crashed rmi: no row names it
                fs::remove_dir_all(&dest).map_err(io_err("remove stale snapshot", &dest))?;
            }
            fs::rename(tmp.path(), &dest).map_err(io_err("rename", &dest))?;
            undo.push(Some(dest));
            store.insert_layer(&l.diff_id, l.size)?;
        }
        let rows: Vec<(&str, &str)> = layers
            .iter()
            .map(|l| (l.diff_id.as_str(), l.blob_digest.as_str()))
            .collect();
        store.insert_image(
            &NewImage {
                id: &image_id,
                manifest_digest: &manifest_digest,
                created: &created,
                size,
            },
            &rows,
        )?;
        for l in layers {
            if let Some(b) = l.blob {
                let dest = store.blob_path(&b.digest);
                undo.push(b.place(&dest)?);
            }
        }
        undo.push(config_blob.place(&store.blob_path(&image_id))?);
        undo.push(manifest_blob.place(&store.blob_path(&manifest_digest))?);
    }
    for r in refs {
        add_ref(store, r, &image_id)?;
    }
    lock.commit()?;
    undo.commit();
    Ok(image_id)
}

/// Name an existing image (under the write lock).
pub fn add_refs(store: &Store, refs: &[Reference], image_id: &str) -> Result<()> {
    let lock = store.lock()?;
    if store.image(image_id)?.is_none() {
        return Err(StoreError::NoSuchImage(image_id.to_string()).into());
    }
    for r in refs {
        add_ref(store, r, image_id)?;
    }
    lock.commit()?;
    Ok(())
}

fn add_ref(store: &Store, r: &Reference, image_id: &str) -> Result<()> {
    Ok(store.put_ref(r, image_id)?)
}

/// `rbox tag SRC DST`.
pub fn tag(store: &Store, src: &str, dst: &str) -> Result<()> {
    let dst = Reference::parse(dst)?;
    if dst.digest().is_some() {
        return Err(ImageError::TagWithDigest(dst.familiar()));
    }
    let lock = store.lock()?;
    let img = store.resolve(src)?;
    add_ref(store, &dst, &img.id)?;
    lock.commit()?;
    Ok(())
}

/// `rbox rmi [-f] IMAGE`: Docker's `Untagged: …` and `Deleted: …` lines.
pub fn rmi(store: &Store, what: &str, force: bool) -> Result<Vec<String>> {
    let lock = store.lock()?;
    let img = store.resolve(what)?;
    let refs = store.refs(&img.id)?;
    let mut out = Vec::new();
    // a reference (not an id) removes only itself while the image keeps a tag
    let by_ref = Reference::parse(what)
        .ok()
        .map(|r| r.to_string())
        .filter(|n| refs.iter().any(|x| &x.name == n));
    let mut untag: Vec<&str> = Vec::new();
    if let Some(name) = &by_ref {
        untag.push(name);
        let other_tags = refs.iter().any(|r| r.tag.is_some() && &r.name != name);
        if !other_tags {
            untag.extend(
                refs.iter()
                    .filter(|r| &r.name != name)
                    .map(|r| r.name.as_str()),
            );
        }
    } else {
        let repos: BTreeSet<&str> = refs.iter().map(|r| r.repository.as_str()).collect();
        if repos.len() > 1 && !force {
            return Err(ImageError::MultipleRepositories(short_id(&img.id).into()));
        }
        untag.extend(refs.iter().map(|r| r.name.as_str()));
    }
    let delete = untag.len() == refs.len();
    if delete {
        if let Some(c) = store.containers_of(&img.id)?.first() {
            return Err(ImageError::InUse {
                image: short_id(&img.id).into(),
                container: c.clone(),
            });
        }
    }
    for name in &untag {
        store.delete_ref(name)?;
        let familiar = Reference::parse_named(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.to_string());
        out.push(format!("Untagged: {familiar}"));
    }
    let mut trash = Vec::new();
    if delete {
        let layers = store.layers(&img.id)?;
        store.delete_image(&img.id)?;
        out.push(format!("Deleted: {}", img.id));
        trash.push(store.blob_path(&img.id));
        trash.push(store.blob_path(&img.manifest_digest));
        let mut seen = BTreeSet::new();
        for l in &layers {
            if !seen.insert(&l.diff_id) {
                continue;
            }
            if store.drop_layer_user(&l.diff_id)? <= 0 {
                store.delete_layer(&l.diff_id)?;
                out.push(format!("Deleted: {}", l.diff_id));
                trash.push(store.snapshot_path(&l.diff_id));
            }
            if store.blob_users(&l.blob_digest)? == 0 {
                trash.push(store.blob_path(&l.blob_digest));
            }
        }
    }
    // out of the final names while still locked, removed after the commit
    let mut moved = Vec::new();
    for p in trash {
        if !p.exists() {
            continue;
        }
        let parent = p.parent().unwrap_or(Path::new("/"));
        let t = parent.join(temp_name());
        fs::rename(&p, &t).map_err(io_err("rename", &p))?;
        // locked, so no other rbox sweeps it while this one removes it
        moved.push((p, TempPath::locked(t.clone()).unwrap_or(TempPath::new(t))));
    }
    store.sweep_orphans();
    if let Err(e) = lock.commit() {
        for (p, t) in moved {
            let _ = fs::rename(t.path(), p);
            t.keep();
        }
        return Err(e.into());
    }
    drop(moved);
    Ok(out)
}

/// One row of `rbox images`.
#[derive(Debug, Clone)]
pub struct ImageLine {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub id: String,
    pub created: String,
    pub size: u64,
}

/// The rows of `rbox images`: one per tag, or one `<none>` row.
pub fn list(store: &Store) -> Result<Vec<ImageLine>> {
    let mut out = Vec::new();
    for img in store.images()? {
        let refs = store.refs(&img.id)?;
        let digest_of = |repo: &str| {
            refs.iter()
                .find(|r| r.repository == repo && r.digest.is_some())
                .and_then(|r| r.digest.clone())
                .unwrap_or_else(|| "<none>".into())
        };
        let line = |repository: String, tag: String, digest: String| ImageLine {
            repository: crate::reference::familiar_repository(&repository),
            tag,
            digest,
            id: img.id.clone(),
            created: img.created.clone(),
            size: img.size,
        };
        let tags: Vec<_> = refs.iter().filter(|r| r.tag.is_some()).collect();
        // the build's images of each step: `docker images` does not list
        // intermediate images either
        if tags.is_empty() && store.cached_image(&img.id)? {
            continue;
        }
        if !tags.is_empty() {
            for r in tags {
                out.push(line(
                    r.repository.clone(),
                    r.tag.clone().unwrap_or_default(),
                    digest_of(&r.repository),
                ));
            }
        } else if let Some(r) = refs.first() {
            out.push(line(
                r.repository.clone(),
                "<none>".into(),
                digest_of(&r.repository),
            ));
        } else {
            out.push(ImageLine {
                repository: "<none>".into(),
                tag: "<none>".into(),
                digest: "<none>".into(),
                id: img.id.clone(),
                created: img.created.clone(),
                size: img.size,
            });
        }
    }
    Ok(out)
}

/// The image config of an image.
pub fn config(store: &Store, img: &ImageRow) -> Result<ImageConfiguration> {
    Ok(store.read_json(&img.id, &img.id)?)
}

/// `docker image inspect`'s object for one image.
pub fn inspect(store: &Store, what: &str) -> Result<Value> {
    let img = store.resolve(what)?;
    let cfg = config(store, &img)?;
    let refs = store.refs(&img.id)?;
    let familiar = |n: &str| {
        Reference::parse_named(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.to_string())
    };
    let tags: Vec<String> = refs
        .iter()
        .filter(|r| r.tag.is_some())
        .map(|r| familiar(&r.name))
        .collect();
    let digests: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            r.digest.as_ref().map(|d| {
                format!(
                    "{}@{d}",
                    crate::reference::familiar_repository(&r.repository)
                )
            })
        })
        .collect();
    let comment = cfg
        .history()
        .as_ref()
        .and_then(|h| h.last())
        .and_then(|h| h.comment().clone())
        .unwrap_or_default();
    Ok(json!({
        "Id": img.id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": comment,
        "Created": img.created,
        "Author": cfg.author().clone().unwrap_or_default(),
        "Config": cfg.config().as_ref().map(serde_json::to_value).transpose().ok().flatten().unwrap_or(Value::Null),
        "Architecture": cfg.architecture().to_string(),
        "Os": cfg.os().to_string(),
        "Size": img.size,
        "RootFS": { "Type": "layers", "Layers": cfg.rootfs().diff_ids() },
        "Metadata": { "ManifestDigest": img.manifest_digest },
    }))
}

/// One row of `rbox history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryLine {
    pub image: String,
    pub created: String,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

pub fn history(store: &Store, what: &str) -> Result<Vec<HistoryLine>> {
    let img = store.resolve(what)?;
    let cfg = config(store, &img)?;
    let layers = store.layers(&img.id)?;
    let mut sizes = layers.iter().map(|l| l.size);
    let mut out = Vec::new();
    for h in cfg.history().clone().unwrap_or_default() {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            sizes.next().unwrap_or(0)
        };
        out.push(HistoryLine {
            image: "<missing>".into(),
            created: h.created().clone().unwrap_or_default(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size,
            comment: h.comment().clone().unwrap_or_default(),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.image = img.id.clone();
    }
    Ok(out)
}
