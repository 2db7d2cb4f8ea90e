//! create/start/state/kill/delete/run/list/ps/pause/resume/exec/spec/features.

use rrun_tests::*;
use std::time::Duration;

#[test]
#[ignore = "needs root"]
fn create_start_kill_delete() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("life");
    let pidfile = b.path().join("pid");
    let out = rt.cmd(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "create");
    let st = rt.state(&id);
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    assert_ok(&rt.cmd(&["start", &id]), "start");
    assert_eq!(rt.status(&id), "running");
    // a running container cannot be deleted without --force
    assert!(!rt.cmd(&["delete", &id]).status.success());
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    rt.wait_status(&id, "stopped");
    assert_ok(&rt.cmd(&["delete", &id]), "delete");
    assert!(!rt.root.path().join(&id).exists(), "state dir left behind");
    assert!(
        cgroup_dirs(&b.cgroup_path()).is_empty(),
        "cgroup left behind"
    );
    assert!(!rt.cmd(&["state", &id]).status.success());
}

#[test]
#[ignore = "needs root"]
fn kill_accepts_names_and_numbers() {
    require_root();
    let rt = Runtime::new();
    // PID 1 ignores signals it has no handler for: handle TERM explicitly
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.05; done",
    ]);
    for sig in ["TERM", "SIGKILL", "9", "sigterm", "15"] {
        let id = rt.start_detached(&b);
        assert_ok(&rt.cmd(&["kill", &id, sig]), sig);
        rt.wait_status(&id, "stopped");
        assert_ok(&rt.cmd(&["delete", &id]), "delete");
    }
    let id = rt.start_detached(&b);
    let out = rt.cmd(&["kill", &id, "NOTASIGNAL"]);
    assert!(!out.status.success());
}

#[test]
#[ignore = "needs root"]
fn run_passes_the_exit_code() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let id = rt.id("exit");
    let out = rt.run(&b, &id);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"));
    assert!(
        !rt.root.path().join(&id).exists(),
        "run must delete the container"
    );
}

#[test]
#[ignore = "needs root"]
fn run_killed_by_signal_exits_128_plus_signo() {
    require_root();
    let rt = Runtime::new();
    // the init (PID 1) cannot be killed from inside: kill it from outside
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("sig");
    let mut child = rt
        .command()
        .args(["run", "-b", b.path().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !rt.cmd(&["state", &id]).status.success() || rt.status(&id) != "running" {
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    assert_eq!(child.wait().unwrap().code(), Some(137));
    // an exec'd process killed by a signal: 128+15
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    assert_eq!(
        rt.exec(&id, &["sh", "-c", "kill -TERM $$"]).status.code(),
        Some(143)
    );
}

#[test]
#[ignore = "needs root"]
fn run_detached_with_pid_file() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("det");
    let pidfile = b.path().join("p.pid");
    let out = rt.cmd(&[
        "run",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "run -d");
    assert_eq!(rt.status(&id), "running");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(pid.trim(), rt.state(&id)["pid"].to_string());
}

#[test]
#[ignore = "needs root"]
fn list_formats() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let a = rt.start_detached(&b);
    let c = rt.id("lst");
    let b2 = Bundle::busybox(&["sleep", "100"]);
    assert_ok(&rt.create(&b2, &c), "create");
    let table = stdout(&rt.cmd(&["list"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&a) && l.contains("running")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&c) && l.contains("created")),
        "{table}"
    );
    let json: Value =
        serde_json::from_slice(&rt.cmd(&["list", "--format", "json"]).stdout).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&a.as_str()) && ids.contains(&c.as_str()));
    let quiet = stdout(&rt.cmd(&["list", "-q"]));
    let mut q: Vec<&str> = quiet.lines().collect();
    q.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(q, want);
}

