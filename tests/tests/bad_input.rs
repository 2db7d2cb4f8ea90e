//! Bad input: a clear error naming what is wrong, a non-zero exit, and
//! nothing left behind (state dir, cgroup, mount, process).

use rrun_tests::*;

fn count_processes_in(cgroup: &str) -> usize {
    cgroup_dirs(cgroup).len()
}

/// Create must fail, mention `needle`, and leave nothing behind.
#[track_caller]
fn refused(b: &Bundle, needle: &str) {
    let rt = Runtime::new();
    let id = rt.id("bad");
    let mounts_before = mounts_under(std::path::Path::new("/"));
    let out = rt.create(b, &id);
    assert!(!out.status.success(), "create succeeded: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "error does not name {needle:?}: {err}"
    );
    assert!(!rt.root.path().join(&id).exists(), "state dir left behind");
    assert_eq!(
        count_processes_in(&b.cgroup_path()),
        0,
        "cgroup left behind"
    );
    assert_eq!(
        mounts_under(std::path::Path::new("/")),
        mounts_before,
        "mounts changed"
    );
    let list = stdout(&rt.cmd(&["list", "-q"]));
    assert!(list.trim().is_empty(), "{list}");
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
fn malformed_json() {
    require_root();
    let b = Bundle::busybox(&["true"]);
    b.write_raw("{\"ociVersion\": \"1.0.2\", \"process\": ");
    refused(&b, "config.json");
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
    refused(&b, "namespaces");
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
    refused(&b, "destination");
}

#[test]
#[ignore = "needs root"]
fn nonexistent_rootfs() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["root"]["path"] = "no-such-rootfs".into());
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
fn missing_program() {
    require_root();
    let b = Bundle::busybox(&["/no/such/program"]);
    refused(&b, "/no/such/program");
}

#[test]
#[ignore = "needs root"]
fn bind_source_missing() {
    require_root();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["bind"]})));
    refused(&b, "/no/such/source");
}

#[test]
#[ignore = "needs root"]
fn invalid_ids() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["true"]);
    for id in ["../escape", "a/b", ""] {
        let out = rt.create(&b, id);
        assert!(!out.status.success(), "id {id:?} accepted");
    }
    assert!(
        std::fs::read_dir(rt.root.path())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
}
