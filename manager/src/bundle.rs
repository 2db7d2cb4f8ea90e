//! OCI bundles from images: an overlay of the image's layer snapshots at
//! `<bundle>/rootfs` (upper and work dirs in ROOT/containers/<id>/) and its
//! `config.json`, written once, from the spec its maker gives (oci/).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;

use crate::cgroups;
use crate::image::{self, short_id, ImageError};
use crate::oci::error::SpecError;
use crate::oci::host::cgroup_ns;
use crate::oci::image::from_image;
use crate::rootfs::{resolve_in_root, IdFiles, ReadError};
use crate::store::{io_err, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid container id {0:?}: use [A-Za-z0-9][A-Za-z0-9_.-]*")]
    BadId(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("bundle {path}: {why}")]
    BadBundle { path: PathBuf, why: &'static str },
    #[error(
        "overlayfs is not available on this host (mount at {target}: ENODEV; modprobe overlay)"
    )]
    NoOverlay { target: PathBuf },
    #[error("mount overlay at {target}: {source}")]
    Mount { target: PathBuf, source: Errno },
    #[error("umount {target}: {source}")]
    Umount { target: PathBuf, source: Errno },
    #[error(transparent)]
    ReadIdFile(#[from] ReadError),
    #[error("image {image}: VOLUME {path:?}: {why}")]
    BadVolume {
        image: String,
        path: String,
        why: &'static str,
    },
    #[error("image {image}: VOLUME {path:?} is {resolved} in the image, inside /proc: nothing may be mounted there (CVE-2019-16884)")]
    VolumeInProc {
        image: String,
        path: PathBuf,
        resolved: PathBuf,
    },
    #[error("image {image}: VOLUME {path:?}: {source}")]
    ResolveVolume {
        image: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    CgroupParent(#[from] crate::cgroups::BadParent),
    #[error("{0}")]
    Teardown(String),
}

pub type Result<T> = std::result::Result<T, BundleError>;

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

pub(crate) fn container_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id)
}

/// What a bundle is made of before its config.json: what `create`'s
/// spec maker is given.
pub struct Made<'a> {
    /// the container's directory, ROOT/containers/<id>
    pub cdir: &'a Path,
    /// the overlay, mounted
    pub rootfs: &'a Path,
    pub image_id: &'a str,
    pub image: &'a ImageConfiguration,
    /// the image's VOLUME paths (cleaned, absolute; usually none): the
    /// caller gives each one a volume
    pub volumes: &'a [PathBuf],
}

