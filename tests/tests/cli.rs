//! The command line itself: features, spec, global flags, logging.

use rrun_tests::*;

#[test]
fn features_is_json() {
    let rt = Runtime::new();
    let out = rt.cmd(&["features"]);
    assert_ok(&out, "features");
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string(),
        "{f}"
    );
    let ns = f["linux"]["namespaces"].as_array().unwrap();
    for want in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"] {
        assert!(ns.iter().any(|n| n == want), "{want} missing: {f}");
    }
    assert!(f["mountOptions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|o| o == "rbind")));
}

#[test]
fn spec_writes_a_default_config() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_str().unwrap();
    assert_ok(&rt.cmd(&["spec", "--bundle", bundle]), "spec");
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert_eq!(spec["root"]["path"], "rootfs");
    assert!(spec["ociVersion"].is_string());
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "{want} missing: {ns:?}");
    }
    // it parses as an OCI spec
    let _: runtime::Spec = serde_json::from_value(spec).unwrap();
    assert!(
        !rt.cmd(&["spec", "--bundle", bundle]).status.success(),
        "spec must not overwrite an existing config.json"
    );
}

#[test]
fn spec_rootless_has_a_user_namespace() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    assert_ok(
        &rt.cmd(&[
            "spec",
            "--rootless",
            "--bundle",
            dir.path().to_str().unwrap(),
        ]),
        "spec --rootless",
    );
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "user"), "{spec}");
    assert!(!ns.iter().any(|n| n["type"] == "cgroup"), "{spec}");
    if !testing_runc() {
        // runc shares the host's network; rrun gives rootless containers
        // their own network namespace (only lo)
        assert!(ns.iter().any(|n| n["type"] == "network"), "{spec}");
    }
    let uid = nix::unistd::geteuid().as_raw();
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], uid);
    assert_eq!(spec["linux"]["uidMappings"][0]["containerID"], 0);
    assert_eq!(spec["linux"]["uidMappings"][0]["size"], 1);
    assert_eq!(
        spec["linux"]["gidMappings"][0]["hostID"],
        nix::unistd::getegid().as_raw()
    );
}

#[test]
fn version_help_and_unknown_command() {
    let rt = Runtime::new();
    let out = rt.cmd(&["--version"]);
    assert_ok(&out, "--version");
    assert!(!stdout(&out).is_empty());
    assert_ok(&rt.cmd(&["--help"]), "--help");
    assert!(!rt.cmd(&["no-such-command"]).status.success());
    // a verb without its container id is a usage error
    for verb in ["start", "state", "kill", "delete", "pause", "resume", "ps"] {
        assert!(!rt.cmd(&[verb]).status.success(), "{verb} without an id");
    }
}

#[test]
#[ignore = "needs root"]
fn global_flags_are_accepted() {
    require_root();
    let rt = Runtime::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let b = Bundle::busybox(&["true"]);
    let out = rt.cmd(&[
        "--debug",
        "--log",
        log.path().to_str().unwrap(),
        "--log-format",
        "text",
        "list",
    ]);
    assert_ok(&out, "--debug --log --log-format text list");
    let id = rt.id("glob");
    let out = rt.cmd(&[
        "--log",
        log.path().to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "-b",
        b.path_str(),
        &id,
    ]);
    assert_ok(&out, "run with --log --log-format json");
}

#[test]
#[ignore = "needs root"]
fn errors_go_to_the_log_file_as_json() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["/no/such/program"]);
    let log = b.path().join("log.json");
    let id = rt.id("log");
    let out = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "-b",
        b.path_str(),
        &id,
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("/no/such/program"),
        "{last}"
    );
    assert!(last["time"].is_string());
    assert!(!rt.root.path().join(&id).exists());
}
