//! Bundles: a busybox rootfs and a config.json written from an oci-spec
//! `Spec`, with mutators that rewrite it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{
    self, Capability, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process, Spec,
    UserBuilder,
};
use serde_json::{json, Value};

use crate::unique;

/// Build a busybox rootfs in `rootfs`: /bin/busybox plus one symlink per
/// applet, /etc/passwd and /etc/group (root, user 1000, nobody), the usual
/// empty directories and a marker file `/marker-inside-rootfs`.
pub fn busybox_rootfs(rootfs: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "busybox-static is missing: apt-get install busybox-static (make deps)"
    );
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    // a copy, not a hard link: some tests chown the rootfs
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in busybox_applets() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nnobody:x:65534:\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("marker-inside-rootfs"), "rootfs\n").unwrap();
}

/// `tar -C dir -cf out .`, numeric owners and xattrs kept.
pub fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar -C {} failed", dir.display());
}

/// A busybox rootfs ([`busybox_rootfs`]), changed by `edit`, as the tarball
/// `dir/NAME.tar` (for an image import); the rootfs itself is removed.
pub fn busybox_tar(dir: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let rootfs = dir.join(format!("{name}-rootfs"));
    busybox_rootfs(&rootfs);
    edit(&rootfs);
    let tar = dir.join(format!("{name}.tar"));
    tar_dir(&rootfs, &tar);
    std::fs::remove_dir_all(&rootfs).unwrap();
    tar
}

fn busybox_applets() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new("/bin/busybox").arg("--list").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    })
}

/// A capability set from runc-style names ("CAP_KILL").
pub fn caps(names: &[&str]) -> HashSet<Capability> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value(json!(n)).unwrap_or_else(|_| panic!("unknown capability {n}"))
        })
        .collect()
}

/// The /proc/<pid>/status mask (16 hex digits) of capability names.
pub fn cap_mask(names: &[&str]) -> String {
    let mut mask = 0u64;
    for n in names {
        let bit = match *n {
            "CAP_CHOWN" => 0,
            "CAP_DAC_OVERRIDE" => 1,
            "CAP_FOWNER" => 3,
            "CAP_FSETID" => 4,
            "CAP_KILL" => 5,
            "CAP_SETGID" => 6,
            "CAP_SETUID" => 7,
            "CAP_SETPCAP" => 8,
            "CAP_NET_BIND_SERVICE" => 10,
            "CAP_NET_ADMIN" => 12,
            "CAP_NET_RAW" => 13,
            "CAP_SYS_CHROOT" => 18,
            "CAP_SYS_ADMIN" => 21,
            "CAP_SYS_RESOURCE" => 24,
            "CAP_MKNOD" => 27,
            "CAP_AUDIT_WRITE" => 29,
            "CAP_SETFCAP" => 31,
            other => panic!("add {other} to cap_mask"),
        };
        mask |= 1 << bit;
    }
    format!("{mask:016x}")
}

/// A mount entry for `Bundle::add_mount`.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap()
}

/// A bundle in a temp dir: busybox rootfs + a config.json written from `spec`.
/// Every mutator rewrites config.json.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub spec: Spec,
}

impl Bundle {
    /// busybox rootfs and the default spec (runc's `spec` output) with
    /// `args`, no terminal, a writable root, hostname `rrun-test` and a
    /// unique cgroup path `/rrun-test-<pid>-<n>`.
    pub fn busybox(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-bundle")
            .tempdir()
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let mut spec = Spec::default();
        spec.set_hostname(Some("rrun-test".into()));
        spec.root_mut().as_mut().unwrap().set_readonly(Some(false));
        let p = spec.process_mut().as_mut().unwrap();
        p.set_terminal(Some(false));
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(PathBuf::from(format!("/{}", unique("rrun-test")))));
        let b = Bundle { dir, spec };
        b.write();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Change the spec as JSON (any field, also ones oci-spec would
    /// refuse to build) and rewrite config.json.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        let mut v = serde_json::to_value(&self.spec).unwrap();
        f(&mut v);
        self.spec = serde_json::from_value(v).expect("edited spec must stay valid");
        self.write();
    }

    /// Change the spec through oci-spec's setters and rewrite config.json.
    pub fn with_spec(&mut self, f: impl FnOnce(&mut Spec)) {
        f(&mut self.spec);
        self.write();
    }

