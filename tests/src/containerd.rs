//! A private containerd daemon for a test: config, root, state and sockets
//! in a temp dir; `ctr` pointed at it. Dropping it stops the daemon and
//! removes what containerd keeps under /run/containerd whatever its config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{assert_ok, stdout, wait_for};

/// containerd shares /run/containerd between daemons: one daemon at a time.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

/// For a test that starts shims without containerd: they too keep their
/// sockets in /run/containerd/s. Serializes with the daemons, and removes
/// /run/containerd on drop if it did not exist.
pub struct RunContainerd {
    had_run_containerd: bool,
    _one: MutexGuard<'static, ()>,
}

impl RunContainerd {
    pub fn take() -> RunContainerd {
        let one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
        RunContainerd {
            had_run_containerd: Path::new("/run/containerd").exists(),
            _one: one,
        }
    }
}

impl Drop for RunContainerd {
    fn drop(&mut self) {
        if !self.had_run_containerd {
            let _ = std::fs::remove_dir_all("/run/containerd");
        }
    }
}

pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    /// Prepended to the daemon's PATH (where it finds shims).
    path_prefix: Option<PathBuf>,
    daemon: Option<Child>,
    /// containerd keeps shim sockets, fifos and the runc shim's state root
    /// under /run/containerd whatever its config says.
    had_run_containerd: bool,
    /// What /run/containerd/{fifo,s} held before: what this daemon's ctr
    /// and shims leave there (fifos of killed tasks, a killed shim's
    /// socket) goes on drop.
    run_entries: Vec<PathBuf>,
    _one: MutexGuard<'static, ()>,
}

