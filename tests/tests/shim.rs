//! containerd-shim-rrun-v2 under a real containerd: each test starts a
//! private daemon whose PATH holds a copy of the shim and rrun next to it,
//! imports a busybox image built here, and drives everything with `ctr`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rrun_tests::containerd::Containerd;
use rrun_tests::*;

const IMAGE: &str = "localhost/rrun-busybox:latest";
const RUNTIME: &str = "io.containerd.rrun.v2";

struct Rig {
    ctd: Containerd,
    /// the shim (a copy: it looks for rrun next to its real path) and rrun
    bin: tempfile::TempDir,
}

impl Rig {
    fn new(rrun: Option<&Path>) -> Rig {
        require_root();
        let bin = tempfile::Builder::new()
            .prefix("rrun-test-shimbin")
            .tempdir()
            .unwrap();
        std::fs::copy(shim_bin(), bin.path().join("containerd-shim-rrun-v2")).unwrap();
        let rrun = rrun.map(Path::to_path_buf).unwrap_or_else(rrun_bin);
        std::os::unix::fs::symlink(rrun, bin.path().join("rrun")).unwrap();
        let ctd = Containerd::start(&unique("rrun-shim"), Some(bin.path()));
        ctd.import_busybox(IMAGE);
        Rig { ctd, bin }
    }

    fn shim_path(&self) -> PathBuf {
        self.bin.path().join("containerd-shim-rrun-v2")
    }

