//! Bad input: a non-zero exit, an error naming what is wrong, and nothing
//! left behind (state dir, cgroup, mount, process).

use rrun_tests::*;

/// `create` (and `run`) must fail, name `needle`, and leave nothing behind.
#[track_caller]
fn refused(b: &Bundle, needle: &str) {
    refused_naming(b, &[needle]);
}

#[track_caller]
fn refused_naming(b: &Bundle, needles: &[&str]) {
    for verb in ["create", "run"] {
        let rt = Runtime::new();
        let id = rt.id("bad");
        let out = rt.cmd(&[verb, "-b", b.path_str(), &id]);
        assert!(
            !out.status.success(),
            "{verb} succeeded: {}{}",
            stdout(&out),
            stderr(&out)
        );
        nothing_left(&rt, b, &id);
        let err = stderr(&out);
        for needle in needles {
            assert!(
                err.contains(needle),
                "{verb}: the error does not name {needle:?}: {err}"
            );
        }
    }
}

#[track_caller]
fn nothing_left(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(!rt.root.path().join(id).exists(), "state dir left behind");
    let list = rt.cmd(&["list", "-q"]);
    assert!(stdout(&list).trim().is_empty(), "{}", stdout(&list));
    assert!(
        !rt.cmd(&["state", id]).status.success(),
        "state of a refused container"
    );
    if let Some(cg) = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
    {
        let cg = cg.to_string_lossy();
        assert!(
            cgroup_dirs(&cg).is_empty(),
            "cgroup left behind: {:?}",
            cgroup_dirs(&cg)
        );
    }
    assert!(
        mounts_mentioning(b.path()).is_empty(),
        "mounts left behind: {:?}",
        mounts_mentioning(b.path())
    );
    assert!(mounts_mentioning(rt.root.path()).is_empty());
    // a half-made container would still sit in the bundle (its cwd)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !processes_under(b.path()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        processes_under(b.path()).is_empty(),
        "processes left behind: {:?}",
        processes_under(b.path())
    );
}

#[test]
#[ignore = "needs root"]
fn missing_config() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    refused(&b, "config.json");
}

#[test]
#[ignore = "needs root"]
fn missing_bundle_dir() {
    require_root();
    let rt = Runtime::new();
    let id = rt.id("nobundle");
    let out = rt.cmd(&["create", "-b", "/no/such/bundle", &id]);
    assert_fails_naming(&out, "create with a missing bundle", "/no/such/bundle");
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
#[ignore = "needs root"]
fn malformed_json() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    b.write_raw("{\"ociVersion\": \"1.0.2\", \"process\": ");
    refused(&b, "config.json");
}

#[test]
#[ignore = "needs root"]
fn wrong_json_type() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    let mut v = serde_json::to_value(&b.spec).unwrap();
    v["process"]["args"] = json!("true");
    b.write_raw(&v.to_string());
    refused(&b, "args");
}

#[test]
#[ignore = "needs root"]
fn unknown_namespace() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    let mut v = serde_json::to_value(&b.spec).unwrap();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    b.write_raw(&v.to_string());
    // the field ("namespace") and the bad value both belong in the message
    refused_naming(&b, &["namespace", "bogus"]);
}

#[test]
#[ignore = "needs root"]
fn namespace_path_that_is_not_a_namespace() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.add_namespace("network", Some("/etc/hostname"));
    refused(&b, "/etc/hostname");
}

#[test]
#[ignore = "needs root"]
fn relative_mount_destination() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "relative/path", "type": "tmpfs", "source": "tmpfs"}))
    });
    refused(&b, "relative/path");
    assert!(!b.rootfs().join("relative").exists());
}

#[test]
#[ignore = "needs root"]
fn unknown_mount_type() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.add_mount(mount("/x", "nosuchfs", "none", &[]));
    refused(&b, "/x");
}

#[test]
#[ignore = "needs root"]
fn nonexistent_rootfs() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.with_spec(|s| {
        s.root_mut()
            .as_mut()
            .unwrap()
            .set_path("no-such-rootfs".into());
    });
    refused(&b, "no-such-rootfs");
}

#[test]
#[ignore = "needs root"]
fn bad_uid_mapping() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.add_namespace("user", None);
    b.edit(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    });
    refused(&b, "uidMappings");
}

