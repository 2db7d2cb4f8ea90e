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
    assert!(
        std::path::Path::new("/dev/fuse").exists(),
        "this host has no /dev/fuse (the fuse driver): the test opens one in the container"
    );
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
fn fifo_and_unbuffered_nodes_with_device_rules() {
    require_root();
    let rt = Runtime::new();
    // `p` and `u` nodes next to rules: a fifo is no device to the cgroup,
    // and `u` is a character device (rules name it `c`); here /dev/kmsg,
    // allowed for writing only. (An allow rule for every node of type p
    // or u made create fail with "invalid linux resource".)
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c '%n %F %t:%T' /dev/myfifo /dev/mykmsg; \
         (exec 3<>/dev/myfifo) && echo fifo-opened; \
         (exec 3>/dev/mykmsg) && echo kmsg-write-opened; \
         (exec 3</dev/mykmsg) 2>/dev/null || echo kmsg-read-refused",
    ]);
    b.edit(|v| {
        v["linux"]["devices"] = json!([
            {"path": "/dev/myfifo", "type": "p", "fileMode": 0o600},
            {"path": "/dev/mykmsg", "type": "u", "major": 1, "minor": 11, "fileMode": 0o600}
        ]);
        v["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
        ]});
    });
    assert_eq!(
        rt.run_ok(&b),
        "/dev/myfifo fifo 0:0\n/dev/mykmsg character special file 1:b\n\
         fifo-opened\nkmsg-write-opened\nkmsg-read-refused\n"
    );
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

/// The default spec's capabilities plus CAP_MKNOD (which Docker gives).
fn with_mknod(b: &mut Bundle) {
    let set = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_MKNOD",
    ];
    b.set_capabilities(&set, &set, &set, &[], &[]);
}

#[test]
#[ignore = "needs root"]
fn host_devices_are_out_of_reach_whatever_the_spec_says_about_rules() {
    require_root();
    let rt = Runtime::new();
    let lo = LoopDevice::new("TOP-SECRET");
    let script = device_attack_script(lo.major, lo.minor, None);
    // like runc: no rules, an empty list and runc's deny-all all leave the
    // container only its default devices, and mknod of any node
    for resources in [
        None,
        Some(json!({"devices": []})),
        Some(json!({"devices": [{"allow": false, "access": "rwm"}]})),
    ] {
        let mut b = Bundle::busybox(&["sh", "-c", &script]);
        with_mknod(&mut b);
        b.edit(|v| match &resources {
            Some(r) => v["linux"]["resources"] = r.clone(),
            None => {
                v["linux"].as_object_mut().unwrap().remove("resources");
            }
        });
        assert_eq!(
            rt.run_ok(&b),
            "mknod-ok\nread-refused\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n",
            "linux.resources {resources:?}"
        );
    }
    assert_eq!(lo.head(10), "TOP-SECRET");
}

#[test]
#[ignore = "needs root"]
fn device_rules_allow_what_they_name_with_wildcards() {
    require_root();
    let rt = Runtime::new();
    let lo = LoopDevice::new("TOP-SECRET");
    let script = device_attack_script(lo.major, lo.minor, None);
    // read-only, any minor of the loop major (an absent minor is '*')
    let mut b = Bundle::busybox(&["sh", "-c", &script]);
    with_mknod(&mut b);
    b.set_resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": lo.major, "access": "r"}
    ]}));
    assert_eq!(
        rt.run_ok(&b),
        "mknod-ok\nread:TOP-SECRET\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    // everything, as Docker's --privileged asks (-1 is a wildcard too)
    let mut b = Bundle::busybox(&["sh", "-c", &script]);
    with_mknod(&mut b);
    b.set_resources(json!({"devices": [
        {"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}
    ]}));
    assert_eq!(
        rt.run_ok(&b),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-ok\n"
    );
}

#[test]
#[ignore = "needs root"]
fn bad_device_rules_are_refused_naming_the_rule() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.set_resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}
    ]}));
    let id = rt.id("badrule");
    let out = rt.run(&b, &id);
    assert_fails_naming(
        &out,
        "a rule with access rwx",
        "linux.resources.devices[1].access",
    );
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}
