//! The container process: args, env, cwd, user and groups, umask, rlimits,
//! capabilities, no_new_privs, oom_score_adj, terminal, extra fds.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn args_env_cwd() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "echo \"$GREETING\" \"$0\"; pwd", "arg0"]);
    b.edit(|v| {
        v["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
        v["process"]["cwd"] = "/home/user".into();
    });
    assert_eq!(rt.run_ok(&b), "hello world arg0\n/home/user\n");
}

#[test]
#[ignore = "needs root"]
fn user_groups_and_umask() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "id -u; id -g; id -G; umask"]);
    b.edit(|v| {
        v["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 1000], "umask": 23})
    });
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1000", "5"]);
    assert_eq!(lines[3], "0027");
}

#[test]
#[ignore = "needs root"]
fn rlimits_are_set() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Hc"]);
    b.edit(|v| {
        v["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ])
    });
    assert_eq!(rt.run_ok(&b), "512\n1024\n0\n");
}

#[test]
#[ignore = "needs root"]
fn rlimit_above_the_hard_limit_is_a_clear_error() {
    require_root();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let has_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .map(|l| {
            u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap() & (1 << 24) != 0
        })
        .unwrap();
    if has_sys_resource || hard == u64::MAX {
        eprintln!("skipped: this host can raise RLIMIT_NOFILE");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| {
        v["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}])
    });
    let id = rt.id("rlim");
    let out = rt.run(&b, &id);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("RLIMIT_NOFILE"), "{}", stderr(&out));
    assert!(!rt.root.path().join(&id).exists());
    assert!(cgroup_dirs(&b.cgroup_path()).is_empty());
}

fn caps_mask(names: &[&str]) -> String {
    let mut mask = 0u64;
    for n in names {
        let bit = match *n {
            "CAP_CHOWN" => 0,
            "CAP_KILL" => 5,
            "CAP_NET_BIND_SERVICE" => 10,
            "CAP_NET_RAW" => 13,
            "CAP_SYS_ADMIN" => 21,
            "CAP_AUDIT_WRITE" => 29,
            other => panic!("add {other}"),
        };
        mask |= 1 << bit;
    }
    format!("{mask:016x}")
}

#[test]
#[ignore = "needs root"]
fn capability_sets() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["grep", "^Cap", "/proc/self/status"]);
    b.edit(|v| {
        v["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL"]
        })
    });
    let out = rt.run_ok(&b);
    let get = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        get("CapBnd"),
        caps_mask(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW"
        ])
    );
    // exec with ambient caps: effective = permitted = ambient after execve
    assert_eq!(get("CapAmb"), caps_mask(&["CAP_KILL"]));
    assert_eq!(get("CapInh"), caps_mask(&["CAP_KILL", "CAP_NET_RAW"]));
}

#[test]
#[ignore = "needs root"]
fn root_caps_without_ambient() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["grep", "^Cap", "/proc/self/status"]);
    let set = json!(["CAP_CHOWN", "CAP_AUDIT_WRITE"]);
    b.edit(|v| {
        v["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set})
    });
    let out = rt.run_ok(&b);
    let want = caps_mask(&["CAP_CHOWN", "CAP_AUDIT_WRITE"]);
    for k in ["CapBnd", "CapEff", "CapPrm"] {
        assert!(
            out.lines().any(|l| l.starts_with(k) && l.ends_with(&want)),
            "{k} != {want}: {out}"
        );
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
    b.edit(|v| {
        v["process"]["noNewPrivileges"] = true.into();
        v["process"]["oomScoreAdj"] = 500.into();
    });
    let out = rt.run_ok(&b);
    assert!(out.starts_with("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.ends_with("500\n"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn preserve_fds_passes_extra_fds() {
    require_root();
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let data = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(data.path(), "through-fd-3\n").unwrap();
    let file = std::fs::File::open(data.path()).unwrap();
    let fd = file.as_raw_fd();
    let id = rt.id("pfd");
    let mut cmd = rt.command();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    // SAFETY: pre_exec runs in the forked child before exec; dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = output_via_files(&mut cmd);
    assert_ok(&out, "run --preserve-fds");
    let s = stdout(&out);
    assert!(s.starts_with("through-fd-3\n"), "{s}");
    // 0,1,2,3 plus the fd ls opens for the directory
    let fds: Vec<&str> = s.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(
        fds.len() <= 5 && fds[..4] == ["0", "1", "2", "3"],
        "{fds:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn terminal_via_console_socket() {
    require_root();
    use std::os::unix::net::UnixListener;
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "tty; echo on-the-pty"]);
    b.edit(|v| v["process"]["terminal"] = true.into());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = rt.id("tty");
    let receiver = std::thread::spawn(move || {
        use std::io::IoSliceMut;
        use std::os::fd::{AsRawFd, FromRawFd};
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(f) => f.first().copied(),
                _ => None,
            })
            .expect("a pty master fd");
        // SAFETY: the fd was just received and is owned by nobody else.
        let mut master = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        use std::io::Read;
        while let Ok(n) = master.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let out = rt.cmd(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "create with console socket");
    assert_ok(&rt.cmd(&["start", &id]), "start");
    let text = receiver.join().unwrap();
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("on-the-pty"), "{text:?}");
}

#[test]
#[ignore = "needs root"]
fn terminal_without_console_socket_is_refused_when_detached() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|v| v["process"]["terminal"] = true.into());
    let id = rt.id("notty");
    let out = rt.create(&b, &id);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("console"), "{}", stderr(&out));
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
#[ignore = "needs root"]
fn listen_fds_are_passed_with_their_env() {
    require_root();
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"]);
    let data = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(data.path(), "socket-activation\n").unwrap();
    let file = std::fs::File::open(data.path()).unwrap();
    let fd = file.as_raw_fd();
    let id = rt.id("lfd");
    let mut cmd = rt.command();
    cmd.env("LISTEN_FDS", "1")
        .args(["run", "-b", b.path().to_str().unwrap(), &id]);
    // SAFETY: pre_exec runs in the forked child before exec; dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = output_via_files(&mut cmd);
    assert_ok(&out, "run with LISTEN_FDS");
    assert_eq!(stdout(&out), "1 1\nsocket-activation\n");
}

#[test]
#[ignore = "needs root"]
fn errors_go_to_the_log_file_as_json() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["/no/such/program"]);
    let log = b.path().join("log.json");
    let id = rt.id("log");
    let out = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("/no/such/program"),
        "{last}"
    );
    assert!(last["time"].is_string());
}
