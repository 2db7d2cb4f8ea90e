//! cgroups: cgroupsPath and resources, checked in the host's cgroup files
//! and from inside; removal on delete. This host is hybrid (v1 controllers
//! plus cgroup2 at /sys/fs/cgroup/unified); the checks read v1 or v2 files,
//! whichever exist.

use std::process::{Command, Output};

use rrun_tests::*;

/// The host's cgroup2 mount (hybrid: /sys/fs/cgroup/unified), if any.
fn cgroup2_mount() -> Option<&'static std::path::Path> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| {
            nix::sys::statfs::statfs(*p)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
}

/// `rrun run` of bundle `b` as `id` on a pure cgroup v2 host, seen from a
/// private mount namespace: every cgroup mount replaced by one cgroup2
/// mount at /sys/fs/cgroup.
fn run_in_cgroup2_only_view(rt: &Runtime, b: &Bundle, id: &str) -> std::process::Output {
    let view = "for m in $(awk '$2 ~ \"^/sys/fs/cgroup/\" {print $2}' /proc/self/mounts | sort -r); do umount -l \"$m\"; done; \
                umount -l /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"";
    std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", view, "sh"])
        .arg(rrun_bin())
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "-b", b.path_str(), id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// In the cgroup2-only view cgroups-rs enables the hierarchy's controllers
/// in the root's cgroup.subtree_control: this puts that back on drop.
struct RestoreSubtree(Option<(std::path::PathBuf, String)>);

impl RestoreSubtree {
    fn new() -> Self {
        RestoreSubtree(cgroup2_mount().map(|m| {
            let p = m.join("cgroup.subtree_control");
            let before = std::fs::read_to_string(&p).unwrap_or_default();
            (p, before)
        }))
    }
}

impl Drop for RestoreSubtree {
    fn drop(&mut self) {
        if let Some((file, before)) = &self.0 {
            let now = std::fs::read_to_string(file).unwrap_or_default();
            for c in now
                .split_whitespace()
                .filter(|c| !before.split_whitespace().any(|b| b == *c))
            {
                let _ = std::fs::write(file, format!("-{c}"));
            }
        }
    }
}

#[test]
#[ignore = "needs root"]
fn resources_reach_the_cgroup_files() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    b.edit(|v| {
        v["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 64}
        })
    });
    let id = rt.start_detached(&b);
    let cg = b.cgroup_path();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        procs
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&cg))
            || procs.contains(&format!("::{cg}")),
        "{procs}"
    );
    let v1 = cgroup_file("memory", &cg, "memory.limit_in_bytes");
    let v2 = cgroup_file("", &cg, "memory.max");
    assert_eq!(v1.or(v2).as_deref(), Some("67108864"));
    let soft = cgroup_file("memory", &cg, "memory.soft_limit_in_bytes").or(cgroup_file(
        "",
        &cg,
        "memory.low",
    ));
    assert_eq!(soft.as_deref(), Some("33554432"));
    assert_eq!(cgroup_file("pids", &cg, "pids.max").as_deref(), Some("64"));
    if let Some(q) = cgroup_file("cpu", &cg, "cpu.cfs_quota_us") {
        assert_eq!(q, "50000");
        assert_eq!(
            cgroup_file("cpu", &cg, "cpu.cfs_period_us").as_deref(),
            Some("100000")
        );
        assert_eq!(
            cgroup_file("cpu", &cg, "cpu.shares").as_deref(),
            Some("512")
        );
    } else {
        assert_eq!(
            cgroup_file("", &cg, "cpu.max").as_deref(),
            Some("50000 100000")
        );
    }
    assert_eq!(
        cgroup_file("cpuset", &cg, "cpuset.cpus").as_deref(),
        Some("0")
    );
    assert_eq!(
        cgroup_file("cpuset", &cg, "cpuset.mems").as_deref(),
        Some("0")
    );
    // the limits hold from inside too (cgroupns: the container's own cgroup)
    let mem = rt.exec_ok(
        &id,
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(mem.trim(), "67108864");
    assert_ok(&rt.cmd(&["delete", "--force", &id]), "delete");
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "cgroup left after delete: {:?}",
        cgroup_dirs(&cg)
    );
}

