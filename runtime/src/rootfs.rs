//! The container's filesystem: mounts from the spec, /dev, pivot_root,
//! masked and read-only paths. Runs inside the init process, in the new
//! mount namespace, before the user process is executed.

use std::os::fd::RawFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use tracing::debug;

use crate::error::{ErrnoExt, Error, Result};
use crate::fsutil::{self, fd_path};
use crate::hierarchy::{host_hierarchies, own_cgroup_paths};

/// What a list of OCI mount options means to mount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
}

impl MountOptions {
    /// Map one option like runc does: `(set, clear)` for flags; `None` for
    /// anything that is filesystem data (`size=…`, `mode=…`, `newinstance`).
    pub fn known(opt: &str) -> Option<(MsFlags, MsFlags)> {
        let none = MsFlags::empty();
        Some(match opt {
            "defaults" => (none, none),
            "ro" => (MsFlags::MS_RDONLY, none),
            "rw" => (none, MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, none),
            "suid" => (none, MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, none),
            "dev" => (none, MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, none),
            "exec" => (none, MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, none),
            "async" => (none, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, none),
            "remount" => (MsFlags::MS_REMOUNT, none),
            "mand" => (MsFlags::MS_MANDLOCK, none),
            "nomand" => (none, MsFlags::MS_MANDLOCK),
            "atime" => (none, MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, none),
            "diratime" => (none, MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, none),
            "relatime" => (MsFlags::MS_RELATIME, none),
            "norelatime" => (none, MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, none),
            "nostrictatime" => (none, MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, none),
            "nolazytime" => (none, MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, none),
            "loud" => (none, MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, none),
            "noiversion" => (none, MsFlags::MS_I_VERSION),
            "bind" => (MsFlags::MS_BIND, none),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, none),
            _ => return None,
        })
    }

    pub fn parse(options: &[String]) -> Self {
        let mut out = MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
        };
        for opt in options {
            if let Some(p) = propagation_flag(opt) {
                out.propagation.push(p);
            } else if let Some((set, clear)) = Self::known(opt) {
                out.flags.remove(clear);
                out.flags.insert(set);
            } else {
                out.data.push(opt.clone());
            }
        }
        out
    }
}

/// `rprivate`, `slave`, … to mount flags.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

const NONE: Option<&str> = None;

/// Flags a bind remount must keep or the kernel refuses it (EPERM): the ones
/// locked by a less privileged mount namespace.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (linux/statfs.h); musl's headers lack the name
        (FsFlags::from_bits_retain(0x1000), MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Remount a bind mount with `flags` (typically MS_RDONLY), keeping locked flags.
fn bind_remount(path: &Path, flags: MsFlags) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    match mount(NONE, path, NONE, base, NONE) {
        Err(Errno::EPERM) => {
            mount(NONE, path, NONE, base | locked_flags(path), NONE).at("remount", path)
        }
        r => r.at("remount", path),
    }
}

/// The rootfs while it is built: an `O_PATH` fd and where it is.
struct Root<'a> {
    fd: BorrowedFd<'a>,
    path: &'a Path,
}

/// Everything the init needs to build the filesystem.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub new_cgroupns: bool,
    pub in_userns: bool,
    /// The container has a mount namespace (new or joined). Without one it
    /// shares the runtime's: `create` has bound the rootfs there already
    /// (sharedmount.rs), `/` is left alone and the root is entered by chroot.
    pub own_mount_ns: bool,
    /// Id-mapped trees prepared by the parent, by mount index.
    pub idmapped: &'a [(usize, RawFd)],
}

