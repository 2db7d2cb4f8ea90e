//! cgroups: cgroupsPath and resources, checked in the host's cgroup files
//! and from inside; removal on delete. This host is hybrid (v1 controllers
//! plus cgroup2 at /sys/fs/cgroup/unified); the checks read v1 or v2 files,
//! whichever exist.

use rrun_tests::*;

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

#[test]
#[ignore = "needs root"]
fn devices_allowlist() {
    require_root();
    if !std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        eprintln!("skipped: no v1 devices controller (device rules on cgroup2 need eBPF)");
        return;
    }
    let rt = Runtime::new();
    // a node the rules do not allow (kmsg, 1:11), made in the rootfs by the host
    let mut b = Bundle::busybox(&["sh", "-c", "head -c1 /kmsgnode >/dev/null 2>&1 && echo kmsg-ok || echo kmsg-denied; echo x > /dev/null && head -c1 /dev/zero >/dev/null && echo defaults-ok"]);
    nix::sys::stat::mknod(
        &b.rootfs().join("kmsgnode"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 11),
    )
    .unwrap();
    b.edit(|v| {
        v["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]})
    });
    // the default devices stay usable, like runc's allowlist
    assert_eq!(rt.run_ok(&b), "kmsg-denied\ndefaults-ok\n");
}

#[test]
#[ignore = "needs root"]
fn hugepage_limits() {
    require_root();
    let size_dir = std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB");
    if !size_dir.exists() {
        eprintln!("skipped: no 2MB huge pages on this kernel");
        return;
    }
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

#[test]
#[ignore = "needs root"]
fn blkio_weight() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let cg = b.cgroup_path();
    let probe =
        cgroup_file("blkio", "", "blkio.weight").or(cgroup_file("blkio", "", "blkio.bfq.weight"));
    if probe.is_none() {
        eprintln!("skipped: no blkio.weight (no CFQ/BFQ scheduler)");
        return;
    }
    b.edit(|v| v["linux"]["resources"] = json!({"blockIO": {"weight": 300}}));
    let _id = rt.start_detached(&b);
    let w =
        cgroup_file("blkio", &cg, "blkio.weight").or(cgroup_file("blkio", &cg, "blkio.bfq.weight"));
    assert!(w.as_deref().is_some_and(|w| w.contains("300")), "{w:?}");
}

#[test]
#[ignore = "needs root"]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/sys/fs/cgroup/pids/pids.max"]);
    b.edit(|v| v["linux"]["resources"] = json!({"pids": {"limit": 77}}));
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
    if probe.is_none() && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("skipped: no swap accounting (memory.memsw.*) on this kernel");
        return;
    }
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
    let unified = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        std::path::PathBuf::from("/sys/fs/cgroup/unified")
    } else {
        eprintln!("skipped: no cgroup2 hierarchy");
        return;
    };
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    // cgroup.max.descendants exists in every cgroup2 directory, controllers or not
    b.edit(|v| v["linux"]["resources"] = json!({"unified": {"cgroup.max.descendants": "7"}}));
    let _id = rt.start_detached(&b);
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
    bad.edit(|v| v["linux"]["resources"] = json!({"unified": {"no.such.file": "1"}}));
    let id = rt.id("uni");
    let out = rt.create(&bad, &id);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no.such.file"), "{}", stderr(&out));
    assert!(cgroup_dirs(&bad.cgroup_path()).is_empty());
}
