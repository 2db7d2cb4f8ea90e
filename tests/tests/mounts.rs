//! Mounts: bind (ro, rw, recursive), tmpfs options, the standard
//! filesystems, mount flags, propagation, masked and read-only paths.

use rrun_tests::*;
use std::time::Duration;

/// The /proc/self/mountinfo line of `target` in `out` (the container's).
fn line_of<'a>(out: &'a str, target: &str) -> &'a str {
    out.lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("no mount at {target}: {out}"))
}

#[test]
#[ignore = "needs root"]
fn bind_mounts_ro_and_rw() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data"), "from-host\n").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /ro/data; touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; echo hi > /rw/out && echo rw-ok; cat /proc/self/mountinfo"]);
    let p = host.path().to_str().unwrap();
    b.add_mount(mount("/ro", "bind", p, &["rbind", "ro", "nosuid"]));
    b.add_mount(mount("/rw", "bind", p, &["bind", "rw"]));
    let out = rt.run_ok(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from-host"));
    assert_eq!(lines.next(), Some("ro-refused"));
    assert_eq!(lines.next(), Some("rw-ok"));
    let ro = line_of(&out, "/ro");
    let opts: Vec<&str> = ro.split(' ').nth(5).unwrap().split(',').collect();
    assert!(opts.contains(&"ro") && opts.contains(&"nosuid"), "{ro}");
    let rw = line_of(&out, "/rw");
    assert!(rw.split(' ').nth(5).unwrap().starts_with("rw"), "{rw}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "hi\n"
    );
    assert!(!host.path().join("x").exists());
    assert!(
        mounts_under(host.path()).is_empty(),
        "bind mount leaked to the host"
    );
}

#[test]
#[ignore = "needs root"]
fn rbind_carries_submounts_and_bind_does_not() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let sub = HostMount::tmpfs(&host.path().join("inner"));
    std::fs::write(sub.0.join("f"), "in-submount\n").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /rb/inner/f; cat /b/inner/f 2>/dev/null || echo not-carried",
    ]);
    let p = host.path().to_str().unwrap();
    b.add_mount(mount("/rb", "bind", p, &["rbind"]));
    b.add_mount(mount("/b", "bind", p, &["bind"]));
    assert_eq!(rt.run_ok(&b), "in-submount\nnot-carried\n");
    // the bind of a single file works too
    let mut b = Bundle::busybox(&["cat", "/etc/host-file"]);
    let file = host.path().join("file");
    std::fs::write(&file, "single-file\n").unwrap();
    b.add_mount(mount(
        "/etc/host-file",
        "bind",
        file.to_str().unwrap(),
        &["bind", "ro"],
    ));
    assert_eq!(rt.run_ok(&b), "single-file\n");
}

#[test]
#[ignore = "needs root"]
fn tmpfs_options_and_flags() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ' /scratch ' /proc/self/mounts; stat -c %a /scratch; cp /bin/busybox /scratch/bb; /scratch/bb true 2>/dev/null && echo exec-ok || echo exec-refused; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null && echo fits || echo full",
    ]);
    b.add_mount(mount(
        "/scratch",
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "nodev", "size=4m", "mode=1770"],
    ));
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[2], "tmpfs", "{out}");
    let opts: Vec<&str> = fields[3].split(',').collect();
    for opt in ["nosuid", "nodev", "noexec", "size=4096k", "mode=1770"] {
        assert!(opts.contains(&opt), "{opt} missing in {}", lines[0]);
    }
    assert_eq!(lines[1], "1770");
    assert_eq!(lines[2], "exec-refused", "noexec not in force");
    assert_eq!(lines[3], "fits");
    // the size limit holds
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/small/big bs=1k count=2048 2>/dev/null && echo fits || echo full",
    ]);
    b.add_mount(mount("/small", "tmpfs", "tmpfs", &["size=1m"]));
    assert_eq!(rt.run_ok(&b), "full\n");
}

