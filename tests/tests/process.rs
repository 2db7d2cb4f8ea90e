//! The container process: args, env, cwd, user and groups, umask, rlimits,
//! capabilities, no_new_privs, oom_score_adj, terminal, extra fds.

use rrun_tests::*;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

#[test]
#[ignore = "needs root"]
fn args_env_cwd() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo \"$GREETING\" \"$0\"; pwd; env | sort",
        "arg0",
    ]);
    b.set_env(&["PATH=/bin", "GREETING=hello world", "EMPTY="]);
    b.set_cwd("/home/user");
    let out = rt.run_ok(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello world arg0"));
    assert_eq!(lines.next(), Some("/home/user"));
    let env: Vec<&str> = lines.collect();
    for want in ["PATH=/bin", "GREETING=hello world", "EMPTY="] {
        assert!(env.contains(&want), "{want} missing: {env:?}");
    }
    // HOME comes from /etc/passwd when the config does not set it (runc)
    assert!(env.contains(&"HOME=/root"), "{env:?}");
}

#[test]
#[ignore = "needs root"]
fn cwd_is_created_when_missing() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["pwd"]);
    b.set_cwd("/does/not/exist/yet");
    assert_eq!(rt.run_ok(&b), "/does/not/exist/yet\n");
}

#[test]
#[ignore = "needs root"]
fn user_groups_and_umask() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; umask; touch /tmp/f; stat -c '%a %u:%g' /tmp/f",
    ]);
    b.set_user(1000, 1000, &[5, 1000], Some(0o027));
    std::fs::set_permissions(
        b.rootfs().join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1000", "5"]);
    assert_eq!(lines[3], "0027");
    assert_eq!(lines[4], "640 1000:1000");
}

#[test]
#[ignore = "needs root"]
fn rlimits_are_set() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Hc"]);
    b.set_rlimit(Rlimit::RlimitNofile, 1024, 1024);
    b.set_rlimit(Rlimit::RlimitCore, 0, 0);
    assert_eq!(rt.run_ok(&b), "1024\n1024\n0\n");
    b.set_rlimit(Rlimit::RlimitNofile, 512, 2048);
    assert_eq!(rt.run_ok(&b), "512\n2048\n0\n");
}

/// An RLIMIT_NOFILE above the runtime's own hard limit, which it may not
/// raise (no CAP_SYS_RESOURCE): refused naming the rlimit, nothing left.
/// The runtime runs with a hard limit of 4096 and without CAP_SYS_RESOURCE
/// (`setpriv` drops it from the bounding and inheritable sets, so root's
/// exec of rrun does not get it), whatever the host gives root.
#[test]
#[ignore = "needs root"]
fn rlimit_above_the_hard_limit_is_a_clear_error() {
    require_root();
    const HARD: u64 = 4096;
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.set_rlimit(Rlimit::RlimitNofile, HARD + 1, HARD + 1);
    let id = rt.id("rlim");
    let args = ["run", "-b", b.path_str(), &id];
    rt.track(&args);
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--bounding-set=-sys_resource",
        "--inh-caps=-sys_resource",
        "--",
    ])
    .arg(rrun_bin())
    .arg("--root")
    .arg(rt.root.path())
    .args(args)
    .stdin(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, HARD, HARD)
                .map_err(std::io::Error::from)
        });
    }
    let out = output_via_files(&mut cmd);
    assert!(
        !stderr(&out).contains("setpriv:"),
        "setpriv (util-linux) could not drop CAP_SYS_RESOURCE: {}",
        stderr(&out)
    );
    assert_fails_naming(
        &out,
        "run with RLIMIT_NOFILE above the runtime's hard limit",
        "RLIMIT_NOFILE",
    );
    assert!(!rt.root.path().join(&id).exists());
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn capability_sets_of_a_non_root_user() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["grep", "^Cap", "/proc/self/status"]);
    // a non-root process keeps after execve exactly its ambient set as
    // permitted and effective: pick a config the kernel shows unchanged
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.set_capabilities(&bounding, &kept, &kept, &kept, &kept);
    b.set_user(1000, 1000, &[], None);
    let out = rt.run_ok(&b);
    let get = |k: &str| status_field(&out, k).unwrap_or_else(|| panic!("{k}: {out}"));
    assert_eq!(get("CapBnd"), cap_mask(&bounding), "{out}");
    assert_eq!(get("CapEff"), cap_mask(&kept), "{out}");
    assert_eq!(get("CapPrm"), cap_mask(&kept), "{out}");
    assert_eq!(get("CapInh"), cap_mask(&kept), "{out}");
    assert_eq!(get("CapAmb"), cap_mask(&kept), "{out}");
}

