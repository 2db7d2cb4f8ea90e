//! rbox under faults, black-box: a killed shim, a runtime killed during its
//! create, runs that fail half-way, a stdout whose reader has gone, ^C on
//! an attached run, file bind mounts, a memory limit too small to run. The
//! rbox binary (RBOX_BIN) with rrun (RRUN_BIN), the shim (SHIM_BIN) and our
//! CNI plugins (CNI_BIN_DIR), on a busybox image in a store of the test's
//! own.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rrun_tests::*;

/// The shim of container `id`.
fn shim_of(id: &str) -> i32 {
    let o = Command::new("pgrep")
        .args(["-f", &format!("containerd-shim-rrun-v2 .*-id {id}")])
        .output()
        .unwrap();
    stdout(&o).trim().parse().expect("one shim")
}

/// A process still runs (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A sleep length of its own (`SECONDS.` and this test's pid and time), to
/// find the runtime process that sleeps it.
fn sleep_marker(seconds: &str) -> String {
    format!(
        "{seconds}.{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_micros()
    )
}

/// A runtime wrapper whose `create` runs `SLEEP MARKER` first (`exec sleep`:
/// it hangs; `sleep`: it goes on to rrun afterwards).
fn runtime_sleeping_in_create(rb: &Rbox, marker: &str, sleep: &str) -> PathBuf {
    script(
        rb.dir.path(),
        "rrun-sleeps",
        &format!(
            r#"case " $* " in
*" create "*) {sleep} {marker} ;;
esac
exec {real} "$@"
"#,
            real = rrun_bin().display(),
        ),
    )
}

/// `kill -9` of a container's shim: like containerd, the next rbox command
/// (whatever it is) kills and deletes the container through the runtime,
/// records Exited (137), tears its network down and applies its restart
/// policy or `--rm`; an attached run whose shim is killed ends with 137 and
/// removes its `--rm` container.
#[test]
#[ignore = "needs root"]
fn a_killed_shim_is_noticed_by_the_next_command() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let id = rb.ok(&["run", "-d", "--name", "orphan", "bb", "sleep", "300"]);
    let id = id.trim().to_string();
    let pid: i32 = rb
        .inspect_format("{{.State.Pid}}", "orphan")
        .parse()
        .unwrap();
    assert!(alive(pid));
    assert_eq!(rbox_netns().len(), 1);
    let address = std::fs::read_to_string(
        rb.root()
            .join("containers")
            .join(&id)
            .join("bundle/address"),
    )
    .unwrap();
    let socket = PathBuf::from(address.trim().trim_start_matches("unix://"));
    kill(Pid::from_raw(shim_of(&id)), Signal::SIGKILL).unwrap();
    wait_for("the shim to die", Duration::from_secs(5), || {
        shims_of(&rb.root()).is_empty()
    });
    // the very next command, a plain ps, finds it
    let ps = rb.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(!ps.contains("orphan"), "still listed as running: {ps}");
    let all = rb.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.contains("orphan Exited (137)"), "{all}");
    assert_eq!(
        rb.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "orphan"),
        "exited 137"
    );
    wait_for(
        "the container's process to go",
        Duration::from_secs(5),
        || !alive(pid),
    );
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
    assert!(!socket.exists(), "the killed shim's socket is left");
    let runtime = std::fs::read_dir(rb.root().join("runtime/rbox"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(runtime, 0, "rrun state left");
    let o = rb.run(&["exec", "orphan", "true"]);
    assert_fails_naming(&o, "exec", "orphan is not running");
    rb.ok(&["start", "orphan"]);
    assert_eq!(rb.inspect_format("{{.State.Status}}", "orphan"), "running");
    rb.ok(&["rm", "-f", "orphan"]);

    // the restart policy applies: a new shim runs it again
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--net",
        "none",
        "--restart",
        "always",
        "bb",
        "sleep",
        "300",
    ]);
    let id = rb.inspect_format("{{.Id}}", "phoenix");
    let first = shim_of(&id);
    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    wait_for("the shim to die", Duration::from_secs(5), || !alive(first));
    rb.ok(&["images"]);
    assert_eq!(
        rb.inspect_format("{{.State.Status}} {{.RestartCount}}", "phoenix"),
        "running 1"
    );
    let second = shim_of(&id);
    assert_ne!(second, first);
    rb.ok(&["rm", "-f", "phoenix"]);

    // --rm: removed
    rb.ok(&[
        "run", "-d", "--rm", "--name", "gone", "--net", "none", "bb", "sleep", "300",
    ]);
    let id = rb.inspect_format("{{.Id}}", "gone");
    kill(Pid::from_raw(shim_of(&id)), Signal::SIGKILL).unwrap();
    wait_for("the shim to die", Duration::from_secs(5), || {
        shims_of(&rb.root()).is_empty()
    });
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");

    // a `wait` under way notices it too
    rb.ok(&[
        "run", "-d", "--name", "waited", "--net", "none", "bb", "sleep", "300",
    ]);
    let id = rb.inspect_format("{{.Id}}", "waited");
    let waiter = rb
        .cmd(&["wait", "waited"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(shim_of(&id)), Signal::SIGKILL).unwrap();
    let o = waiter.wait_with_output().unwrap();
    assert_ok(&o, "wait");
    assert_eq!(stdout(&o), "137\n");
    rb.ok(&["rm", "waited"]);

    // an attached run --rm: it ends with 137 and leaves nothing
    let mut run = rb
        .cmd(&["run", "--rm", "--name", "att", "bb", "sleep", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container to start", Duration::from_secs(10), || {
        rb.ok(&["ps", "-q"]).contains(char::is_alphanumeric)
    });
    let id = rb.inspect_format("{{.Id}}", "att");
    kill(Pid::from_raw(shim_of(&id)), Signal::SIGKILL).unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(137), "{status:?}");
    rb.assert_nothing_left("after the shim of an attached run --rm was killed");
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
}