#[test]
#[ignore = "needs root"]
fn overlapping_uid_mappings() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.add_namespace("user", None);
    b.edit(|v| {
        v["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 500, "hostID": 300000, "size": 1000}
        ]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    refused(&b, "uid");
}

#[test]
#[ignore = "needs root"]
fn missing_program() {
    require_root();
    let b = Bundle::busybox(&["/no/such/program"]);
    refused(&b, "/no/such/program");
}

#[test]
#[ignore = "needs root"]
fn empty_args() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["process"]["args"] = json!([]));
    refused(&b, "args");
}

#[test]
#[ignore = "needs root"]
fn bind_source_missing() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.add_mount(mount("/data", "bind", "/no/such/source", &["bind"]));
    refused(&b, "/no/such/source");
}

#[test]
#[ignore = "needs root"]
fn unknown_capability() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    let mut v = serde_json::to_value(&b.spec).unwrap();
    v["process"]["capabilities"]["bounding"] = json!(["CAP_NO_SUCH_THING"]);
    b.write_raw(&v.to_string());
    refused(&b, "CAP_NO_SUCH_THING");
}

#[test]
#[ignore = "needs root"]
fn unknown_rlimit() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    let mut v = serde_json::to_value(&b.spec).unwrap();
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    b.write_raw(&v.to_string());
    refused(&b, "RLIMIT_BOGUS");
}

#[test]
#[ignore = "needs root"]
fn invalid_ids() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["true"]);
    for id in ["../escape", "a/b", "", "..", "."] {
        let out = rt.create(&b, id);
        assert!(!out.status.success(), "id {id:?} accepted");
    }
    assert_eq!(
        std::fs::read_dir(rt.root.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(!rt.root.path().parent().unwrap().join("escape").exists());
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn unknown_id() {
    require_root();
    let rt = Runtime::new();
    for verb in ["state", "start", "kill", "delete", "pause", "resume", "ps"] {
        let out = rt.cmd(&[verb, "no-such-container"]);
        assert!(!out.status.success(), "{verb} of an unknown id succeeded");
        assert!(
            stderr(&out).contains("no-such-container") || stderr(&out).contains("not exist"),
            "{verb}: {}",
            stderr(&out)
        );
    }
    let out = rt.cmd(&["exec", "no-such-container", "true"]);
    assert!(!out.status.success());
    assert!(!rt.root.path().join("no-such-container").exists());
}

#[test]
#[ignore = "needs root"]
fn bad_exec_input_leaves_the_container_running() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let bad = b.path().join("bad-process.json");
    std::fs::write(&bad, "{\"args\": ").unwrap();
    let out = rt.cmd(&["exec", "--process", bad.to_str().unwrap(), &id]);
    assert!(!out.status.success(), "malformed process.json accepted");
    let out = rt.cmd(&["exec", "--process", "/no/such/process.json", &id]);
    assert_fails_naming(
        &out,
        "exec --process of a missing file",
        "/no/such/process.json",
    );
    let out = rt.exec_with(&["--cwd", "relative"], &id, &["true"]);
    assert!(!out.status.success(), "a relative exec cwd was accepted");
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.pids(&id).len(), 1, "a failed exec left a process");
}

/// The runtime-tools suite's misc_props: the spec says a runtime MUST refuse a
/// value it does not support, and `ociVersion` MUST be SemVer. rrun ran a
/// config whose ociVersion was "invalid" or "2.0.0" (so did runc; crun refuses
/// them); the 1.x versions that engines write still run.
#[test]
#[ignore = "needs root"]
fn unsupported_oci_version() {
    require_root();
    for version in ["invalid", "1.0", "2.0.0", "0.9.0"] {
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|v| v["ociVersion"] = json!(version));
        refused_naming(&b, &["ociVersion", &format!("{version:?}")]);
    }
    for version in ["1.0.2-dev", "1.1.0", "1.2.0"] {
        let mut b = Bundle::busybox(&["sh", "-c", "echo ran"]);
        b.edit(|v| v["ociVersion"] = json!(version));
        let out = Runtime::new().run_ok(&b);
        assert_eq!(out.trim(), "ran", "ociVersion {version}");
    }
}
