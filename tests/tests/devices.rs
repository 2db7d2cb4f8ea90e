//! /dev: the default nodes and links, linux.devices, /dev/pts and /dev/shm.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn default_devices_and_links() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; test -d /dev/pts && test -d /dev/shm && echo dirs"]);
    let out = rt.run_ok(&b);
    let want = "\
/dev/null character special file 1:3 666
/dev/zero character special file 1:5 666
/dev/full character special file 1:7 666
/dev/random character special file 1:8 666
/dev/urandom character special file 1:9 666
/dev/tty character special file 5:0 666
/proc/self/fd
/proc/self/fd/0
/proc/self/fd/1
/proc/self/fd/2
pts/ptmx
dirs
";
    assert_eq!(out, want);
}

#[test]
#[ignore = "needs root"]
fn default_devices_work() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1 | tr -d ' '; head -c 16 /dev/urandom | wc -c; echo x > /dev/full 2>/dev/null || echo full-refused"]);
    assert_eq!(rt.run_ok(&b), "null-ok\n00000000\n16\nfull-refused\n");
}

#[test]
#[ignore = "needs root"]
fn dev_is_not_the_hosts() {
    require_root();
    let rt = Runtime::new();
    // a host-only device node (vda, loop-control...) must not show up
    let b = Bundle::busybox(&["ls", "/dev"]);
    let out = rt.run_ok(&b);
    for host_only in ["vda", "loop-control", "kmsg", "mem", "fuse"] {
        assert!(
            !out.lines().any(|l| l == host_only),
            "/dev/{host_only} visible: {out}"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn custom_device_node() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c '%n %F %t:%T %a %u:%g' /dev/mydev /dev/myblk /dev/myfifo",
    ]);
    b.edit(|v| {
        v["linux"]["devices"] = json!([
            {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 7, "fileMode": 0o640, "uid": 1000, "gid": 1000},
            {"path": "/dev/myblk", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 5}
        ]);
    });
    assert_eq!(
        rt.run_ok(&b),
        "/dev/mydev character special file 1:7 640 1000:1000\n/dev/myblk block special file 7:0 600 0:0\n/dev/myfifo fifo 0:0 620 0:5\n"
    );
}

#[test]
#[ignore = "needs root"]
fn custom_device_is_usable() {
    require_root();
    if !std::path::Path::new("/dev/fuse").exists() {
        eprintln!("skipped: no /dev/fuse on this host");
        return;
    }
    let rt = Runtime::new();
    // /dev/fuse opens without any capability: only the device rules decide
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "(exec 3<>/dev/fuse) && echo opened || echo refused",
    ]);
    b.edit(|v| {
        v["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}
        ]);
        v["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]});
    });
    assert_eq!(rt.run_ok(&b), "opened\n");
}

#[test]
#[ignore = "needs root"]
fn dev_pts_and_shm() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "grep -E ' /dev/(pts|shm) ' /proc/self/mounts | cut -d' ' -f2,3; ls /dev/pts; echo shared > /dev/shm/x && cat /dev/shm/x"]);
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["/dev/pts devpts", "/dev/shm tmpfs"], "{out}");
    // a fresh devpts instance: only ptmx, no host ptys
    assert_eq!(lines[2..], ["ptmx", "shared"], "{out}");
}
