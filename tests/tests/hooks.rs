//! Lifecycle hooks: order, namespaces, state on stdin, args/env, timeout,
//! failures.

use std::time::{Duration, Instant};

use rrun_tests::*;
use serde_json::{json, Value};

/// A hook running `sh -c SCRIPT`, with HOOK set to its kind.
fn sh_hook(kind: &str, script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [format!("HOOK={kind}")]})
}

fn host_mnt_ns() -> String {
    std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
#[ignore = "needs root"]
fn every_hook_runs_in_order_in_its_namespace_with_the_state() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    let log = b.path().join("hooks.log");
    let dir = b.path().to_path_buf();
    // host-side hooks log their kind and mount namespace and keep the state
    let host = |kind: &str| {
        sh_hook(
            kind,
            &format!(
                "echo $HOOK $(readlink /proc/self/ns/mnt) >> {log}; cat > {dir}/$HOOK.json",
                log = log.display(),
                dir = dir.display()
            ),
        )
    };
    // startContainer runs inside the container, after pivot_root
    let start_hook = sh_hook(
        "startContainer",
        "echo $HOOK $(readlink /proc/self/ns/mnt) > /start.log; cat > /start.json",
    );
    let id = rt.id("hooks");
    b.edit(|v| {
        v["hooks"] = json!({
            "prestart": [host("prestart")],
            "createRuntime": [host("createRuntime")],
            "createContainer": [host("createContainer")],
            "startContainer": [start_hook],
            "poststart": [host("poststart")],
            "poststop": [host("poststop")],
        });
        v["annotations"] = json!({"org.example.key": "value"});
    });
    assert_ok(&rt.create(&b, &id), "create");
    let pid = rt.pid(&id);
    assert_ok(&rt.cmd(&["start", &id]), "start");
    rt.wait_status(&id, "stopped");
    assert_ok(&rt.cmd(&["delete", &id]), "delete");

    let lines: Vec<(String, String)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, ns) = l.split_once(' ').unwrap();
            (k.to_string(), ns.to_string())
        })
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    let host_ns = host_mnt_ns();
    for (kind, ns) in &lines {
        if kind == "createContainer" {
            assert_ne!(
                ns, &host_ns,
                "createContainer runs in the container's mount namespace"
            );
        } else {
            assert_eq!(ns, &host_ns, "{kind} runs in the runtime's mount namespace");
        }
    }
    let start_log = std::fs::read_to_string(b.rootfs().join("start.log")).unwrap();
    assert!(start_log.starts_with("startContainer "), "{start_log}");
    assert_ne!(start_log.split_whitespace().nth(1).unwrap(), host_ns);

    let state = |f: &std::path::Path| -> Value {
        serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap()
    };
    for (kind, status) in [
        // as crun and the runtime-tools suite (runc says creating)
        ("prestart", "created"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let s = state(&dir.join(format!("{kind}.json")));
        assert_eq!(s["id"], id.as_str(), "{kind}");
        assert_eq!(s["status"], status, "{kind}");
        assert_eq!(s["bundle"], b.path_str(), "{kind}");
        assert_eq!(s["annotations"]["org.example.key"], "value", "{kind}");
        if kind != "poststop" {
            assert_eq!(s["pid"], pid, "{kind}");
        }
    }
    let s = state(&b.rootfs().join("start.json"));
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"], pid);
}

#[test]
#[ignore = "needs root"]
fn hook_args_env_and_no_inherited_environment() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    let out = b.path().join("out");
    b.edit(|v| {
        v["hooks"] = json!({"prestart": [{
            "path": "/bin/sh",
            "args": ["my-arg0", "-c", format!(
                "{{ tr '\\0' ' ' < /proc/$$/cmdline; echo; tr '\\0' '\\n' < /proc/$$/environ; }} > {}",
                out.display()
            ), "zero", "one"],
            "env": ["FOO=bar baz"]
        }]});
    });
    rt.run_ok(&b);
    let text = std::fs::read_to_string(&out).unwrap();
    // argv[0] from args[0]; nothing of rrun's environment, only the hook's
    assert!(text.starts_with("my-arg0 -c "), "{text}");
    assert!(text.ends_with(" zero one \nFOO=bar baz\n"), "{text}");
}