/// `kill -9` of rrun during its create (after it made the container's
/// cgroups, with the container's first process in them): the failed start
/// leaves the container created, and `rm -f` removes its cgroups from
/// every hierarchy (11 on a v1 host, cgroup2's too); a `run -d` that fails
/// so leaves nothing at all.
#[test]
#[ignore = "needs root"]
fn rrun_killed_during_create_leaves_no_cgroup() {
    let _serial = serial();
    let mut rb = Rbox::with_busybox();
    // rrun, except that `create` is killed once its process is in the
    // container's cgroup
    let killed = rb.dir.path().join("killed");
    let wrapper = script(
        rb.dir.path(),
        "rrun-killed",
        &format!(
            r#"real={real}
case " $* " in
*" create "*) ;;
*) exec "$real" "$@" ;;
esac
"$real" "$@" &
pid=$!
i=0
while [ $i -lt 1000 ]; do
  for f in /sys/fs/cgroup/*{parent}/*/cgroup.procs; do
    # (cgroup files have no size: read one)
    if [ -f "$f" ] && [ -n "$(head -c1 "$f")" ]; then
      kill -9 $pid
      touch {killed}
      exit 137
    fi
  done
  i=$((i+1))
  sleep 0.005
done
kill -9 $pid
exit 137
"#,
            real = rrun_bin().display(),
            parent = rb.cgroup.0,
            killed = killed.display(),
        ),
    );
    rb.runtime = wrapper;
    rb.ok(&[
        "create", "--name", "half", "--net", "none", "bb", "sleep", "300",
    ]);
    let id = rb.inspect_format("{{.Id}}", "half");
    let o = rb.run(&["start", "half"]);
    assert!(!o.status.success(), "start succeeded: {}", stdout(&o));
    assert!(killed.exists(), "rrun create was not killed half-way");
    assert_eq!(rb.inspect_format("{{.State.Status}}", "half"), "created");
    rb.ok(&["rm", "-f", "half"]);
    let left = rb.cgroups_of(&id);
    assert!(left.is_empty(), "cgroups left after rm -f: {left:?}");
    rb.assert_nothing_left("after rm -f of a container whose rrun was killed");

    std::fs::remove_file(&killed).unwrap();
    let o = rb.run(&[
        "run", "-d", "--name", "half2", "--net", "none", "bb", "sleep", "300",
    ]);
    assert!(!o.status.success(), "run succeeded: {}", stdout(&o));
    assert!(killed.exists(), "rrun create was not killed half-way");
    // created, as Docker leaves it, with nothing of the failed start
    assert_eq!(rb.inspect_format("{{.State.Status}}", "half2"), "created");
    let id = rb.inspect_format("{{.Id}}", "half2");
    let left = rb.cgroups_of(&id);
    assert!(left.is_empty(), "cgroups left by the failed run: {left:?}");
    assert!(
        !rb.root().join("runtime/rbox").join(&id).exists(),
        "rrun state left by the failed run"
    );
    rb.ok(&["rm", "half2"]);
    rb.assert_nothing_left("after a run -d whose rrun was killed");
}