    /// Pids of running shims started from our copy.
    fn shims(&self) -> Vec<i32> {
        let me = self.shim_path();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == me))
            .collect()
    }

    fn run_args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["run", "--runtime", RUNTIME];
        a.extend(extra);
        a
    }

    fn rrun_root(&self) -> PathBuf {
        Path::new("/run/containerd/rrun").join(&self.ctd.namespace)
    }

    /// Nothing of ours left: no shim, no rrun container, no rootfs mount.
    #[track_caller]
    fn assert_clean(&self) {
        wait_for("the shims to exit", Duration::from_secs(10), || {
            self.shims().is_empty()
        });
        let state = self.ctd.dir.path().join("state");
        assert_eq!(
            mounts_under(&state),
            Vec::<String>::new(),
            "rootfs mounts left"
        );
        // `rrun events` (the OOM watcher) ends within a second of its container
        let rrun = std::fs::canonicalize(rrun_bin()).unwrap();
        let rruns = || -> Vec<i32> {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == rrun)
                })
                .collect()
        };
        let waited = std::time::Instant::now();
        while !rruns().is_empty() && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(rruns(), Vec::<i32>::new(), "rrun processes left");
        let left: Vec<_> = std::fs::read_dir(self.rrun_root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "rrun containers left: {left:?}");
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.ctd.remove_all();
        // shims that survived a failed test, then their containers
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for e in std::fs::read_dir(self.rrun_root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new(rrun_bin())
                .arg("--root")
                .arg(self.rrun_root())
                .args(["delete", "--force"])
                .arg(e.file_name())
                .output();
        }
        let _ = std::fs::remove_dir_all(self.rrun_root());
        // the namespace's parent cgroup (containerd's cgroupsPath is /<ns>/<id>)
        for d in cgroup_dirs(&format!("/{}", self.ctd.namespace)) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn run_rm_reports_output_and_exit_code() {
    let rig = Rig::new(None);
    let out = rig.ctd.ctr(&rig.run_args(&[
        "--rm",
        IMAGE,
        "t-rm",
        "sh",
        "-c",
        "echo hello from the shim; echo to stderr >&2; exit 7",
    ]));
    assert_eq!(
        stdout(&out),
        "hello from the shim\n",
        "{}\n{}",
        stderr(&out),
        rig.ctd.log()
    );
    assert_eq!(stderr(&out), "to stderr\n");
    assert_eq!(out.status.code(), Some(7));
    // no shim or containerd fd leaks into the container
    let out =
        rig.ctd
            .ctr(&rig.run_args(&["--rm", IMAGE, "t-fd", "sh", "-c", "ls /proc/1/fd; true"]));
    assert_eq!(stdout(&out), "0\n1\n2\n", "{}", stderr(&out));
    // stdin reaches the container, and its EOF too
    let mut child = rig
        .ctd
        .ctr_command()
        .args(rig.run_args(&["--rm", IMAGE, "t-cat", "sh", "-c", "cat; echo done"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        stdout(&out),
        "line one\nline two\ndone\n",
        "{}",
        stderr(&out)
    );
    assert!(out.status.success());
    assert_eq!(rig.ctd.ok(&["container", "ls", "-q"]), "");
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn detached_task_exec_ps_pause_metrics_kill_delete() {
    let rig = Rig::new(None);
    let ctd = &rig.ctd;
    ctd.ok(&rig.run_args(&["-d", IMAGE, "t-d", "sleep", "1000"]));
    assert_eq!(ctd.task_status("t-d").as_deref(), Some("RUNNING"));
    assert_eq!(rig.shims().len(), 1);
    assert_eq!(
        ctd.ok(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "t-d",
            "sh",
            "-c",
            "echo exec ok; exit 0"
        ]),
        "exec ok\n"
    );
    let out = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "t-d",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // an exec of a missing program fails clearly
    let out = ctd.ctr(&["task", "exec", "--exec-id", "e3", "t-d", "/no/such/program"]);
    assert_fails_naming(&out, "exec of a missing program", "/no/such/program");
    // a background exec shows in ps
    ctd.ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e4",
        "t-d",
        "sleep",
        "999",
    ]);
    let ps = ctd.ok(&["task", "ps", "t-d"]);
    let pids: Vec<i32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{ps}");
    for pid in &pids {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(cmdline.starts_with("sleep\0"), "{cmdline:?}");
    }
    ctd.ok(&["task", "kill", "--exec-id", "e4", "-s", "KILL", "t-d"]);
    wait_for("the exec to end", Duration::from_secs(10), || {
        ctd.ok(&["task", "ps", "t-d"]).lines().count() == 2
    });
    // pause and resume: the freezer state is real
    ctd.ok(&["task", "pause", "t-d"]);
    assert_eq!(ctd.task_status("t-d").as_deref(), Some("PAUSED"));
    let cgroup = format!("/{}/t-d", ctd.namespace);
    assert_eq!(
        cgroup_file("freezer", &cgroup, "freezer.state").as_deref(),
        Some("FROZEN")
    );
    ctd.ok(&["task", "resume", "t-d"]);
    assert_eq!(ctd.task_status("t-d").as_deref(), Some("RUNNING"));
    assert_eq!(
        cgroup_file("freezer", &cgroup, "freezer.state").as_deref(),
        Some("THAWED")
    );
    let init = ctd.tasks().into_iter().find(|t| t.0 == "t-d").unwrap().1;
    // metrics from the container's cgroup
    let m = ctd.ok(&["task", "metrics", "t-d"]);
    let metric = |name: &str| -> String {
        m.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {name} in {m}"))
            .to_string()
    };
    assert_eq!(metric("pids.current"), "1", "{m}");
    assert!(
        metric("memory.usage_in_bytes").parse::<u64>().unwrap() > 0,
        "{m}"
    );
    // checkpoint: a clear "not implemented", and the task runs on
    let out = ctd.ctr(&["task", "checkpoint", "t-d"]);
    assert_fails_naming(
        &out,
        "ctr task checkpoint",
        "is not implemented by containerd-shim-rrun-v2",
    );
    assert_eq!(ctd.task_status("t-d").as_deref(), Some("RUNNING"));
    // kill: the task stops with 128 + 9
    ctd.ok(&["task", "kill", "-s", "KILL", "t-d"]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        ctd.task_status("t-d").as_deref() == Some("STOPPED")
    });
    ctd.ok(&["task", "delete", "t-d"]);
    ctd.ok(&["container", "delete", "t-d"]);
    // a foreground `ctr run` reports 128 + 9 when the task is killed
    let fg = ctd
        .ctr_command()
        .args(rig.run_args(&["--rm", IMAGE, "t-fg", "sleep", "1000"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the task to run", Duration::from_secs(10), || {
        ctd.task_status("t-fg").as_deref() == Some("RUNNING")
    });
    ctd.ok(&["task", "kill", "-s", "KILL", "t-fg"]);
    let out = fg.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    // a second delete is a clear error, not a crash
    let out = ctd.ctr(&["task", "delete", "t-d"]);
    assert!(!out.status.success());
    rig.assert_clean();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status_field(&status, "NSpid").is_some_and(|v| !v.contains('\t')),
        "the container's init is still there: {status}"
    );
}