#[test]
#[ignore = "needs root"]
fn capability_sets_of_root() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["grep", "^Cap", "/proc/self/status"]);
    let set = ["CAP_CHOWN", "CAP_AUDIT_WRITE"];
    b.set_capabilities(&set, &set, &set, &[], &[]);
    let out = rt.run_ok(&b);
    let get = |k: &str| status_field(&out, k).unwrap_or_else(|| panic!("{k}: {out}"));
    for k in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(get(k), cap_mask(&set), "{k}: {out}");
    }
    assert_eq!(get("CapInh"), cap_mask(&[]), "{out}");
    assert_eq!(get("CapAmb"), cap_mask(&[]), "{out}");
    // and the default set (runc's spec): no CAP_SYS_ADMIN, chown refused
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "chown 1000 /tmp && echo chowned || echo refused",
    ]);
    assert_eq!(rt.run_ok(&b), "refused\n");
}

#[test]
#[ignore = "needs root"]
fn the_default_configs_of_runc_spec_and_rrun_spec_run() {
    require_root();
    let rt = Runtime::new();
    // `runc spec` (1.1.5) and `rrun spec` list ambient capabilities but no
    // inheritable ones (CVE-2022-29162): the kernel refuses to raise them,
    // and like runc the container runs without them (it failed with
    // "raise ambient CAP_AUDIT_WRITE: EPERM")
    for generator in [std::path::PathBuf::from("runc"), rrun_bin()] {
        let b = Bundle::busybox(&["true"]);
        std::fs::remove_file(b.path().join("config.json")).unwrap();
        let made = std::process::Command::new(&generator)
            .args(["spec", "--bundle", b.path_str()])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{} spec: {e} (make deps installs runc)",
                    generator.display()
                )
            });
        assert_ok(&made, "spec");
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
        let caps = &spec["process"]["capabilities"];
        assert!(
            caps["ambient"].as_array().is_some_and(|a| !a.is_empty())
                && caps.get("inheritable").is_none(),
            "{}: {caps}",
            generator.display()
        );
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(["grep", "^Cap", "/proc/self/status"]);
        b.write_raw(&spec.to_string());
        let out = rt.run_capture(&b);
        assert_ok(&out, &format!("{} spec's config", generator.display()));
        let text = stdout(&out);
        let get = |k: &str| status_field(&text, k).unwrap_or_else(|| panic!("{k}: {text}"));
        let want = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        assert_eq!(get("CapEff"), cap_mask(&want), "{text}");
        assert_eq!(get("CapBnd"), cap_mask(&want), "{text}");
        assert_eq!(get("CapInh"), cap_mask(&[]), "{text}");
        assert_eq!(get("CapAmb"), cap_mask(&[]), "{text}");
    }
}

#[test]
#[ignore = "needs root"]
fn no_new_privileges_and_oom_score_adj() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
    ]);
    b.with_process(|p| {
        p.set_no_new_privileges(Some(true));
        p.set_oom_score_adj(Some(500));
    });
    let out = rt.run_ok(&b);
    assert_eq!(out, "NoNewPrivs:\t1\n500\n");
    b.with_process(|p| {
        p.set_no_new_privileges(Some(false));
        // lowering below the runtime's own value needs CAP_SYS_RESOURCE
        p.set_oom_score_adj(Some(100));
    });
    let out = rt.run_ok(&b);
    assert_eq!(out, "NoNewPrivs:\t0\n100\n");
}