/// A `run` that fails leaves nothing half-made: a bad `--log-opt` and a
/// memory limit below Docker's minimum are refused before anything is made;
/// a `run` whose CNI ADD fails undoes all of its start (namespace, shim,
/// runtime state, cgroup) and leaves the container created, as Docker does
/// (`--rm`: removed).
#[test]
#[ignore = "needs root"]
fn failed_runs_leave_nothing() {
    let _serial = serial();
    let mut rb = Rbox::with_busybox();
    for (args, says) in [
        (
            vec![
                "run",
                "--log-opt",
                "max-size=-5",
                "--net",
                "none",
                "bb",
                "true",
            ],
            "--log-opt \"max-size=-5\": invalid size: '-5'",
        ),
        (
            vec![
                "run",
                "-d",
                "--log-opt",
                "max-file=0",
                "--net",
                "none",
                "bb",
                "true",
            ],
            "max-file cannot be less than 1",
        ),
        (
            vec!["run", "--memory", "1k", "--net", "none", "bb", "true"],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            vec!["create", "-m", "5m", "--net", "none", "bb", "true"],
            "Minimum memory limit allowed is 6MB",
        ),
    ] {
        let o = rb.run(&args);
        assert_fails_naming(&o, &args.join(" "), says);
        rb.assert_nothing_left(&args.join(" "));
    }
    // the smallest limit runs
    assert_eq!(
        rb.ok(&["run", "--rm", "-m", "6m", "--net", "none", "bb", "echo", "ok"]),
        "ok\n"
    );

    // the bridge plugin fails its ADD (after host-local would have run)
    let plugins = rb.dir.path().join("cni");
    std::fs::create_dir(&plugins).unwrap();
    for p in ["loopback", "host-local", "portmap"] {
        std::os::unix::fs::symlink(cni_bin_dir().join(p), plugins.join(p)).unwrap();
    }
    script(
        &plugins,
        "bridge",
        r#"cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"injected failure"}'
  exit 1
fi
exit 0
"#,
    );
    rb.cni_path = plugins;
    let o = rb.run(&["run", "--rm", "--name", "noadd", "bb", "true"]);
    assert_fails_naming(&o, "run --rm", "injected failure");
    rb.assert_nothing_left("run --rm whose CNI ADD failed");
    // the container of a failed run stays created, as Docker's does, with
    // nothing of the start: no namespace, shim, runtime state or cgroup
    for args in [
        vec!["run", "-d", "--name", "noadd", "bb", "sleep", "300"],
        vec!["run", "--name", "noadd", "bb", "true"],
        vec!["start", "noadd"],
    ] {
        let o = rb.run(&args);
        assert_fails_naming(&o, &args.join(" "), "injected failure");
        assert_eq!(rb.inspect_format("{{.State.Status}}", "noadd"), "created");
        let id = rb.inspect_format("{{.Id}}", "noadd");
        assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
        assert!(shims_of(&rb.root()).is_empty(), "a shim is left");
        assert!(
            !rb.root().join("runtime/rbox").join(&id).exists(),
            "runtime state left"
        );
        assert!(rb.cgroups_of(&id).is_empty(), "cgroups left");
        if args[0] == "run" {
            rb.ok(&["rm", "noadd"]);
            rb.assert_nothing_left(&args.join(" "));
        }
        if args[1] == "--name" {
            rb.ok(&["create", "--name", "noadd", "bb", "true"]);
        }
    }
    rb.ok(&["rm", "noadd"]);
    rb.assert_nothing_left("after the failed starts");
}

