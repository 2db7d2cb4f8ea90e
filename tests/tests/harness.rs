//! The harness itself: bundles are what the tests think they are, and the
//! leftover check in `Runtime`'s Drop really fails a test.

use rrun_tests::*;

#[test]
fn busybox_bundle_is_complete() {
    let b = Bundle::busybox(&["echo", "hi"]);
    let rootfs = b.rootfs();
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    for d in ["proc", "sys", "dev", "tmp", "etc", "home/user"] {
        assert!(rootfs.join(d).is_dir(), "{d}");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":1000:1000:"), "{passwd}");
    let spec: runtime::Spec =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_ref().unwrap(),
        &["echo", "hi"]
    );
    assert_eq!(spec.process().as_ref().unwrap().terminal(), Some(false));
    assert!(b.cgroup_path().starts_with("/rrun-test-"));
    // two bundles never share a cgroup path
    assert_ne!(b.cgroup_path(), Bundle::busybox(&["true"]).cgroup_path());
}

#[test]
fn mutators_reach_config_json() {
    let mut b = Bundle::busybox(&["true"]);
    b.set_cwd("/tmp");
    b.set_env(&["A=1"]);
    b.set_user(1000, 1000, &[5], Some(0o027));
    b.set_rlimit(Rlimit::RlimitNofile, 10, 20);
    b.set_capabilities(&["CAP_KILL"], &[], &[], &[], &[]);
    b.add_mount(mount("/x", "tmpfs", "tmpfs", &["size=1m"]));
    b.add_namespace("network", Some("/run/netns/x"));
    b.remove_namespace(NsType::Ipc);
    b.set_resources(json!({"pids": {"limit": 5}}));
    let v: Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    let p = &v["process"];
    assert_eq!(p["cwd"], "/tmp");
    assert_eq!(p["env"], json!(["A=1"]));
    assert_eq!(p["user"]["additionalGids"], json!([5]));
    assert_eq!(p["user"]["umask"], 0o027);
    assert_eq!(
        p["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}])
    );
    assert_eq!(p["capabilities"]["bounding"], json!(["CAP_KILL"]));
    let mounts = v["mounts"].as_array().unwrap();
    assert_eq!(mounts.last().unwrap()["destination"], "/x");
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(ns
        .iter()
        .any(|n| n["type"] == "network" && n["path"] == "/run/netns/x"));
    assert!(!ns.iter().any(|n| n["type"] == "ipc"));
    assert_eq!(v["linux"]["resources"]["pids"]["limit"], 5);
}

#[test]
fn cap_masks() {
    assert_eq!(cap_mask(&[]), "0000000000000000");
    assert_eq!(cap_mask(&["CAP_KILL", "CAP_CHOWN"]), "0000000000000021");
    assert_eq!(caps(&["CAP_KILL"]).len(), 1);
}

#[test]
#[ignore = "needs root"]
fn a_leftover_cgroup_fails_the_test_and_is_removed() {
    require_root();
    // what a runtime that forgets its cgroup would leave: Drop must panic
    // (failing the test) and still remove it
    let cg = std::thread::spawn(|| {
        let rt = Runtime::new();
        let b = Bundle::busybox(&["true"]);
        rt.track(&["run", "-b", b.path_str()]);
        let cg = b.cgroup_path();
        std::fs::create_dir(
            std::path::Path::new("/sys/fs/cgroup/pids").join(cg.trim_start_matches('/')),
        )
        .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rt)));
        assert!(r.is_err(), "the leftover went unnoticed");
        cg
    })
    .join()
    .unwrap();
    assert!(cgroup_dirs(&cg).is_empty(), "{:?}", cgroup_dirs(&cg));
}