/// Make a bundle for container `id` from `image` in `dir` (created if
/// missing, must not have a rootfs yet), its config.json the spec `spec`
/// makes of it. On error (`spec`'s too) nothing is left: no row, mount or
/// directory. `volatile`: the container's writable layer is thrown away
/// with it (`run --rm`), so the overlay skips the syncs that make it
/// durable (its unmount would otherwise flush the whole host filesystem).
pub fn create<E: From<BundleError>>(
    store: &Store,
    image: &str,
    id: &str,
    dir: &Path,
    volatile: bool,
    spec: impl FnOnce(&Made<'_>) -> std::result::Result<Spec, E>,
) -> std::result::Result<(), E> {
    let mut guard = None;
    let made = (|| -> std::result::Result<(), E> {
        let (g, cfg, img_id, volumes) = mount_bundle(store, image, id, dir, volatile)?;
        let g = guard.insert(g);
        let made = Made {
            cdir: g.cdir.as_deref().expect("made"),
            rootfs: g.rootfs.as_deref().expect("made"),
            image_id: &img_id,
            image: &cfg,
            volumes: &volumes,
        };
        let spec = spec(&made)?;
        let config = dir_of(g).join("config.json");
        g.config = Some(config.clone());
        write_config(&config, &spec)?;
        Ok(())
    })();
    match (made, guard) {
        (Ok(()), Some(g)) => {
            g.disarm();
            Ok(())
        }
        // the guard, dropped armed, undoes what was made
        (made, _) => made,
    }
}

/// The bundle's directory (the rootfs's parent).
fn dir_of(g: &Guard<'_>) -> PathBuf {
    g.rootfs
        .as_deref()
        .and_then(Path::parent)
        .expect("a bundle with a rootfs")
        .to_path_buf()
}

/// `rbox bundle create`: a bundle whose config.json is the image's with
/// Docker's defaults (`args` replaces the image's Cmd when not empty), for
/// any OCI runtime to run.
pub fn create_from_image(
    store: &Store,
    image: &str,
    id: &str,
    dir: &Path,
    args: &[String],
) -> Result<()> {
    let parent = cgroups::env_parent()?.unwrap_or_else(|| cgroups::DEFAULT_PARENT.into());
    create(store, image, id, dir, false, |m| -> Result<Spec> {
        let files = IdFiles::read(m.rootfs)?;
        Ok(from_image(
            m.image,
            m.image_id,
            id,
            args,
            &files,
            cgroup_ns(),
            &cgroups::path(&parent, id),
        )?)
    })
}

/// The row, the directories and the overlay mount of a new bundle, and
/// the guard that undoes them; the image's config and VOLUME paths.
fn mount_bundle<'a>(
    store: &'a Store,
    image: &str,
    id: &str,
    dir: &Path,
    volatile: bool,
) -> Result<(Guard<'a>, ImageConfiguration, String, Vec<PathBuf>)> {
    if !valid_id(id) {
        return Err(BundleError::BadId(id.to_string()));
    }
    let dir = std::path::absolute(dir).map_err(io_err("resolve", dir))?;
    let lock = store.lock()?;
    let img = store.resolve(image).map_err(ImageError::from)?;
    let cfg = image::config(store, &img)?;
    let volumes = image_volumes(&cfg, &img.id)?;
    let layers = store.layers(&img.id)?;
    let created = chrono::Utc::now().to_rfc3339();
    match store.insert_bundle(id, &img.id, &dir, &created) {
        Ok(()) => {}
        Err(e) if e.is_constraint() => return Err(BundleError::Exists(id.to_string())),
        Err(e) => return Err(e.into()),
    }
    lock.commit()?;

    // from here on, the guard undoes whatever was made
    let mut g = Guard {
        store,
        id: id.to_string(),
        cdir: None,
        bundle_made: None,
        rootfs: None,
        mounted: false,
        config: None,
    };
    let cdir = container_dir(store, id);
    fs::create_dir(&cdir).map_err(io_err("create", &cdir))?;
    g.cdir = Some(cdir.clone());
    for d in ["upper", "work"] {
        let p = cdir.join(d);
        fs::create_dir(&p).map_err(io_err("create", &p))?;
    }
    if !dir.exists() {
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        g.bundle_made = Some(dir.clone());
    }
    let rootfs = dir.join("rootfs");
    match fs::create_dir(&rootfs) {
        Ok(()) => g.rootfs = Some(rootfs.clone()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(BundleError::BadBundle {
                path: dir.clone(),
                why: "already has a rootfs",
            })
        }
        Err(e) => return Err(io_err("create", &rootfs)(e).into()),
    }

    // lowerdir: top layer first, each once
    let mut lower = Vec::new();
    for p in store.lower_dirs(layers.iter().map(|l| l.diff_id.as_str())) {
        let s = p.to_string_lossy().into_owned();
        if s.contains([',', ':']) {
            return Err(BundleError::BadBundle {
                path: p,
                why: "overlayfs paths cannot hold ',' or ':'",
            });
        }
        lower.push(s);
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        cdir.join("upper").display(),
        cdir.join("work").display()
    );
    // mount(2) takes one page of options
    if data.len() >= 4096 {
        return Err(BundleError::BadBundle {
            path: dir.clone(),
            why: "the image has too many layers for one overlay mount",
        });
    }
    let overlay = |data: &str| {
        mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
    };
    let with_volatile = format!("{data},volatile");
    match volatile && with_volatile.len() < 4096 {
        // kernels before 5.10 do not know the option
        true => overlay(&with_volatile).or_else(|e| match e {
            Errno::EINVAL => overlay(&data),
            e => Err(e),
        }),
        false => overlay(&data),
    }
    .map_err(|source| match source {
        Errno::ENODEV => BundleError::NoOverlay {
            target: rootfs.clone(),
        },
        source => BundleError::Mount {
            target: rootfs.clone(),
            source,
        },
    })?;
    g.mounted = true;
    for v in &volumes {
        check_volume(&rootfs, v, &img.id)?;
    }

    Ok((g, cfg, img.id, volumes))
}