/// A pipe whose reader is gone, as rbox's stdout (`rbox ps | head -0`).
fn closed_pipe() -> Stdio {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    Stdio::from(w)
}

/// rbox with a closed stdout: ends as Docker's CLI does, killed by SIGPIPE
/// with nothing on stderr (no panic, no message).
#[track_caller]
fn ends_quietly(rb: &Rbox, args: &[&str]) {
    let o = rb
        .cmd(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{args:?}: {:?}, stderr: {}",
        o.status,
        stderr(&o)
    );
    assert_eq!(stderr(&o), "", "{args:?}");
}

/// Every command ends quietly when its stdout's reader has gone (`rbox ps
/// -q | head -1`), like Docker's: listings, inspect, logs (also -f), exec,
/// save, cp, and attached runs, whose container then runs on (and is
/// removed by its exit hook with --rm), or is finished first if it has
/// exited already.
#[test]
#[ignore = "needs root"]
fn a_closed_stdout_ends_every_command_quietly() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "while true; do echo y; sleep 0.05; done",
    ]);
    rb.ok(&["create", "--name", "idle", "--net", "none", "bb", "true"]);
    for args in [
        vec!["ps"],
        vec!["ps", "-q"],
        vec!["ps", "-a", "--format", "{{.Names}}"],
        vec!["images"],
        vec!["images", "-q"],
        vec!["inspect", "talker"],
        vec!["inspect", "bb"],
        vec!["logs", "talker"],
        vec!["logs", "-f", "talker"],
        vec!["exec", "talker", "echo", "hi"],
        vec![
            "exec",
            "talker",
            "sh",
            "-c",
            "while true; do echo y; sleep 0.05; done",
        ],
        vec!["save", "bb"],
        vec!["cp", "talker:/bin", "-"],
        vec!["volume", "ls"],
        vec!["network", "ls"],
        vec!["version"],
        vec!["info"],
        vec!["history", "bb"],
        vec!["port", "talker"],
        vec!["top", "talker"],
        vec!["start", "idle"],
        vec!["stop", "-t", "0", "idle"],
        vec!["rm", "idle"],
    ] {
        // the commands that print nothing have nothing to die of
        if matches!(args[0], "port") {
            let o = rb.cmd(&args).stdout(closed_pipe()).output().unwrap();
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            continue;
        }
        ends_quietly(&rb, &args);
    }
    assert!(
        rb.ok(&["ps", "--format", "{{.Names}}"]).contains("talker"),
        "talker runs on"
    );
    rb.ok(&["rm", "-f", "talker"]);
    // attached: the container runs on, like Docker's; its hook removes it
    // (--rm) when it ends
    ends_quietly(
        &rb,
        &[
            "run",
            "--rm",
            "--name",
            "chatty",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "echo one; sleep 2; echo two",
        ],
    );
    assert!(
        rb.ok(&["ps", "--format", "{{.Names}}"]).contains("chatty"),
        "an attached run whose reader went away stops its container"
    );
    wait_for("the hook to remove chatty", Duration::from_secs(15), || {
        rb.ok(&["ps", "-a", "-q"]).is_empty()
    });
    // one that has exited by then is finished (removed) before rbox ends
    ends_quietly(
        &rb,
        &["run", "--rm", "--net", "none", "bb", "echo", "quick"],
    );
    wait_for("quick to be removed", Duration::from_secs(15), || {
        rb.ok(&["ps", "-a", "-q"]).is_empty()
    });
    // and a kept one is recorded
    ends_quietly(
        &rb,
        &[
            "run",
            "--name",
            "kept",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "echo out; exit 3",
        ],
    );
    wait_for(
        "kept's exit to be recorded",
        Duration::from_secs(15),
        || rb.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "kept") == "exited 3",
    );
    rb.ok(&["rm", "kept"]);
    rb.assert_nothing_left("after the closed pipes");
}

