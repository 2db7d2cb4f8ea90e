//! The container's root: pivot_root, --no-pivot, read-only root,
//! rootfsPropagation.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn pivot_root_hides_the_host() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /marker-inside-rootfs; ls /work 2>&1; ls /; awk '$5 == \"/\" {print $4}' /proc/self/mountinfo",
    ]);
    let out = rt.run_ok(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("rootfs"));
    assert!(
        lines.next().is_some_and(|l| l.contains("No such file")),
        "host /work visible: {out}"
    );
    // `/` lists exactly the rootfs
    let mut want: Vec<String> = std::fs::read_dir(b.rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    let mut got: Vec<&str> = lines.by_ref().take(want.len()).collect();
    got.sort();
    assert_eq!(got, want, "{out}");
    // the old root is gone: / is the only mount at / and it is the rootfs
    let roots: Vec<&str> = lines.collect();
    assert_eq!(roots.len(), 1, "{out}");
    assert!(roots[0].ends_with("/rootfs"), "{out}");
    assert!(b.rootfs().join("marker-inside-rootfs").exists());
}

#[test]
#[ignore = "needs root"]
fn no_pivot_works() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "cat /marker-inside-rootfs; ls /work 2>&1; true"]);
    let id = rt.id("np");
    let out = rt.cmd(&["run", "--no-pivot", "-b", b.path_str(), &id]);
    assert_ok(&out, "run --no-pivot");
    let s = stdout(&out);
    assert!(s.starts_with("rootfs\n"), "{s}");
    assert!(s.contains("No such file"), "host /work visible: {s}");
}

#[test]
#[ignore = "needs root"]
fn readonly_root() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "touch /newfile 2>/dev/null && echo wrote || echo refused; touch /tmp/x && echo tmp-ok; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo",
    ]);
    b.with_spec(|s| {
        s.root_mut().as_mut().unwrap().set_readonly(Some(true));
    });
    b.add_mount(mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev"]));
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["refused", "tmp-ok"], "{out}");
    assert!(lines[2].split(',').any(|o| o == "ro"), "{out}");
    assert!(!b.rootfs().join("newfile").exists());
    // the host's copy of the rootfs stays writable
    std::fs::write(b.rootfs().join("host-write"), "x").unwrap();
}

#[test]
#[ignore = "needs root"]
fn rootfs_propagation_is_applied() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"]);
    b.with_linux(|l| {
        l.set_rootfs_propagation(Some("private".into()));
    });
    let out = rt.run_ok(&b);
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "private: {out}"
    );
    b.with_linux(|l| {
        l.set_rootfs_propagation(Some("shared".into()));
    });
    let out = rt.run_ok(&b);
    assert!(out.contains("shared:"), "shared: {out}");
}

#[test]
#[ignore = "needs root"]
fn unbindable_rootfs_propagation_runs() {
    require_root();
    let rt = Runtime::new();
    // the root mount is unbindable (crun runs this; runc 1.1 and rrun
    // failed binding the rootfs under an unbindable /), and a bind of
    // something below it is refused inside the container
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "awk '$5 == \"/\"' /proc/self/mountinfo; mkdir /tmp/a; mount --bind /bin /tmp/a 2>/dev/null && echo bound || echo bind-refused",
    ]);
    let set = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
    ];
    b.set_capabilities(&set, &set, &set, &[], &[]);
    for prop in ["unbindable", "runbindable"] {
        b.with_linux(|l| {
            l.set_rootfs_propagation(Some(prop.into()));
        });
        let out = rt.run_ok(&b);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{prop}: {out}");
        assert!(lines[0].contains(" unbindable "), "{prop}: {out}");
        assert_eq!(lines[1], "bind-refused", "{prop}: {out}");
    }
}
