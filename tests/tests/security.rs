//! Security by design: no leaked fds, cwd inside the container
//! (CVE-2024-21626), a sealed runtime binary (CVE-2019-5736), mount targets
//! that cannot escape the rootfs through symlinks.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn only_stdio_reaches_the_container() {
    require_root();
    let rt = Runtime::new();
    // ls opens one fd of its own for the directory listing
    let b = Bundle::busybox(&["ls", "/proc/self/fd"]);
    let out = rt.run_ok(&b);
    let fds: Vec<&str> = out.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{fds:?}");
    // and in exec
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let out = stdout(&rt.exec(&id, &["ls", "/proc/self/fd"]));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
}

#[test]
#[ignore = "needs root"]
fn cwd_through_a_leaked_fd_is_refused() {
    require_root();
    let rt = Runtime::new();
    for fd in 3..9 {
        let mut b = Bundle::busybox(&["sh", "-c", "pwd; ls .. | head -3"]);
        b.edit(|v| v["process"]["cwd"] = format!("/proc/self/fd/{fd}").into());
        let id = rt.id("cve");
        let out = rt.run(&b, &id);
        if out.status.success() {
            let s = stdout(&out);
            assert!(
                !s.contains("(unreachable)"),
                "fd {fd}: container cwd outside its root: {s}"
            );
            assert!(s.starts_with('/'), "{s}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn container_process_cannot_reach_the_runtime_binary() {
    require_root();
    if testing_runc() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("exe");
    assert_ok(&rt.create(&b, &id), "create");
    // while created, the init is rrun code: its exe must be a sealed memfd
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "init runs from {exe:?}"
    );
    let open = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(open.is_err(), "the runtime binary of the init is writable");
}

#[test]
#[ignore = "needs root"]
fn mount_target_symlink_cannot_escape() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "grep -c ' /evil ' /proc/self/mountinfo"]);
    // rootfs/evil -> <host dir>: an absolute symlink that would leave the rootfs
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs", "options": []}),
        );
    });
    let _ = rt.run(&b, &rt.id("evil"));
    assert!(
        !host.path().join("sub").exists(),
        "a mount point was created on the host"
    );
    assert!(
        mounts_under(host.path()).is_empty(),
        "something was mounted on the host"
    );
    // the target was made inside the rootfs instead
    assert!(b
        .rootfs()
        .join(host.path().strip_prefix("/").unwrap())
        .join("sub")
        .exists());
}

#[test]
#[ignore = "needs root"]
fn device_path_symlink_cannot_escape() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("devlink")).unwrap();
    b.edit(|v| {
        v["linux"]["devices"] =
            json!([{"path": "/devlink/node", "type": "c", "major": 1, "minor": 3}])
    });
    let _ = rt.run(&b, &rt.id("devesc"));
    assert!(
        !host.path().join("node").exists(),
        "device node created on the host"
    );
}

#[test]
#[ignore = "needs root"]
fn foreground_run_without_pid_namespace_runs_sealed() {
    require_root();
    if testing_runc() {
        return;
    }
    // The container shares rrun's pid namespace, so it could see the waiting
    // `rrun run` process: that process must not be the host binary either.
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    b.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    let id = rt.id("nopid");
    let mut child = rt
        .command()
        .args(["run", "-b", b.path().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !rt.cmd(&["state", &id]).status.success() {
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "rrun run runs from {exe:?}"
    );
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    let _ = child.wait();
}