/// rbox attached to a container, in a process group of its own as a
/// terminal's foreground job is; its first line of output read.
fn attached(
    rb: &Rbox,
    args: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = rb.cmd(args);
    // as a terminal's shell starts it: INT and QUIT at their defaults, even
    // when this test runs in the background of a shell that ignores them
    // (rbox keeps a disposition it inherits, as Docker's CLI does)
    // SAFETY: signal(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "{args:?}");
    (child, out)
}

/// ^C on an attached `rbox run` (SIGINT to its process group, as a terminal
/// sends it) goes to the container, as Docker's `--sig-proxy` does: the
/// container's handler runs, rbox ends with the container's exit code and
/// `--rm` removes it. The shim is not in that process group (^Z or ^C never
/// reach it). SIGTERM to rbox alone is passed on too; with
/// `--sig-proxy=false` rbox dies of the signal and the container runs on.
#[test]
#[ignore = "needs root"]
fn ctrl_c_on_an_attached_run_stops_the_container() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let (mut child, mut out) = attached(
        &rb,
        &[
            "run",
            "--rm",
            "--name",
            "trapper",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "trap 'echo got INT; exit 7' INT; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let id = rb.inspect_format("{{.Id}}", "trapper");
    let shim = shim_of(&id);
    let group = nix::unistd::getpgid(Some(Pid::from_raw(child.id() as i32))).unwrap();
    let shim_group = nix::unistd::getpgid(Some(Pid::from_raw(shim))).unwrap();
    kill(Pid::from_raw(-group.as_raw()), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}, output {rest:?}");
    assert_eq!(rest, "got INT\n");
    assert_ne!(
        shim_group, group,
        "the shim is in the terminal's foreground process group"
    );
    rb.assert_nothing_left("after ^C");

    let (mut child, _out) = attached(
        &rb,
        &[
            "run",
            "--name",
            "termed",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(9));
    assert_eq!(
        rb.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "termed"),
        "exited 9"
    );
    rb.ok(&["rm", "termed"]);

    let (mut child, _out) = attached(
        &rb,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "unproxied",
            "--net",
            "none",
            "bb",
            "sh",
            "-c",
            "trap 'exit 9' INT; echo ready; while true; do sleep 0.1; done",
        ],
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGINT));
    assert_eq!(
        rb.inspect_format("{{.State.Status}}", "unproxied"),
        "running"
    );
    rb.ok(&["rm", "-f", "unproxied"]);
    rb.assert_nothing_left("after --sig-proxy=false");
}