/// Writes config.json (a temp file renamed into place).
fn write_config(path: &Path, spec: &Spec) -> Result<()> {
    let tmp = path.with_file_name(".config.json.tmp");
    let json = serde_json::to_vec_pretty(spec).expect("a spec serializes");
    fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    Ok(())
}

/// The image config's `Volumes`, as Docker's daemon reads them: cleaned,
/// and a relative path is taken from `/`. `/` itself and `..` are refused.
fn image_volumes(
    image: &oci_spec::image::ImageConfiguration,
    image_id: &str,
) -> Result<Vec<PathBuf>> {
    let Some(vols) = image.config().as_ref().and_then(|c| c.volumes().as_ref()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for v in vols {
        let bad = |why| BundleError::BadVolume {
            image: short_id(image_id).to_string(),
            path: v.clone(),
            why,
        };
        let mut p = PathBuf::from("/");
        for c in Path::new(v).components() {
            match c {
                std::path::Component::Normal(n) => p.push(n),
                std::path::Component::ParentDir => return Err(bad("\"..\" is not allowed")),
                _ => {}
            }
        }
        if p == Path::new("/") {
            return Err(bad("a volume cannot be mounted at /"));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Refuse an image VOLUME that leads into /proc (through symlinks of the
/// image, like `vol -> /proc/self/attr`): the runtime would refuse the
/// mount; this says which VOLUME of which image.
fn check_volume(rootfs: &Path, volume: &Path, image_id: &str) -> Result<()> {
    let resolved =
        resolve_in_root(rootfs, volume).map_err(|source| BundleError::ResolveVolume {
            image: short_id(image_id).to_string(),
            path: volume.to_path_buf(),
            source,
        })?;
    if resolved.starts_with("/proc") {
        return Err(BundleError::VolumeInProc {
            image: short_id(image_id).to_string(),
            path: volume.to_path_buf(),
            resolved,
        });
    }
    Ok(())
}

/// The writable layer of the stopped container `id`, for a build step to
/// keep: its rootfs is unmounted (the removal later finds it so) and the
/// path of its upper dir returned, in the store's filesystem.
pub fn unmount_upper(store: &Store, id: &str) -> Result<PathBuf> {
    let Some(dir) = store.bundle_of(id)? else {
        return Err(BundleError::NoSuchContainer(id.to_string()));
    };
    let rootfs = dir.join("rootfs");
    match umount2(&rootfs, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(source) => {
            return Err(BundleError::Umount {
                target: rootfs,
                source,
            })
        }
    }
    Ok(container_dir(store, id).join("upper"))
}

/// Unmount and remove what `create` made for container `id`. Keeps going
/// after an error and reports all of them.
pub fn remove(store: &Store, id: &str) -> Result<()> {
    remove_inner(store, id, true)
}

/// What `remove` does but forgetting the container: its record stays
/// (for a `remove` later, which finds nothing else left to do).
pub fn remove_files(store: &Store, id: &str) -> Result<()> {
    remove_inner(store, id, false)
}

fn remove_inner(store: &Store, id: &str, forget: bool) -> Result<()> {
    let Some(dir) = store.bundle_of(id)? else {
        return Err(BundleError::NoSuchContainer(id.to_string()));
    };
    let g = Guard {
        store,
        id: if forget {
            id.to_string()
        } else {
            String::new()
        },
        cdir: Some(container_dir(store, id)),
        bundle_made: Some(dir.clone()),
        rootfs: Some(dir.join("rootfs")),
        mounted: true,
        config: Some(dir.join("config.json")),
    };
    g.teardown()
}

/// What a bundle creation has made so far; dropped armed, it undoes it.
struct Guard<'a> {
    store: &'a Store,
    id: String,
    cdir: Option<PathBuf>,
    /// the bundle dir, when rbox created it (removed only if empty)
    bundle_made: Option<PathBuf>,
    rootfs: Option<PathBuf>,
    mounted: bool,
    config: Option<PathBuf>,
}

impl Guard<'_> {
    fn disarm(mut self) {
        self.cdir = None;
        self.bundle_made = None;
        self.rootfs = None;
        self.mounted = false;
        self.config = None;
        self.id.clear();
    }

    fn teardown(mut self) -> Result<()> {
        let errors = self.undo();
        self.id.clear();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(BundleError::Teardown(errors.join("; ")))
        }
    }

    fn undo(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut still_mounted = false;
        if let Some(c) = self.config.take() {
            if let Err(e) = fs::remove_file(&c) {
                if e.kind() != io::ErrorKind::NotFound {
                    errors.push(format!("remove {}: {e}", c.display()));
                }
            }
        }
        if let Some(r) = self.rootfs.take() {
            if std::mem::take(&mut self.mounted) {
                match umount2(&r, MntFlags::empty()) {
                    Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                    Err(e) => {
                        still_mounted = true;
                        errors.push(
                            BundleError::Umount {
                                target: r.clone(),
                                source: e,
                            }
                            .to_string(),
                        );
                    }
                }
            }
            if !still_mounted {
                if let Err(e) = fs::remove_dir(&r) {
                    if e.kind() != io::ErrorKind::NotFound {
                        errors.push(format!("remove {}: {e}", r.display()));
                    }
                }
            }
        }
        if let Some(b) = self.bundle_made.take() {
            // only when empty: the bundle dir may hold the caller's files
            let _ = fs::remove_dir(&b);
        }
        if let Some(c) = self.cdir.take() {
            if !still_mounted {
                if let Err(e) = fs::remove_dir_all(&c) {
                    if e.kind() != io::ErrorKind::NotFound {
                        errors.push(format!("remove {}: {e}", c.display()));
                    }
                }
            }
        }
        if !self.id.is_empty() && !still_mounted {
            if let Err(e) = self.store.delete_bundle(&self.id) {
                errors.push(format!("forget container {}: {e}", self.id));
            }
        }
        errors
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        for e in self.undo() {
            eprintln!("rbox: warning: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_volumes(v: &[&str]) -> oci_spec::image::ImageConfiguration {
        let mut cfg = oci_spec::image::ImageConfiguration::default();
        let mut c = oci_spec::image::Config::default();
        c.set_volumes(Some(v.iter().map(|s| s.to_string()).collect()));
        cfg.set_config(Some(c));
        cfg
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("data/sub")).unwrap();
        std::os::unix::fs::symlink("/proc/self/attr", r.join("vol")).unwrap();
        std::os::unix::fs::symlink("../../proc/sys/kernel", r.join("data/core")).unwrap();
        std::os::unix::fs::symlink("/data", r.join("d")).unwrap();
        std::os::unix::fs::symlink("/../../../etc", r.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        let res = |p: &str| resolve_in_root(r, Path::new(p)).unwrap();
        assert_eq!(res("/vol"), Path::new("/proc/self/attr"));
        assert_eq!(res("/vol/x"), Path::new("/proc/self/attr/x"));
        assert_eq!(res("/data/core"), Path::new("/proc/sys/kernel"));
        assert_eq!(res("/d/sub/new/dir"), Path::new("/data/sub/new/dir"));
        assert_eq!(res("/up/passwd"), Path::new("/etc/passwd"));
        assert_eq!(res("/a/../../b"), Path::new("/b"));
        assert!(resolve_in_root(r, Path::new("/loop")).is_err());
        let e = check_volume(r, Path::new("/vol"), "abc").unwrap_err();
        assert!(
            e.to_string().contains("VOLUME \"/vol\" is /proc/self/attr"),
            "{e}"
        );
        assert!(check_volume(r, Path::new("/d/sub"), "abc").is_ok());
    }

    #[test]
    fn image_volumes_are_cleaned_like_dockers() {
        let v = image_volumes(&with_volumes(&["/data/", "var//lib/x", "/data"]), "abc").unwrap();
        assert_eq!(v, [PathBuf::from("/data"), PathBuf::from("/var/lib/x")]);
        assert!(
            image_volumes(&oci_spec::image::ImageConfiguration::default(), "abc")
                .unwrap()
                .is_empty()
        );
        for bad in ["/", "/a/../b"] {
            let e = image_volumes(&with_volumes(&[bad]), "abc").unwrap_err();
            assert!(e.to_string().contains(&format!("VOLUME {bad:?}")), "{e}");
        }
    }
}