impl RootfsPlan<'_> {
    /// Prepare the rootfs and switch into it (pivot_root or MS_MOVE+chroot).
    pub fn apply(&self) -> Result<()> {
        self.prepare()?;
        self.switch_root()
    }

    /// Switch into the prepared rootfs.
    pub fn switch_root(&self) -> Result<()> {
        if !self.own_mount_ns {
            nix::unistd::chroot(self.rootfs).at("chroot", self.rootfs)?;
            return nix::unistd::chdir("/").at("chdir", "/");
        }
        if self.no_pivot {
            move_root(self.rootfs)
        } else {
            pivot_root(self.rootfs)
        }
    }

    /// Mounts, devices and links, all below the rootfs; nothing switched yet.
    pub fn prepare(&self) -> Result<()> {
        let linux = self.spec.linux().as_ref();
        let rslave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        // An unbindable `/` could not give the rootfs bind below (EINVAL):
        // like crun, start from rslave; finalize() makes the new root
        // unbindable once it is in place.
        let root_prop = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .and_then(propagation_flag)
            .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
            .unwrap_or(rslave);
        if self.own_mount_ns {
            mount(NONE, "/", NONE, root_prop, NONE).at("set propagation of", "/")?;
            if root_prop.intersects(MsFlags::MS_SHARED) {
                make_parent_mount_private(self.rootfs)?;
            }
            mount(
                Some(self.rootfs),
                self.rootfs,
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                NONE,
            )
            .at("bind mount rootfs", self.rootfs)?;
        }

        let root = nix::fcntl::open(
            self.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .at("open rootfs", self.rootfs)?;
        // SAFETY: fresh descriptor from open.
        let root: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(root) };
        // where the rootfs is, for check_proc_target: the same for every mount
        let root_path =
            std::fs::read_link(fd_path(root.as_raw_fd())).map_err(|e| Error::io("rootfs", e))?;
        let root = Root {
            fd: root.as_fd(),
            path: &root_path,
        };

        let mounts = self.spec.mounts().as_deref().unwrap_or_default();
        for (i, m) in mounts.iter().enumerate() {
            match self.idmapped.iter().find(|(j, _)| *j == i) {
                Some((_, tree)) => self.mount_idmapped(&root, m, *tree)?,
                None => self.mount_one(&root, m)?,
            }
        }
        // Like runc, a missing process.cwd is created (inside the rootfs).
        if let Some(p) = self.spec.process().as_ref() {
            fsutil::mkdir_all_in_root(root.fd, p.cwd(), Mode::from_bits_truncate(0o755))
                .at("create process.cwd", p.cwd())?;
        }
        let dev_is_bind = mounts.iter().any(|m| {
            m.destination() == Path::new("/dev")
                && MountOptions::parse(m.options().as_deref().unwrap_or_default())
                    .flags
                    .contains(MsFlags::MS_BIND)
        });
        if !dev_is_bind {
            self.create_devices(root.fd)?;
            dev_symlinks(root.fd, mounts)?;
        }
        Ok(())
    }

    /// Attach a tree the parent id-mapped (idmap.rs) at the destination.
    fn mount_idmapped(&self, root: &Root, m: &Mount, tree: RawFd) -> Result<()> {
        let dest = m.destination();
        // a directory tree or a single bound file
        let is_dir = nix::sys::stat::fstat(tree)
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .unwrap_or(true);
        let target = if is_dir {
            fsutil::mkdir_all_in_root(root.fd, dest, Mode::from_bits_truncate(0o755))
        } else {
            fsutil::create_file_in_root(root.fd, dest)
        }
        .at("create mount point", dest)?;
        check_proc_target(root, dest, &target, false)?;
        crate::idmap::attach(tree, target.as_raw_fd(), dest)
    }

    fn mount_one(&self, root: &Root, m: &Mount) -> Result<()> {
        let dest = m.destination();
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || opts.flags.contains(MsFlags::MS_BIND);
        let source = m.source().clone().map(|s| {
            if is_bind && s.is_relative() {
                self.bundle.join(s)
            } else {
                s
            }
        });
        debug!(?dest, typ, ?source, ?opts, "mount");
        let dir_mode = Mode::from_bits_truncate(0o755);
        let target = if is_bind {
            let src = source.as_deref().ok_or_else(|| {
                Error::config(
                    format!("mounts {}", dest.display()),
                    "bind mount without source",
                )
            })?;
            let meta = std::fs::metadata(src).map_err(|e| Error::InvalidConfig {
                field: format!("mounts {}: source", dest.display()),
                msg: format!("{}: {e}", src.display()),
            })?;
            if meta.is_dir() {
                fsutil::mkdir_all_in_root(root.fd, dest, dir_mode)
            } else {
                fsutil::create_file_in_root(root.fd, dest)
            }
        } else {
            fsutil::mkdir_all_in_root(root.fd, dest, dir_mode)
        }
        .at("create mount point", dest)?;
        let proc_source = match (&source, is_bind) {
            (Some(src), true) => nix::sys::statfs::statfs(src.as_path())
                .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC),
            _ => typ == "proc",
        };
        check_proc_target(root, dest, &target, proc_source)?;

        let root = root.fd;
        if typ == "cgroup" {
            return self.mount_cgroup(root, dest, &target, &opts);
        }

        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        let target_path = fd_path(target.as_raw_fd());
        if is_bind {
            let src = source.as_deref().unwrap_or(Path::new(""));
            let bind = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            mount(Some(src), &target_path, NONE, bind, NONE).at("bind mount", dest)?;
            let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !rest.is_empty() {
                let mounted =
                    fsutil::open_in_root(root, dest, OFlag::empty()).at("reopen", dest)?;
                bind_remount(&fd_path(mounted.as_raw_fd()), rest)?;
            }
        } else {
            let src = source
                .as_deref()
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_else(|| typ.into());
            match mount(
                Some(src.as_os_str()),
                &target_path,
                Some(typ),
                opts.flags,
                data,
            ) {
                Err(Errno::EPERM) if typ == "sysfs" => {
                    // Without a network namespace of our own the kernel
                    // refuses a fresh sysfs; runc bind-mounts the host's.
                    mount(
                        Some("/sys"),
                        &target_path,
                        NONE,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        NONE,
                    )
                    .at("bind mount /sys at", dest)?;
                    let mounted =
                        fsutil::open_in_root(root, dest, OFlag::empty()).at("reopen", dest)?;
                    bind_remount(&fd_path(mounted.as_raw_fd()), opts.flags)?;
                }
                r => r.map_err(|e| Error::Sys {
                    op: format!(
                        "mount {typ} on {} (options {:?})",
                        dest.display(),
                        m.options()
                    ),
                    errno: e,
                })?,
            }
        }
        self.apply_propagation(root, dest, &opts)
    }

    fn apply_propagation(&self, root: BorrowedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
        if opts.propagation.is_empty() {
            return Ok(());
        }
        let mounted = fsutil::open_in_root(root, dest, OFlag::empty()).at("reopen", dest)?;
        for p in &opts.propagation {
            mount(NONE, &fd_path(mounted.as_raw_fd()), NONE, *p, NONE)
                .at("set propagation of", dest)?;
        }
        Ok(())
    }

    /// `type: cgroup`: with a cgroup namespace mount fresh cgroup filesystems
    /// (their root is the container's cgroup); without one, bind the
    /// container's own cgroup directories so the host tree stays hidden.
    fn mount_cgroup(
        &self,
        root: BorrowedFd,
        dest: &Path,
        target: &OwnedFd,
        opts: &MountOptions,
    ) -> Result<()> {
        let ro = opts.flags.contains(MsFlags::MS_RDONLY);
        let flags = (opts.flags & !MsFlags::MS_RDONLY)
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        let hierarchies = host_hierarchies();
        // rrun's own cgroups, only for binds without a cgroup namespace
        let own = std::cell::OnceCell::new();
        let own = || own.get_or_init(own_cgroup_paths);
        let target_path = fd_path(target.as_raw_fd());
        if let Some(unified) = hierarchies
            .iter()
            .find(|h| h.mount_point == Path::new("/sys/fs/cgroup") && h.is_v2())
        {
            let _ = unified;
            if self.new_cgroupns {
                mount(Some("cgroup2"), &target_path, Some("cgroup2"), flags, NONE)
                    .at("mount cgroup2 on", dest)?;
            } else {
                let src = Path::new("/sys/fs/cgroup").join(
                    own()
                        .get("")
                        .map(|s| s.trim_start_matches('/'))
                        .unwrap_or(""),
                );
                mount(
                    Some(&src),
                    &target_path,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .at("bind mount cgroup on", dest)?;
            }
            if ro {
                let m = fsutil::open_in_root(root, dest, OFlag::empty()).at("reopen", dest)?;
                bind_remount(&fd_path(m.as_raw_fd()), MsFlags::MS_RDONLY | flags)?;
            }
            return self.apply_propagation(root, dest, opts);
        }
        // cgroup v1 or hybrid: a tmpfs with one mount per hierarchy.
        mount(
            Some("tmpfs"),
            &target_path,
            Some("tmpfs"),
            flags,
            Some("mode=755"),
        )
        .at("mount tmpfs for cgroups on", dest)?;
        // The tmpfs just mounted, made and seen by nobody else: one mount
        // point per hierarchy by its plain name, never a symlink.
        let tmpfs = fsutil::open_in_root(root, dest, OFlag::O_DIRECTORY).at("reopen", dest)?;
        let in_tmpfs = |name: &std::ffi::OsStr, extra: OFlag| -> nix::Result<OwnedFd> {
            let fd = nix::fcntl::openat(
                Some(tmpfs.as_raw_fd()),
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | extra,
                Mode::empty(),
            )?;
            // SAFETY: fresh descriptor from openat.
            Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
        };
        for h in hierarchies {
            let Some(name) = h.mount_point.file_name() else {
                continue;
            };
            let sub = dest.join(name);
            match nix::sys::stat::mkdirat(
                Some(tmpfs.as_raw_fd()),
                name,
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::path("create cgroup mount point", &sub, e)),
            }
            let fd = in_tmpfs(name, OFlag::O_DIRECTORY).at("create cgroup mount point", &sub)?;
            let p = fd_path(fd.as_raw_fd());
            if self.new_cgroupns {
                let (fstype, data) = if h.is_v2() {
                    ("cgroup2", None)
                } else {
                    ("cgroup", Some(h.options.as_str()))
                };
                mount(Some(fstype), &p, Some(fstype), flags, data).at("mount cgroup on", &sub)?;
            } else {
                let rel = own()
                    .get(&h.key())
                    .map(|s| s.trim_start_matches('/'))
                    .unwrap_or("");
                let src = h.mount_point.join(rel);
                mount(
                    Some(&src),
                    &p,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .at("bind mount cgroup on", &sub)?;
            }
            if ro {
                // the hierarchy now mounted there
                let m = in_tmpfs(name, OFlag::empty()).at("reopen", &sub)?;
                bind_remount(&fd_path(m.as_raw_fd()), MsFlags::MS_RDONLY | flags)?;
            }
        }
        // Co-mounted controllers are reached through symlinks (cpu -> cpu,cpuacct).
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_symlink()) {
                    continue;
                }
                if let Ok(link) = std::fs::read_link(e.path()) {
                    let _ =
                        fsutil::symlink_at(tmpfs.as_fd(), &e.file_name(), &link.to_string_lossy());
                }
            }
        }
        if ro {
            bind_remount(&fd_path(tmpfs.as_raw_fd()), MsFlags::MS_RDONLY | flags)?;
        }
        self.apply_propagation(root, dest, opts)
    }

    fn create_devices(&self, root: BorrowedFd) -> Result<()> {
        let mut devices: Vec<LinuxDevice> = default_devices();
        if let Some(extra) = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
        {
            devices.retain(|d| !extra.iter().any(|e| e.path() == d.path()));
            devices.extend(extra.iter().cloned());
        }
        // the directory of the last node: most are in /dev
        let mut dir: Option<(&Path, OwnedFd)> = None;
        for d in &devices {
            self.create_device(root, d, &mut dir)?;
        }
        Ok(())
    }

    fn create_device<'d>(
        &self,
        root: BorrowedFd,
        d: &'d LinuxDevice,
        last_dir: &mut Option<(&'d Path, OwnedFd)>,
    ) -> Result<()> {
        let path = d.path();
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path.file_name().ok_or_else(|| {
            Error::config("linux.devices", format!("bad path {}", path.display()))
        })?;
        if self.in_userns {
            // mknod is not allowed in a user namespace: bind the host node.
            let target = fsutil::create_file_in_root(root, path).at("create device", path)?;
            return mount(
                Some(path),
                &fd_path(target.as_raw_fd()),
                NONE,
                MsFlags::MS_BIND,
                NONE,
            )
            .at("bind mount device", path);
        }
        if last_dir.as_ref().is_none_or(|(p, _)| *p != parent) {
            let fd = fsutil::mkdir_all_in_root(root, parent, Mode::from_bits_truncate(0o755))
                .at("create device dir", parent)?;
            *last_dir = Some((parent, fd));
        }
        let (_, dir) = last_dir.as_ref().expect("just set");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(
                    format!("linux.devices {}", path.display()),
                    "type \"a\" is not a device node type",
                ))
            }
        };
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        let dev = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
        let mknod = || nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, mode, dev);
        match mknod() {
            // something is there already (the image's node): replace it
            Err(Errno::EEXIST) => {
                let _ = nix::unistd::unlinkat(
                    Some(dir.as_raw_fd()),
                    name,
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                );
                mknod()
            }
            r => r,
        }
        .at("mknod", path)?;
        // mknod applies the umask; set the exact mode and owner.
        nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            name,
            mode,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })
        .at("chmod", path)?;
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(nix::unistd::Uid::from_raw(d.uid().unwrap_or(0))),
            Some(nix::unistd::Gid::from_raw(d.gid().unwrap_or(0))),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .at("chown", path)
    }
}