/// `-v FILE:/path` and `--mount type=bind,source=FILE` bind the file, as
/// Docker does; `-v` makes a missing source as a directory, `--mount`
/// refuses one before anything is made.
#[test]
#[ignore = "needs root"]
fn file_bind_mounts_work_like_dockers() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let host = rb.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let file = host.join("app.conf");
    std::fs::write(&file, "setting=1\n").unwrap();
    let v = format!("{}:/etc/app.conf:ro", file.display());
    assert_eq!(
        rb.ok(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            &v,
            "bb",
            "cat",
            "/etc/app.conf"
        ]),
        "setting=1\n"
    );
    let m = format!("type=bind,source={},target=/data/app.conf", file.display());
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--mount",
        &m,
        "bb",
        "sh",
        "-c",
        "echo setting=2 > /data/app.conf && cat /data/app.conf",
    ]);
    assert_eq!(out, "setting=2\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "setting=2\n");
    // a missing -v source becomes a directory
    let fresh = host.join("fresh/dir");
    let v = format!("{}:/fresh", fresh.display());
    rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-v",
        &v,
        "bb",
        "touch",
        "/fresh/made",
    ]);
    assert!(fresh.join("made").is_file());
    // --mount does not make it
    let absent = host.join("absent");
    let m = format!("type=bind,source={},target=/absent", absent.display());
    let o = rb.run(&["run", "--rm", "--net", "none", "--mount", &m, "bb", "true"]);
    assert_fails_naming(
        &o,
        "--mount of an absent source",
        "bind source path does not exist",
    );
    assert!(!absent.exists());
    rb.assert_nothing_left("after the bind mounts");
}

/// A runtime whose `create` hangs: the shim's Create times out (30 s), and
/// the start then kills the shim and what runs under it instead of asking
/// it to Delete and Shutdown (which would wait behind the hung Create):
/// the failed `run -d` ends soon after the timeout and leaves nothing, no
/// shim and no runtime process either.
#[test]
#[ignore = "needs root"]
fn a_hung_runtime_create_leaves_no_shim() {
    let _serial = serial();
    let mut rb = Rbox::with_busybox();
    let marker = sleep_marker("1000");
    rb.runtime = runtime_sleeping_in_create(&rb, &marker, "exec sleep");
    let begin = std::time::Instant::now();
    let o = rb.run(&["run", "-d", "--name", "hung", "--net", "none", "bb", "true"]);
    let took = begin.elapsed();
    assert!(!o.status.success(), "run succeeded: {}", stdout(&o));
    assert!(
        took < Duration::from_secs(45),
        "the failed run took {took:?}"
    );
    let hung = Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    assert_eq!(stdout(&hung), "", "the hung runtime process is left");
    // the container stays created, as Docker's does after a failed start,
    // with no shim, runtime state or cgroup of the start
    assert_eq!(rb.inspect_format("{{.State.Status}}", "hung"), "created");
    assert!(shims_of(&rb.root()).is_empty(), "a shim is left");
    let id = rb.inspect_format("{{.Id}}", "hung");
    assert!(rb.cgroups_of(&id).is_empty(), "cgroups left");
    rb.ok(&["rm", "hung"]);
    rb.assert_nothing_left("after a hung create");
}

/// The shim of an attached `run --rm` killed after the init exited, at the
/// Delete that would have removed the runtime's state: the run still ends
/// with the container's exit code and removes the container, and the task
/// is deleted through the runtime instead (found by `make soak`: the state
/// of a container rbox no longer knew was left, once in about 1,000 cycles).
/// With `-d` the exit hook meets the same dead shim, and `rm` follows.
#[test]
#[ignore = "needs root"]
fn a_shim_killed_at_the_delete_leaves_no_runtime_state() {
    let _serial = serial();
    let mut rb = Rbox::with_busybox();
    // the shim's own `delete` kills the shim; rbox's goes through
    rb.runtime = script(
        rb.dir.path(),
        "rrun-kills-shim-at-delete",
        &format!(
            r#"case " $* " in
*" delete "*) case $(cat /proc/$PPID/comm) in containerd-shim*) kill -9 $PPID; exit 1 ;; esac ;;
esac
exec {real} "$@"
"#,
            real = rrun_bin().display(),
        ),
    );
    let o = rb.run(&["run", "--rm", "--net", "none", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "run --rm: {}", stderr(&o));
    rb.assert_nothing_left("after the run --rm whose shim died at the Delete");

    rb.ok(&["run", "-d", "--name", "gone", "--net", "none", "bb", "true"]);
    wait_for("the exit to be recorded", Duration::from_secs(10), || {
        rb.inspect_format("{{.State.Status}}", "gone") == "exited"
    });
    let id = rb.inspect_format("{{.Id}}", "gone");
    // the exit hook is still at work a moment after the exit is shown
    let state = rb.root().join("runtime/rbox").join(&id);
    wait_for(
        "the runtime's state of the exited container to go",
        Duration::from_secs(10),
        || !state.exists(),
    );
    rb.ok(&["rm", "gone"]);
    rb.assert_nothing_left("after the run -d whose shim died at the Delete");
}

