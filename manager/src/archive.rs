//! `rbox save` and `rbox load`: image archives in the two formats Docker
//! and skopeo speak.
//!
//! - docker-archive (`docker save`'s classic format): `manifest.json`
//!   (`[{Config, RepoTags, Layers}]`), `repositories`, `<id>.json` configs
//!   and `<diff_id>/layer.tar` uncompressed layers.
//! - OCI archive (an OCI image layout in a tar): `oci-layout`, `index.json`
//!   (each image named by the `io.containerd.image.name` and
//!   `org.opencontainers.image.ref.name` annotations) and `blobs/sha256/*`,
//!   the stored blobs as they are, so a saved image keeps its digests.
//!
//! Loading reads the archive once to index its members (a pipe is first
//! spooled to a temp file in the store), then unpacks each layer while
//! hashing it, checks every digest and diff_id, and records each image in
//! one transaction: a bad archive leaves the store as it was.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use oci_client::manifest::{OciImageIndex, OciImageManifest};
use oci_spec::image::{ImageConfiguration, MediaType};
use serde_json::{json, Value};

use crate::image::unpack::{self, UnpackError};
use crate::image::{self, GzipThread, ImageError, NewLayer, Tee};
use crate::media::{self, LayerKind};
use crate::reference::{Reference, ReferenceError};
use crate::registry::pull::{check_digest, select, Platform};
use crate::store::{hex, io_err, temp_name, ImageRow, Store, StoreError, TempPath};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("load {archive}: {why}")]
    Bad { archive: String, why: String },
    #[error("load {archive}: layer {layer}: {source}")]
    Layer {
        archive: String,
        layer: String,
        source: UnpackError,
    },
    #[error("save: layer {diff_id} of image {image} has no blob in the store")]
    NoLayerBlob { diff_id: String, image: String },
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    Terminal,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

type Result<T> = std::result::Result<T, ArchiveError>;

/// The two archive formats, by podman's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

/// An image to save and the names it is saved under.
struct Saved {
    img: ImageRow,
    names: Vec<Reference>,
}

fn resolve_all(store: &Store, images: &[String]) -> Result<Vec<Saved>> {
    let mut saved: Vec<Saved> = Vec::new();
    for what in images {
        let img = store.resolve(what)?;
        // a name (not an id) is saved with the image, like docker save
        let name = Reference::parse(what)
            .ok()
            .filter(|r| r.digest().is_none())
            .filter(|r| store.ref_image(&r.to_string()).ok().flatten().as_deref() == Some(&img.id));
        match saved.iter_mut().find(|s| s.img.id == img.id) {
            Some(s) => s.names.extend(name),
            None => saved.push(Saved {
                img,
                names: name.into_iter().collect(),
            }),
        }
    }
    Ok(saved)
}

/// `rbox save`: write `images` to `out` as one archive.
pub fn save(store: &Store, images: &[String], format: Format, out: impl Write) -> Result<()> {
    let saved = resolve_all(store, images)?;
    let mut tar = tar::Builder::new(out);
    let res = match format {
        Format::DockerArchive => save_docker(store, &saved, &mut tar),
        Format::OciArchive => save_oci(store, &saved, &mut tar),
    };
    res?;
    let out_err = |source| ArchiveError::Io {
        op: "write",
        path: "the archive".into(),
        source,
    };
    let mut w = tar.into_inner().map_err(out_err)?;
    w.flush().map_err(out_err)
}