#[test]
#[ignore = "needs root"]
fn failing_hooks_fail_the_operation_and_leave_nothing() {
    require_root();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        let rt = Runtime::new();
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|v| {
            v["hooks"] = json!({kind: [sh_hook(kind, "echo broken on purpose >&2; exit 3")]});
        });
        let id = rt.id("hookfail");
        let out = rt.run(&b, &id);
        assert!(!out.status.success(), "{kind}: run succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(kind) && err.contains("broken on purpose"),
            "{kind}: {err}"
        );
        assert!(!rt.root.path().join(&id).exists(), "{kind}: state left");
        // Runtime's drop checks the cgroup and mounts are gone too
    }
}

/// A poststart or poststop hook that fails, then one that leaves a mark.
fn failing_then_marking(kind: &str, mark: &std::path::Path) -> Value {
    json!([
        sh_hook(kind, &format!("echo {kind} broken on purpose >&2; exit 3")),
        sh_hook(kind, &format!("echo $HOOK >> {}", mark.display())),
    ])
}

#[test]
#[ignore = "needs root"]
fn failing_poststart_and_poststop_hooks_warn_and_everything_goes_on() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    let mark = b.path().join("marks");
    b.edit(|v| {
        v["hooks"] = json!({
            "poststart": failing_then_marking("poststart", &mark),
            "poststop": failing_then_marking("poststop", &mark),
        })
    });
    let id = rt.id("posthooks");
    assert_ok(&rt.create(&b, &id), "create");
    // start succeeds with a warning, the later hook runs, the container too
    let out = rt.cmd(&["start", &id]);
    assert_ok(&out, "start with a failing poststart hook");
    assert!(
        stderr(&out).contains("poststart hook 0") && stderr(&out).contains("broken on purpose"),
        "no warning: {}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "poststart\n");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rt.status(&id), "running");
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    rt.wait_status(&id, "stopped");
    // delete succeeds; the warning is printed without --debug, in the
    // --log file when there is one (JSON for containerd), and the later
    // poststop hook runs
    let log = b.path().join("rrun-log.json");
    let out = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "delete",
        &id,
    ]);
    assert_ok(&out, "delete with a failing poststop hook");
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "poststart\npoststop\n"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warning = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.contains("poststop hook 0"))
        })
        .unwrap_or_else(|| panic!("no poststop warning in the log: {text:?}"));
    assert_eq!(warning["level"], "warning", "{warning}");
    assert!(!rt.root.path().join(&id).exists());

    // run in the foreground: the container runs to its end despite the
    // hook, and both warnings reach stderr
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 0.2; echo done; exit 4"]);
    let mark = b.path().join("marks");
    b.edit(|v| {
        v["hooks"] = json!({
            "poststart": failing_then_marking("poststart", &mark),
            "poststop": failing_then_marking("poststop", &mark),
        })
    });
    let out = rt.run_capture(&b);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "done\n");
    for kind in ["poststart", "poststop"] {
        assert!(
            stderr(&out).contains(&format!("warning: {kind} hook 0")),
            "{kind}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "poststart\npoststop\n"
    );
}

#[test]
#[ignore = "needs root"]
fn hook_timeout_is_enforced() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let t = Instant::now();
    let out = rt.run_capture(&b);
    assert!(!out.status.success());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the hook was not killed"
    );
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
#[ignore = "needs root"]
fn relative_hook_path_is_refused() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["hooks"] = json!({"poststart": [{"path": "bin/true"}]}));
    let id = rt.id("relhook");
    let out = rt.run(&b, &id);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("hooks.poststart[0].path"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.root.path().join(&id).exists());
}