    pub fn with_process(&mut self, f: impl FnOnce(&mut Process)) {
        self.with_spec(|s| f(s.process_mut().as_mut().unwrap()));
    }

    pub fn with_linux(&mut self, f: impl FnOnce(&mut runtime::Linux)) {
        self.with_spec(|s| f(s.linux_mut().as_mut().unwrap()));
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.with_process(|p| {
            p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        });
    }

    pub fn set_env(&mut self, env: &[&str]) {
        self.with_process(|p| {
            p.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        });
    }

    pub fn set_cwd(&mut self, cwd: &str) {
        self.with_process(|p| {
            p.set_cwd(cwd.into());
        });
    }

    pub fn set_terminal(&mut self, on: bool) {
        self.with_process(|p| {
            p.set_terminal(Some(on));
        });
    }

    pub fn set_user(&mut self, uid: u32, gid: u32, additional_gids: &[u32], umask: Option<u32>) {
        let mut u = UserBuilder::default()
            .uid(uid)
            .gid(gid)
            .additional_gids(additional_gids.to_vec())
            .build()
            .unwrap();
        u.set_umask(umask);
        self.with_process(|p| {
            p.set_user(u);
        });
    }

    /// Soft and hard limit of one rlimit, replacing any other of that type.
    pub fn set_rlimit(&mut self, typ: PosixRlimitType, soft: u64, hard: u64) {
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap();
        self.with_process(|p| {
            let mut all = p.rlimits().clone().unwrap_or_default();
            all.retain(|x| x.typ() != typ);
            all.push(r);
            p.set_rlimits(Some(all));
        });
    }

    /// The five capability sets, by runc name.
    pub fn set_capabilities(
        &mut self,
        bounding: &[&str],
        effective: &[&str],
        permitted: &[&str],
        inheritable: &[&str],
        ambient: &[&str],
    ) {
        let c = LinuxCapabilitiesBuilder::default()
            .bounding(caps(bounding))
            .effective(caps(effective))
            .permitted(caps(permitted))
            .inheritable(caps(inheritable))
            .ambient(caps(ambient))
            .build()
            .unwrap();
        self.with_process(|p| {
            p.set_capabilities(Some(c));
        });
    }

    pub fn set_hostname(&mut self, name: &str) {
        self.with_spec(|s| {
            s.set_hostname(Some(name.into()));
        });
    }

    pub fn add_mount(&mut self, m: Mount) {
        self.with_spec(|s| {
            let mut all = s.mounts().clone().unwrap_or_default();
            all.push(m);
            s.set_mounts(Some(all));
        });
    }

    /// `linux.resources` as config.json JSON (cgroup settings read best
    /// in the format of the spec itself).
    pub fn set_resources(&mut self, resources: Value) {
        self.edit(|v| v["linux"]["resources"] = resources);
    }

    /// Add (or replace) a namespace of type `typ` ("network", "user",
    /// "time"...), joining `path` when given.
    pub fn add_namespace(&mut self, typ: &str, path: Option<&str>) {
        let typ: LinuxNamespaceType = serde_json::from_value(json!(typ)).unwrap();
        let mut ns = LinuxNamespaceBuilder::default().typ(typ).build().unwrap();
        ns.set_path(path.map(PathBuf::from));
        self.with_linux(|l| {
            let mut all = l.namespaces().clone().unwrap_or_default();
            all.retain(|n| n.typ() != typ);
            all.push(ns);
            l.set_namespaces(Some(all));
        });
    }

    pub fn remove_namespace(&mut self, typ: LinuxNamespaceType) {
        self.with_linux(|l| {
            let mut all = l.namespaces().clone().unwrap_or_default();
            all.retain(|n| n.typ() != typ);
            l.set_namespaces(Some(all));
        });
    }

    pub fn has_namespace(&self, t: LinuxNamespaceType) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n: &Vec<LinuxNamespace>| n.iter().any(|n| n.typ() == t))
    }

    /// Write raw JSON (may be invalid on purpose).
    pub fn write_raw(&self, data: &str) {
        std::fs::write(self.dir.path().join("config.json"), data).unwrap();
    }

    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_string_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    pub fn cgroup_path(&self) -> String {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

// Short names for the test files.
pub use oci_spec::runtime::LinuxNamespaceType as NsType;
pub use oci_spec::runtime::PosixRlimitType as Rlimit;