fn header(size: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: impl Read,
    size: u64,
) -> Result<()> {
    let mut h = header(size, tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(|source| ArchiveError::Io {
            op: "write",
            path: format!("the archive member {path}"),
            source,
        })
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(0, tar::EntryType::Directory);
    tar.append_data(&mut h, path, io::empty())
        .map_err(|source| ArchiveError::Io {
            op: "write",
            path: format!("the archive member {path}"),
            source,
        })
}

/// The stored blob of a layer: the manifest's, or another image's blob of
/// the same diff_id (a layer pulled as "Already exists" has no blob of its
/// own).
fn layer_blob(store: &Store, img: &ImageRow, diff_id: &str, blob: &str) -> Result<PathBuf> {
    let p = store.blob_path(blob);
    if p.exists() {
        return Ok(p);
    }
    store
        .layer_blobs(diff_id)?
        .iter()
        .map(|d| store.blob_path(d))
        .find(|p| p.exists())
        .ok_or_else(|| ArchiveError::NoLayerBlob {
            diff_id: diff_id.to_string(),
            image: img.id.clone(),
        })
}

fn open_layer(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).map_err(|source| ArchiveError::Io {
        op: "open",
        path: path.display().to_string(),
        source,
    })?;
    unpack::decompress(BufReader::with_capacity(1 << 16, f)).map_err(|source| ArchiveError::Io {
        op: "decompress",
        path: path.display().to_string(),
        source,
    })
}

fn save_docker<W: Write>(store: &Store, saved: &[Saved], tar: &mut tar::Builder<W>) -> Result<()> {
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written = BTreeSet::new();
    for s in saved {
        let config = store.read_blob(&s.img.id, &s.img.id)?;
        let config_name = format!("{}.json", hex(&s.img.id));
        append(tar, &config_name, &config[..], config.len() as u64)?;
        let mut layers = Vec::new();
        for l in store.layers(&s.img.id)? {
            let dir = hex(&l.diff_id).to_string();
            let name = format!("{dir}/layer.tar");
            if written.insert(dir.clone()) {
                let path = layer_blob(store, &s.img, &l.diff_id, &l.blob_digest)?;
                // the tar header wants the size first: count, then copy
                let size =
                    io::copy(&mut open_layer(&path)?, &mut io::sink()).map_err(|source| {
                        ArchiveError::Io {
                            op: "read",
                            path: path.display().to_string(),
                            source,
                        }
                    })?;
                append_dir(tar, &format!("{dir}/"))?;
                append(tar, &name, open_layer(&path)?, size)?;
            }
            layers.push(name);
        }
        let tags: Vec<String> = s.names.iter().map(Reference::familiar).collect();
        if let Some(top) = layers.last() {
            for r in &s.names {
                repositories
                    .entry(crate::reference::familiar_repository(&r.repository()))
                    .or_default()
                    .insert(
                        r.tag().unwrap_or(crate::reference::DEFAULT_TAG).to_string(),
                        top.trim_end_matches("/layer.tar").to_string(),
                    );
            }
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
    }
    let m = serde_json::to_vec(&manifest).unwrap_or_default();
    append(tar, "manifest.json", &m[..], m.len() as u64)?;
    let r = serde_json::to_vec(&repositories).unwrap_or_default();
    append(tar, "repositories", &r[..], r.len() as u64)
}

fn save_oci<W: Write>(store: &Store, saved: &[Saved], tar: &mut tar::Builder<W>) -> Result<()> {
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(tar, "oci-layout", &layout[..], layout.len() as u64)?;
    append_dir(tar, "blobs/")?;
    append_dir(tar, "blobs/sha256/")?;
    let mut written = BTreeSet::new();
    let mut index = Vec::new();
    for s in saved {
        let manifest_bytes = store.read_blob(&s.img.manifest_digest, &s.img.id)?;
        let manifest: OciImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| StoreError::BadJson {
                path: store.blob_path(&s.img.manifest_digest),
                source,
            })?;
        let mut blobs = vec![manifest.config.digest.clone()];
        blobs.extend(
            manifest
                .layers
                .iter()
                .filter(|l| !media::is_foreign(&l.media_type))
                .map(|l| l.digest.clone()),
        );
        blobs.push(s.img.manifest_digest.clone());
        for d in blobs {
            if !written.insert(d.clone()) {
                continue;
            }
            let path = store.blob_path(&d);
            let f = File::open(&path).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    ArchiveError::Store(StoreError::MissingBlob {
                        digest: d.clone(),
                        image: s.img.id.clone(),
                        path: path.clone(),
                    })
                } else {
                    ArchiveError::Io {
                        op: "open",
                        path: path.display().to_string(),
                        source: e,
                    }
                }
            })?;
            let size = f.metadata().map_err(io_err("stat", &path))?.len();
            append(tar, &format!("blobs/sha256/{}", hex(&d)), f, size)?;
        }
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let desc = |annotations: Value| {
            json!({
                "mediaType": media_type,
                "digest": s.img.manifest_digest,
                "size": manifest_bytes.len(),
                "annotations": annotations,
            })
        };
        if s.names.is_empty() {
            index.push(desc(json!({})));
        }
        for r in &s.names {
            index.push(desc(json!({
                NAME_ANNOTATION: r.to_string(),
                REF_ANNOTATION: r.tag().unwrap_or(crate::reference::DEFAULT_TAG),
            })));
        }
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": index,
    }))
    .unwrap_or_default();
    append(tar, "index.json", &index[..], index.len() as u64)
}

