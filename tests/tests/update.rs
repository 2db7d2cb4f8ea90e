//! `update` and `events`.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rrun_tests::*;
use serde_json::Value;

fn memory_limit(cg: &str) -> Option<String> {
    cgroup_file("memory", cg, "memory.limit_in_bytes").or(cgroup_file("", cg, "memory.max"))
}

#[test]
#[ignore = "needs root"]
fn update_flags_change_the_running_container_limits() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let cg = b.cgroup_path();
    let out = rt.cmd(&[
        "update",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpu-share",
        "512",
        "--pids-limit",
        "20",
        &id,
    ]);
    assert_ok(&out, "update");
    assert_eq!(memory_limit(&cg).as_deref(), Some("67108864"));
    assert_eq!(cgroup_file("pids", &cg, "pids.max").as_deref(), Some("20"));
    if let Some(q) = cgroup_file("cpu", &cg, "cpu.cfs_quota_us") {
        assert_eq!(q, "50000");
        assert_eq!(
            cgroup_file("cpu", &cg, "cpu.shares").as_deref(),
            Some("512")
        );
    }
    // the limit really applies: more than 20 processes cannot start
    let out = rt.exec(
        &id,
        &["sh", "-c", "for i in $(seq 30); do sleep 5 & done; wait"],
    );
    assert!(
        stderr(&out).contains("Resource temporarily unavailable") || !out.status.success(),
        "{}",
        stderr(&out)
    );
    // a second update keeps what it does not mention
    assert_ok(&rt.cmd(&["update", "--pids-limit", "-1", &id]), "update");
    assert_eq!(cgroup_file("pids", &cg, "pids.max").as_deref(), Some("max"));
    assert_eq!(memory_limit(&cg).as_deref(), Some("67108864"));
}

#[test]
#[ignore = "needs root"]
fn update_from_a_resources_file_and_stdin() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let cg = b.cgroup_path();
    let file = b.path().join("resources.json");
    std::fs::write(
        &file,
        r#"{"memory": {"limit": 100663296}, "pids": {"limit": 33}}"#,
    )
    .unwrap();
    assert_ok(
        &rt.cmd(&["update", "-r", file.to_str().unwrap(), &id]),
        "update -r",
    );
    assert_eq!(memory_limit(&cg).as_deref(), Some("100663296"));
    assert_eq!(cgroup_file("pids", &cg, "pids.max").as_deref(), Some("33"));

    let mut child = rt
        .command()
        .args(["update", "-r", "-", &id])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 44}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(cgroup_file("pids", &cg, "pids.max").as_deref(), Some("44"));
}

#[test]
#[ignore = "needs root"]
fn update_bad_input() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let out = rt.cmd(&["update", "--memory", "12q", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--memory"), "{}", stderr(&out));
    let file = b.path().join("bad.json");
    std::fs::write(&file, r#"{"pids": {"limit": "many"}}"#).unwrap();
    let out = rt.cmd(&["update", "-r", file.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pids.limit"), "{}", stderr(&out));
    let out = rt.cmd(&["update", "--memory", "64m", "no-such-container"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no-such-container"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "needs root"]
fn events_stats_once() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let id = rt.start_detached(&b);
    wait_for("two processes", Duration::from_secs(5), || {
        rt.pids(&id).len() >= 3
    });
    let out = rt.cmd(&["events", "--stats", &id]);
    assert_ok(&out, "events --stats");
    let ev: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let d = &ev["data"];
    assert_eq!(d["pids"]["current"], 3, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
}

#[test]
#[ignore = "needs root"]
fn events_stream_reports_oom_and_ends_with_the_container() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "sleep 0.5; head -c 200m /dev/zero | tail > /dev/null; sleep 2",
    ]);
    b.set_resources(serde_json::json!({"memory": {"limit": 16777216, "swap": 16777216}}));
    let id = rt.start_detached(&b);
    let mut child = rt
        .command()
        .args(["events", "--interval", "100ms", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    let mut kinds = Vec::new();
    for line in lines {
        let ev: Value = serde_json::from_str(&line.unwrap()).unwrap();
        kinds.push(ev["type"].as_str().unwrap().to_string());
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "events did not end"
        );
    }
    // the stream ends by itself once the container has stopped
    assert!(child.wait().unwrap().success());
    assert!(kinds.iter().any(|k| k == "oom"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| *k == "stats").count() >= 2,
        "{kinds:?}"
    );
}