/// `fd` becomes fd 3, inherited, in `cmd`'s child. When it is 3 already
/// (the lowest free number when the file was opened), dup2 would leave it
/// close-on-exec: the flag is cleared instead.
fn onto_fd3(cmd: &mut std::process::Command, fd: i32) {
    // SAFETY: pre_exec runs in the forked child before exec; dup2 and
    // fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let done = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The runtime command with `file` dup'ed onto fd 3 in the child.
fn with_fd3(rt: &Runtime, file: &std::fs::File) -> std::process::Command {
    let fd = file.as_raw_fd();
    let mut cmd = rt.command();
    onto_fd3(&mut cmd, fd);
    cmd
}

fn data_file(text: &str) -> (tempfile::NamedTempFile, std::fs::File) {
    let data = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(data.path(), text).unwrap();
    let file = std::fs::File::open(data.path()).unwrap();
    (data, file)
}

#[test]
#[ignore = "needs root"]
fn preserve_fds_passes_extra_fds() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let (_data, file) = data_file("through-fd-3\n");
    let id = rt.id("pfd");
    let args = ["run", "--preserve-fds", "1", "-b", b.path_str(), &id];
    rt.track(&args);
    let out = output_via_files(with_fd3(&rt, &file).args(args));
    assert_ok(&out, "run --preserve-fds");
    let s = stdout(&out);
    assert!(s.starts_with("through-fd-3\n"), "{s}");
    // 0,1,2,3 plus the fd ls opens for the directory
    let fds: Vec<&str> = s.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(
        fds.len() <= 5 && fds[..4] == ["0", "1", "2", "3"],
        "{fds:?}"
    );
    // without --preserve-fds the fd does not reach the container
    let b = Bundle::busybox(&["sh", "-c", "cat <&3 && echo leaked || echo closed"]);
    let id = rt.id("nopfd");
    let args = ["run", "-b", b.path_str(), &id];
    rt.track(&args);
    let out = output_via_files(with_fd3(&rt, &file).args(args));
    assert_eq!(
        stdout(&out).lines().last(),
        Some("closed"),
        "{}",
        stdout(&out)
    );
}

/// `LISTEN_PID=<pid of the runtime> LISTEN_FDS=1 RRUN_BIN ...`: the shell
/// exports its own pid and then becomes the runtime.
fn socket_activated(
    rt: &Runtime,
    file: &std::fs::File,
    listen_pid: Option<&str>,
) -> std::process::Command {
    let fd = file.as_raw_fd();
    let mut cmd = std::process::Command::new("/bin/sh");
    let pid = listen_pid.unwrap_or("$$");
    cmd.arg("-c")
        .arg(format!("export LISTEN_FDS=1 LISTEN_PID={pid}; exec \"$@\""))
        .arg("sh")
        .arg(rrun_bin())
        .arg("--root")
        .arg(rt.root.path())
        .stdin(std::process::Stdio::null());
    onto_fd3(&mut cmd, fd);
    cmd
}

#[test]
#[ignore = "needs root"]
fn listen_fds_are_passed_with_their_env() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo ${LISTEN_FDS:-unset} ${LISTEN_PID:-unset}; cat <&3 2>/dev/null || echo no-fd-3",
    ]);
    let (_data, file) = data_file("socket-activation\n");
    // runc (go-systemd activation.Files) takes the fds only when LISTEN_PID
    // is its own pid, and tells the container LISTEN_FDS=n, LISTEN_PID=1
    let id = rt.id("lfd");
    let args = ["run", "-b", b.path_str(), &id];
    rt.track(&args);
    let out = output_via_files(socket_activated(&rt, &file, None).args(args));
    assert_ok(&out, "run with LISTEN_FDS");
    assert_eq!(stdout(&out), "1 1\nsocket-activation\n");
    // LISTEN_FDS meant for another process: nothing is passed
    let id = rt.id("lfd-other");
    let args = ["run", "-b", b.path_str(), &id];
    rt.track(&args);
    let out = output_via_files(socket_activated(&rt, &file, Some("1")).args(args));
    assert_ok(&out, "run with LISTEN_FDS for another pid");
    assert_eq!(stdout(&out), "unset unset\nno-fd-3\n");
}

#[test]
#[ignore = "needs root"]
fn terminal_via_console_socket() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "tty; stty size; echo on-the-pty"]);
    b.set_terminal(true);
    b.with_process(|p| {
        p.set_console_size(Some(
            runtime::BoxBuilder::default()
                .height(40u64)
                .width(100u64)
                .build()
                .unwrap(),
        ));
    });
    let console = ConsoleSocket::new();
    let id = rt.id("tty");
    let out = rt.cmd(&[
        "create",
        "--console-socket",
        console.path_str(),
        "-b",
        b.path_str(),
        &id,
    ]);
    assert_ok(&out, "create with console socket");
    assert_ok(&rt.cmd(&["start", &id]), "start");
    let text = console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["/dev/pts/0", "40 100", "on-the-pty"], "{text:?}");
}

#[test]
#[ignore = "needs root"]
fn terminal_without_console_socket_is_refused_when_detached() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.set_terminal(true);
    let id = rt.id("notty");
    let out = rt.create(&b, &id);
    assert_fails_naming(&out, "create with a terminal but no socket", "console");
    assert!(!rt.root.path().join(&id).exists());
}
