//! Rootless containers: rrun run by an unprivileged user (uid 12345, no
//! passwd entry needed) on a `spec --rootless` bundle.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use rrun_tests::*;
use serde_json::{json, Value};

const UID: u32 = 12345;

/// A rootless bundle owned by UID, and a state root it can write.
struct Rootless {
    bundle: Bundle,
    root: tempfile::TempDir,
}

impl Rootless {
    fn new(args: &[&str]) -> Rootless {
        let mut bundle = Bundle::busybox(args);
        let root = tempfile::Builder::new()
            .prefix("rrun-test-rootless")
            .tempdir()
            .unwrap();
        for p in [bundle.path(), root.path()] {
            let ok = Command::new("chown")
                .arg("-R")
                .arg(format!("{UID}:{UID}"))
                .arg(p)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        // the rootless spec as `rrun spec --rootless` writes it for UID
        let spec_dir = tempfile::Builder::new()
            .prefix("rrun-test-spec")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(spec_dir.path(), Some(UID), Some(UID)).unwrap();
        let out = as_user(
            root.path(),
            &[
                "spec",
                "--rootless",
                "--bundle",
                spec_dir.path().to_str().unwrap(),
            ],
        );
        assert_ok(&out, "spec --rootless");
        let spec: Value =
            serde_json::from_slice(&std::fs::read(spec_dir.path().join("config.json")).unwrap())
                .unwrap();
        bundle.edit(|v| {
            v["linux"] = spec["linux"].clone();
            v["mounts"] = spec["mounts"].clone();
            v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        });
        Rootless { bundle, root }
    }

    fn as_user(&self, args: &[&str]) -> Output {
        as_user(self.root.path(), args)
    }
}

/// `rrun --root ROOT ARGS` as UID (supplementary groups dropped by std).
fn as_user(root: &std::path::Path, args: &[&str]) -> Output {
    // through files: a created container inherits rrun's stdio
    output_via_files(
        Command::new(rrun_bin())
            .arg("--root")
            .arg(root)
            .args(args)
            .uid(UID)
            .gid(UID)
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null()),
    )
}

impl Drop for Rootless {
    fn drop(&mut self) {
        // whatever is left, as root
        for e in std::fs::read_dir(self.root.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new(rrun_bin())
                .arg("--root")
                .arg(self.root.path())
                .args(["delete", "--force"])
                .arg(e.file_name())
                .output();
        }
    }
}

#[test]
#[ignore = "needs root"]
fn rootless_container_runs_as_mapped_root_without_privileges() {
    require_root();
    let mut r = Rootless::new(&["true"]);
    r.bundle.set_args(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /tmp/made-rootless; ip -o link 2>/dev/null | wc -l; \
         mount -t tmpfs none /mnt 2>&1; cat /proc/1/cgroup | head -1",
    ]);
    std::fs::create_dir_all(r.bundle.rootfs().join("mnt")).unwrap();
    let _ = Command::new("chown")
        .arg("-R")
        .arg(format!("{UID}:{UID}"))
        .arg(r.bundle.path())
        .status();
    let out = r.as_user(&["run", "-b", r.bundle.path_str(), "rl1"]);
    assert_ok(&out, "rootless run");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &UID.to_string(), "1"], "{text}");
    // container root writes files the host sees as UID's
    let meta = std::fs::metadata(r.bundle.rootfs().join("tmp/made-rootless")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (UID, UID));
    // its own network namespace, only lo ("networking none")
    assert_eq!(lines[2], "1", "{text}");
    // no CAP_SYS_ADMIN in the rootless default capabilities
    assert!(lines[3].contains("permission denied"), "{text}");
    assert!(!r.root.path().join("rl1").exists(), "state left");
}

#[test]
#[ignore = "needs root"]
fn rootless_lifecycle_create_start_exec_kill_delete() {
    require_root();
    let r = Rootless::new(&["sleep", "100"]);
    assert_ok(
        &r.as_user(&["create", "-b", r.bundle.path_str(), "rl2"]),
        "create",
    );
    let state: Value = serde_json::from_str(&stdout(&r.as_user(&["state", "rl2"]))).unwrap();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap();
    // the init runs as UID on the host
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .all(|w| w == "Uid:" || w == UID.to_string()),
        "{uid_line}"
    );
    assert_ok(&r.as_user(&["start", "rl2"]), "start");
    let out = r.as_user(&["exec", "rl2", "sh", "-c", "id -u; echo exec-ok"]);
    assert_eq!(stdout(&out), "0\nexec-ok\n", "{}", stderr(&out));
    assert_ok(&r.as_user(&["kill", "rl2", "KILL"]), "kill");
    wait_for(
        "the container to stop",
        std::time::Duration::from_secs(5),
        || stdout(&r.as_user(&["state", "rl2"])).contains("\"stopped\""),
    );
    assert_ok(&r.as_user(&["delete", "rl2"]), "delete");
    assert!(!r.root.path().join("rl2").exists());
}

#[test]
#[ignore = "needs root"]
fn rootless_refusals_are_clear_and_leave_nothing() {
    require_root();
    // limits without a delegated cgroup
    let mut r = Rootless::new(&["true"]);
    r.bundle.set_resources(json!({"pids": {"limit": 10}}));
    let _ = Command::new("chown")
        .arg(format!("{UID}:{UID}"))
        .arg(r.bundle.path().join("config.json"))
        .status();
    let out = r.as_user(&["run", "-b", r.bundle.path_str(), "rl3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("linux.resources"), "{}", stderr(&out));
    assert!(!r.root.path().join("rl3").exists());
    // a mapping wider than the user's own id, not granted in /etc/subuid
    let mut r = Rootless::new(&["true"]);
    r.bundle.edit(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let _ = Command::new("chown")
        .arg(format!("{UID}:{UID}"))
        .arg(r.bundle.path().join("config.json"))
        .status();
    let out = r.as_user(&["run", "-b", r.bundle.path_str(), "rl4"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("linux.uidMappings"),
        "{}",
        stderr(&out)
    );
    assert!(!r.root.path().join("rl4").exists());
}