/// Where each regular file of an archive is: data offset and size.
struct Members {
    file: File,
    name: String,
    at: HashMap<String, (u64, u64)>,
}

impl Members {
    fn index(file: File, name: &str) -> Result<Members> {
        let bad = |why: String| ArchiveError::Bad {
            archive: name.to_string(),
            why,
        };
        let mut at = HashMap::new();
        {
            let mut ar = tar::Archive::new(&file);
            let entries = ar.entries().map_err(|e| bad(format!("not a tar: {e}")))?;
            for e in entries {
                let e = e.map_err(|e| bad(format!("not a tar: {e}")))?;
                if e.header().entry_type() != tar::EntryType::Regular {
                    continue;
                }
                let path = e.path().map_err(|e| bad(format!("member name: {e}")))?;
                let path = path.to_string_lossy();
                let path = path.trim_start_matches("./").to_string();
                at.insert(path, (e.raw_file_position(), e.size()));
            }
        }
        Ok(Members {
            file,
            name: name.to_string(),
            at,
        })
    }

    fn bad(&self, why: String) -> ArchiveError {
        ArchiveError::Bad {
            archive: self.name.clone(),
            why,
        }
    }

    fn has(&self, path: &str) -> bool {
        self.at.contains_key(path)
    }

    /// A reader of one member.
    fn open(&self, path: &str) -> Result<impl Read + '_> {
        let &(off, size) = self
            .at
            .get(path.trim_start_matches("./"))
            .ok_or_else(|| self.bad(format!("{path} is missing")))?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| self.bad(format!("{path}: {e}")))?;
        Ok(f.take(size))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(path)?
            .read_to_end(&mut v)
            .map_err(|e| self.bad(format!("{path}: {e}")))?;
        Ok(v)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_slice(&self.read(path)?).map_err(|e| self.bad(format!("{path}: {e}")))
    }
}

/// `rbox load`: the images of a docker-archive or OCI archive from `input`
/// (None: stdin). Returns Docker's `Loaded image: …` lines.
pub fn load(store: &Store, input: Option<&Path>) -> Result<Vec<String>> {
    let (file, name, _spool) = match input {
        Some(p) => (
            File::open(p).map_err(|source| ArchiveError::Io {
                op: "open",
                path: p.display().to_string(),
                source,
            })?,
            p.display().to_string(),
            None,
        ),
        None => {
            // a pipe cannot seek: spool it where the sweep finds it if we die
            let path = store.root().join("blobs/sha256").join(temp_name());
            let mut f = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err("create", &path))?;
            let spool = TempPath::locked(path.clone());
            let spool = match spool {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.into());
                }
            };
            io::copy(&mut io::stdin().lock(), &mut f).map_err(io_err("write", &path))?;
            f.rewind().map_err(io_err("seek", &path))?;
            (f, "stdin".to_string(), Some(spool))
        }
    };
    let m = Members::index(file, &name)?;
    if m.has("index.json") && m.has("oci-layout") {
        load_oci(store, &m)
    } else if m.has("manifest.json") {
        load_docker(store, &m)
    } else {
        Err(m.bad(
            "neither a docker-archive (manifest.json) nor an OCI archive (index.json, oci-layout)"
                .into(),
        ))
    }
}