/// The fifo dirs and sockets containerd and ctr keep under /run/containerd.
fn run_entries() -> Vec<PathBuf> {
    ["fifo", "s"]
        .iter()
        .filter_map(|d| std::fs::read_dir(Path::new("/run/containerd").join(d)).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .collect()
}

impl Containerd {
    /// Starts a daemon whose PATH begins with `path_prefix` (if given),
    /// with its CRI plugin disabled.
    pub fn start(namespace: &str, path_prefix: Option<&Path>) -> Containerd {
        Containerd::start_with(namespace, path_prefix, |_| {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".into()
        })
    }

    /// [`Containerd::start`] with more configuration: `extra` gets the
    /// daemon's dir and returns TOML that goes after the top-level `root`
    /// and `state` (top-level keys, or tables such as `[plugins."..."]`).
    pub fn start_with(
        namespace: &str,
        path_prefix: Option<&Path>,
        extra: impl FnOnce(&Path) -> String,
    ) -> Containerd {
        let one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-ctd")
            .tempdir()
            .unwrap();
        let d = dir.path().display();
        let extra = extra(dir.path());
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 {extra}\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n"
            ),
        )
        .unwrap();
        let mut c = Containerd {
            dir,
            namespace: namespace.into(),
            path_prefix: path_prefix.map(Path::to_path_buf),
            daemon: None,
            had_run_containerd: Path::new("/run/containerd").exists(),
            run_entries: run_entries(),
            _one: one,
        };
        c.restart();
        c
    }

    /// The daemon's gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// Starts the daemon (again, after [`Containerd::stop`]).
    pub fn restart(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("containerd.log"))
            .unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(p) = &self.path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", p.display()));
        }
        self.daemon = Some(
            cmd.spawn()
                .expect("containerd is missing (make deps installs it)"),
        );
        wait_for("containerd to listen", Duration::from_secs(10), || {
            self.ctr(&["version"]).status.success()
        });
    }

    /// Kills the daemon (its shims and containers go on).
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` for our daemon and namespace, killed if it hangs for 2 minutes.
    pub fn ctr_command(&self) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "120", "ctr", "-a"])
            .arg(self.dir.path().join("containerd.sock"))
            .args(["-n", &self.namespace]);
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        crate::output_via_files(self.ctr_command().args(args).stdin(Stdio::null()))
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert_ok(&out, &format!("ctr {args:?}"));
        stdout(&out)
    }

    /// `ctr task ls` as (id, pid, status) rows.
    pub fn tasks(&self) -> Vec<(String, i32, String)> {
        self.ok(&["task", "ls"])
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    pub fn task_status(&self, id: &str) -> Option<String> {
        self.tasks().into_iter().find(|t| t.0 == id).map(|t| t.2)
    }

    /// Imports an OCI image archive of a busybox root filesystem as `name`.
    pub fn import_busybox(&self, name: &str) {
        let archive = busybox_oci_archive(self.dir.path(), name);
        self.ok(&["images", "import", archive.to_str().unwrap()]);
        let _ = std::fs::remove_file(archive);
    }

    /// Imports `rootfs` as the one-layer image `name` whose runtime
    /// configuration (Env, Cmd, Entrypoint...) is `config`.
    pub fn import_image(&self, name: &str, rootfs: &Path, config: serde_json::Value) {
        let archive = oci_archive(self.dir.path(), name, rootfs, config);
        self.ok(&["images", "import", archive.to_str().unwrap()]);
        let _ = std::fs::remove_file(archive);
    }

    /// Kills and deletes every task and container of our namespace.
    pub fn remove_all(&self) {
        for (id, _, _) in self.tasks_quiet() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", &id]);
            let _ = self.ctr(&["task", "delete", "-f", &id]);
        }
        let out = self.ctr(&["container", "ls", "-q"]);
        for id in stdout(&out).lines() {
            let _ = self.ctr(&["container", "delete", id]);
        }
    }

    fn tasks_quiet(&self) -> Vec<(String, i32, String)> {
        if self.daemon.is_none() {
            return vec![];
        }
        let out = self.ctr(&["task", "ls"]);
        stdout(&out)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            self.remove_all();
            let out = self.ctr(&["images", "ls", "-q"]);
            for img in stdout(&out).lines() {
                let _ = self.ctr(&["images", "rm", img]);
            }
        }
        self.stop();
        // the snapshotter's mounts, if a task was left behind
        let mut mounts = crate::mounts_under(self.dir.path());
        mounts.reverse();
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for sub in ["runc", "rrun"] {
            let _ = std::fs::remove_dir_all(
                Path::new("/run/containerd").join(sub).join(&self.namespace),
            );
        }
        if !self.had_run_containerd {
            let _ = std::fs::remove_dir_all("/run/containerd");
            return;
        }
        for e in run_entries() {
            if self.run_entries.contains(&e) {
                continue;
            }
            if e.is_dir() {
                let _ = std::fs::remove_dir_all(&e);
            } else if matches!(std::os::unix::net::UnixStream::connect(&e),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused)
            {
                // nobody serves it: a killed shim's
                let _ = std::fs::remove_file(&e);
            }
        }
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

/// Writes a blob into an OCI layout's blobs/sha256, returning (digest, size).
fn blob(layout: &Path, from: &Path) -> (String, u64) {
    let hex = sha256(from);
    let size = std::fs::metadata(from).unwrap().len();
    std::fs::rename(from, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), size)
}

/// An OCI image archive (a tar of an OCI layout) holding one uncompressed
/// layer: a busybox root filesystem from busybox-static.
pub fn busybox_oci_archive(dir: &Path, name: &str) -> PathBuf {
    let rootfs = dir.join("busybox-rootfs");
    crate::busybox_rootfs(&rootfs);
    let archive = oci_archive(
        dir,
        name,
        &rootfs,
        serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]}),
    );
    std::fs::remove_dir_all(&rootfs).unwrap();
    archive
}

/// An OCI image archive in `dir` (a tar of an OCI layout, its index naming
/// the image `name` as `ctr images import` reads it) holding `rootfs` as one
/// uncompressed layer, with `config` as the image's runtime configuration.
pub fn oci_archive(dir: &Path, name: &str, rootfs: &Path, config: serde_json::Value) -> PathBuf {
    let work = dir.join("oci-image");
    let layout = work.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer = work.join("layer.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--owner=0", "--group=0", "-cf"])
        .arg(&layer)
        .arg(".")
        .output()
        .unwrap();
    assert_ok(&out, "tar");
    let (layer_digest, layer_size) = blob(&layout, &layer);
    let config_file = work.join("config.json");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    std::fs::write(
        &config_file,
        serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        })
        .to_string(),
    )
    .unwrap();
    let (config_digest, config_size) = blob(&layout, &config_file);
    let manifest = work.join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer_size,
            }],
        })
        .to_string(),
    )
    .unwrap();
    let (manifest_digest, manifest_size) = blob(&layout, &manifest);
    std::fs::write(
        layout.join("index.json"),
        serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"io.containerd.image.name": name},
            }],
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        "{\"imageLayoutVersion\":\"1.0.0\"}",
    )
    .unwrap();
    let archive = dir.join("image-oci.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .output()
        .unwrap();
    assert_ok(&out, "tar");
    let _ = std::fs::remove_dir_all(&work);
    archive
}