#[test]
#[ignore = "needs root"]
fn standard_filesystems_are_mounted() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["cat", "/proc/self/mounts"]);
    let out = rt.run_ok(&b);
    let fstype = |target: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .and_then(|l| l.split(' ').nth(2))
            .unwrap_or_else(|| panic!("nothing at {target}: {out}"))
            .to_string()
    };
    assert_eq!(fstype("/proc"), "proc");
    assert_eq!(fstype("/sys"), "sysfs");
    assert_eq!(fstype("/dev"), "tmpfs");
    assert_eq!(fstype("/dev/pts"), "devpts");
    assert_eq!(fstype("/dev/shm"), "tmpfs");
    assert_eq!(fstype("/dev/mqueue"), "mqueue");
    let cg = fstype("/sys/fs/cgroup");
    assert!(cg == "tmpfs" || cg == "cgroup2", "{cg}");
    // the default spec mounts /sys read-only with nosuid,noexec,nodev
    let sys = out
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/sys"))
        .unwrap();
    let opts: Vec<&str> = sys.split(' ').nth(3).unwrap().split(',').collect();
    for o in ["ro", "nosuid", "noexec", "nodev"] {
        assert!(opts.contains(&o), "{o} missing on /sys: {sys}");
    }
    // the filesystems work: proc shows our pid, mqueue takes a queue dir
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "readlink /proc/self | grep -q '^[0-9]' && echo proc-ok; ls /sys/kernel >/dev/null && echo sys-ok",
    ]);
    assert_eq!(rt.run_ok(&b), "proc-ok\nsys-ok\n");
}

#[test]
#[ignore = "needs root"]
fn cgroup_mount_shows_the_hierarchies() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "ls /sys/fs/cgroup; grep ' /sys/fs/cgroup/' /proc/self/mounts | cut -d' ' -f3,4 | sort -u",
    ]);
    let out = rt.run_ok(&b);
    if cgroup2_only() {
        assert!(out.contains("cgroup.controllers"), "{out}");
    } else {
        for c in ["memory", "pids", "cpu", "devices"] {
            assert!(out.lines().any(|l| l == c), "{c} missing: {out}");
        }
        // every controller mount is read-only for the container
        let mounts: Vec<&str> = out.lines().filter(|l| l.starts_with("cgroup")).collect();
        assert!(!mounts.is_empty(), "{out}");
        for m in mounts {
            assert!(m.split(' ').nth(1).unwrap().starts_with("ro"), "{m}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn mount_flags_show_in_proc_mounts() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/mounts"]);
    let p = host.path().to_str().unwrap();
    b.add_mount(mount(
        "/flags",
        "bind",
        p,
        &["rbind", "nosuid", "noexec", "nodev", "ro"],
    ));
    b.add_mount(mount("/atime", "tmpfs", "tmpfs", &["noatime", "nosuid"]));
    let out = rt.run_ok(&b);
    let opts = |target: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .unwrap_or_else(|| panic!("nothing at {target}: {out}"))
            .split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let f = opts("/flags");
    for o in ["ro", "nosuid", "noexec", "nodev"] {
        assert!(f.iter().any(|x| x == o), "{o} missing on /flags: {f:?}");
    }
    let a = opts("/atime");
    assert!(a.iter().any(|x| x == "noatime"), "{a:?}");
}

