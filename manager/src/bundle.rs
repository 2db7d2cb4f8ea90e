//! OCI bundles from images: an overlay of the image's layer snapshots at
//! `<bundle>/rootfs` (upper and work dirs in ROOT/containers/<id>/) and a
//! `config.json` made from the image config with Docker's defaults.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::cgroups;
use crate::image::{self, short_id, ImageError};
use crate::oci::caps::{process_caps, DEFAULT_CAPS};
use crate::store::{io_err, Store, StoreError};
use crate::user::{self, UserError};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Largest /etc/passwd or /etc/group read from an image.
const ID_FILE_MAX: u64 = 4 << 20;

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
    #[error("image {image}: {source}")]
    User { image: String, source: UserError },
    #[error("read {path} in the image: {source}")]
    ReadIdFile {
        path: &'static str,
        source: io::Error,
    },
    #[error("image {0}: no command specified")]
    NoCommand(String),
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
    #[error("config.json: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
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

/// Make a bundle for container `id` from `image` in `dir` (created if
/// missing, must not have a rootfs yet). `args` replaces the image's Cmd
/// when not empty. On error nothing is left: no row, mount or directory.
/// `volatile`: the container's writable layer is thrown away with it
/// (`run --rm`), so the overlay skips the syncs that make it durable (its
/// unmount would otherwise flush the whole host filesystem).
/// Returns the image's VOLUME paths (cleaned, absolute; usually none): the
/// caller gives each one a volume.
pub fn create(
    store: &Store,
    image: &str,
    id: &str,
    dir: &Path,
    args: &[String],
    volatile: bool,
) -> Result<Vec<PathBuf>> {
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

    // lowerdir: top layer first
    let mut lower = Vec::new();
    for l in layers.iter().rev() {
        let p = store.snapshot_fs(&l.diff_id);
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

    let spec = spec_for(&rootfs, &cfg, id, &img.id, args)?;
    let config_path = dir.join("config.json");
    g.config = Some(config_path.clone());
    let tmp = dir.join(".config.json.tmp");
    let json = serde_json::to_vec_pretty(&spec).map_err(|source| StoreError::BadJson {
        path: config_path.clone(),
        source,
    })?;
    fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &config_path).map_err(io_err("rename", &config_path))?;
    g.disarm();
    Ok(volumes)
}

/// Writes the container's config.json (a temp file renamed into place).
pub fn write_config(path: &Path, spec: &Spec) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
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

/// Where `path` leads inside `rootfs`, symlinks followed as if `rootfs`
/// were `/` (`..` stops at it); the part that does not exist is taken as
/// written. Each prefix looked at has no symlink in it, so no lookup
/// leaves the rootfs.
pub(crate) fn resolve_in_root(rootfs: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut out = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        if exists {
            let host = rootfs.join(next.strip_prefix("/").expect("absolute"));
            match fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > 40 {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = fs::read_link(&host)?;
                    if target.is_absolute() {
                        out = PathBuf::from("/");
                    }
                    for t in target.components().rev() {
                        match t {
                            std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                            std::path::Component::ParentDir => todo.push("..".into()),
                            _ => {}
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => exists = false,
                Err(e) => return Err(e),
            }
        }
        out = next;
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

/// Read `rel` (e.g. "etc/passwd") inside `rootfs` without leaving it:
/// `openat2(RESOLVE_IN_ROOT)` resolves `..` and absolute symlinks against
/// the rootfs. None when the image has no such file.
pub(crate) fn read_in_root(rootfs: &Path, rel: &'static str) -> Result<Option<String>> {
    let err = |source| BundleError::ReadIdFile { path: rel, source };
    let root = File::open(rootfs).map_err(err)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(root.as_raw_fd(), rel, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(err(e.into())),
    };
    // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !f.metadata().map_err(err)?.is_file() {
        return Ok(None);
    }
    let mut s = String::new();
    f.take(ID_FILE_MAX).read_to_string(&mut s).map_err(err)?;
    Ok(Some(s))
}

const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The runtime spec for a container of this image (rootfs already mounted,
/// so the user is resolved against the merged layers).
fn spec_for(
    rootfs: &Path,
    image: &oci_spec::image::ImageConfiguration,
    id: &str,
    image_id: &str,
    args: &[String],
) -> Result<Spec> {
    let empty = oci_spec::image::Config::default();
    let c = image.config().as_ref().unwrap_or(&empty);
    let mut argv: Vec<String> = c.entrypoint().clone().unwrap_or_default();
    if args.is_empty() {
        argv.extend(c.cmd().clone().unwrap_or_default());
    } else {
        argv.extend(args.iter().cloned());
    }
    if argv.is_empty() {
        return Err(BundleError::NoCommand(short_id(image_id).to_string()));
    }
    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let group = read_in_root(rootfs, "etc/group")?;
    let u = user::resolve(
        c.user().as_deref().unwrap_or(""),
        passwd.as_deref(),
        group.as_deref(),
    )
    .map_err(|source| BundleError::User {
        image: short_id(image_id).to_string(),
        source,
    })?;
    let hostname: String = id.chars().take(12).collect();
    let image_env = c.env().clone().unwrap_or_default();
    let has = |k: &str| image_env.iter().any(|e| e.split('=').next() == Some(k));
    let mut env = Vec::new();
    if !has("PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    env.extend(image_env.iter().cloned());
    // no HOME unless the image sets one: the runtime takes it from the
    // container's /etc/passwd for the process's uid (runc's rule, as with
    // Docker), so `-u` and `exec -u` get their own user's
    let cwd = c
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let caps = process_caps(DEFAULT_CAPS.into_iter().collect(), u.uid, &HashSet::new())?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(argv)
        .env(env)
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(u.uid)
                .gid(u.gid)
                .additional_gids(u.additional_gids)
                .build()?,
        )
        .capabilities(caps)
        .build()?;
    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?);
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }
    let mut mounts: Vec<Mount> = oci_spec::runtime::get_default_mounts();
    // read-only, as Docker has it (unless oci-spec's defaults have one)
    if !mounts
        .iter()
        .any(|m| m.destination() == Path::new("/sys/fs/cgroup"))
    {
        mounts.push(
            MountBuilder::default()
                .destination("/sys/fs/cgroup")
                .typ("cgroup")
                .source("cgroup")
                .options(
                    ["ro", "nosuid", "noexec", "nodev"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(
            LinuxResourcesBuilder::default()
                .devices(crate::devices::default_rules())
                .build()?,
        )
        .cgroups_path(PathBuf::from(cgroups::path(
            &cgroups::env_parent()?.unwrap_or_else(|| cgroups::DEFAULT_PARENT.into()),
            id,
        )))
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()?;
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .hostname(hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?)
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