#[test]
#[ignore = "needs root"]
fn duplicate_and_unknown_ids() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let pid = rt.state(&id)["pid"].clone();
    let out = rt.create(&b, &id);
    assert!(!out.status.success(), "duplicate id must fail");
    assert!(stderr(&out).contains(&id), "{}", stderr(&out));
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.state(&id)["pid"], pid);
    for verb in [
        &["state"][..],
        &["start"],
        &["kill"],
        &["delete"],
        &["pause"],
        &["exec", "--", "true"],
    ] {
        let mut args: Vec<&str> = verb.to_vec();
        args.insert(1.min(args.len()), "no-such-ctr");
        if verb[0] == "exec" {
            args = vec!["exec", "no-such-ctr", "true"];
        }
        let out = rt.cmd(&args);
        assert!(!out.status.success(), "{args:?} on an unknown id must fail");
        assert!(
            stderr(&out).contains("no-such-ctr"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
#[ignore = "needs root"]
fn ps_lists_container_processes() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "sleep 100 & sleep 101"]);
    let id = rt.start_detached(&b);
    std::thread::sleep(Duration::from_millis(200));
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let json: Vec<i64> =
        serde_json::from_slice(&rt.cmd(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(json.contains(&init), "{json:?}");
    assert!(json.len() >= 2, "{json:?}");
    let table = stdout(&rt.cmd(&["ps", &id]));
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(
        table.contains("sleep 100") && table.contains("sleep 101"),
        "{table}"
    );
}

#[test]
#[ignore = "needs root"]
fn pause_freezes_and_resume_thaws() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done",
    ]);
    let id = rt.start_detached(&b);
    std::thread::sleep(Duration::from_millis(100));
    assert_ok(&rt.cmd(&["pause", &id]), "pause");
    assert_eq!(rt.status(&id), "paused");
    let count = || std::fs::read_to_string(b.rootfs().join("tmp/count")).unwrap_or_default();
    let frozen = count();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(frozen, count(), "the container made progress while paused");
    assert!(
        !rt.cmd(&["pause", &id]).status.success(),
        "pausing twice must fail"
    );
    assert_ok(&rt.cmd(&["resume", &id]), "resume");
    assert_eq!(rt.status(&id), "running");
    std::thread::sleep(Duration::from_millis(200));
    assert_ne!(frozen, count(), "no progress after resume");
    // delete --force works on a paused container too
    assert_ok(&rt.cmd(&["pause", &id]), "pause");
    assert_ok(
        &rt.cmd(&["delete", "--force", &id]),
        "delete --force paused",
    );
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn exec_joins_the_container() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let out = rt.exec(
        &id,
        &[
            "sh",
            "-c",
            "hostname; ps -o pid,args | grep -c 'sleep 100'; cat /proc/1/cmdline | tr '\\0' ' '",
        ],
    );
    assert_ok(&out, "exec");
    let s = stdout(&out);
    assert!(s.starts_with("rrun-test\n"), "{s}");
    assert!(s.contains("sleep 100"), "{s}");
    let code = rt.exec(&id, &["sh", "-c", "exit 42"]);
    assert_eq!(code.status.code(), Some(42));
    let env = stdout(&rt.exec_with(
        &["-e", "FOO=bar", "--cwd", "/tmp"],
        &id,
        &["sh", "-c", "echo $FOO; pwd"],
    ));
    assert_eq!(env, "bar\n/tmp\n");
    let user = stdout(&rt.exec_with(&["-u", "1000:1000"], &id, &["id", "-u"]));
    assert_eq!(user.trim(), "1000");
    // -d: detached, pid file written
    let pidfile = b.path().join("exec.pid");
    assert_ok(
        &rt.exec_with(
            &["-d", "--pid-file", pidfile.to_str().unwrap()],
            &id,
            &["sleep", "50"],
        ),
        "exec -d",
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps: Vec<i32> =
        serde_json::from_slice(&rt.cmd(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(ps.contains(&pid), "exec -d process {pid} not in {ps:?}");
    // --process
    let proc_json = b.path().join("proc.json");
    let mut p = serde_json::to_value(b.spec.process().clone().unwrap()).unwrap();
    p["args"] = json!(["sh", "-c", "echo from-process-json $X"]);
    p["env"] = json!(["PATH=/bin", "X=1"]);
    std::fs::write(&proc_json, p.to_string()).unwrap();
    let out = rt.cmd(&["exec", "--process", proc_json.to_str().unwrap(), &id]);
    assert_ok(&out, "exec --process");
    assert_eq!(stdout(&out), "from-process-json 1\n");
    // a missing program is an error, not a hang
    let out = rt.exec(&id, &["no-such-program"]);
    assert!(!out.status.success());
}

#[test]
#[ignore = "needs root"]
fn exec_refuses_stopped_container() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    rt.wait_status(&id, "stopped");
    assert!(!rt.exec(&id, &["true"]).status.success());
}

#[test]
#[ignore = "needs root"]
fn kill_all_signals_every_process() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "trap '' TERM; sleep 100 & wait"]);
    let id = rt.start_detached(&b);
    std::thread::sleep(Duration::from_millis(200));
    assert_ok(&rt.cmd(&["kill", "--all", &id, "KILL"]), "kill --all");
    rt.wait_status(&id, "stopped");
    assert_ok(&rt.cmd(&["delete", &id]), "delete");
}

#[test]
#[ignore = "needs root"]
fn delete_force_running() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_ok(&rt.cmd(&["delete", "--force", &id]), "delete --force");
    assert!(!rt.root.path().join(&id).exists());
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(
            std::time::Instant::now() < deadline,
            "init {pid} still alive"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn delete_created_container() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("crt");
    assert_ok(&rt.create(&b, &id), "create");
    assert_ok(&rt.cmd(&["delete", &id]), "delete of a created container");
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

#[test]
fn features_and_spec() {
    let rt = Runtime::new();
    let f: Value = serde_json::from_slice(&rt.cmd(&["features"]).stdout).unwrap();
    assert!(
        f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string(),
        "{f}"
    );
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    let dir = tempfile::tempdir().unwrap();
    assert_ok(
        &rt.cmd(&["spec", "--bundle", dir.path().to_str().unwrap()]),
        "spec",
    );
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert!(
        !rt.cmd(&["spec", "--bundle", dir.path().to_str().unwrap()])
            .status
            .success(),
        "spec must not overwrite"
    );
    let dir2 = tempfile::tempdir().unwrap();
    assert_ok(
        &rt.cmd(&[
            "spec",
            "--rootless",
            "--bundle",
            dir2.path().to_str().unwrap(),
        ]),
        "spec --rootless",
    );
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir2.path().join("config.json")).unwrap()).unwrap();
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "user"), "{spec}");
    assert!(!ns.iter().any(|n| n["type"] == "network"), "{spec}");
    assert_eq!(
        spec["linux"]["uidMappings"][0]["hostID"],
        nix::unistd::geteuid().as_raw()
    );
}

#[test]
#[ignore = "needs root"]
fn state_is_stopped_when_the_init_exits_unreaped() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["true"]);
    let id = rt.start_detached(&b);
    // nobody waits for the init here (it was reparented): state must still say stopped
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    assert!(
        !rt.cmd(&["start", &id]).status.success(),
        "a stopped container cannot start"
    );
    assert!(
        !rt.cmd(&["kill", &id]).status.success(),
        "killing a stopped container is an error"
    );
    assert_ok(&rt.cmd(&["delete", &id]), "delete");
}