fn loaded_lines(id: &str, refs: &[Reference]) -> Vec<String> {
    if refs.is_empty() {
        vec![format!("Loaded image ID: {id}")]
    } else {
        refs.iter()
            .map(|r| format!("Loaded image: {}", r.familiar()))
            .collect()
    }
}

fn load_docker(store: &Store, m: &Members) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = m.json("manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let config_bytes = m.read(&e.config)?;
        if let Some(h) = Path::new(&e.config)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|h| h.len() == 64)
        {
            check_digest(&config_bytes, &format!("sha256:{h}"))
                .map_err(|why| m.bad(format!("{}: {why}", e.config)))?;
        }
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|err| m.bad(format!("{}: {err}", e.config)))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != e.layers.len() {
            return Err(m.bad(format!(
                "{} has {} diff_ids for {} layers",
                e.config,
                diff_ids.len(),
                e.layers.len()
            )));
        }
        let refs = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(diff_ids) {
            // plain or compressed tar in; a gzip blob out, as import makes
            let layer_err = |source| ArchiveError::Layer {
                archive: m.name.clone(),
                layer: path.clone(),
                source,
            };
            let input = unpack::decompress(BufReader::with_capacity(1 << 16, m.open(path)?))
                .map_err(|e| layer_err(UnpackError::Tar(e)))?;
            let blob = store.blob_writer()?;
            let blob_path = blob.path();
            let mut tee = Tee {
                r: input,
                w: GzipThread::new(blob),
            };
            // a layer the store has is only hashed (and its blob made)
            let (unpacked, snapshot) = match store.layer_size(diff_id)? {
                Some(size) => {
                    let (actual, _) = unpack::HashReader::new(&mut tee)
                        .finish()
                        .map_err(|e| layer_err(UnpackError::Tar(e)))?;
                    if &actual != diff_id {
                        return Err(layer_err(UnpackError::DiffId {
                            expected: diff_id.clone(),
                            actual,
                        }));
                    }
                    let u = unpack::Unpacked {
                        diff_id: actual,
                        size,
                    };
                    (u, None)
                }
                None => {
                    let snapshot = image::temp_snapshot(store)?;
                    let u = unpack::unpack(&mut tee, &snapshot.path().join("fs"), Some(diff_id))
                        .map_err(layer_err)?;
                    (u, Some(snapshot))
                }
            };
            io::copy(&mut tee, &mut io::sink()).map_err(|e| layer_err(UnpackError::Tar(e)))?;
            let blob = tee
                .w
                .finish()
                .map_err(io_err("write", &blob_path))?
                .finish(None)?;
            layers.push(NewLayer {
                diff_id: unpacked.diff_id,
                size: unpacked.size,
                blob_digest: blob.digest.clone(),
                blob: Some(blob),
                snapshot,
            });
        }
        let id = image::commit_image(
            store,
            config_bytes,
            &config,
            MediaType::ImageLayerGzip,
            layers,
            &refs,
            None,
        )?;
        out.extend(loaded_lines(&id, &refs));
    }
    Ok(out)
}

/// The name an OCI index entry gives its image, if any: containerd's full
/// name, or a ref.name that is a whole reference (not just a tag).
fn oci_name(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    let a = annotations?;
    if let Some(n) = a.get(NAME_ANNOTATION) {
        return Some(n.clone());
    }
    a.get(REF_ANNOTATION)
        .filter(|n| n.contains('/') || n.contains(':'))
        .cloned()
}

