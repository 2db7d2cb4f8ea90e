//! Test harness: busybox bundles and the `rrun` binary under test.
//!
//! Every test gets its own state root, container ids, bundle directory and
//! cgroup path; `Runtime`'s Drop kills and deletes whatever the test made,
//! also when the test panics. The binary comes from `RRUN_BIN` (the
//! Makefile sets it), else target/release/rrun or target/debug/rrun. The
//! suite speaks only runc's CLI, so `RRUN_BIN=runc` runs it against runc.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

pub use oci_spec::runtime;
pub use serde_json::{json, Value};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique in this machine's lifetime-ish: test name, pid, counter.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "run as root: make test");
}

pub fn rrun_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RRUN_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    for p in ["target/release/rrun", "target/debug/rrun"] {
        if ws.join(p).exists() {
            return ws.join(p);
        }
    }
    panic!("no rrun binary: run `cargo build --release` or set RRUN_BIN");
}

/// True when the binary under test is runc (used only to skip rrun-only checks).
pub fn testing_runc() -> bool {
    rrun_bin().file_name().is_some_and(|n| n == "runc")
}

/// A bundle in a temp dir: busybox rootfs + a config.json written from `spec`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub spec: Spec,
}

impl Bundle {
    /// busybox rootfs and runc's default spec with `args`, no terminal, a
    /// writable root and a unique cgroup path.
    pub fn busybox(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-bundle")
            .tempdir()
            .unwrap();
        make_rootfs(&dir.path().join("rootfs"));
        let mut spec = Spec::default();
        spec.set_hostname(Some("rrun-test".into()));
        let mut root = spec.root().clone().unwrap();
        root.set_readonly(Some(false));
        spec.set_root(Some(root));
        let mut p = spec.process().clone().unwrap();
        p.set_terminal(Some(false));
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        spec.set_process(Some(p));
        let mut linux = spec.linux().clone().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from(format!("/{}", unique("rrun-test")))));
        spec.set_linux(Some(linux));
        let b = Bundle { dir, spec };
        b.write();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Change the spec (as JSON, to reach any field) and rewrite config.json.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        let mut v = serde_json::to_value(&self.spec).unwrap();
        f(&mut v);
        self.spec = serde_json::from_value(v).expect("edited spec must stay valid");
        self.write();
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

    pub fn add_namespace(&mut self, typ: &str, path: Option<&str>) {
        self.edit(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != typ);
            let mut n = json!({"type": typ});
            if let Some(p) = path {
                n["path"] = p.into();
            }
            ns.push(n);
        });
    }

    pub fn has_namespace(&self, t: LinuxNamespaceType) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n: &Vec<LinuxNamespace>| n.iter().any(|n| n.typ() == t))
    }
}

fn make_rootfs(rootfs: &Path) {
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
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
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

/// One state root for one test; Drop removes every container it made.
pub struct Runtime {
    pub root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("rrun-test-root")
                .tempdir()
                .unwrap(),
            ids: Default::default(),
        }
    }

    pub fn id(&self, prefix: &str) -> String {
        let id = unique(prefix);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(rrun_bin());
        c.arg("--root").arg(self.root.path());
        c.stdin(Stdio::null());
        c
    }

    /// Run `rrun --root R ARGS...` and capture its output. Output goes
    /// through files, not pipes: a created container inherits rrun's stdio
    /// and would hold a pipe open long after rrun exits.
    pub fn cmd(&self, args: &[&str]) -> Output {
        output_via_files(self.command().args(args))
    }

    /// `rrun run -b BUNDLE ID` in the foreground, output captured.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd(&["run", "-b", bundle.path().to_str().unwrap(), id])
    }

    /// Run and demand success; returns stdout.
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let id = self.id("run");
        let out = self.run(bundle, &id);
        assert_ok(&out, "run");
        stdout(&out)
    }

    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd(&["create", "-b", bundle.path().to_str().unwrap(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        assert_ok(&out, "state");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Poll until the container reaches `status` (or panic after 5 s).
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let s = self.status(id);
            if s == status {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}: status {s}, want {status}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// `create` + `start` of a long-running container; returns its id.
    pub fn start_detached(&self, bundle: &Bundle) -> String {
        let id = self.id("ctr");
        assert_ok(&self.create(bundle, &id), "create");
        assert_ok(&self.cmd(&["start", &id]), "start");
        id
    }

    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        self.exec_with(&[], id, args)
    }

    /// `exec FLAGS ID ARGS`: flags go before the id, as runc requires.
    pub fn exec_with(&self, flags: &[&str], id: &str, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(flags);
        a.push(id);
        a.extend_from_slice(args);
        self.cmd(&a)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["kill", id, "KILL"]);
            let _ = self.cmd(&["delete", "--force", id]);
        }
    }
}

/// Like `Command::output`, but stdout/stderr are temp files, so a child that
/// outlives the command (a container) cannot block us.
pub fn output_via_files(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Every cgroup directory named `path` in any hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(rel))
        .filter(|p| p.exists())
        .collect()
}

/// The cgroup v1 directory of `controller` for `path` (this host is hybrid/v1)
/// or the cgroup2 directory on a pure v2 host.
pub fn cgroup_file(controller: &str, path: &str, file: &str) -> Option<String> {
    let rel = path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel)
        .join(file);
    let v2 = Path::new("/sys/fs/cgroup").join(rel).join(file);
    std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Mount points currently in this mount namespace below `prefix`.
pub fn mounts_under(prefix: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| Path::new(m).starts_with(prefix))
        .collect()
}
