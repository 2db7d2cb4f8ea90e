//! Real callers driving rrun in place of runc: Podman (`--runtime`),
//! containerd's own runc shim (`ctr run --runc-binary`) and Docker
//! (dockerd's `--add-runtime`, `docker run --runtime rrun`). Each test runs
//! its own Podman storage, containerd daemon or dockerd in a temp directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rrun_tests::containerd::Containerd;
use rrun_tests::docker::Dockerd;
use rrun_tests::*;

const IMAGE: &str = "localhost/rrun-busybox:latest";

struct Podman {
    dir: tempfile::TempDir,
    /// Podman (cgroupfs manager) keeps conmon in a `libpod_parent` cgroup
    /// in every hierarchy; remove it afterwards if the test made it.
    had_libpod_parent: bool,
    /// Podman keeps a blob cache in /var/lib/containers whatever --root is.
    had_var_lib_containers: bool,
}

/// Every `libpod_parent` cgroup directory, deepest first.
fn libpod_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > 4 {
            return;
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, depth + 1, out);
                if p.components().any(|c| c.as_os_str() == "libpod_parent") {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 0, &mut out);
    out
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is missing (make deps installs it)"
        );
        let p = Podman {
            dir: tempfile::Builder::new()
                .prefix("rrun-test-podman")
                .tempdir()
                .unwrap(),
            had_libpod_parent: !libpod_cgroups().is_empty(),
            had_var_lib_containers: Path::new("/var/lib/containers").exists(),
        };
        let tar = busybox_tar(p.dir.path(), "busybox", |_| {});
        p.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        p
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            // not the shared /run/libpod: each test its own exit and lock files
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(rrun_bin())
            // the runtime's state root too (else /run/<runtime name>)
            .arg("--runtime-flag")
            .arg(format!("root={}", d.join("runtime").display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert_ok(&out, &format!("podman {args:?}"));
        stdout(&out)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.cmd(&["rmi", "-a", "-f"]);
        let _ = self.cmd(&["system", "reset", "-f"]);
        // podman's overlay driver keeps its storage directory bind-mounted
        let mut mounts = mounts_under(self.dir.path());
        mounts.reverse();
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if !self.had_libpod_parent {
            for d in libpod_cgroups() {
                let _ = std::fs::remove_dir(d);
            }
        }
        if !self.had_var_lib_containers {
            let _ = std::fs::remove_dir_all("/var/lib/containers");
        }
    }
}

/// Limits Podman would otherwise set above this host's hard limits
/// (rrun refuses that clearly; runc fails too).
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