/// The files under /proc a mount may cover: the ones lxcfs emulates
/// (runc's list).
const PROC_MOUNTABLE: [&str; 9] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
];

/// Refuse a mount whose target, resolved inside the rootfs, is in /proc
/// (or on any procfs), as runc does since CVE-2019-16884 and
/// CVE-2019-19921: covering /proc/self/attr, /proc/sys/kernel/... would
/// redirect what the runtime or the kernel writes there. Allowed: /proc
/// itself for a proc filesystem (`proc_source`: a fresh proc or a bind of
/// one), and the files lxcfs emulates.
fn check_proc_target(root: &Root, dest: &Path, target: &OwnedFd, proc_source: bool) -> Result<()> {
    let resolved = std::fs::read_link(fd_path(target.as_raw_fd())).map_err(|e| {
        Error::config(
            format!("mounts {}", dest.display()),
            format!("cannot tell where the destination is: {e}"),
        )
    })?;
    let inside = Path::new("/").join(resolved.strip_prefix(root.path).unwrap_or(&resolved));
    let on_procfs = nix::sys::statfs::fstatfs(target)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    if !inside.starts_with("/proc") && !on_procfs {
        return Ok(());
    }
    let refuse = |why: String| Err(Error::config(format!("mounts {}", dest.display()), why));
    if inside == Path::new("/proc") {
        if proc_source {
            return Ok(());
        }
        return refuse("only a proc filesystem may be mounted on /proc".into());
    }
    let id =
        |fd: BorrowedFd| nix::sys::stat::fstat(fd.as_raw_fd()).map(|st| (st.st_dev, st.st_ino));
    let target_id = id(target.as_fd()).at("stat", dest)?;
    for allowed in PROC_MOUNTABLE {
        let Ok(fd) = fsutil::open_in_root(root.fd, Path::new(allowed), OFlag::empty()) else {
            continue;
        };
        if id(fd.as_fd()).is_ok_and(|i| i == target_id) {
            return Ok(());
        }
    }
    refuse(format!(
        "the destination is {}, inside /proc: nothing may be mounted there but proc on /proc and the files lxcfs emulates ({})",
        inside.display(),
        PROC_MOUNTABLE.join(", ")
    ))
}

fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(p));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    })
    .collect()
}

fn dev_symlinks(root: BorrowedFd, mounts: &[Mount]) -> Result<()> {
    let mut links = vec![
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    if mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts"))
    {
        links.push(("/dev/ptmx", "pts/ptmx"));
    }
    let dev = fsutil::mkdir_all_in_root(root, Path::new("/dev"), Mode::from_bits_truncate(0o755))
        .at("create", "/dev")?;
    for (path, target) in links {
        let name = Path::new(path).file_name().expect("a /dev path");
        fsutil::symlink_at(dev.as_fd(), name, target).at("symlink", path)?;
    }
    Ok(())
}

/// The mount containing `path` must not be shared or pivot_root fails.
fn make_parent_mount_private(path: &Path) -> Result<()> {
    let info = fsutil::read_generated("/proc/self/mountinfo", 64 << 10)
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let parent = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"));
    mount(NONE, &parent, NONE, MsFlags::MS_PRIVATE, NONE).at("make private", parent)
}

/// pivot_root(".", ".") then detach the old root, as runc does: no
/// temporary directory inside the rootfs is needed.
fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at("open", "/")?;
    // SAFETY: fresh descriptor from open.
    let old: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(old) };
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at("open", rootfs)?;
    // SAFETY: fresh descriptor from open.
    let new: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(new) };
    nix::unistd::fchdir(new.as_raw_fd()).at("chdir", rootfs)?;
    nix::unistd::pivot_root(".", ".").at("pivot_root", rootfs)?;
    nix::unistd::fchdir(old.as_raw_fd()).at("chdir", "old root")?;
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .at("make old root slave", "/")?;
    umount2(".", MntFlags::MNT_DETACH).at("unmount old root", "/")?;
    nix::unistd::chdir("/").at("chdir", "/")
}