/// A container's programs start with SIGPIPE at its default, as under runc:
/// `yes | head -1` ends quietly (rrun, a Rust program, ignores SIGPIPE
/// itself, and an ignored signal stays ignored across execve).
#[test]
#[ignore = "needs root"]
fn container_programs_die_of_sigpipe() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let o = rb.run(&[
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "yes | head -1; grep SigIgn /proc/self/status",
    ]);
    assert_ok(&o, "run");
    let out = stdout(&o);
    assert!(out.starts_with("y\n"), "{out}");
    assert_eq!(stderr(&o), "", "yes did not die of SIGPIPE");
    let ignored = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        ignored & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE is ignored: {out}"
    );
}

/// A descriptor rbox inherits without close-on-exec (a shell's `9>lock`
/// around a script, as `flock -o` is not) reaches neither the shim nor the
/// container: the shim outlives rbox, and a lock it inherited stayed held
/// for as long as the container ran (CI jobs waiting on such a lock hung).
#[test]
#[ignore = "needs root"]
fn a_descriptor_rbox_inherits_reaches_neither_shim_nor_container() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let lock_path = rb.dir.path().join("held.lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    // SAFETY: flock on a descriptor this test owns
    let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, 0);
    let fd = lock.as_raw_fd();
    let mut c = rb.cmd(&[
        "run", "-d", "--name", "fds", "--net", "none", "bb", "sleep", "1000",
    ]);
    // SAFETY: dup2 is async-signal-safe; fd 9 is the lock without
    // close-on-exec, as a shell's redirection leaves it
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_ok(&o, "run -d with fd 9 open");
    drop(lock);
    let holders = |pid: i32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == lock_path))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let shim = shim_of(&rb.inspect_format("{{.Id}}", "fds"));
    assert_eq!(
        holders(shim),
        Vec::<String>::new(),
        "the shim holds the lock file"
    );
    let pid: i32 = rb.inspect_format("{{.State.Pid}}", "fds").parse().unwrap();
    assert_eq!(
        holders(pid),
        Vec::<String>::new(),
        "the container holds the lock file"
    );
    let again = std::fs::File::open(&lock_path).unwrap();
    // SAFETY: flock on a descriptor this test owns
    let r = unsafe { libc::flock(again.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(
        r,
        0,
        "the lock is still held after rbox ended: {}",
        std::io::Error::last_os_error()
    );
    rb.ok(&["rm", "-f", "fds"]);
    rb.assert_nothing_left("after rm");
}

/// `kill -9` of `rbox run -d` while its IPAM plugin runs: the bridge plugin
/// dies with rbox, but host-local (its child) goes on and takes an address
/// after the reconciling rbox ran its DEL, and that lease (with a
/// masquerade rule, had the bridge lived) stayed for ever. The plugins hold
/// the container's claim, and the next rbox waits for them before it
/// undoes the start.
#[test]
#[ignore = "needs root"]
fn a_plugin_left_running_by_a_killed_run_is_waited_for() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let mut rb = Rbox::with_busybox();
    let plugins = rb.dir.path().join("cni");
    std::fs::create_dir(&plugins).unwrap();
    for p in ["loopback", "bridge", "portmap"] {
        std::os::unix::fs::symlink(cni_bin_dir().join(p), plugins.join(p)).unwrap();
    }
    let marker = format!("slow-ipam-{}", std::process::id());
    script(
        &plugins,
        "host-local",
        &format!(
            "[ \"$CNI_COMMAND\" = ADD ] && {{ touch {dir}/{marker}; sleep 1.5; }}\nexec {real} \"$@\"\n",
            dir = rb.dir.path().display(),
            real = cni_bin_dir().join("host-local").display(),
        ),
    );
    rb.cni_path = plugins;
    let mut child = rb
        .cmd(&["run", "-d", "--name", "slow", "bb", "sleep", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the IPAM plugin to start", Duration::from_secs(20), || {
        rb.dir.path().join(&marker).exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // the next rbox finishes the killed run's work: slow goes
    let names = rb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.lines().any(|n| n == "slow"), "{names}");
    // long enough for an IPAM plugin still running to have written
    std::thread::sleep(Duration::from_secs(3));
    let leases: Vec<PathBuf> = std::fs::read_dir(RBOX_LEASES)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .map(|e| e.path())
        .collect();
    assert!(leases.is_empty(), "leases left: {leases:?}");
    let o = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let rules: Vec<&str> = std::str::from_utf8(&o.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("rcni rbox"))
        .collect();
    assert!(rules.is_empty(), "rules left: {rules:?}");
    rb.assert_nothing_left("after the killed run");
}

/// `kill -9` of `rbox run -d` while its shim's Create waits on the runtime:
/// the shim (and the runtime under it, which would go on making the
/// container after its removal) outlived the container that the next rbox
/// removed. That rbox kills them.
#[test]
#[ignore = "needs root"]
fn a_shim_left_by_a_killed_run_goes_with_its_container() {
    let _serial = serial();
    let mut rb = Rbox::with_busybox();
    let marker = sleep_marker("1001");
    rb.runtime = runtime_sleeping_in_create(&rb, &marker, "sleep");
    let running = || {
        let o = Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .unwrap();
        !stdout(&o).trim().is_empty()
    };
    let mut child = rb
        .cmd(&[
            "run", "-d", "--name", "orphan", "--net", "none", "bb", "sleep", "300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the runtime's create", Duration::from_secs(20), running);
    assert_eq!(shims_of(&rb.root()).len(), 1, "the shim under way");
    child.kill().unwrap();
    child.wait().unwrap();
    // the next rbox finishes the killed run's work
    let names = rb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.lines().any(|n| n == "orphan"), "{names}");
    assert!(!running(), "the runtime under the shim still runs");
    rb.runtime = rrun_bin();
    rb.assert_nothing_left("after the killed run");
}

/// The events socket of an rbox killed with kill -9 (named by its pid in
/// the temp dir) is removed by the next rbox that starts a shim; a live
/// process's is kept.
#[test]
#[ignore = "needs root"]
fn events_sockets_of_killed_rboxes_are_swept() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let tmp = std::env::temp_dir();
    let stale = tmp.join(format!("rrun-shim-events-{dead}-0.sock"));
    let live = tmp.join(format!("rrun-shim-events-{}-0.sock", std::process::id()));
    let _l = std::os::unix::net::UnixListener::bind(&stale).unwrap();
    let _k = std::os::unix::net::UnixListener::bind(&live).unwrap();
    rb.ok(&["run", "--rm", "--net", "none", "bb", "true"]);
    let stale_left = stale.exists();
    let live_kept = live.exists();
    let _ = std::fs::remove_file(&stale);
    let _ = std::fs::remove_file(&live);
    assert!(!stale_left, "the dead rbox's events socket is still there");
    assert!(live_kept, "a live process's events socket was removed");
    rb.assert_nothing_left("after the run");
}