#[test]
#[ignore = "needs root"]
fn pids_limit_bounds_a_fork_bomb() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "for i in $(seq 1 40); do (sleep 30 &) 2>/dev/null; done; touch /tmp/done; sleep 100",
    ]);
    b.edit(|v| v["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let id = rt.start_detached(&b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.rootfs().join("tmp/done").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pids: Vec<i64> =
        serde_json::from_slice(&rt.cmd(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(
        pids.len() >= 5 && pids.len() <= 10,
        "{} processes with pids.max=10",
        pids.len()
    );
}

#[test]
#[ignore = "needs root"]
fn memory_limit_kills_a_hog() {
    require_root();
    let rt = Runtime::new();
    // 8 MiB limit; the shell (PID 1) holds 40 MB in a variable: the OOM killer ends it
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "a=$(head -c 40000000 /dev/zero | tr '\\0' x); echo survived",
    ]);
    b.edit(|v| v["linux"]["resources"] = json!({"memory": {"limit": 8388608}}));
    let out = rt.run(&b, &rt.id("oom"));
    assert!(!stdout(&out).contains("survived"), "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

/// The allowlist refuses a node it does not list and keeps the defaults
/// usable; `run` runs the bundle (on the host, or in a cgroup2-only view).
fn check_device_rules(mut run: impl FnMut(&Bundle) -> std::process::Output) {
    // a node the rules do not allow (fuse, 10:229: it opens without any
    // capability, so only the device rules can refuse), made by the host
    let mut b = Bundle::busybox(&["sh", "-c", "(exec 3<>/fusenode) && echo opened; echo x > /dev/null && head -c1 /dev/zero >/dev/null && echo defaults-ok"]);
    nix::sys::stat::mknod(
        &b.rootfs().join("fusenode"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(10, 229),
    )
    .unwrap();
    b.set_resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]}));
    let out = run(&b);
    assert_ok(&out, "run");
    // the default devices stay usable, like runc's allowlist
    assert_eq!(stdout(&out), "defaults-ok\n");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "want EPERM: {}",
        stderr(&out)
    );
    // the same node, allowed: it opens (so EPERM came from the rules)
    b.set_resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]}));
    if std::path::Path::new("/dev/fuse").exists() {
        let out = run(&b);
        assert_ok(&out, "run");
        assert!(stdout(&out).starts_with("opened\n"), "{}", stdout(&out));
    }
}

#[test]
#[ignore = "needs root"]
fn devices_allowlist() {
    require_root();
    let rt = Runtime::new();
    check_device_rules(|b| rt.run_capture(b));
}

#[test]
#[ignore = "needs root"]
fn devices_allowlist_on_cgroup2_is_an_ebpf_filter() {
    require_root();
    assert!(
        !testing_runc(),
        "runc 1.1 refuses this cgroup2-only view of a hybrid host: run this test against rrun"
    );
    // A pure cgroup v2 host seen from a private mount namespace: every
    // cgroup mount replaced by one cgroup2 mount at /sys/fs/cgroup. The
    // runtime finds no devices controller there and must load an eBPF
    // device program instead. (Declared first, so it drops last.)
    let _restore = RestoreSubtree::new();
    let rt = Runtime::new();
    let unified = cgroup2_mount();
    check_device_rules(|b| {
        let id = rt.id("v2dev");
        let out = run_in_cgroup2_only_view(&rt, b, &id);
        // the container's cgroup2 directory went away with it
        if let Some(u) = unified {
            assert!(!u.join(&id).exists(), "{}/{id} left behind", u.display());
        }
        out
    });
}