fn load_oci(store: &Store, m: &Members) -> Result<Vec<String>> {
    let index: OciImageIndex = m.json("index.json")?;
    let blob_path = |d: &str| format!("blobs/sha256/{}", hex(d));
    let mut out = Vec::new();
    for desc in &index.manifests {
        let mut digest = desc.digest.clone();
        let mut bytes = m.read(&blob_path(&digest))?;
        check_digest(&bytes, &digest).map_err(|why| m.bad(why))?;
        if desc.media_type == OCI_INDEX || desc.media_type == DOCKER_LIST {
            let inner: OciImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| m.bad(format!("index {digest}: {e}")))?;
            let host = Platform::host();
            digest = select(&inner, &host).ok_or_else(|| {
                m.bad(format!(
                    "index {digest} has no manifest for platform {host}"
                ))
            })?;
            bytes = m.read(&blob_path(&digest))?;
            check_digest(&bytes, &digest).map_err(|why| m.bad(why))?;
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| m.bad(format!("manifest {digest}: {e}")))?;
        let config_bytes = m.read(&blob_path(&manifest.config.digest))?;
        check_digest(&config_bytes, &manifest.config.digest).map_err(|why| m.bad(why))?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| m.bad(format!("config {}: {e}", manifest.config.digest)))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(m.bad(format!(
                "manifest {digest} has {} layers, its config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let refs = oci_name(desc.annotations.as_ref())
            .map(|n| Reference::parse(&n))
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        // the media types pull takes, checked before any layer is unpacked
        let mut kinds = Vec::new();
        for l in &manifest.layers {
            kinds.push(
                media::layer_kind(&l.media_type, &l.digest)
                    .map_err(|e| m.bad(format!("manifest {digest}: {e}")))?,
            );
        }
        let mut layers = Vec::new();
        for ((l, diff_id), kind) in manifest.layers.iter().zip(diff_ids).zip(kinds) {
            if kind == LayerKind::Foreign {
                out.push(format!(
                    "Skipping foreign layer {} ({})",
                    l.digest, l.media_type
                ));
                continue;
            }
            if let Some(size) = store.layer_size(diff_id)? {
                layers.push(NewLayer {
                    diff_id: diff_id.clone(),
                    size,
                    blob_digest: l.digest.clone(),
                    blob: None,
                    snapshot: None,
                });
                continue;
            }
            let layer_err = |source| ArchiveError::Layer {
                archive: m.name.clone(),
                layer: l.digest.clone(),
                source,
            };
            // the blob as it is, hashed on the way; its content unpacked
            let blob = store.blob_writer()?;
            let snapshot = image::temp_snapshot(store)?;
            let (unpacked, blob) = image::unpack_blob(
                m.open(&blob_path(&l.digest))?,
                blob,
                &snapshot.path().join("fs"),
                &l.digest,
                diff_id,
            );
            let unpacked = unpacked.map_err(layer_err)?;
            layers.push(NewLayer::unpacked(unpacked, blob?, snapshot));
        }
        let media = image::layer_media_type(&manifest);
        let id = image::commit_image(
            store,
            config_bytes,
            &config,
            media,
            layers,
            &refs,
            Some(bytes),
        )?;
        out.extend(loaded_lines(&id, &refs));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_names_come_from_containerd_or_a_whole_ref_name() {
        let a = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let full = a(&[
            (NAME_ANNOTATION, "docker.io/library/busybox:1"),
            (REF_ANNOTATION, "1"),
        ]);
        assert_eq!(
            oci_name(Some(&full)).as_deref(),
            Some("docker.io/library/busybox:1")
        );
        // skopeo's oci-archive:FILE:NAME
        let skopeo = a(&[(REF_ANNOTATION, "localhost/two:1")]);
        assert_eq!(oci_name(Some(&skopeo)).as_deref(), Some("localhost/two:1"));
        // a bare tag names no repository
        assert_eq!(oci_name(Some(&a(&[(REF_ANNOTATION, "latest")]))), None);
        assert_eq!(oci_name(None), None);
    }

    #[test]
    fn loaded_lines_like_docker() {
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(loaded_lines("sha256:ab", &[r]), ["Loaded image: busybox:1"]);
        assert_eq!(
            loaded_lines("sha256:ab", &[]),
            ["Loaded image ID: sha256:ab"]
        );
    }
}