#[test]
#[ignore = "needs root"]
fn tty_through_a_real_pty() {
    let rig = Rig::new(None);
    let ctr = format!(
        "ctr -a {} -n {}",
        rig.ctd.dir.path().join("containerd.sock").display(),
        rig.ctd.namespace
    );
    // the outer pty has 33 rows, 101 columns: ctr resizes the container's to match
    let script = format!(
        "stty rows 33 cols 101; {ctr} run --rm -t --runtime {RUNTIME} {IMAGE} t-tty sh -c \
         'tty; for i in 1 2 3 4 5 6 7 8 9 10; do s=$(stty size 2>/dev/null); case \"$s\" in \"\"|\"0 0\") sleep 0.2;; *) break;; esac; done; echo size $s; exit 3'"
    );
    let out = output_via_files(
        Command::new("script")
            .args(["-qec", &script, "/dev/null"])
            .stdin(Stdio::null()),
    );
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "{text}\n{}", stderr(&out));
    assert!(text.contains("size 33 101"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
    // exec with a terminal, into a container without one
    rig.ctd
        .ok(&rig.run_args(&["-d", IMAGE, "t-tty2", "sleep", "1000"]));
    let script = format!(
        "stty rows 20 cols 70; {ctr} task exec -t --exec-id x1 t-tty2 sh -c \
         'tty; for i in 1 2 3 4 5 6 7 8 9 10; do s=$(stty size 2>/dev/null); case \"$s\" in \"\"|\"0 0\") sleep 0.2;; *) break;; esac; done; echo size $s; exit 2'"
    );
    let out = output_via_files(
        Command::new("script")
            .args(["-qec", &script, "/dev/null"])
            .stdin(Stdio::null()),
    );
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text}\n{}", stderr(&out));
    assert!(text.contains("size 20 70"), "{text}");
    assert_eq!(out.status.code(), Some(2), "{text}");
    rig.ctd.ok(&["task", "kill", "-s", "KILL", "t-tty2"]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        rig.ctd.task_status("t-tty2").as_deref() == Some("STOPPED")
    });
    rig.ctd.ok(&["task", "delete", "t-tty2"]);
    rig.ctd.ok(&["container", "delete", "t-tty2"]);
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn containerd_restart_keeps_the_task() {
    let mut rig = Rig::new(None);
    rig.ctd
        .ok(&rig.run_args(&["-d", IMAGE, "t-r", "sleep", "1000"]));
    rig.ctd
        .ok(&rig.run_args(&["-d", IMAGE, "t-r2", "sleep", "1000"]));
    let init2 = rig
        .ctd
        .tasks()
        .into_iter()
        .find(|t| t.0 == "t-r2")
        .unwrap()
        .1;
    rig.ctd.stop();
    assert_eq!(rig.shims().len(), 2, "the shims outlive containerd");
    // a container that ends while containerd is away
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init2),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rig.ctd.restart();
    assert_eq!(rig.ctd.task_status("t-r").as_deref(), Some("RUNNING"));
    wait_for("t-r2 to be seen stopped", Duration::from_secs(10), || {
        rig.ctd.task_status("t-r2").as_deref() == Some("STOPPED")
    });
    rig.ctd.ok(&["task", "delete", "t-r2"]);
    rig.ctd.ok(&["container", "delete", "t-r2"]);
    assert_eq!(
        rig.ctd.ok(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "t-r",
            "echo",
            "still here"
        ]),
        "still here\n"
    );
    rig.ctd.ok(&["task", "kill", "-s", "KILL", "t-r"]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        rig.ctd.task_status("t-r").as_deref() == Some("STOPPED")
    });
    rig.ctd.ok(&["task", "delete", "t-r"]);
    rig.ctd.ok(&["container", "delete", "t-r"]);
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn a_killed_shim_does_not_orphan_its_container() {
    let rig = Rig::new(None);
    rig.ctd
        .ok(&rig.run_args(&["-d", IMAGE, "t-k", "sleep", "1000"]));
    let init = rig
        .ctd
        .tasks()
        .into_iter()
        .find(|t| t.0 == "t-k")
        .unwrap()
        .1;
    let shims = rig.shims();
    assert_eq!(shims.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // containerd sees the shim go, runs `shim delete`, which kills the container
    wait_for(
        "the container to be killed",
        Duration::from_secs(20),
        || {
            !Path::new(&format!("/proc/{init}")).exists()
                || std::fs::read_to_string(format!("/proc/{init}/status"))
                    .is_ok_and(|s| status_field(&s, "State").is_some_and(|v| v.starts_with('Z')))
        },
    );
    wait_for("the task to be gone", Duration::from_secs(10), || {
        rig.ctd.task_status("t-k").is_none_or(|s| s == "STOPPED")
    });
    let _ = rig.ctd.ctr(&["task", "delete", "t-k"]);
    rig.ctd.ok(&["container", "delete", "t-k"]);
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn a_broken_runtime_binary_is_a_clear_error() {
    let rig = Rig::new(Some(Path::new("/nonexistent/rrun")));
    let out = rig.ctd.ctr(&rig.run_args(&["--rm", IMAGE, "t-b", "true"]));
    assert_fails_naming(&out, "ctr run with a broken rrun", "rrun");
    let err = stderr(&out);
    assert!(
        err.contains(&rig.bin.path().join("rrun").display().to_string()),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(rig.ctd.ok(&["container", "ls", "-q"]), "");
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn the_runtime_config_file_names_the_binary() {
    // what CRI sends for a runtime_type other than runc: a ConfigPath
    let rig = Rig::new(None);
    let conf = rig.ctd.dir.path().join("rrun.toml");
    std::fs::write(&conf, "BinaryName = \"/nonexistent/rrun\"\n").unwrap();
    let mut args = rig.run_args(&["--rm", "--runtime-config-path"]);
    args.extend([conf.to_str().unwrap(), IMAGE, "t-conf", "true"]);
    let out = rig.ctd.ctr(&args);
    assert_fails_naming(
        &out,
        "ctr run with a missing BinaryName",
        "/nonexistent/rrun",
    );
    std::fs::write(
        &conf,
        format!("BinaryName = \"{}\"\n", rrun_bin().display()),
    )
    .unwrap();
    let mut args = rig.run_args(&["--rm", "--runtime-config-path"]);
    args.extend([
        conf.to_str().unwrap(),
        IMAGE,
        "t-conf",
        "echo",
        "configured",
    ]);
    assert_eq!(rig.ctd.ok(&args), "configured\n");
    assert_eq!(rig.ctd.ok(&["container", "ls", "-q"]), "");
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn an_oom_kill_is_reported() {
    let rig = Rig::new(None);
    let log = rig.ctd.dir.path().join("events.log");
    let mut events = rig
        .ctd
        .ctr_command()
        .arg("events")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `tail` keeps every line of an endless one-line file
    let out = rig.ctd.ctr(&rig.run_args(&[
        "--rm",
        "--memory-limit",
        "16777216",
        IMAGE,
        "t-oom",
        "tail",
        "/dev/zero",
    ]));
    let seen = || std::fs::read_to_string(&log).unwrap_or_default();
    let waited = std::time::Instant::now();
    while !seen().contains("/tasks/oom") && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM: `timeout` passes it on to ctr
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = events.wait();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let text = seen();
    assert!(text.contains("/tasks/oom"), "{text}");
    assert!(text.contains("/tasks/exit"), "{text}");
    rig.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn an_oom_kill_the_container_survives_is_reported_while_it_runs() {
    // the shim's own watcher (not the check at exit) must see this one
    let rig = Rig::new(None);
    let log = rig.ctd.dir.path().join("events.log");
    let mut events = rig
        .ctd
        .ctr_command()
        .arg("events")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rig.ctd.ok(&rig.run_args(&[
        "-d",
        "--memory-limit",
        "16777216",
        IMAGE,
        "t-oom2",
        "sh",
        "-c",
        "tail /dev/zero; sleep 1000",
    ]));
    let seen = || std::fs::read_to_string(&log).unwrap_or_default();
    let waited = std::time::Instant::now();
    while !seen()
        .lines()
        .any(|l| l.contains("/tasks/oom") && l.contains("t-oom2"))
        && waited.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let running = rig.ctd.task_status("t-oom2");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = events.wait();
    rig.ctd.ok(&["task", "kill", "-s", "KILL", "t-oom2"]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        rig.ctd.task_status("t-oom2").as_deref() == Some("STOPPED")
    });
    rig.ctd.ok(&["task", "delete", "t-oom2"]);
    rig.ctd.ok(&["container", "delete", "t-oom2"]);
    let text = seen();
    assert!(
        text.lines()
            .any(|l| l.contains("/tasks/oom") && l.contains("t-oom2")),
        "{text}"
    );
    assert_eq!(running.as_deref(), Some("RUNNING"), "{text}");
    // one OOM kill, one event: the check at exit adds none
    assert_eq!(text.matches("/tasks/oom").count(), 1, "{text}");
    rig.assert_clean();
}

/// On drop (also when a test fails): kills the shims started from `shim`
/// and force-deletes the containers left in rrun's `root`.
struct ShimsOf {
    shim: PathBuf,
    root: PathBuf,
}

impl Drop for ShimsOf {
    fn drop(&mut self) {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == self.shim) {
                if let Some(pid) = e.file_name().to_str().and_then(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new(rrun_bin())
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .output();
        }
    }
}

/// A copy of the shim with rrun next to it, and rrun's state root; on drop
/// its shims are killed and their containers deleted (`ShimsOf`) before the
/// directories go.
struct PrivateShim {
    _cleanup: ShimsOf,
    shim: PathBuf,
    root: tempfile::TempDir,
    _bin: tempfile::TempDir,
}

impl PrivateShim {
    fn new() -> PrivateShim {
        let bin = tempfile::Builder::new()
            .prefix("rrun-test-shimbin")
            .tempdir()
            .unwrap();
        let shim = bin.path().join("containerd-shim-rrun-v2");
        std::fs::copy(shim_bin(), &shim).unwrap();
        std::os::unix::fs::symlink(rrun_bin(), bin.path().join("rrun")).unwrap();
        let root = tempfile::tempdir().unwrap();
        PrivateShim {
            _cleanup: ShimsOf {
                shim: shim.clone(),
                root: root.path().join("rbox-test"),
            },
            shim,
            root,
            _bin: bin,
        }
    }
}

#[test]
#[ignore = "needs root"]
fn the_shim_client_runs_a_container_without_containerd() {
    use shim::client::{ProcessIo, ShimClient, ShimOptions};
    require_root();
    let _run = rrun_tests::containerd::RunContainerd::take();
    let private = PrivateShim::new();
    let (shim, root) = (private.shim.clone(), &private.root);
    let bundle = Bundle::busybox(&["sleep", "1000"]);
    std::fs::write(bundle.path().join("log"), "").unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = |name: &str| Some(logs.path().join(name));
    let marker = logs.path().join("on-exit");
    let id = unique("c");
    let client = ShimClient::start(ShimOptions {
        shim: shim.clone(),
        namespace: "rbox-test".into(),
        id: id.clone(),
        bundle: bundle.path().to_path_buf(),
        runtime: None,
        root: Some(root.path().to_path_buf()),
        on_exit: Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo $RRUN_SHIM_ID $RRUN_SHIM_EXIT_STATUS > {}",
                marker.display()
            ),
        ]),
    })
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(bundle.path().join("log")).unwrap_or_default();
        panic!("{e}\nshim log: {log}")
    });
    let pid = client
        .create(&ProcessIo {
            stdout: log("init.out"),
            stderr: log("init.err"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(client.start_process("").unwrap(), pid);
    let mut p = oci_spec::runtime::Process::default();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from exec; echo exec err >&2; exit 4".into(),
    ]));
    p.set_env(Some(vec!["PATH=/bin".into()]));
    p.set_cwd("/".into());
    let io = ProcessIo {
        stdout: log("exec.out"),
        stderr: log("exec.err"),
        ..Default::default()
    };
    client.exec("e1", &p, &io).unwrap();
    client.start_process("e1").unwrap();
    assert_eq!(client.wait("e1").unwrap(), 4);
    assert_eq!(client.delete("e1").unwrap(), 4);
    wait_for("exec output", Duration::from_secs(5), || {
        std::fs::read_to_string(logs.path().join("exec.err")).is_ok_and(|s| s == "exec err\n")
    });
    assert_eq!(
        std::fs::read_to_string(logs.path().join("exec.out")).unwrap(),
        "from exec\n"
    );
    // a bad request is a clear error naming the container
    let err = client.start_process("nope").unwrap_err().to_string();
    assert!(err.contains(&id) && err.contains("nope"), "{err}");
    // new limits reach the cgroup
    let spec: Value =
        serde_json::from_slice(&std::fs::read(bundle.path().join("config.json")).unwrap()).unwrap();
    let cgroup = spec["linux"]["cgroupsPath"].as_str().unwrap().to_string();
    let mut pids = oci_spec::runtime::LinuxPids::default();
    pids.set_limit(42);
    let mut resources = oci_spec::runtime::LinuxResources::default();
    resources.set_pids(Some(pids));
    client.update(&resources).unwrap();
    assert_eq!(
        cgroup_file("pids", &cgroup, "pids.max").as_deref(),
        Some("42")
    );
    client.kill("", 9, false).unwrap();
    assert_eq!(client.wait("").unwrap(), 137);
    assert_eq!(client.delete("").unwrap(), 137);
    wait_for("the on-exit command", Duration::from_secs(5), || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s == format!("{id} 137\n"))
    });
    // events arrive asynchronously, in order: the last one is the delete
    wait_for("the delete event", Duration::from_secs(5), || {
        client.events().iter().any(|t| t == "/tasks/delete")
    });
    let topics = client.events();
    for t in [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/delete",
    ] {
        assert!(topics.iter().any(|x| x == t), "{t} not in {topics:?}");
    }
    let start = topics.iter().position(|t| t == "/tasks/start").unwrap();
    let exit = topics.iter().rposition(|t| t == "/tasks/exit").unwrap();
    assert!(start < exit, "{topics:?}");
    client.shutdown().unwrap();
    wait_for("the shim to exit", Duration::from_secs(10), || {
        !std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == shim))
    });
    assert!(
        std::fs::read_dir(root.path().join("rbox-test")).map_or(true, |mut d| d.next().is_none())
    );
}