#[test]
#[ignore = "needs root"]
fn hugepage_limits() {
    require_root();
    let size_dir = std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB");
    assert!(
        size_dir.exists(),
        "this kernel has no 2MB huge pages ({} is missing): the test needs them",
        size_dir.display()
    );
    // A hybrid host's cgroup2 root may get hugetlb enabled for this; put it
    // back afterwards (declared first, so it drops after the container).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if !self.0 {
                let _ = std::fs::write("/sys/fs/cgroup/unified/cgroup.subtree_control", "-hugetlb");
            }
        }
    }
    let subtree = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.subtree_control");
    let _restore = Restore(
        !subtree.exists() || std::fs::read_to_string(subtree).is_ok_and(|s| s.contains("hugetlb")),
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    b.edit(|v| {
        v["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
    });
    let _id = rt.start_detached(&b);
    let cg = b.cgroup_path();
    let v1 = cgroup_file("hugetlb", &cg, "hugetlb.2MB.limit_in_bytes");
    let v2 =
        cgroup_file("unified", &cg, "hugetlb.2MB.max").or(cgroup_file("", &cg, "hugetlb.2MB.max"));
    assert_eq!(v1.or(v2).as_deref(), Some("4194304"));
}

/// Which blkio weight file a new cgroup gets: blkio.weight (CFQ) or
/// blkio.bfq.weight (BFQ); None when neither scheduler offers one. The
/// root cgroup has neither, so probe with a throwaway child.
fn blkio_weight_file() -> Option<&'static str> {
    let probe = std::path::Path::new("/sys/fs/cgroup/blkio").join(unique("rrun-test-probe"));
    std::fs::create_dir(&probe).ok()?;
    let found = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| probe.join(f).exists());
    let _ = std::fs::remove_dir(&probe);
    found
}

/// A blkio weight on a cgroup v1 host: written where the kernel's I/O
/// scheduler offers a weight file (CFQ: blkio.weight, BFQ:
/// blkio.bfq.weight), else refused naming the field and the file, with
/// nothing left behind. Which of the two is the host's: the kernel decides
/// (this CI host's has neither scheduler, so it checks the refusal).
#[test]
#[ignore = "needs root"]
fn blkio_weight_is_written_or_refused_naming_the_missing_file() {
    require_root();
    assert!(
        !cgroup2_only(),
        "this host is cgroup2-only: blkio weight is checked on cgroup v1 (io.weight on v2 is not)"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let cg = b.cgroup_path();
    b.set_resources(json!({"blockIO": {"weight": 300}}));
    match blkio_weight_file() {
        Some(file) => {
            let _id = rt.start_detached(&b);
            let w = cgroup_file("blkio", &cg, file);
            // blkio.bfq.weight reads "default 300"
            assert!(
                w.as_deref()
                    .is_some_and(|w| w.split_whitespace().last() == Some("300")),
                "{file}: {w:?}"
            );
        }
        None => {
            let id = rt.id("weight");
            let out = rt.create(&b, &id);
            assert_fails_naming(&out, "a blkio weight", "linux.resources.blockIO.weight");
            let err = stderr(&out);
            assert!(
                err.contains(&format!("/sys/fs/cgroup/blkio{cg}/blkio.weight"))
                    && err.contains("CFQ or BFQ")
                    && !err.contains("Permission denied"),
                "{err}"
            );
            assert!(!rt.root.path().join(&id).exists());
            assert!(cgroup_dirs(&cg).is_empty(), "{:?}", cgroup_dirs(&cg));
        }
    }
}

#[test]
#[ignore = "needs root"]
fn dockerds_unset_values_are_not_written() {
    require_root();
    let rt = Runtime::new();
    // what dockerd 20.10 sends for a plain `docker run`: zeros and false
    // mean "not set" (runc writes nothing for them)
    let mut b = Bundle::busybox(&["sh", "-c", "echo ran"]);
    b.set_resources(json!({
        "blockIO": {"weight": 0},
        "cpu": {"shares": 0, "quota": 0, "period": 0},
        "memory": {"limit": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "disableOOMKiller": false},
        "pids": {"limit": 0}
    }));
    assert_eq!(rt.run_ok(&b), "ran\n");
}

#[test]
#[ignore = "needs root"]
fn hugepage_page_sizes_are_checked_before_anything_is_made() {
    require_root();
    let have_2mb = std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let _restore = RestoreSubtree::new();
    let rt = Runtime::new();
    for (size, says) in [
        ("3MB", "is not a page size"),
        ("2mb", "is not a page size"),
        // a real size this (x86) kernel does not have
        ("16GB", "this kernel has no 16GB huge pages"),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.set_resources(json!({"hugepageLimits": [{"pageSize": size, "limit": 4194304}]}));
        let field = "linux.resources.hugepageLimits[0].pageSize";
        // on a pure cgroup v2 host, where cgroups-rs skipped sizes it did
        // not know and the container ran without its limit
        if !testing_runc() && cgroup2_mount().is_some() {
            let id = rt.id("huge");
            let out = run_in_cgroup2_only_view(&rt, &b, &id);
            assert_fails_naming(&out, &format!("{size} on cgroup v2"), field);
            assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
        }
        // and here, before anything is made
        let id = rt.id("huge");
        let out = rt.run(&b, &id);
        assert_fails_naming(&out, size, field);
        assert!(stderr(&out).contains(says), "{size}: {}", stderr(&out));
        assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
    }
    // a size the kernel has still works there
    if have_2mb && !testing_runc() && cgroup2_mount().is_some() {
        let mut b = Bundle::busybox(&["true"]);
        b.set_resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}));
        let id = rt.id("huge");
        assert_ok(&run_in_cgroup2_only_view(&rt, &b, &id), "2MB on cgroup v2");
    }
}