#[test]
#[ignore = "needs root"]
fn podman_runs_containers_with_rrun() {
    require_root();
    let pm = Podman::new();
    fn run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["run", "--network", "none"];
        a.extend(ULIMITS);
        a.extend(extra);
        a
    }
    // --rm in the foreground, with the exit status
    let out = pm.cmd(
        &[run(&[
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "echo hello from podman; exit 7",
        ])]
        .concat(),
    );
    assert_eq!(stdout(&out), "hello from podman\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(7));
    // detached, then exec, top, pause/unpause, kill, rm
    let id = pm
        .ok(&run(&["-d", "--name", "web", IMAGE, "sleep", "1000"]))
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        pm.ok(&["exec", "web", "sh", "-c", "echo in $(hostname)"]),
        format!("in {}\n", &id[..12])
    );
    let top = pm.ok(&["top", "web"]);
    assert!(top.contains("sleep 1000"), "{top}");
    pm.ok(&["pause", "web"]);
    assert_eq!(
        pm.ok(&["inspect", "web", "--format", "{{.State.Status}}"])
            .trim(),
        "paused"
    );
    pm.ok(&["unpause", "web"]);
    assert_eq!(
        pm.ok(&["inspect", "web", "--format", "{{.State.Status}}"])
            .trim(),
        "running"
    );
    pm.ok(&["kill", "web"]);
    assert_eq!(pm.ok(&["wait", "web"]).trim(), "137");
    pm.ok(&["rm", "web"]);
    // init makes a created container (rrun create); rm deletes it, which
    // Podman does with delete --force (a plain delete of a created
    // container fails, as the OCI spec says)
    let mut create = vec!["create", "--network", "none"];
    create.extend(ULIMITS);
    create.extend(["--name", "made", IMAGE, "sleep", "1000"]);
    pm.ok(&create);
    pm.ok(&["init", "made"]);
    assert_eq!(
        pm.ok(&["inspect", "made", "--format", "{{.State.Status}}"])
            .trim(),
        "initialized"
    );
    let made = pm.ok(&["inspect", "made", "--format", "{{.Id}}"]);
    let state = Command::new(rrun_bin())
        .arg("--root")
        .arg(pm.dir.path().join("runtime"))
        .args(["state", made.trim()])
        .output()
        .unwrap();
    assert_ok(&state, "rrun state of Podman's initialized container");
    let state: Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    pm.ok(&["rm", "made"]);
    assert!(pm.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

#[test]
#[ignore = "needs root"]
fn containerd_runc_shim_drives_rrun() {
    require_root();
    // the image: Podman writes an OCI archive offline, ctr imports it
    let pm = Podman::new();
    let ctd = Containerd::start("rrun-test", None);
    let archive = ctd.dir.path().join("busybox-oci.tar");
    pm.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        IMAGE,
    ]);
    ctd.ok(&[
        "images",
        "import",
        "--base-name",
        "localhost/rrun-busybox",
        archive.to_str().unwrap(),
    ]);
    let rrun = rrun_bin();
    let rrun = rrun.to_str().unwrap();

    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rrun,
        IMAGE,
        "t-rm",
        "sh",
        "-c",
        "echo hello from containerd; exit 3",
    ]);
    assert_eq!(stdout(&out), "hello from containerd\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(3));

    ctd.ok(&[
        "run",
        "-d",
        "--runc-binary",
        rrun,
        IMAGE,
        "t-d",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        ctd.ok(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "t-d",
            "sh",
            "-c",
            "echo exec ok"
        ]),
        "exec ok\n"
    );
    let ps = ctd.ok(&["task", "ps", "t-d"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");
    let status = |c: &Containerd| -> String {
        c.ok(&["task", "ls"])
            .lines()
            .find(|l| l.starts_with("t-d "))
            .and_then(|l| l.split_whitespace().nth(2).map(String::from))
            .unwrap_or_default()
    };
    assert_eq!(status(&ctd), "RUNNING");
    ctd.ok(&["task", "pause", "t-d"]);
    assert_eq!(status(&ctd), "PAUSED");
    ctd.ok(&["task", "resume", "t-d"]);
    assert_eq!(status(&ctd), "RUNNING");
    ctd.ok(&["task", "kill", "-s", "KILL", "t-d"]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        status(&ctd) == "STOPPED"
    });
    ctd.ok(&["task", "delete", "t-d"]);
    ctd.ok(&["container", "delete", "t-d"]);
}

#[test]
#[ignore = "needs root"]
fn dockerd_runs_containers_with_rrun() {
    require_root();
    let dk = Dockerd::start(&rrun_bin());
    // the image: a busybox root filesystem, imported (no registry)
    let tar = busybox_tar(dk.dir.path(), "busybox", |_| {});
    dk.ok(&["import", tar.to_str().unwrap(), IMAGE]);

    // run --rm in the foreground: output and exit status. dockerd's spec
    // has blockIO.weight 0, cpu.shares 0, memory.disableOOMKiller false
    // (not set), which rrun refused on a kernel without blkio.weight
    let out = dk.docker(&[
        "run",
        "--rm",
        "--runtime",
        "rrun",
        IMAGE,
        "sh",
        "-c",
        "echo hello from docker; exit 3",
    ]);
    assert_eq!(stdout(&out), "hello from docker\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // detached with a published port (docker-proxy on loopback)
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = dk
        .ok(&[
            "run",
            "-d",
            "--runtime",
            "rrun",
            "--name",
            "web",
            "-p",
            &publish,
            IMAGE,
            "sh",
            "-c",
            "mkdir -p /www && echo served by rrun > /www/index.html && echo web started && exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        dk.ok(&["inspect", "web", "--format", "{{.HostConfig.Runtime}}"])
            .trim(),
        "rrun"
    );
    let mut body = String::new();
    wait_for("the web server", Duration::from_secs(10), || {
        body = http_get("127.0.0.1", port);
        !body.is_empty()
    });
    assert_eq!(body, "served by rrun\n");
    assert_eq!(
        dk.ok(&["exec", "web", "sh", "-c", "echo exec in $(hostname)"]),
        format!("exec in {}\n", &id[..12])
    );
    let top = dk.ok(&["top", "web"]);
    assert!(top.contains("httpd -f -p 80"), "{top}");
    assert_eq!(dk.ok(&["logs", "web"]), "web started\n");
    // stop: TERM (ignored by the PID 1 httpd), then KILL after 1 s
    dk.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(
        dk.ok(&[
            "inspect",
            "web",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}"
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(http_get("127.0.0.1", port), "", "the port is still served");
    dk.ok(&["rm", "web"]);
    assert!(dk.ok(&["ps", "-aq"]).trim().is_empty());
}
