//! process.ioPriority, process.scheduler, linux.personality,
//! linux.timeOffsets, and the LSM fields on a host without AppArmor/SELinux.

use rrun_tests::*;
use serde_json::json;

/// Fields 19 (nice) and 41 (policy) of /proc/self/stat.
fn nice_and_policy(stat: &str) -> (i64, i64) {
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after the comm, field N is f[N - 3]
    (f[19 - 3].parse().unwrap(), f[41 - 3].parse().unwrap())
}

#[test]
#[ignore = "needs root"]
fn io_priority_is_set() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["ionice", "-p", "1"]);
    b.edit(|v| v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}));
    assert_eq!(rt.run_ok(&b).trim(), "idle");
    b.edit(|v| v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
    assert_eq!(rt.run_ok(&b).trim(), "best-effort: prio 6");
}

#[test]
#[ignore = "needs root"]
fn scheduler_policy_and_nice() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/stat"]);
    b.edit(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}));
    // SCHED_BATCH is 3
    assert_eq!(nice_and_policy(&rt.run_ok(&b)), (7, 3));
    b.edit(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"}));
    assert_eq!(nice_and_policy(&rt.run_ok(&b)).1, 5);
}

/// LINUX32 on x86_64 makes `uname -m` say i686 (other architectures name
/// their 32-bit machine otherwise: the test exists on x86_64 only).
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "needs root"]
fn personality_linux32() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["uname", "-m"]);
    assert_eq!(rt.run_ok(&b).trim(), "x86_64");
    b.edit(|v| v["linux"]["personality"] = json!({"domain": "LINUX32"}));
    assert_eq!(rt.run_ok(&b).trim(), "i686");
}

#[test]
#[ignore = "needs root"]
fn time_offsets_move_the_container_clocks() {
    require_root();
    assert!(
        std::path::Path::new("/proc/self/ns/time").exists(),
        "this kernel has no time namespaces (/proc/self/ns/time, Linux 5.6): the test needs them"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/uptime"]);
    b.add_namespace("time", None);
    // a year of extra boot time
    b.edit(|v| {
        v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 31536000, "nanosecs": 0},
                                            "monotonic": {"secs": 86400}})
    });
    let inside: f64 = rt
        .run_ok(&b)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside - host > 31536000.0 - 60.0 && inside - host < 31536000.0 + 60.0,
        "inside {inside}, host {host}"
    );
}

#[test]
#[ignore = "needs root"]
fn bad_attributes_are_refused_with_the_field() {
    require_root();
    let rt = Runtime::new();
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let mut cases = vec![
        (
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}}),
            "process.ioPriority.priority",
        ),
        (
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO"}}}),
            "process.scheduler.priority",
        ),
        (
            json!({"linux": {"timeOffsets": {"realtime": {"secs": 1}}}}),
            "linux.timeOffsets.realtime",
        ),
        (
            json!({"linux": {"timeOffsets": {"boottime": {"secs": 1}}}}),
            "linux.timeOffsets",
        ),
    ];
    if !apparmor {
        cases.push((
            json!({"process": {"apparmorProfile": "rbox-default"}}),
            "process.apparmorProfile",
        ));
    }
    if !selinux {
        cases.push((
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
            "process.selinuxLabel",
        ));
    }
    for (patch, want) in cases {
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|v| {
            for (section, fields) in patch.as_object().unwrap() {
                for (k, val) in fields.as_object().unwrap() {
                    v[section][k] = val.clone();
                }
            }
        });
        let id = rt.id("badattr");
        let out = rt.run(&b, &id);
        assert!(!out.status.success(), "{want}: accepted");
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
        assert!(!rt.root.path().join(&id).exists(), "{want}: state left");
    }
}