/// `--no-pivot`: move the rootfs over `/` and chroot into it.
fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).at("chdir", rootfs)?;
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE).at("move rootfs to /", rootfs)?;
    nix::unistd::chroot(".").at("chroot", rootfs)?;
    nix::unistd::chdir("/").at("chdir", "/")
}

/// After the switch: masked and read-only paths, read-only root, final
/// propagation of `/`.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let p = Path::new(p);
        match mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
            Err(Errno::ENOENT) => continue,
            r => r.at("bind mount readonly path", p)?,
        }
        bind_remount(p, MsFlags::MS_RDONLY | MsFlags::MS_REC)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        bind_remount(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    if let Some(prop) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        mount(NONE, "/", NONE, prop, NONE).at("set propagation of", "/")?;
    }
    Ok(())
}

fn mask_path(p: &Path) -> Result<()> {
    match mount(Some("/dev/null"), p, NONE, MsFlags::MS_BIND, NONE) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .at("mask", p),
        Err(e) => Err(Error::path("mask", p, e)),
    }
}

/// Write `linux.sysctl` (after /proc of the container is mounted).
pub fn apply_sysctl(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (k, v) in sysctl {
        let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| Error::InvalidConfig {
            field: format!("linux.sysctl.{k}"),
            msg: format!("write {}: {e}", path.display()),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_like_runc() {
        let o = MountOptions::parse(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rslave".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(
            o.data,
            vec!["mode=755".to_string(), "size=65536k".to_string()]
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        let o = MountOptions::parse(&["rbind".into(), "ro".into(), "rw".into()]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }

    #[test]
    fn unknown_propagation_is_none() {
        assert!(propagation_flag("rshared").is_some());
        assert!(propagation_flag("sideways").is_none());
    }
}
