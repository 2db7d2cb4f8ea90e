//! The container's filesystem: pivot_root, --no-pivot, read-only root,
//! mounts and their options, masked and read-only paths, devices.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn pivot_root_hides_the_host() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /marker-inside-rootfs; ls /work 2>&1 || true",
    ]);
    let out = rt.run_ok(&b);
    assert!(out.starts_with("rootfs\n"), "{out}");
    assert!(out.contains("No such file"), "host /work visible: {out}");
}

#[test]
#[ignore = "needs root"]
fn no_pivot_works() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["cat", "/marker-inside-rootfs"]);
    let id = rt.id("np");
    let out = rt.cmd(&["run", "--no-pivot", "-b", b.path().to_str().unwrap(), &id]);
    assert_ok(&out, "run --no-pivot");
    assert_eq!(stdout(&out), "rootfs\n");
}

#[test]
#[ignore = "needs root"]
fn readonly_root() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "touch /newfile && echo wrote || echo refused; touch /tmp/x && echo tmp-ok",
    ]);
    b.edit(|v| {
        v["root"]["readonly"] = true.into();
        v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
    });
    let out = rt.run_ok(&b);
    assert_eq!(out, "refused\ntmp-ok\n");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
#[ignore = "needs root"]
fn bind_mounts_ro_and_rw() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data"), "from-host\n").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /ro/data; touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; echo hi > /rw/out; grep ' /ro ' /proc/self/mountinfo | grep -c ' ro,'"]);
    let p = host.path().to_str().unwrap();
    b.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/ro", "type": "bind", "source": p, "options": ["rbind", "ro", "nosuid"]}));
        m.push(json!({"destination": "/rw", "type": "bind", "source": p, "options": ["bind", "rw"]}));
    });
    let out = rt.run_ok(&b);
    assert_eq!(out, "from-host\nro-refused\n1\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "hi\n"
    );
    assert!(
        mounts_under(host.path()).is_empty(),
        "bind mount leaked to the host"
    );
}

#[test]
#[ignore = "needs root"]
fn tmpfs_options_and_flags() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ' /scratch ' /proc/self/mounts; stat -c %a /scratch",
    ]);
    b.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "nodev", "size=1m", "mode=1770"]}));
    });
    let out = rt.run_ok(&b);
    let line = out.lines().next().unwrap();
    for opt in ["nosuid", "nodev", "noexec", "size=1024k", "mode=1770"] {
        assert!(line.contains(opt), "{opt} missing in {line}");
    }
    assert_eq!(out.lines().nth(1), Some("1770"));
}

#[test]
#[ignore = "needs root"]
fn standard_filesystems_are_mounted() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "for m in /proc /sys /dev /dev/pts /dev/shm /dev/mqueue /sys/fs/cgroup; do grep -q \" $m \" /proc/self/mounts && echo $m; done; ls /sys/fs/cgroup | grep -c memory"]);
    let out = rt.run_ok(&b);
    assert_eq!(
        out,
        "/proc\n/sys\n/dev\n/dev/pts\n/dev/shm\n/dev/mqueue\n/sys/fs/cgroup\n1\n"
    );
}

#[test]
#[ignore = "needs root"]
fn masked_and_readonly_paths() {
    require_root();
    let rt = Runtime::new();
    assert!(
        std::path::Path::new("/proc/timer_list").exists()
            && std::path::Path::new("/sys/firmware").is_dir()
    );
    let mut b = Bundle::busybox(&["sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly"]);
    b.edit(|v| {
        v["linux"]["maskedPaths"] = json!(["/proc/timer_list", "/sys/firmware", "/does/not/exist"]);
        v["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    });
    let out = rt.run_ok(&b);
    assert_eq!(out, "0\n0\nreadonly\n");
}

#[test]
#[ignore = "needs root"]
fn rootfs_propagation_is_applied() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"]);
    b.edit(|v| v["linux"]["rootfsPropagation"] = "private".into());
    let out = rt.run_ok(&b);
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "{out}"
    );
    b.edit(|v| v["linux"]["rootfsPropagation"] = "shared".into());
    let out = rt.run_ok(&b);
    assert!(out.contains("shared:"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn default_devices_and_links() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; test -d /dev/pts && test -d /dev/shm && echo dirs"]);
    let out = rt.run_ok(&b);
    let want = "/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n/dev/urandom 1:9 666\n/dev/tty 5:0 666\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\ndirs\n";
    assert_eq!(out, want);
}

#[test]
#[ignore = "needs root"]
fn custom_device_node() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["stat", "-c", "%n %F %t:%T %a %u:%g", "/dev/mydev"]);
    b.edit(|v| {
        v["linux"]["devices"] = json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 7, "fileMode": 0o640, "uid": 1000, "gid": 1000}]);
    });
    assert_eq!(
        rt.run_ok(&b),
        "/dev/mydev character special file 1:7 640 1000:1000\n"
    );
}