#[test]
#[ignore = "needs root"]
fn kernel_tcp_limit_reaches_v1_and_is_ignored_with_a_warning_on_v2() {
    require_root();
    let _restore = RestoreSubtree::new();
    let rt = Runtime::new();
    let tcp = json!({"memory": {"kernelTCP": 4194304}});
    // v1: memory.kmem.tcp.limit_in_bytes, as crun writes it (and the
    // runtime-tools suite checks); cgroups-rs skipped it
    if !cgroup2_only() {
        let mut b = Bundle::busybox(&["sleep", "100"]);
        b.set_resources(tcp.clone());
        let cg = b.cgroup_path();
        let _id = rt.start_detached(&b);
        assert_eq!(
            cgroup_file("memory", &cg, "memory.kmem.tcp.limit_in_bytes").as_deref(),
            Some("4194304")
        );
    }
    // v2 has no such limit: the container runs, and the user is told, as
    // runc does
    if !testing_runc() && cgroup2_mount().is_some() {
        let mut b = Bundle::busybox(&["true"]);
        b.set_resources(tcp);
        let id = rt.id("tcp");
        let out = run_in_cgroup2_only_view(&rt, &b, &id);
        assert_ok(&out, "kernelTCP on cgroup v2");
        assert!(
            stderr(&out).contains("linux.resources.memory.kernelTCP is ignored"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
#[ignore = "needs root"]
fn blkio_throttle() {
    require_root();
    assert!(
        !cgroup2_only() && std::path::Path::new("/sys/fs/cgroup/blkio").exists(),
        "this host has no cgroup v1 blkio controller (/sys/fs/cgroup/blkio): the test needs one"
    );
    // the device of the root filesystem
    let dev = nix::sys::stat::stat("/").unwrap().st_dev;
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let cg = b.cgroup_path();
    b.set_resources(json!({"blockIO": {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
    }}));
    let _id = rt.start_detached(&b);
    assert_eq!(
        cgroup_file("blkio", &cg, "blkio.throttle.read_bps_device"),
        Some(format!("{major}:{minor} 1048576"))
    );
    assert_eq!(
        cgroup_file("blkio", &cg, "blkio.throttle.write_iops_device"),
        Some(format!("{major}:{minor} 100"))
    );
}

#[test]
#[ignore = "needs root"]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/sys/fs/cgroup/pids/pids.max"]);
    b.set_resources(json!({"pids": {"limit": 77}}));
    if !std::path::Path::new("/sys/fs/cgroup/pids").exists() {
        b.edit(|v| v["process"]["args"] = json!(["cat", "/sys/fs/cgroup/pids.max"]));
    }
    assert_eq!(rt.run_ok(&b), "77\n");
}

#[test]
#[ignore = "needs root"]
fn memory_swap_limit() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let probe = cgroup_file("memory", "", "memory.memsw.limit_in_bytes");
    assert!(
        probe.is_some() || cgroup2_only(),
        "this kernel has no swap accounting (memory.memsw.*): boot it with swapaccount=1"
    );
    b.edit(|v| v["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 67108864}}));
    let _id = rt.start_detached(&b);
    let cg = b.cgroup_path();
    let v1 = cgroup_file("memory", &cg, "memory.memsw.limit_in_bytes");
    // cgroup v2 counts swap alone: swap.max = swap - limit
    let v2 = cgroup_file("", &cg, "memory.swap.max")
        .map(|s| (s.parse::<i64>().unwrap() + 33554432).to_string());
    assert_eq!(v1.or(v2).as_deref(), Some("67108864"));
}

#[test]
#[ignore = "needs root"]
fn unified_keys_go_to_the_cgroup2_directory() {
    require_root();
    let unified = if cgroup2_only() {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        std::path::PathBuf::from("/sys/fs/cgroup/unified")
    } else {
        panic!("this host has no cgroup2 hierarchy (hybrid or cgroup2-only): the test needs one");
    };
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    // cgroup.max.descendants exists in every cgroup2 directory, controllers or not
    b.set_resources(json!({"unified": {"cgroup.max.descendants": "7"}}));
    let id = rt.id("uni");
    let out = rt.create(&b, &id);
    if testing_runc() && !cgroup2_only() {
        // runc refuses `unified` on a hybrid host ("cannot use unified on
        // cgroup v1"); a refusal must name the field and leave nothing
        assert_fails_naming(
            &out,
            "runc's create with unified on a hybrid host",
            "unified",
        );
        assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
        return;
    }
    assert_ok(&out, "create with unified");
    let cg = b.cgroup_path();
    let dir = unified.join(cg.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.max.descendants"))
            .unwrap()
            .trim(),
        "7"
    );
    // an unknown key is refused, naming it
    let mut bad = Bundle::busybox(&["true"]);
    bad.set_resources(json!({"unified": {"no.such.file": "1"}}));
    let id = rt.id("uni-bad");
    let out = rt.create(&bad, &id);
    assert_fails_naming(&out, "create with an unknown unified key", "no.such.file");
    assert!(cgroup_dirs(&bad.cgroup_path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn cgroups_path_is_honoured_and_removed() {
    require_root();
    // a nested path: parents are made (and only the leaf is removed, so
    // remove the parents afterwards, also on failure)
    let parent = unique("rrun-test-parent");
    struct RmParent(String);
    impl Drop for RmParent {
        fn drop(&mut self) {
            for d in cgroup_dirs(&self.0) {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let _rm = RmParent(format!("/{parent}"));
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let cg = format!("/{parent}/leaf");
    b.with_linux(|l| {
        l.set_cgroups_path(Some(cg.clone().into()));
    });
    let id = rt.start_detached(&b);
    let pid = rt.pid(&id);
    let procs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        if cgroup2_only() {
            break;
        }
        assert!(
            procs.lines().any(|l| l
                .split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|x| x == ctrl))
                && l.ends_with(&cg)),
            "{ctrl} not at {cg}: {procs}"
        );
    }
    assert!(!cgroup_dirs(&cg).is_empty());
    let tasks = cgroup_file("pids", &cg, "cgroup.procs").unwrap();
    assert!(tasks.lines().any(|l| l == pid.to_string()), "{tasks}");
    assert_ok(&rt.cmd(&["delete", "--force", &id]), "delete --force");
    assert!(cgroup_dirs(&cg).is_empty(), "{:?}", cgroup_dirs(&cg));
}

/// A cgroup2 hierarchy without the memory controller (this hybrid host's
/// cgroup2 seen alone from a private mount namespace): a memory limit is
/// refused naming the controller, and no cgroup directory is left.
#[test]
#[ignore = "needs root"]
fn a_limit_without_its_controller_is_refused_and_leaves_nothing() {
    require_root();
    assert!(
        !testing_runc(),
        "runc 1.1 refuses this cgroup2-only view of a hybrid host: run this test against rrun"
    );
    let Some(unified) = cgroup2_mount() else {
        panic!("this host has no cgroup2 hierarchy: the test needs a hybrid host's");
    };
    let controllers = std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap();
    assert!(
        !controllers.split_whitespace().any(|c| c == "memory"),
        "this host's cgroup2 hierarchy has the memory controller: the test needs one without \
         it (a hybrid host, memory on cgroup v1)"
    );
    let _restore = RestoreSubtree::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["linux"]["resources"] = json!({"memory": {"limit": 67108864}}));
    let id = rt.id("nomem");
    let out = run_in_cgroup2_only_view(&rt, &b, &id);
    let left = unified.join(&id);
    let was_left = left.exists();
    let _ = std::fs::remove_dir(&left);
    assert_fails_naming(&out, "a memory limit without a memory controller", "memory");
    let err = stderr(&out);
    assert!(!err.contains("subsystems is empty"), "{err}");
    assert!(!was_left, "{} left behind", left.display());
}

/// How the cgroup mounts look to a traced rrun: this host's own layout, or
/// (from a private mount namespace) only its v1 hierarchies, or only one
/// cgroup2 mount at /sys/fs/cgroup.
#[derive(Clone, Copy, Debug, PartialEq)]
enum View {
    Host,
    V1Only,
    V2Only,
}

impl View {
    /// Whether the view has v1 hierarchies, and a cgroup2 one.
    fn has(self) -> (bool, bool) {
        let v1 = !cgroup2_only() && self != View::V2Only;
        let v2 = cgroup2_mount().is_some() && self != View::V1Only;
        (v1, v2)
    }
}

/// `strace -f` of `rrun --root ROOT ARGS` in a cgroup view, its clones
/// and writes with the paths of their fds; (rrun's output, the trace).
/// `refuse_clone3`: under a seccomp filter that fails clone3 with ENOSYS,
/// as the default profiles of Docker and Podman do for what runs in them.
fn traced(rt: &Runtime, view: View, refuse_clone3: bool, args: &[&str]) -> (Output, String) {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "strace is needed for this test: make deps installs it"
    );
    rt.track(args);
    let trace = tempfile::NamedTempFile::new().unwrap();
    let view_script = match view {
        View::Host => "exec \"$@\"",
        View::V1Only => "umount /sys/fs/cgroup/unified && exec \"$@\"",
        View::V2Only => "for m in $(awk '$2 ~ \"^/sys/fs/cgroup/\" {print $2}' /proc/self/mounts | sort -r); do umount -l \"$m\"; done; \
                         umount -l /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"",
    };
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        view_script,
        "sh",
    ])
    .args(["strace", "-f", "-qq", "-y", "-s", "64"])
    .args(["-e", "trace=clone,clone3,fork,vfork,write", "-o"])
    .arg(trace.path())
    .arg(rrun_bin())
    .arg("--root")
    .arg(rt.root.path())
    .args(args)
    .stdin(std::process::Stdio::null());
    if refuse_clone3 {
        let filter = [
            // the syscall number (seccomp_data.nr)
            bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
            bpf(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                0,
                1,
                libc::SYS_clone3 as u32,
            ),
            bpf(
                libc::BPF_RET | libc::BPF_K,
                0,
                0,
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            ),
            bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        ];
        // SAFETY: the closure only makes the seccomp syscall, which is
        // async-signal-safe, on a program that lives in the closure.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr() as *mut libc::sock_filter,
                };
                // root: no no_new_privs needed (CAP_SYS_ADMIN)
                if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = output_via_files(&mut cmd);
    (out, std::fs::read_to_string(trace.path()).unwrap())
}

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The trace's writes to files named `name` (`tasks`, `cgroup.procs`) below
/// the cgroup `path`: (the file, what was written).
fn writes_to(trace: &str, path: &str, name: &str) -> Vec<(String, String)> {
    let suffix = format!("{path}/{name}>");
    trace
        .lines()
        .filter_map(|l| {
            let (_, call) = l.split_once("write(")?;
            let (file, rest) = call.split_once(", \"")?;
            let file = file.split_once('<')?.1;
            let (data, _) = rest.split_once('"')?;
            file.ends_with(&suffix)
                .then(|| (file.trim_end_matches('>').to_string(), data.to_string()))
        })
        .collect()
}

/// The v1 hierarchies mounted on the host (mount points).
fn v1_hierarchies() -> Vec<std::path::PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .filter(|h| {
            nix::sys::statfs::statfs(h)
                .is_ok_and(|s| s.filesystem_type() != nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
        .collect()
}

/// The container printed its /proc/self/cgroup (no cgroup namespace):
/// it is in `path` in every hierarchy the view has.
#[track_caller]
fn assert_member_everywhere(out: &Output, view: View, path: &str) {
    let (v1, v2) = view.has();
    let text = stdout(out);
    let mut seen = 0;
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, p) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if (ctrl.is_empty() && v2) || (!ctrl.is_empty() && v1) {
            assert_eq!(p, path, "hierarchy {ctrl:?}: {text}");
            seen += 1;
        }
    }
    let want = if v1 { v1_hierarchies().len() } else { 0 } + usize::from(v2);
    assert_eq!(seen, want, "{text}");
}

/// What the trace of a create or exec must show: stage 1 entered the
/// container's cgroup without any write to a `cgroup.procs` file (which
/// takes the kernel's global threadgroup lock and waits for an RCU grace
/// period): born in the cgroup2 directory by clone3(CLONE_INTO_CGROUP),
/// and by writing `0` to the `tasks` file of each v1 hierarchy.
#[track_caller]
fn assert_lock_free_entry(trace: &str, view: View, path: &str) {
    let (v1, v2) = view.has();
    let procs = writes_to(trace, path, "cgroup.procs");
    assert!(procs.is_empty(), "cgroup.procs written: {procs:?}\n{trace}");
    if v2 {
        assert!(
            trace
                .lines()
                .any(|l| l.contains("clone3({flags=CLONE_INTO_CGROUP")
                    && l.rsplit_once(" = ")
                        .is_some_and(|(_, r)| r.trim().parse::<i32>().is_ok_and(|p| p > 0))),
            "no clone3 into the cgroup2 directory:\n{trace}"
        );
    }
    let tasks = writes_to(trace, path, "tasks");
    if v1 {
        for h in v1_hierarchies() {
            let file = format!("{}{path}/tasks", h.display());
            assert!(
                tasks.iter().any(|(f, d)| *f == file && d == "0"),
                "no write of 0 to {file}: {tasks:?}\n{trace}"
            );
        }
    } else {
        assert!(tasks.is_empty(), "{tasks:?}");
    }
}

fn container_printing_its_cgroups() -> Bundle {
    let mut b = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    b.remove_namespace(oci_spec::runtime::LinuxNamespaceType::Cgroup);
    b
}

/// `rrun run` on this host's layout, on its v1 hierarchies alone and on
/// cgroup2 alone: the container starts in its cgroup in every hierarchy,
/// and no `cgroup.procs` was written on the way (no wait for the lock).
#[test]
#[ignore = "needs root"]
fn create_enters_the_cgroups_without_writing_cgroup_procs() {
    require_root();
    assert!(
        !testing_runc(),
        "this test traces rrun's own way into the cgroup (clone3, v1 tasks): run it against rrun"
    );
    let _restore = RestoreSubtree::new();
    let mut views = vec![View::Host];
    if !cgroup2_only() && cgroup2_mount().is_some() {
        views.extend([View::V1Only, View::V2Only]);
    }
    for view in views {
        let rt = Runtime::new();
        let b = container_printing_its_cgroups();
        let id = rt.id("lockfree");
        let (out, trace) = traced(&rt, view, false, &["run", "-b", b.path_str(), &id]);
        assert_ok(&out, &format!("run in the {view:?} view"));
        let path = b.cgroup_path();
        assert_member_everywhere(&out, view, &path);
        assert_lock_free_entry(&trace, view, &path);
    }
}

/// `rrun exec` joins the container's cgroups the same way.
#[test]
#[ignore = "needs root"]
fn exec_enters_the_cgroups_without_writing_cgroup_procs() {
    require_root();
    assert!(
        !testing_runc(),
        "this test traces rrun's own way into the cgroup (clone3, v1 tasks): run it against rrun"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    b.remove_namespace(oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let id = rt.start_detached(&b);
    let (out, trace) = traced(
        &rt,
        View::Host,
        false,
        &["exec", &id, "cat", "/proc/self/cgroup"],
    );
    assert_ok(&out, "exec");
    let path = b.cgroup_path();
    assert_member_everywhere(&out, View::Host, &path);
    assert_lock_free_entry(&trace, View::Host, &path);
    assert_ok(&rt.cmd(&["delete", "--force", &id]), "delete");
}

/// Under a seccomp filter that refuses clone3 (ENOSYS, as Docker's and
/// Podman's default profiles answer), run and exec still put the
/// container's processes into every hierarchy: the cgroup2 one by a write
/// to its cgroup.procs after a plain fork.
#[test]
#[ignore = "needs root"]
fn without_clone3_the_cgroup2_directory_is_joined_by_a_write() {
    require_root();
    assert!(
        !testing_runc(),
        "this test traces rrun's own way into the cgroup (clone3, v1 tasks): run it against rrun"
    );
    let Some(_) = cgroup2_mount() else {
        panic!("this test needs a cgroup2 hierarchy (hybrid or cgroup2 host)");
    };
    let rt = Runtime::new();
    let b = container_printing_its_cgroups();
    let path = b.cgroup_path();
    let id = rt.id("noclone3");
    let (out, trace) = traced(&rt, View::Host, true, &["run", "-b", b.path_str(), &id]);
    assert_ok(&out, "run with clone3 refused");
    assert_member_everywhere(&out, View::Host, &path);
    assert!(
        trace.contains("clone3({flags=CLONE_INTO_CGROUP") && trace.contains("ENOSYS"),
        "clone3 was not tried and refused:\n{trace}"
    );
    let procs = writes_to(&trace, &path, "cgroup.procs");
    assert_eq!(
        procs.len(),
        1,
        "one cgroup.procs write, the cgroup2 one: {procs:?}\n{trace}"
    );

    let mut sleeper = Bundle::busybox(&["sleep", "100"]);
    sleeper.remove_namespace(oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let id = rt.start_detached(&sleeper);
    let (out, trace) = traced(
        &rt,
        View::Host,
        true,
        &["exec", &id, "cat", "/proc/self/cgroup"],
    );
    assert_ok(&out, "exec with clone3 refused");
    assert_member_everywhere(&out, View::Host, &sleeper.cgroup_path());
    assert!(trace.contains("ENOSYS"), "{trace}");
    assert_ok(&rt.cmd(&["delete", "--force", &id]), "delete");
}