/// What `rbox run` does: the client that started the container (and its
/// event listener) goes, and a new connection waits for the exit. The shim's
/// publisher fails then, and it used to drop its ttrpc client, whose reader
/// thread could read the freed fd number once more: the new connection's
/// Wait, taking that number, was swallowed and never answered (about one run
/// in 50 hung). Many rounds, so the race had its chances.
#[test]
#[ignore = "needs root"]
fn a_wait_after_the_event_listener_went_away_is_answered() {
    use shim::client::{ProcessIo, ShimClient, ShimOptions};
    require_root();
    let _run = rrun_tests::containerd::RunContainerd::take();
    let private = PrivateShim::new();
    let (shim, root) = (private.shim.clone(), &private.root);
    // a bundle each: a shim that exits removes the socket its bundle's
    // address file names
    let opts = |id: &str, bundle: &Bundle| ShimOptions {
        shim: shim.clone(),
        namespace: "rbox-test".into(),
        id: id.into(),
        bundle: bundle.path().to_path_buf(),
        runtime: None,
        root: Some(root.path().to_path_buf()),
        on_exit: None,
    };
    for round in 0..150 {
        let id = unique("w");
        let bundle = Bundle::busybox(&["true"]);
        let starter =
            ShimClient::start(opts(&id, &bundle)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        starter.create(&ProcessIo::default()).unwrap();
        starter.start_process("").unwrap();
        let address = starter.address().to_string();
        drop(starter);
        let waiter = ShimClient::connect(opts(&id, &bundle), &address).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let code = waiter.wait("");
            let _ = tx.send(code.map(|c| (c, waiter)));
        });
        let (code, waiter) = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("round {round}: the shim never answered Wait"))
            .unwrap();
        assert_eq!(code, 0, "round {round}");
        assert_eq!(waiter.delete("").unwrap(), 0, "round {round}");
        waiter.shutdown().unwrap();
    }
    assert!(
        std::fs::read_dir(root.path().join("rbox-test")).map_or(true, |mut d| d.next().is_none())
    );
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn binary_and_file_log_uris() {
    let rig = Rig::new(None);
    let dir = rig.ctd.dir.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    // a logger as containerd describes them: fd 3 stdout, fd 4 stderr,
    // fd 5 closed once ready; the id, namespace and URI query as it saw them
    let logger = dir.join("logger.sh");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\nd={}\necho \"$CONTAINER_NAMESPACE $CONTAINER_ID $*\" > $d/args\n\
             cat <&3 > $d/out 5>&- &\ncat <&4 > $d/err 5>&- &\nexec 5>&-\nwait\n\
             echo done > $d/finished\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?level=debug&tag=a%20b", logger.display());
    let out = rig.ctd.ctr(&rig.run_args(&[
        "--rm",
        "--log-uri",
        &uri,
        IMAGE,
        "t-blog",
        "sh",
        "-c",
        "echo to stdout; echo to stderr >&2; exit 3",
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    wait_for("the logger to finish", Duration::from_secs(10), || {
        dir.join("finished").exists()
    });
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    assert_eq!(read("out"), "to stdout\n");
    assert_eq!(read("err"), "to stderr\n");
    assert_eq!(
        read("args"),
        format!("{} t-blog level debug tag a b\n", rig.ctd.namespace)
    );
    assert!(processes_with(&logger.display().to_string()).is_empty());
    // a logger that cannot start is a clear error, and nothing is left
    let out = rig.ctd.ctr(&rig.run_args(&[
        "--rm",
        "--log-uri",
        "binary:///nonexistent/logger",
        IMAGE,
        "t-blog2",
        "true",
    ]));
    assert_fails_naming(&out, "ctr run with a missing logger", "/nonexistent/logger");
    let _ = rig.ctd.ctr(&["container", "delete", "t-blog2"]);
    // file://: stdout and stderr appended to one file (its directory made)
    let file = dir.join("sub").join("c.log");
    let uri = format!("file://{}", file.display());
    let out = rig.ctd.ctr(&rig.run_args(&[
        "--rm",
        "--log-uri",
        &uri,
        IMAGE,
        "t-flog",
        "sh",
        "-c",
        "echo one; sleep 0.1; echo two >&2",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "one\ntwo\n");
    assert_eq!(rig.ctd.ok(&["container", "ls", "-q"]), "");
    rig.assert_clean();
}

/// A cgroup made for a test in the cgroup2 hierarchy, removed on drop
/// with the process it holds.
struct Cgroup2Dir {
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Drop for Cgroup2Dir {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let waited = std::time::Instant::now();
        while std::fs::remove_dir(&self.dir).is_err()
            && self.dir.exists()
            && waited.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
#[ignore = "needs root"]
fn cgroup2_metrics_from_a_real_cgroup2_directory() {
    require_root();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = cgroup_metrics::mounts(&mountinfo)
        .into_iter()
        .find(|m| m.v2)
        .map(|m| m.point);
    let Some(mount) = mount else {
        panic!("this host has no cgroup2 mount (hybrid or cgroup2-only): the test needs one");
    };
    let mut cg = Cgroup2Dir {
        dir: mount.join(unique("rrun-test-cg2")),
        child: None,
    };
    std::fs::create_dir(&cg.dir).unwrap();
    // a busy process in it
    let child = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.child = Some(child);
    std::fs::write(cg.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let unified_only = proc_cgroup.lines().all(|l| {
        l.starts_with("0::") || l.split(':').nth(1).is_some_and(|c| c.starts_with("name="))
    });
    // the reader finds the process's cgroup2 directory from /proc/PID/cgroup,
    // and the shim picks v2 Metrics exactly when it is a pure cgroup2 one
    let found = cgroup_metrics::Cgroup::of_process(pid).expect("the process's cgroup");
    assert_eq!(found.v2.as_ref(), Some(&cg.dir), "{proc_cgroup}");
    assert_eq!(found.is_v2_only(), unified_only, "{proc_cgroup}");
    assert_eq!(
        shim::stats::of(&found).0,
        if unified_only {
            "io.containerd.cgroups.v2.Metrics"
        } else {
            "io.containerd.cgroups.v1.Metrics"
        }
    );
    if !unified_only {
        eprintln!("hybrid host: v1 controllers are listed, so containers get v1 Metrics");
    }
    let dir_only = cgroup_metrics::Cgroup {
        v2: Some(cg.dir.clone()),
        ..Default::default()
    };
    wait_for("cpu time to be counted", Duration::from_secs(5), || {
        shim::stats::cgroup2(&dir_only.read()).cpu.usage_usec > 20_000
    });
    let m = shim::stats::cgroup2(&dir_only.read());
    let cpu = m.cpu.as_ref().unwrap();
    assert!(cpu.user_usec + cpu.system_usec > 0, "{m:?}");
    assert!(cpu.usage_usec >= cpu.user_usec, "{m:?}");
    // the other files exist only where their controllers are enabled
    let exists = |f: &str| cg.dir.join(f).exists();
    if exists("pids.current") {
        assert_eq!(m.pids.current, 1, "{m:?}");
    }
    if exists("memory.current") {
        assert!(m.memory.usage > 0, "{m:?}");
    } else {
        eprintln!("no memory controller in the cgroup2 hierarchy here: memory reads as 0");
        assert_eq!(m.memory.usage, 0);
    }
    // the watcher's view: no memory.events, nothing to watch
    let memory = shim::oom::MemoryCgroup::V2(cg.dir.clone());
    assert_eq!(
        shim::oom::OomWatch::new(&memory).unwrap().is_some(),
        exists("memory.events")
    );
    assert_eq!(memory.kills(), 0);
}

/// Through containerd, which writes its own device rules (deny all, plus a
/// rule per `--device`; everything for `--privileged`): they are kept, and
/// the defaults rrun adds make no host disk readable.
#[test]
#[ignore = "needs root"]
fn device_rules_under_containerd_keep_host_devices_out() {
    let rig = Rig::new(None);
    let lo = LoopDevice::new("TOP-SECRET");
    let dev = lo.path.to_str().unwrap();
    let run = |extra: &[&str], id: &str, node: Option<&str>| {
        let script = device_attack_script(lo.major, lo.minor, node);
        let mut a = vec!["--rm"];
        a.extend(extra);
        a.extend([IMAGE, id, "sh", "-c", &script]);
        let out = rig.ctd.ctr(&rig.run_args(&a));
        assert!(
            out.status.success(),
            "ctr run {extra:?}: {}\n{}",
            stderr(&out),
            rig.ctd.log()
        );
        stdout(&out)
    };
    assert_eq!(
        run(&[], "t-dev", None),
        "mknod-ok\nread-refused\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    assert_eq!(
        run(&["--device", dev], "t-dev-given", Some(dev)),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    assert_eq!(
        run(&["--privileged"], "t-dev-priv", Some(dev)),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-ok\n"
    );
    rig.assert_clean();
}