#[test]
#[ignore = "needs root"]
fn propagation_flags_of_a_bind_mount() {
    require_root();
    // a shared host dir; mounts made in it later reach slave copies only
    let host = tempfile::tempdir().unwrap();
    let shared = HostMount::shared_bind(host.path());
    let rt = Runtime::new();
    let p = host.path().to_str().unwrap();
    let mut slave = Bundle::busybox(&["sleep", "100"]);
    slave.add_mount(mount("/prop", "bind", p, &["rbind", "rslave"]));
    let mut private = Bundle::busybox(&["sleep", "100"]);
    private.add_mount(mount("/prop", "bind", p, &["rbind", "rprivate"]));
    let mut sharedb = Bundle::busybox(&["sleep", "100"]);
    sharedb.add_mount(mount("/prop", "bind", p, &["rbind", "rshared"]));
    let s = rt.start_detached(&slave);
    let pr = rt.start_detached(&private);
    let sh = rt.start_detached(&sharedb);
    let info = |id: &str| rt.exec_ok(id, &["cat", "/proc/self/mountinfo"]);
    let optional = |id: &str| {
        let out = info(id);
        let l = line_of(&out, "/prop").to_string();
        l.split(" - ")
            .next()
            .unwrap()
            .split(' ')
            .skip(6)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let so = optional(&s);
    assert!(
        so.iter().any(|o| o.starts_with("master:")),
        "rslave: {so:?}"
    );
    assert!(
        !so.iter().any(|o| o.starts_with("shared:")),
        "rslave: {so:?}"
    );
    let po = optional(&pr);
    assert!(po.is_empty(), "rprivate: {po:?}");
    let sho = optional(&sh);
    assert!(
        sho.iter().any(|o| o.starts_with("shared:")),
        "rshared: {sho:?}"
    );
    // a mount made on the host afterwards reaches the slave, not the private copy
    let late = HostMount::tmpfs(&host.path().join("late"));
    let seen = |id: &str| {
        info(id)
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/prop/late"))
    };
    wait_for(
        "the host mount in the rslave container",
        Duration::from_secs(2),
        || seen(&s),
    );
    assert!(!seen(&pr), "a host mount reached an rprivate mount");
    drop(late);
    drop(shared);
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
    let mut b = Bundle::busybox(&["sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly; cat /proc/sys/kernel/ostype; ls /no/such/masked 2>&1 | grep -c 'No such'"]);
    b.with_linux(|l| {
        l.set_masked_paths(Some(vec![
            "/proc/timer_list".into(),
            "/sys/firmware".into(),
            "/no/such/masked".into(),
        ]));
        l.set_readonly_paths(Some(vec!["/proc/sys".into(), "/no/such/ro".into()]));
    });
    let out = rt.run_ok(&b);
    assert_eq!(
        out, "0\n0\nreadonly\nLinux\n1\n",
        "masked: read empty; readonly: readable, not writable"
    );
}

#[test]
#[ignore = "needs root"]
fn mounts_onto_proc_are_refused_like_runc() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("evil");
    std::fs::write(&file, "|/tmp/evil\n").unwrap();
    let file = file.to_str().unwrap();
    let dir = host.path().to_str().unwrap();
    let rt = Runtime::new();
    // CVE-2019-16884 and CVE-2019-19921: straight at the target, and
    // through symlinks in the image (resolved inside the rootfs)
    for (dest, source, link) in [
        ("/proc/self/attr/current", file, None),
        ("/proc/sys/kernel/core_pattern", file, None),
        ("/proc/sys/kernel", dir, None),
        ("/vol", dir, Some(("vol", "/proc/self/attr"))),
        ("/core", dir, Some(("core", "/proc/sys/kernel"))),
        ("/proc", dir, None),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        if let Some((name, target)) = link {
            std::os::unix::fs::symlink(target, b.rootfs().join(name)).unwrap();
        }
        b.add_mount(mount(dest, "bind", source, &["rbind"]));
        let id = rt.id("procmnt");
        let out = rt.run(&b, &id);
        assert_fails_naming(
            &out,
            &format!("a bind mount onto {dest}"),
            &format!("mounts {dest}"),
        );
        assert!(stderr(&out).contains("/proc"), "{}", stderr(&out));
        assert!(!rt.root.path().join(&id).exists());
        assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
    }
    assert!(mounts_under(host.path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn the_files_lxcfs_emulates_may_be_covered() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("meminfo"), "MemTotal: 42 kB\n").unwrap();
    std::fs::write(host.path().join("uptime"), "1.00 2.00\n").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /proc/meminfo /proc/uptime"]);
    let src = |n: &str| host.path().join(n).to_str().unwrap().to_string();
    b.add_mount(mount(
        "/proc/meminfo",
        "bind",
        &src("meminfo"),
        &["bind", "ro"],
    ));
    b.add_mount(mount(
        "/proc/uptime",
        "bind",
        &src("uptime"),
        &["bind", "ro"],
    ));
    assert_eq!(rt.run_ok(&b), "MemTotal: 42 kB\n1.00 2.00\n");
}
