//! rbox's container verbs, black-box: the rbox binary (RBOX_BIN) with rrun
//! (RRUN_BIN) and our CNI plugins (CNI_BIN_DIR), on a busybox image
//! imported into a store of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rrun_tests::*;

/// A store ([`Rbox`]) with the busybox image `bb`, whose /www/index.html
/// says "hello from httpd" (for `httpd -h /www`).
fn store() -> Rbox {
    Rbox::with_image(|rootfs| {
        std::fs::create_dir_all(rootfs.join("www")).unwrap();
        std::fs::write(rootfs.join("www/index.html"), "hello from httpd\n").unwrap();
    })
}

/// [`Rbox::assert_nothing_left`], and no veth beyond `veths` (the host's
/// before). `what`: for messages.
#[track_caller]
fn assert_nothing_left(rb: &Rbox, veths: &[String], what: &str) {
    rb.assert_nothing_left(what);
    assert_eq!(host_veths(), veths, "{what}: veths");
}

#[test]
#[ignore = "needs root"]
fn run_gives_output_and_exit_code_and_rm_leaves_nothing() {
    let _serial = serial();
    let rb = store();
    let o = rb.run(&[
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "hi\n");
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
    assert!(
        std::fs::read_dir(rb.root().join("containers"))
            .unwrap()
            .next()
            .is_none(),
        "a container dir was left"
    );
    // without --rm the container stays, exited, until rm
    let o = rb.run(&[
        "run",
        "--name",
        "keep",
        "--net",
        "none",
        "-e",
        "A=1",
        "bb",
        "sh",
        "-c",
        "echo $A $HOSTNAME",
    ]);
    assert_ok(&o, "run keep");
    let ps = rb.ok(&["ps", "-a"]);
    assert!(ps.contains("keep") && ps.contains("Exited (0)"), "{ps}");
    assert_eq!(
        rb.ok(&["ps", "-q"]),
        "",
        "an exited container is not listed without -a"
    );
    let id = rb.ok(&["inspect", "--format", "{{.Id}}", "keep"]);
    assert_eq!(stdout(&o).trim(), format!("1 {}", &id.trim()[..12]));
    assert_eq!(
        rb.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "keep"
        ])
        .trim(),
        "exited 0"
    );
    // started again, attached
    assert_ok(&rb.run(&["start", "-a", "keep"]), "start -a");
    assert_ok(&rb.run(&["rm", "keep"]), "rm");
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
}

#[test]
#[ignore = "needs root"]
fn none_and_host_networks() {
    let _serial = serial();
    let rb = store();
    let links = rb.ok(&["run", "--rm", "--net", "none", "bb", "ip", "-o", "link"]);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .collect();
    assert_eq!(names, ["lo"], "{links}");
    assert!(links.contains("UP"), "lo is up: {links}");
    let addrs = rb.ok(&[
        "run", "--rm", "--net", "host", "bb", "ip", "-o", "-4", "addr",
    ]);
    assert!(addrs.contains(&host_ipv4()), "{addrs}");
}

#[test]
#[ignore = "needs root"]
fn bind_mounts_both_ways_and_read_only() {
    let _serial = serial();
    let rb = store();
    let host = rb.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), "h\n").unwrap();
    let v = format!("{}:/data", host.display());
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "cat /data/from-host; echo c > /data/from-ctr",
    ]);
    assert_eq!(out, "h\n");
    assert_eq!(
        std::fs::read_to_string(host.join("from-ctr")).unwrap(),
        "c\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    let o = rb.run(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-v",
        &ro,
        "bb",
        "touch",
        "/data/nope",
    ]);
    assert!(!o.status.success(), "a write to a :ro volume succeeded");
    assert!(!host.join("nope").exists());
    // nor does cp write into a :ro mount
    let id = rb.ok(&["run", "-d", "--net", "none", "-v", &ro, "bb", "sleep", "60"]);
    let id = id.trim();
    let src = rb.dir.path().join("src.txt");
    std::fs::write(&src, "x").unwrap();
    let o = rb.run(&["cp", src.to_str().unwrap(), &format!("{id}:/data/")]);
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    assert!(!host.join("src.txt").exists());
    rb.ok(&["rm", "-f", id]);
    // a missing host directory is created, like Docker
    let fresh = rb.dir.path().join("made/by/rbox");
    let v = format!("{}:/x", fresh.display());
    assert_ok(
        &rb.run(&["run", "--rm", "--net", "none", "-v", &v, "bb", "true"]),
        "run",
    );
    assert!(fresh.is_dir());
    // a named volume keeps its data between containers
    assert_ok(
        &rb.run(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            "vol1:/v",
            "bb",
            "sh",
            "-c",
            "echo kept > /v/f",
        ]),
        "write to a volume",
    );
    assert_eq!(
        rb.ok(&["run", "--rm", "--net", "none", "-v", "vol1:/v", "bb", "cat", "/v/f"]),
        "kept\n"
    );
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The default bridge network end to end: two httpd on port 80 inside,
/// published on two host ports, IPs in 10.88.0.0/16, `ps` PORTS, stop.
/// One test, so that it alone uses (and then removes) `rbox0`.
#[test]
#[ignore = "needs root"]
fn bridge_network_two_web_servers_on_port_80() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    let base = 28000 + (std::process::id() % 1000) as u16;
    let mut servers = Vec::new();
    for (name, port) in [("web1", base), ("web2", base + 1)] {
        let p = format!("{port}:80");
        let child = rb
            .cmd(&[
                "run", "--rm", "--name", name, "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h",
                "/www",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push(Background(child));
        wait_for(&format!("{name} to run"), Duration::from_secs(20), || {
            rb.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
                .contains(&format!("{name} running"))
        });
    }
    let ps = rb.ok(&["ps"]);
    let mut ips = Vec::new();
    for (name, port) in [("web1", base), ("web2", base + 1)] {
        assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
        let ip = rb.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            name,
        ]);
        let ip = ip.trim().to_string();
        assert!(ip.starts_with("10.88."), "{name}: {ip:?}");
        let mut got = String::new();
        wait_for(
            &format!("{name} to answer"),
            Duration::from_secs(10),
            || {
                got = http_get("127.0.0.1", port);
                !got.is_empty()
            },
        );
        assert_eq!(got, "hello from httpd\n");
        assert_eq!(http_get(&ip, 80), "hello from httpd\n", "{name} by its IP");
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1]);
    // a published port that is taken is refused before anything starts
    let p = format!("{base}:80");
    let o = rb.run(&["run", "--rm", "--name", "web3", "-p", &p, "bb", "true"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&base.to_string()),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // containers reach each other by IP
    let o = rb.ok(&[
        "run",
        "--rm",
        "bb",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{}/", ips[1]),
    ]);
    assert_eq!(o, "hello from httpd\n");
    for name in ["web1", "web2"] {
        assert_ok(&rb.run(&["stop", "-t", "2", name]), "stop");
    }
    for s in &mut servers {
        let st = s.0.wait().unwrap();
        assert!(st.code().is_some(), "rbox run ended by a signal: {st:?}");
    }
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "", "--rm containers are gone");
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
    assert_eq!(
        http_get("127.0.0.1", base),
        "",
        "still forwarded after stop"
    );
}

#[test]
#[ignore = "needs root"]
fn bad_input_is_refused_and_leaves_nothing() {
    let _serial = serial();
    let rb = store();
    for (args, says) in [
        // --pull never: a missing image is pulled otherwise (from docker.io)
        (
            vec!["run", "--rm", "--pull", "never", "nosuchimage", "true"],
            "no such image: nosuchimage:latest",
        ),
        (vec!["run", "--rm", "-p", "http", "bb", "true"], "http"),
        (
            vec!["run", "--rm", "--net", "host", "-p", "80:80", "bb", "true"],
            "--net host",
        ),
        (vec!["run", "--rm", "--net", "mars", "bb", "true"], "mars"),
        (
            vec!["run", "--rm", "-v", "/a:/b:bogus", "bb", "true"],
            "bogus",
        ),
        (vec!["run", "--rm", "--name=-bad", "bb", "true"], "-bad"),
        (
            vec!["run", "-d", "--restart", "sometimes", "bb", "true"],
            "sometimes",
        ),
        (
            vec!["run", "-d", "--log-opt", "color=red", "bb", "true"],
            "color=red",
        ),
        (
            vec![
                "run",
                "--rm",
                "--net",
                "none",
                "-u",
                "nosuchuser",
                "bb",
                "true",
            ],
            "nosuchuser",
        ),
        (
            vec!["run", "--rm", "--net", "none", "bb", "/no/such/binary"],
            "/no/such/binary",
        ),
    ] {
        let o = rb.run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(rb.ok(&["ps", "-a", "-q"]), "", "{args:?} left a container");
    }
    assert_ok(
        &rb.run(&["create", "--name", "dup", "--net", "none", "bb", "true"]),
        "create",
    );
    let o = rb.run(&["create", "--name", "dup", "--net", "none", "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already in use"));
    assert_ok(&rb.run(&["rm", "dup"]), "rm");
    let o = rb.run(&["rm", "dup"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such container: dup"));
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
}

/// The tutorial's detached container: `run -d --rm`, `ps`, `cp` both ways
/// (symlinks resolved inside the container), `exec` (exit code, env, -w, -u,
/// stdin, a real pty with -it), `stop` removing it.
#[test]
#[ignore = "needs root"]
fn detached_container_cp_and_exec() {
    let _serial = serial();
    let rb = store();
    let id = rb.ok(&["run", "-d", "--rm", "--net", "none", "bb", "sleep", "300"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(rb.ok(&["ps"]).contains(&id[..12]));
    let a = rb.dir.path().join("a.txt");
    std::fs::write(&a, "from the host\n").unwrap();
    let a = a.to_str().unwrap();
    rb.ok(&["cp", a, &format!("{id}:/tmp")]);
    assert!(rb.ok(&["exec", &id, "ls", "/tmp"]).contains("a.txt"));
    let b = rb.dir.path().join("b.txt");
    rb.ok(&[
        "cp",
        &format!("{}:/tmp/a.txt", &id[..12]),
        b.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "from the host\n");
    // a symlink to / inside the container is the container's /
    rb.ok(&["exec", &id, "ln", "-s", "/", "/tmp/up"]);
    rb.ok(&["cp", a, &format!("{id}:/tmp/up/escaped.txt")]);
    assert!(!Path::new("/escaped.txt").exists(), "cp wrote on the host");
    assert_eq!(
        rb.ok(&["exec", &id, "cat", "/escaped.txt"]),
        "from the host\n"
    );
    rb.ok(&["exec", &id, "ln", "-s", "/etc", "/tmp/etc-link"]);
    let pw = rb.dir.path().join("pw");
    rb.ok(&[
        "cp",
        &format!("{id}:/tmp/etc-link/passwd"),
        pw.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&pw)
        .unwrap()
        .contains("user:x:1000"));
    // directories, and tar streams with `-`
    let dir = rb.dir.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f"), "deep\n").unwrap();
    rb.ok(&["cp", dir.to_str().unwrap(), &format!("{id}:/root")]);
    assert_eq!(rb.ok(&["exec", &id, "cat", "/root/tree/sub/f"]), "deep\n");
    let o = rb.run(&["cp", &format!("{id}:/root/tree"), "-"]);
    assert_ok(&o, "cp to -");
    let mut listing = Vec::new();
    for e in tar::Archive::new(&o.stdout[..]).entries().unwrap() {
        listing.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(listing.contains(&"tree/sub/f".to_string()), "{listing:?}");
    let o = rb.run(&["cp", &format!("{id}:/no/such"), "."]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such"), "{}", stderr(&o));
    // exec: exit code, environment, working dir, user, stdin
    let o = rb.run(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "user",
        &id,
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u); exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "1 /tmp 1000\n");
    let mut child = rb
        .cmd(&["exec", "-i", &id, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "through stdin\n");
    let o = rb.run(&["exec", &id, "no-such-command"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("no-such-command"), "{}", stderr(&o));
    // -it through a real pty (script gives rbox a terminal)
    let line = format!(
        "{} --root {} exec -it {id} sh -c 'tty; exit 3'",
        rbox_bin().display(),
        rb.root().display()
    );
    let o = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("RBOX_RUNTIME", rrun_bin())
        .env("RBOX_SHIM", shim_bin())
        .env("RBOX_CGROUP_PARENT", &rb.cgroup.0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(stdout(&o).contains("/dev/pts/"), "{}", stdout(&o));
    assert_eq!(o.status.code(), Some(3));
    // stop: a --rm container is gone once stop returns
    rb.ok(&["stop", "-t", "1", &id]);
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
    assert!(rb.run(&["exec", &id, "true"]).status.code() != Some(0));
}

/// Logs: the shim's json-file log, as `rbox logs` shows it (streams,
/// --tail, -t, -f until the container stops) and rotated at max-size.
#[test]
#[ignore = "needs root"]
fn logs_tail_timestamps_follow_and_rotation() {
    let _serial = serial();
    let rb = store();
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
        "echo two >&2; sleep 0.3; echo one; echo three; sleep 300",
    ]);
    wait_for("the output", Duration::from_secs(10), || {
        rb.ok(&["logs", "talker"]).contains("three")
    });
    let o = rb.run(&["logs", "talker"]);
    assert_eq!(stdout(&o), "one\nthree\n");
    assert_eq!(stderr(&o), "two\n");
    assert_eq!(rb.ok(&["logs", "--tail", "1", "talker"]), "three\n");
    let stamped = rb.ok(&["logs", "-t", "talker"]);
    for l in stamped.lines() {
        let (t, _) = l.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{l}");
    }
    assert_eq!(rb.ok(&["logs", "--since", "1m", "talker"]), "one\nthree\n");
    assert_eq!(
        rb.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "talker"]),
        ""
    );
    // -f prints what comes later and ends when the container stops
    let follow = rb
        .cmd(&["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut follow = Background(follow);
    std::thread::sleep(Duration::from_millis(300));
    rb.ok(&["exec", "talker", "sh", "-c", "echo four > /proc/1/fd/1"]);
    std::thread::sleep(Duration::from_millis(300));
    rb.ok(&["stop", "-t", "1", "talker"]);
    let end = Instant::now() + Duration::from_secs(10);
    while follow.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < end,
            "logs -f did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(follow.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(out, "one\nthree\nfour\n");
    // rotation: max-size 1k, two files kept
    let o = rb.run(&[
        "run",
        "--name",
        "chatty",
        "--net",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "bb",
        "sh",
        "-c",
        "for i in $(seq 1 200); do echo line $i; done",
    ]);
    assert_ok(&o, "run chatty");
    assert!(stdout(&o).ends_with("line 199\nline 200\n"));
    let log = rb.ok(&["inspect", "--format", "{{.LogPath}}", "chatty"]);
    let log = PathBuf::from(log.trim());
    let rotated = PathBuf::from(format!("{}.1", log.display()));
    for p in [&log, &rotated] {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len > 0 && len <= 1024, "{}: {len}", p.display());
    }
    assert!(!Path::new(&format!("{}.2", log.display())).exists());
    assert!(rb.ok(&["logs", "chatty"]).ends_with("line 200\n"));
}

/// Restart policies (on-failure:N, always, stop ends them) and a shim
/// killed with -9: the container keeps running, `rm -f` cleans up all.
#[test]
#[ignore = "needs root"]
fn restart_policies() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--net",
        "none",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "exit 1",
    ]);
    let state = |name: &str| {
        rb.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}}",
            name,
        ])
        .trim()
        .to_string()
    };
    wait_for("two restarts", Duration::from_secs(30), || {
        state("flaky") == "exited 2"
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state("flaky"), "exited 2", "on-failure:2 restarts twice");
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
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    wait_for("restarts", Duration::from_secs(30), || {
        state("phoenix")
            .split(' ')
            .nth(1)
            .is_some_and(|n| n.parse::<u32>().unwrap() >= 2)
    });
    rb.ok(&["stop", "-t", "1", "phoenix"]);
    let after = state("phoenix");
    std::thread::sleep(Duration::from_secs(2));
    assert!(after.starts_with("exited"), "{after}");
    assert_eq!(state("phoenix"), after, "restarted after stop");
}

/// pause/unpause, top, port (a random host port), rename, --ulimit (and
/// the clamped default), volumes, container prune and info.
#[test]
#[ignore = "needs root"]
fn pause_top_port_rename_ulimits_volumes_prune_and_info() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    rb.ok(&[
        "run", "-d", "--name", "worker", "-p", "80", "bb", "sleep", "300",
    ]);
    let port = rb.ok(&["port", "worker"]);
    let host_port: u16 = port
        .trim()
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .unwrap_or_else(|| panic!("{port}"))
        .parse()
        .unwrap();
    assert!(host_port > 0);
    assert!(rb.ok(&["top", "worker"]).contains("sleep 300"));
    let status = |name: &str| {
        rb.ok(&["inspect", "--format", "{{.State.Status}}", name])
            .trim()
            .to_string()
    };
    rb.ok(&["pause", "worker"]);
    assert_eq!(status("worker"), "paused");
    let o = rb.run(&["exec", "worker", "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("paused"),
        "{}",
        stderr(&o)
    );
    rb.ok(&["unpause", "worker"]);
    assert_eq!(status("worker"), "running");
    rb.ok(&["rename", "worker", "worker2"]);
    assert!(rb.ok(&["ps"]).contains("worker2"));
    rb.ok(&["create", "--name", "idle", "--net", "none", "bb", "true"]);
    let o = rb.run(&["rename", "worker2", "idle"]);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));

    // ulimits: asked for, clamped by default, refused above the hard limit
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--ulimit",
        "nofile=1000:2000",
        "bb",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "1000\n2000\n");
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "ulimit -Hn",
    ]);
    assert_eq!(out.trim(), hard.min(1_048_576).to_string());
    let too_many = format!("nofile={}", hard + 1);
    let o = rb.run(&[
        "run", "--rm", "--net", "none", "--ulimit", &too_many, "bb", "true",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("above this host"), "{}", stderr(&o));

    // volumes
    assert_eq!(rb.ok(&["volume", "create", "data1"]).trim(), "data1");
    assert!(rb.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data1"));
    rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-v",
        "data1:/d",
        "bb",
        "sh",
        "-c",
        "echo v > /d/f",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&rb.ok(&["volume", "inspect", "data1"])).unwrap();
    let mountpoint = PathBuf::from(v[0]["Mountpoint"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap(),
        "v\n"
    );
    rb.ok(&[
        "run", "-d", "--name", "holder", "--net", "none", "-v", "data1:/d", "bb", "sleep", "300",
    ]);
    let o = rb.run(&["volume", "rm", "data1"]);
    assert!(stderr(&o).contains("in use by holder"), "{}", stderr(&o));
    rb.ok(&["rm", "-f", "holder"]);
    rb.ok(&["volume", "rm", "data1"]);
    assert!(!rb.ok(&["volume", "ls", "-q"]).contains("data1"));
    assert!(!mountpoint.exists());

    // prune: the stopped containers go, the running one stays
    let pruned = rb.ok(&["container", "prune", "-f"]);
    let ps = rb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !ps.contains("idle") && ps.contains("worker2"),
        "{pruned}\n{ps}"
    );

    // -P: the image's EXPOSEd ports on random host ports
    let tar = rb.dir.path().join("bb.tar");
    rb.ok(&[
        "import",
        "-c",
        "EXPOSE 80 9090/udp",
        tar.to_str().unwrap(),
        "bb-exposed",
    ]);
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "exposed",
        "-P",
        "bb-exposed",
        "sleep",
        "300",
    ]);
    let ports = rb.ok(&["port", "exposed"]);
    assert!(
        ports.contains("80/tcp -> 0.0.0.0:") && ports.contains("9090/udp -> 0.0.0.0:"),
        "{ports}"
    );
    rb.ok(&["rm", "-f", "exposed"]);

    // version: rbox's and the runtime it uses, Docker's --format
    let v = rb.ok(&["version"]);
    assert!(
        v.contains("Client: rbox") && v.contains(rrun_bin().to_str().unwrap()),
        "{v}"
    );
    let dash_v = rb.ok(&["--version"]);
    assert_eq!(
        rb.ok(&["version", "--format", "{{.Client.Version}}"])
            .trim(),
        dash_v.split_whitespace().last().unwrap()
    );
    let rt = rb.ok(&["version", "--format", "{{.Runtime.Version}}"]);
    assert!(rt.starts_with("rrun "), "{rt}");

    let info = rb.ok(&["info"]);
    for want in [
        "Runtime: ",
        "Shim: ",
        "Storage: overlay (available)",
        "CNI bridge: /",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }
    assert!(!info.contains("(missing)"), "{info}");
    rb.ok(&["rm", "-f", "worker2"]);
}

/// Deletes on drop the Linux bridges of the user networks a test made,
/// should `rbox network rm` not have (declare it before the `Rbox`, so
/// the containers go first).
#[derive(Default)]
struct UserBridges(std::cell::RefCell<Vec<String>>);

impl UserBridges {
    /// `rbox network create ARGS…`; the new network's bridge name.
    #[track_caller]
    fn create(&self, rb: &Rbox, args: &[&str]) -> String {
        let mut a = vec!["network", "create"];
        a.extend_from_slice(args);
        let id = rb.ok(&a);
        let bridge = rb.ok(&[
            "network",
            "inspect",
            "--format",
            "{{index .Options \"com.docker.network.bridge.name\"}}",
            id.trim(),
        ]);
        let bridge = bridge.trim().to_string();
        assert!(
            bridge.starts_with("rbox-") && bridge.len() <= 15,
            "{bridge:?}"
        );
        self.0.borrow_mut().push(bridge.clone());
        bridge
    }
}

impl Drop for UserBridges {
    fn drop(&mut self) {
        for b in self.0.borrow().iter() {
            if Path::new("/sys/class/net").join(b).exists() {
                let _ = Command::new("ip").args(["link", "del", b]).output();
            }
        }
    }
}

fn exists_link(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A user network end to end: ls/inspect, two containers reaching each
/// other by name and short id (ping, wget), /etc/hosts following joins
/// and exits, a second network with a fixed subnet and gateway, rm
/// refused while in use, then the bridges and leases gone.
#[test]
#[ignore = "needs root"]
fn user_networks_resolve_names_and_rm_cleans_up() {
    let _serial = serial();
    let bridges = UserBridges::default();
    let rb = store();
    let br1 = bridges.create(&rb, &["appnet"]);
    let br2 = bridges.create(
        &rb,
        &[
            "--driver",
            "bridge",
            "--subnet",
            "10.89.140.0/24",
            "--gateway",
            "10.89.140.254",
            "fixednet",
        ],
    );
    let ls = rb.ok(&["network", "ls"]);
    let head: Vec<&str> = ls.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"], "{ls}");
    for (name, driver) in [
        ("appnet", "bridge"),
        ("bridge", "bridge"),
        ("fixednet", "bridge"),
        ("host", "host"),
        ("none", "null"),
    ] {
        assert!(
            ls.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() == 4
                    && w[0].len() == 12
                    && w[1] == name
                    && w[2] == driver
                    && w[3] == "local"
            }),
            "{name}: {ls}"
        );
    }
    assert_eq!(rb.ok(&["network", "ls", "-q"]).lines().count(), 5);
    let v: serde_json::Value =
        serde_json::from_str(&rb.ok(&["network", "inspect", "appnet", "fixednet"])).unwrap();
    assert_eq!(v[0]["Name"], "appnet");
    assert_eq!(v[0]["Driver"], "bridge");
    assert_eq!(v[0]["Id"].as_str().unwrap().len(), 64);
    let subnet = v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let third: u8 = subnet.split('.').nth(2).unwrap().parse().unwrap();
    assert!(
        subnet.starts_with("10.89.") && subnet.ends_with(".0/24") && third >= 128,
        "an automatic subnet from 10.89.128.0/17: {subnet}"
    );
    let prefix = subnet.trim_end_matches("0/24").to_string();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], format!("{prefix}1"));
    assert_eq!(v[1]["IPAM"]["Config"][0]["Subnet"], "10.89.140.0/24");
    assert_eq!(v[1]["IPAM"]["Config"][0]["Gateway"], "10.89.140.254");
    assert_eq!(v[0]["Containers"], serde_json::json!({}));

    let web = rb.ok(&[
        "run", "-d", "--name", "web", "--net", "appnet", "bb", "httpd", "-f", "-p", "80", "-h",
        "/www",
    ]);
    let web = web.trim().to_string();
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "appnet",
        "bb",
        "sleep",
        "120",
    ]);
    assert!(
        exists_link(&br1),
        "the bridge comes with the first container"
    );
    let web_ip = rb.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "web",
    ]);
    assert!(web_ip.trim().starts_with(&prefix), "{web_ip:?} in {subnet}");
    assert_eq!(
        rb.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}|{{.HostConfig.NetworkMode}}",
            "web"
        ])
        .trim(),
        "|appnet",
        "like Docker, the top-level address is the default network's"
    );
    // by name, both ways, and by short id
    let mut got = String::new();
    wait_for("web to answer by name", Duration::from_secs(10), || {
        let o = rb.run(&["exec", "client", "wget", "-q", "-O", "-", "http://web/"]);
        got = stdout(&o);
        o.status.success()
    });
    assert_eq!(got, "hello from httpd\n");
    assert_ok(
        &rb.run(&["exec", "web", "ping", "-c", "1", "-W", "2", "client"]),
        "ping client by name",
    );
    assert_ok(
        &rb.run(&["exec", "client", "ping", "-c", "1", "-W", "2", &web[..12]]),
        "ping web by short id",
    );
    let v: serde_json::Value =
        serde_json::from_str(&rb.ok(&["network", "inspect", "appnet"])).unwrap();
    let members = v[0]["Containers"].as_object().unwrap();
    assert_eq!(members.len(), 2, "{v}");
    assert_eq!(members[&web]["Name"], "web");
    assert_eq!(
        members[&web]["IPv4Address"],
        format!("{}/24", web_ip.trim())
    );
    assert!(members[&web]["MacAddress"].as_str().unwrap().len() == 17);

    // another network: its own subnet and gateway, and no names of appnet
    let o = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "fixednet",
        "bb",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; cat /etc/hosts",
    ]);
    assert!(o.contains("inet 10.89.140."), "{o}");
    assert!(o.contains("default via 10.89.140.254"), "{o}");
    assert!(!o.contains("web") && !o.contains("client"), "{o}");

    // in use: refused, nothing removed
    let o = rb.run(&["network", "rm", "appnet"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("appnet") && err.contains("in use") && err.contains("web"),
        "{err}"
    );
    assert!(exists_link(&br1));
    // a container that leaves is forgotten by the others
    assert_ok(&rb.run(&["stop", "-t", "1", "client"]), "stop client");
    let hosts = rb.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("client"), "{hosts}");
    assert_ok(&rb.run(&["start", "client"]), "start client");
    let hosts = rb.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tclient "), "back: {hosts}");

    assert_ok(&rb.run(&["rm", "-f", "web", "client"]), "rm");
    let o = rb.ok(&["network", "rm", "appnet", "fixednet"]);
    assert_eq!(o, "appnet\nfixednet\n");
    assert!(!exists_link(&br1) && !exists_link(&br2), "bridges left");
    assert_eq!(rb.ok(&["network", "ls", "-q"]).lines().count(), 3);
    let left: Vec<_> = std::fs::read_dir(rb.root().join("networks"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "leases left: {left:?}");
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
}

/// `--net container:NAME`: the target's addresses, hostname and /etc/hosts;
/// refused with -p, for a stopped or unknown target; bad network input.
#[test]
#[ignore = "needs root"]
fn net_container_and_bad_network_input() {
    let _serial = serial();
    let bridges = UserBridges::default();
    let rb = store();
    let br = bridges.create(&rb, &["--subnet", "10.89.141.0/24", "sharednet"]);
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "tgt",
        "--net",
        "sharednet",
        "bb",
        "sleep",
        "120",
    ]);
    let want = rb.ok(&[
        "exec",
        "tgt",
        "sh",
        "-c",
        "ip -o addr; hostname; cat /etc/hosts",
    ]);
    assert!(want.contains("inet 10.89.141."), "{want}");
    let got = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "container:tgt",
        "bb",
        "sh",
        "-c",
        "ip -o addr; hostname; cat /etc/hosts",
    ]);
    assert_eq!(got, want);
    let mode = rb.ok(&[
        "create",
        "--name",
        "joiner",
        "--net",
        "container:tgt",
        "bb",
        "true",
    ]);
    let tgt_id = rb.ok(&["inspect", "--format", "{{.Id}}", "tgt"]);
    assert_eq!(
        rb.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            mode.trim()
        ])
        .trim(),
        format!("container:{}", tgt_id.trim())
    );
    assert_ok(&rb.run(&["rm", "joiner"]), "rm joiner");

    for (args, says) in [
        (
            vec![
                "run",
                "--rm",
                "--net",
                "container:tgt",
                "-p",
                "8080:80",
                "bb",
                "true",
            ],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["run", "--rm", "--net", "container:nosuch", "bb", "true"],
            "no such container",
        ),
        (
            vec!["run", "--rm", "--net", "nosuchnet", "bb", "true"],
            "network nosuchnet not found",
        ),
    ] {
        let o = rb.run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_ok(&rb.run(&["stop", "-t", "1", "tgt"]), "stop tgt");
    let o = rb.run(&["run", "--rm", "--net", "container:tgt", "bb", "true"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tgt") && err.contains("not running"), "{err}");
    assert_eq!(
        rb.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "tgt\n",
        "a refused run left a container"
    );

    for (args, says) in [
        (vec!["sharednet"], "already exists"),
        (
            vec!["--subnet", "10.88.7.0/24", "n1"],
            "overlaps the default network",
        ),
        (
            vec!["--subnet", "10.89.141.128/25", "n1"],
            "overlaps network sharednet",
        ),
        (vec!["--subnet", "10.89.142.5/24", "n1"], "10.89.142.0/24"),
        (
            vec![
                "--subnet",
                "10.89.142.0/24",
                "--gateway",
                "10.89.143.1",
                "n1",
            ],
            "10.89.143.1",
        ),
        (
            vec!["--gateway", "10.89.142.1", "n1"],
            "--gateway needs --subnet",
        ),
        (vec!["--driver", "overlay", "n1"], "overlay"),
        (vec!["host"], "pre-defined"),
        (vec!["bad/name"], "bad/name"),
    ] {
        let mut a = vec!["network", "create"];
        a.extend_from_slice(&args);
        let o = rb.run(&a);
        assert!(!o.status.success(), "{a:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{a:?}: {err}");
    }
    for (args, says) in [
        (vec!["network", "rm", "bridge"], "pre-defined"),
        (
            vec!["network", "rm", "nosuchnet"],
            "network nosuchnet not found",
        ),
        (
            vec!["network", "inspect", "nosuchnet"],
            "network nosuchnet not found",
        ),
    ] {
        let o = rb.run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_ok(&rb.run(&["rm", "tgt"]), "rm tgt");
    assert_eq!(
        rb.ok(&["network", "prune"]),
        "Deleted Networks:\nsharednet\n"
    );
    assert!(!exists_link(&br), "bridge left");
    assert_eq!(rb.ok(&["network", "ls", "-q"]).lines().count(), 3);
    assert!(rbox_netns().is_empty(), "{:?}", rbox_netns());
}

/// What the containers `ids` may have left on the host: network
/// namespaces, host-side veths (not in `veths_before`), host-local leases,
/// nftables rules tagged with their ids, mounts of the store, shims.
fn leftovers(rb: &Rbox, ids: &[String], veths_before: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    for ns in rbox_netns() {
        if ids.iter().any(|id| id.starts_with(&ns["rbox-".len()..])) {
            left.push(format!("netns {ns}"));
        }
    }
    for v in host_veths() {
        if !veths_before.contains(&v) {
            left.push(format!("veth {v}"));
        }
    }
    if let Ok(d) = std::fs::read_dir(RBOX_LEASES) {
        for e in d.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if ids.iter().any(|id| text.contains(id.as_str())) {
                left.push(format!("lease {}", e.path().display()));
            }
        }
    }
    let ruleset = Command::new("nft").args(["list", "ruleset"]).output();
    if let Ok(o) = ruleset {
        for l in stdout(&o).lines() {
            if ids.iter().any(|id| l.contains(&id[..12])) {
                left.push(format!("nft rule {}", l.trim()));
            }
        }
    }
    for m in mounts_mentioning(&rb.root()) {
        left.push(format!("mount {m}"));
    }
    for id in ids {
        let pgrep = Command::new("pgrep")
            .args(["-f", &format!("containerd-shim-rrun-v2 .*-id {id}")])
            .output()
            .unwrap();
        if !stdout(&pgrep).trim().is_empty() {
            left.push(format!("shim of {id}: pid {}", stdout(&pgrep).trim()));
        }
    }
    left
}

/// An attached `run --rm` finishes the container itself (the exit hook
/// leaves it alone): all output printed, its exit code, a bridge network
/// torn down, nothing left; also when `rbox stop` ends it from outside.
/// Its overlay is volatile (thrown away, so never synced); a kept
/// container's is not.
#[test]
#[ignore = "needs root"]
fn attached_rm_runs_drain_output_and_leave_nothing() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = store();
    let veths = host_veths();
    let o = rb.run(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "seq 1 3000; grep -c volatile /proc/self/mountinfo; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3001, "output lost: {} lines", lines.len());
    assert_eq!(lines[2999], "3000");
    assert_eq!(lines[3000], "1", "the --rm overlay is not volatile");
    let o = rb.run(&[
        "run",
        "--name",
        "kept",
        "--net",
        "none",
        "bb",
        "grep",
        "-c",
        "volatile",
        "/proc/self/mountinfo",
    ]);
    assert_eq!(
        stdout(&o).trim(),
        "0",
        "a kept container's overlay is volatile"
    );
    rb.ok(&["rm", "kept"]);
    // stopped from outside while attached
    let mut run = rb
        .cmd(&["run", "--rm", "--name", "stopme", "bb", "sleep", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container to start", Duration::from_secs(10), || {
        rb.ok(&["ps", "-q"]).contains(char::is_alphanumeric)
    });
    rb.ok(&["stop", "-t", "1", "stopme"]);
    let status = run.wait().unwrap();
    assert!(matches!(status.code(), Some(137) | Some(143)), "{status:?}");
    assert_nothing_left(&rb, &veths, "after stop of an attached run --rm");
}

/// 20 `run -d` at once on the default bridge, each publishing a port,
/// then 20 `rm -f` at once: every run succeeds with an address of its
/// own and a port that answers, and nothing is left afterwards; a
/// container published before keeps its port and rules throughout.
#[test]
#[ignore = "needs root"]
fn twenty_concurrent_runs_and_removals_leave_nothing() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    const N: u16 = 20;
    let base = 31000 + (std::process::id() % 1000) as u16 * 2;
    let sentinel_port = base + N;
    let p = format!("{sentinel_port}:80");
    let sentinel = rb.ok(&[
        "run", "-d", "--name", "sentinel", "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h", "/www",
    ]);
    let sentinel = sentinel.trim().to_string();
    wait_for("sentinel to answer", Duration::from_secs(10), || {
        !http_get("127.0.0.1", sentinel_port).is_empty()
    });
    let sentinel_rules = rules_naming(&sentinel);
    assert!(!sentinel_rules.is_empty(), "the sentinel has no rules");
    let veths_before = host_veths();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let rb = &rb;
                s.spawn(move || {
                    let name = format!("par{i}");
                    let p = format!("{}:80", base + i);
                    rb.run(&[
                        "run", "-d", "--name", &name, "-p", &p, "bb", "httpd", "-f", "-p", "80",
                        "-h", "/www",
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outs.iter().enumerate() {
        assert_ok(o, &format!("run par{i}"));
    }
    let ids: Vec<String> = outs.iter().map(|o| stdout(o).trim().to_string()).collect();
    let ps = rb.ok(&["ps", "-q"]);
    assert_eq!(ps.lines().count(), N as usize + 1, "{ps}");
    let mut ips = std::collections::HashSet::new();
    for i in 0..N {
        let name = format!("par{i}");
        let ip = rb.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            &name,
        ]);
        assert!(ip.trim().starts_with("10.88."), "{name}: {ip:?}");
        ips.insert(ip.trim().to_string());
        let mut got = String::new();
        wait_for(
            &format!("{name} to answer"),
            Duration::from_secs(10),
            || {
                got = http_get("127.0.0.1", base + i);
                !got.is_empty()
            },
        );
        assert_eq!(got, "hello from httpd\n", "{name}");
    }
    assert_eq!(ips.len(), N as usize, "{ips:?}");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let rb = &rb;
                s.spawn(move || rb.run(&["rm", "-f", &format!("par{i}")]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outs.iter().enumerate() {
        assert_ok(o, &format!("rm -f par{i}"));
    }
    assert_eq!(rb.ok(&["ps", "-a", "-q"]).trim(), &sentinel[..12]);
    for i in 0..N {
        assert_eq!(http_get("127.0.0.1", base + i), "", "still forwarded");
    }
    assert_eq!(
        rules_naming(&sentinel),
        sentinel_rules,
        "the sentinel's rules after 20 runs and removals"
    );
    assert_eq!(
        http_get("127.0.0.1", sentinel_port),
        "hello from httpd\n",
        "the sentinel's port after 20 runs and removals"
    );
    rb.ok(&["rm", "-f", "sentinel"]);
    let mut all = ids.clone();
    all.push(sentinel);
    let left = leftovers(&rb, &all, &veths_before);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// The nftables rules that name container `id` (its masquerade and port
/// mappings), as `nft list ruleset` prints them.
fn rules_naming(id: &str) -> Vec<String> {
    let o = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    stdout(&o)
        .lines()
        .filter(|l| l.contains(id))
        .map(|l| l.trim().to_string())
        .collect()
}

/// One container's teardown leaves the other containers' published ports
/// and masquerade alone: a `run --rm` ending or an `rm -f` once removed
/// the whole `ip rcni` table (every container's rules) while `ps` still
/// showed the ports.
#[test]
#[ignore = "needs root"]
fn one_containers_teardown_keeps_the_others_published_ports() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    let veths = host_veths();
    let base = 29000 + 2 * (std::process::id() % 400) as u16;
    let mut ids = Vec::new();
    for (name, port) in [("keeper", base), ("other", base + 1)] {
        let p = format!("{port}:80");
        let id = rb.ok(&[
            "run", "-d", "--name", name, "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h", "/www",
        ]);
        let mut got = String::new();
        wait_for(
            &format!("{name} to answer"),
            Duration::from_secs(10),
            || {
                got = http_get("127.0.0.1", port);
                !got.is_empty()
            },
        );
        assert_eq!(got, "hello from httpd\n", "{name}");
        ids.push(id.trim().to_string());
    }
    let keeper_rules = rules_naming(&ids[0]);
    assert!(
        keeper_rules.iter().any(|l| l.contains("dnat"))
            && keeper_rules.iter().any(|l| l.contains("masquerade")),
        "{keeper_rules:#?}"
    );
    // a plain run --rm ending
    rb.ok(&["run", "--rm", "bb", "true"]);
    assert_eq!(
        rules_naming(&ids[0]),
        keeper_rules,
        "after a run --rm ended"
    );
    assert_eq!(
        http_get("127.0.0.1", base),
        "hello from httpd\n",
        "keeper's port after a run --rm ended"
    );
    // the other published container removed
    rb.ok(&["rm", "-f", "other"]);
    assert_eq!(http_get("127.0.0.1", base + 1), "", "other's port after rm");
    assert!(
        rules_naming(&ids[1]).is_empty(),
        "{:#?}",
        rules_naming(&ids[1])
    );
    assert_eq!(rules_naming(&ids[0]), keeper_rules, "after rm -f other");
    assert_eq!(
        http_get("127.0.0.1", base),
        "hello from httpd\n",
        "keeper's port after rm -f other"
    );
    assert!(
        rb.ok(&["ps"]).contains(&format!("0.0.0.0:{base}->80/tcp")),
        "keeper's ports in ps"
    );
    rb.ok(&["rm", "-f", "keeper"]);
    assert_nothing_left(&rb, &veths, "after rm -f keeper");
    assert!(
        rules_naming(&ids[0]).is_empty(),
        "{:#?}",
        rules_naming(&ids[0])
    );
}

/// The host's claim on a published port (hostports.rs), if any.
fn port_claim(port: u16) -> Option<String> {
    std::fs::read_to_string(format!("/run/rbox/ports/tcp-{port}-0.0.0.0")).ok()
}

/// 10 `run -d -p P:80` at once: exactly one starts and owns the port;
/// the others fail with Docker's "port is already allocated" before any
/// network is made for them (they stay, created, as Docker's do), and the
/// port is free again once the winner is removed.
#[test]
#[ignore = "needs root"]
fn concurrent_runs_publishing_one_host_port_exactly_one_wins() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    let veths_before = host_veths();
    let port = 33000 + (std::process::id() % 1000) as u16;
    let p = format!("{port}:80");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (rb, p) = (&rb, &p);
                s.spawn(move || {
                    rb.run(&[
                        "run",
                        "-d",
                        "--name",
                        &format!("race{i}"),
                        "-p",
                        p,
                        "bb",
                        "httpd",
                        "-f",
                        "-p",
                        "80",
                        "-h",
                        "/www",
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..10).filter(|i| outs[*i].status.success()).collect();
    assert_eq!(
        won.len(),
        1,
        "winners {won:?}: {:#?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    let winner = stdout(&outs[won[0]]).trim().to_string();
    let mut losers = Vec::new();
    for (i, o) in outs.iter().enumerate().filter(|(i, _)| *i != won[0]) {
        assert!(
            stderr(o).contains(&format!(
                "Bind for 0.0.0.0:{port} failed: port is already allocated"
            )),
            "race{i}: {}",
            stderr(o)
        );
        let name = format!("race{i}");
        assert_eq!(
            rb.ok(&["inspect", "--format", "{{.State.Status}}", &name])
                .trim(),
            "created",
            "{name}"
        );
        losers.push(
            rb.ok(&["inspect", "--format", "{{.Id}}", &name])
                .trim()
                .to_string(),
        );
    }
    let mut got = String::new();
    wait_for("the winner to answer", Duration::from_secs(10), || {
        got = http_get("127.0.0.1", port);
        !got.is_empty()
    });
    assert_eq!(got, "hello from httpd\n");
    // the losers made nothing: no namespace, veth, lease or rule
    let mut veths_now = host_veths();
    veths_now.retain(|v| !veths_before.contains(v));
    assert_eq!(veths_now.len(), 1, "{veths_now:?}");
    for id in &losers {
        assert!(rules_naming(id).is_empty(), "{:#?}", rules_naming(id));
        assert!(
            !rbox_netns()
                .iter()
                .any(|ns| id.starts_with(&ns["rbox-".len()..])),
            "{id}: {:?}",
            rbox_netns()
        );
    }
    let (leases, _) = net_records();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let dnat: Vec<String> = rules_naming(&winner)
        .into_iter()
        .filter(|l| l.contains(&format!("dport {port} dnat")))
        .collect();
    assert_eq!(dnat.len(), 2, "{dnat:#?}");
    assert!(port_claim(port).is_some_and(|c| c.starts_with(&winner)));
    for i in 0..10 {
        rb.ok(&["rm", "-f", &format!("race{i}")]);
    }
    assert_eq!(port_claim(port), None, "the claim outlived the container");
    assert_eq!(http_get("127.0.0.1", port), "", "still forwarded");
    // free again
    rb.ok(&[
        "run", "-d", "--name", "after", "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h", "/www",
    ]);
    rb.ok(&["rm", "-f", "after"]);
    assert_nothing_left(&rb, &veths_before, "after the race");
    assert_eq!(port_claim(port), None);
}

/// rbox on the reference plugins (Debian's /usr/lib/cni, what rbox uses
/// when ours are not installed): a published container works and its
/// `rm -f` leaves no iptables rule (their bridge needs the namespace for
/// its DEL, so rbox deletes before removing the namespace for them).
#[test]
#[ignore = "needs root"]
fn reference_plugins_run_and_rm_leave_no_nat_rules() {
    let _serial = serial();
    require_reference_plugins();
    let _iptables = ReferenceIptablesCleanup::new();
    let mut rb = store();
    rb.cni_path = PathBuf::from(REFERENCE_CNI_DIR);
    let _bridge = HostBridgeCleanup::new();
    let veths = host_veths();
    let port = 34000 + (std::process::id() % 1000) as u16;
    let before = reference_nat_of("none");
    for round in 0..2 {
        let id = rb.ok(&[
            "run",
            "-d",
            "--name",
            "refweb",
            "-p",
            &format!("{port}:80"),
            "bb",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ]);
        let id = id.trim().to_string();
        let mut got = String::new();
        wait_for("refweb to answer", Duration::from_secs(10), || {
            got = http_get("127.0.0.1", port);
            !got.is_empty()
        });
        assert_eq!(got, "hello from httpd\n");
        let made = reference_nat_of(&id);
        assert!(
            made.iter().any(|l| l.contains("MASQUERADE")),
            "the reference bridge made no masquerade rule: {made:#?}"
        );
        rb.ok(&["rm", "-f", "refweb"]);
        assert_eq!(
            reference_nat_of(&id),
            before,
            "round {round}: left after rm -f"
        );
        assert_eq!(http_get("127.0.0.1", port), "", "still forwarded");
    }
    assert_nothing_left(&rb, &veths, "after rm -f on the reference plugins");
}

/// Pids of the host's shims.
fn shim_pids() -> Vec<String> {
    let o = Command::new("pgrep")
        .args(["-f", "containerd-shim-rrun-v2"])
        .output()
        .unwrap();
    stdout(&o).lines().map(String::from).collect()
}

/// Lease files of the default network and the nftables lines of our
/// plugins (`rcni` comments): what a container on it may leave.
fn net_records() -> (Vec<String>, Vec<String>) {
    let mut leases: Vec<String> = std::fs::read_dir(RBOX_LEASES)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    leases.sort();
    let o = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let rules = stdout(&o)
        .lines()
        .filter(|l| l.contains("rcni rbox"))
        .map(|l| l.trim().to_string())
        .collect();
    (leases, rules)
}

/// `kill -9` of `rbox run -d` and of `rbox rm -f` at several points: the
/// next rbox (`ps`) finishes or undoes the work, nothing is left, the name
/// can be used again, and the user's image, volume and other container
/// are still there.
#[test]
#[ignore = "needs root"]
fn killed_run_and_rm_are_reconciled() {
    let _serial = serial();
    let rb = store();
    let _bridge = HostBridgeCleanup::new();
    rb.ok(&["volume", "create", "keepvol"]);
    rb.ok(&[
        "run",
        "--net",
        "none",
        "-v",
        "keepvol:/d",
        "bb",
        "sh",
        "-c",
        "echo kept > /d/f",
    ]);
    rb.ok(&["create", "--name", "keeper", "--net", "none", "bb", "true"]);
    // the host as it was (a first bridge run makes rbox0)
    rb.ok(&["run", "--rm", "bb", "true"]);
    let veths = host_veths();
    let shims = shim_pids();
    let records = net_records();
    let port = 33000 + (std::process::id() % 1000) as u16;
    let p = format!("{port}:80");
    let run_k = [
        "run", "-d", "--name", "kk", "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h", "/www",
    ];
    let check_clean = |when: &str| {
        let names = rb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
        assert!(
            !names.lines().any(|n| n == "kk"),
            "{when}: kk is still there"
        );
        assert!(rbox_netns().is_empty(), "{when}: {:?}", rbox_netns());
        assert_eq!(host_veths(), veths, "{when}: veths");
        wait_for(
            &format!("{when}: the shims to go"),
            Duration::from_secs(5),
            || shim_pids() == shims,
        );
        let now = net_records();
        if now != records {
            // who holds the leases left, and what still runs for them
            let holders: Vec<String> = now
                .0
                .iter()
                .map(|ip| {
                    let owner = std::fs::read_to_string(Path::new(RBOX_LEASES).join(ip))
                        .unwrap_or_default();
                    format!("{ip}: {}", owner.replace('\n', " "))
                })
                .collect();
            let ps = rb.run(&["ps", "-a", "--no-trunc"]);
            let procs = Command::new("sh")
                .args(["-c", "ps -eo pid,ppid,etime,cmd | grep -E 'host-local|bridge|portmap|rbox' | grep -v grep"])
                .output()
                .unwrap();
            panic!(
                "{when}: leases or nft rules: {now:?} (before: {records:?})\nleases: {holders:?}\nps -a: {}\nprocesses: {}",
                stdout(&ps),
                stdout(&procs)
            );
        }
        // keeper's rootfs and the exited container's are mounted
        let m = mounts_mentioning(&rb.root().join("containers"));
        assert_eq!(m.len(), 2, "{when}: mounts {m:#?}");
    };
    for ms in [5, 20, 50, 80, 100, 150, 200, 300] {
        let when = format!("run killed after {ms} ms");
        let mut child = rb
            .cmd(&run_k)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // the next rbox reconciles: k is complete and running, or gone
        let names = rb.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
        if names.lines().any(|l| l.starts_with("kk ")) {
            assert!(names.contains("kk running"), "{when}: {names}");
            wait_for(
                &format!("{when}: kk to answer"),
                Duration::from_secs(10),
                || http_get("127.0.0.1", port) == "hello from httpd\n",
            );
            rb.ok(&["rm", "-f", "kk"]);
        }
        check_clean(&when);
        // the name is free again
        rb.ok(&run_k);
        wait_for(
            &format!("{when}: the new kk to answer"),
            Duration::from_secs(10),
            || http_get("127.0.0.1", port) == "hello from httpd\n",
        );
        let when = format!("rm -f killed after {ms} ms");
        let mut child = rb
            .cmd(&["rm", "-f", "kk"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms / 2));
        child.kill().unwrap();
        child.wait().unwrap();
        let names = rb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
        if names.lines().any(|l| l == "kk") {
            // killed before it began: kk is whole, and rm -f works
            rb.ok(&["rm", "-f", "kk"]);
        }
        check_clean(&when);
    }
    // what the user stored is intact
    assert!(rb.ok(&["images"]).contains("bb"));
    assert!(rb
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .any(|n| n == "keeper"));
    assert_eq!(
        rb.ok(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            "keepvol:/d",
            "bb",
            "cat",
            "/d/f"
        ]),
        "kept\n"
    );
    rb.ok(&["rm", "keeper"]);
    rb.ok(&["container", "prune", "-f"]);
    rb.ok(&["volume", "rm", "keepvol"]);
}

/// A host without the CNI plugins: a bridge run is refused before
/// anything is made, naming the plugin and the directories searched (only
/// `$RBOX_CNI_PATH` when set); `info` says what the host has.
#[test]
#[ignore = "needs root"]
fn missing_cni_plugins_are_named_and_info_shows_the_host() {
    let _serial = serial();
    let rb = store();
    let empty = tempfile::tempdir().unwrap();
    let veths = host_veths();
    for args in [
        &["run", "--rm", "--name", "nocni", "bb", "true"][..],
        &[
            "run", "-d", "--name", "nocni", "-p", "80", "bb", "sleep", "9",
        ][..],
        &["create", "--name", "nocni", "bb", "true"][..],
    ] {
        let o = rb
            .cmd(args)
            .env("RBOX_CNI_PATH", empty.path())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("CNI plugin \"bridge\" not found in")
                && err.contains(empty.path().to_str().unwrap())
                && !err.contains("/opt/cni/bin"),
            "{err}"
        );
        assert_nothing_left(&rb, &veths, &format!("{args:?}"));
    }
    let info = rb.ok(&["info"]);
    let controllers = info
        .lines()
        .find_map(|l| l.strip_prefix("Cgroup controllers: "))
        .unwrap_or_else(|| panic!("{info}"));
    for c in ["memory", "pids"] {
        assert!(controllers.split(' ').any(|x| x == c), "{info}");
    }
    for want in [
        "Cgroups: ",
        "Seccomp: ",
        "Storage: overlay (",
        "CNI plugin dirs: ",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }
    let o = rb
        .cmd(&["info"])
        .env("RBOX_CNI_PATH", empty.path())
        .output()
        .unwrap();
    assert!(stdout(&o).contains("CNI bridge: missing"), "{}", stdout(&o));
}

#[test]
#[ignore = "needs root"]
fn seccomp_default_profile_options_and_custom_profiles() {
    let _serial = serial();
    let rb = store();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "sh", "-c", script]);
        rb.run(&args)
    };
    // ordinary programs keep working; a new namespace or a mount does not
    let o = run(
        &[],
        "ls / >/dev/null && echo a > /tmp/f && cat /tmp/f && grep Seccomp: /proc/self/status",
    );
    assert_ok(&o, "default profile");
    assert!(stdout(&o).starts_with("a\nSeccomp:\t2"), "{}", stdout(&o));
    let o = run(&[], "unshare -U true");
    assert!(
        !o.status.success() && stderr(&o).contains("Operation not permitted"),
        "unshare: {}",
        stderr(&o)
    );
    let o = run(&["--cap-add", "SYS_ADMIN"], "unshare -U true");
    assert_ok(&o, "unshare with CAP_SYS_ADMIN");
    let o = run(&[], "swapoff -a");
    assert!(!o.status.success(), "swapoff: {}", stderr(&o));
    // a capability brings its calls back
    let o = run(
        &["--cap-add", "SYS_ADMIN"],
        "mount -t tmpfs t /tmp && echo mounted",
    );
    assert_eq!(stdout(&o), "mounted\n", "{}", stderr(&o));
    // unconfined and privileged: no filter
    for flags in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"],
    ] {
        let o = run(flags, "unshare -U true && grep Seccomp: /proc/self/status");
        assert_eq!(stdout(&o), "Seccomp:\t0\n", "{flags:?}: {}", stderr(&o));
    }
    // no-new-privileges
    let o = run(
        &["--security-opt", "no-new-privileges"],
        "grep NoNewPrivs: /proc/self/status",
    );
    assert_eq!(stdout(&o), "NoNewPrivs:\t1\n", "{}", stderr(&o));
    let o = run(&[], "grep NoNewPrivs: /proc/self/status");
    assert_eq!(stdout(&o), "NoNewPrivs:\t0\n", "{}", stderr(&o));
    // a custom profile in Docker's format
    let profile = rb.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = run(&["--security-opt", &opt], "mkdir /tmp/d");
    assert!(
        !o.status.success() && stderr(&o).contains("Operation not permitted"),
        "mkdir: {}",
        stderr(&o)
    );
    assert_ok(&run(&["--security-opt", &opt], "touch /tmp/f"), "touch");
    // inspect shows what was asked
    rb.ok(&[
        "create",
        "--name",
        "opts",
        "--net",
        "none",
        "--security-opt",
        &opt,
        "bb",
        "true",
    ]);
    let shown = rb.ok(&[
        "inspect",
        "--format",
        "{{json .HostConfig.SecurityOpt}}",
        "opts",
    ]);
    assert_eq!(shown.trim(), format!("[\"{opt}\"]"));
    rb.ok(&["rm", "opts"]);
    // bad profiles and options: a clear error naming the file, nothing left
    let bad_json = rb.dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let bad_action = rb.dir.path().join("bad-action.json");
    std::fs::write(
        &bad_action,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]}"#,
    )
    .unwrap();
    for (file, needle) in [(&bad_json, "not JSON"), (&bad_action, "SCMP_ACT_MAYBE")] {
        let opt = format!("seccomp={}", file.display());
        let o = run(&["--security-opt", &opt], "true");
        assert_fails_naming(&o, "bad profile", &file.display().to_string());
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    let o = run(&["--security-opt", "apparmor=x"], "true");
    assert_fails_naming(&o, "apparmor", "apparmor=x");
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
}

#[test]
#[ignore = "needs root"]
fn init_is_pid_1_forwards_signals_and_passes_the_exit_code() {
    let _serial = serial();
    let rb = store();
    let ps = rb.ok(&[
        "run",
        "--rm",
        "--init",
        "--net",
        "none",
        "bb",
        "ps",
        "-o",
        "pid,ppid,args",
    ]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter()
            .any(|r| r[..2] == ["1", "0"] && r[2..].starts_with(&["/sbin/rbox-init", "--", "ps"])),
        "{ps}"
    );
    assert!(rows.iter().any(|r| r[1] == "1" && r[2] == "ps"), "{ps}");
    let o = rb.run(&[
        "run", "--rm", "--init", "--net", "none", "bb", "sh", "-c", "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // sleep as PID 1 ignores SIGTERM; under the init it gets it at once
    rb.ok(&[
        "run", "-d", "--init", "--name", "sleeper", "--net", "none", "bb", "sleep", "1000",
    ]);
    let t = Instant::now();
    rb.ok(&["stop", "-t", "20", "sleeper"]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    let code = rb.ok(&["inspect", "--format", "{{.State.ExitCode}}", "sleeper"]);
    assert_eq!(code.trim(), "143");
    assert_eq!(
        rb.ok(&["inspect", "--format", "{{.HostConfig.Init}}", "sleeper"])
            .trim(),
        "true"
    );
    rb.ok(&["rm", "sleeper"]);
}

#[test]
#[ignore = "needs root"]
fn stats_shows_the_memory_limit_and_pids() {
    let _serial = serial();
    let rb = store();
    rb.ok(&[
        "run", "-d", "--name", "limited", "--memory", "64m", "--net", "none", "bb", "sleep", "300",
    ]);
    let out = rb.ok(&["stats", "--no-stream", "limited"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{out}");
    }
    let row = lines.next().unwrap_or_default();
    assert!(row.contains("limited") && row.contains("/ 64MiB"), "{out}");
    let pids: u32 = row.split_whitespace().last().unwrap().parse().unwrap();
    assert!(pids >= 1, "{out}");
    let json = rb.ok(&["stats", "--no-stream", "--format", "json", "limited"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Name"], "limited");
    assert!(
        v["MemUsage"].as_str().unwrap().ends_with("/ 64MiB"),
        "{json}"
    );
    rb.ok(&["rm", "-f", "limited"]);
    let o = rb.run(&["stats", "--no-stream", "limited"]);
    assert_fails_naming(&o, "stats of a removed container", "limited");
}

/// `--cgroup-parent PATH`: the container's cgroup is PATH/<id> in every
/// hierarchy (its init's /proc/PID/cgroup), inspect shows PATH, stats reads
/// it there; without the flag RBOX_CGROUP_PARENT is the parent; rm leaves
/// no cgroup; relative or `..` parents are refused and nothing is made.
#[test]
#[ignore = "needs root"]
fn cgroup_parent_places_the_container_and_rm_leaves_no_cgroup() {
    let _serial = serial();
    // dropped after rb: its rmdir checks nothing is left in it
    let parent = CgroupParent::default();
    let rb = store();
    let inspect = |what: &str, c: &str| rb.ok(&["inspect", "--format", what, c]).trim().to_string();
    let cgroups_of = |pid: &str| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .map(|l| l.splitn(3, ':').nth(2).unwrap().to_string())
            .collect()
    };
    // a trailing slash and doubled slashes are cleaned, like a path
    let flag = format!("{}//", parent.0);
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "placed",
        "--cgroup-parent",
        &flag,
        "--memory",
        "64m",
        "--net",
        "none",
        "bb",
        "sleep",
        "300",
    ]);
    rb.ok(&[
        "run", "-d", "--name", "default", "--net", "none", "bb", "sleep", "300",
    ]);
    for (c, p) in [("placed", &parent.0), ("default", &rb.cgroup.0)] {
        let id = inspect("{{.Id}}", c);
        assert_eq!(inspect("{{.HostConfig.CgroupParent}}", c), *p);
        let want = format!("{p}/{id}");
        let pid = inspect("{{.State.Pid}}", c);
        let got = cgroups_of(&pid);
        assert!(!got.is_empty());
        assert!(got.iter().all(|g| *g == want), "{c}: {got:?}, want {want}");
        assert!(!cgroup_dirs(&want).is_empty(), "{c}: {want}");
    }
    let stats = rb.ok(&["stats", "--no-stream", "placed"]);
    assert!(stats.contains("/ 64MiB"), "{stats}");
    rb.ok(&["rm", "-f", "placed", "default"]);
    // rrun made the parents, so it removes them with the last container
    for p in [&parent.0, &rb.cgroup.0] {
        assert!(cgroup_dirs(p).is_empty(), "{p}: {:?}", cgroup_dirs(p));
    }

    for (bad, needle) in [
        ("rbox-rel", "not an absolute cgroup path"),
        ("user.slice", "not an absolute cgroup path"),
        ("/a/../b", "'.' and '..' are not allowed"),
    ] {
        let o = rb.run(&["create", "--cgroup-parent", bad, "bb", "true"]);
        assert_fails_naming(&o, bad, &format!("--cgroup-parent {bad:?}: {needle}"));
        let o = rb
            .cmd(&["create", "bb", "true"])
            .env("RBOX_CGROUP_PARENT", bad)
            .output()
            .unwrap();
        assert_fails_naming(&o, bad, &format!("RBOX_CGROUP_PARENT {bad:?}: {needle}"));
    }
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
    let left: Vec<_> = std::fs::read_dir(rb.root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "after bad cgroup parents: {left:?}");
}

/// `rbox volume ls -q`.
fn volume_names(rb: &Rbox) -> Vec<String> {
    rb.ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

/// The `system df` row for `kind`: (TOTAL, ACTIVE).
fn df_counts(rb: &Rbox, kind: &str) -> (u32, u32) {
    let out = rb.ok(&["system", "df"]);
    let line = out
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} row: {out}"));
    let n: Vec<u32> = line[kind.len()..]
        .split_whitespace()
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1])
}

#[test]
#[ignore = "needs root"]
fn volume_copy_up_rm_v_attach_and_system_df_prune() {
    let _serial = serial();
    let rb = store();
    // copy-up: an empty named volume gets what the image has there
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--net", "none"];
        a.extend_from_slice(args);
        rb.ok(&a)
    };
    assert_eq!(
        run(&["-v", "webdata:/www", "bb", "cat", "/www/index.html"]),
        "hello from httpd\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&rb.ok(&["volume", "inspect", "webdata"])).unwrap();
    let mountpoint = PathBuf::from(
        v[0]["Mountpoint"]
            .as_str()
            .or(v["Mountpoint"].as_str())
            .unwrap(),
    );
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("index.html")).unwrap(),
        "hello from httpd\n"
    );
    // not again once it has content: the container's change stays
    run(&[
        "-v",
        "webdata:/www",
        "bb",
        "sh",
        "-c",
        "echo changed > /www/index.html",
    ]);
    assert_eq!(
        run(&["-v", "webdata:/www", "bb", "cat", "/www/index.html"]),
        "changed\n"
    );
    // a path the image does not have: an empty volume
    assert_eq!(
        run(&["-v", "empty:/nothere", "bb", "ls", "-A", "/nothere"]),
        ""
    );

    // anonymous volumes: named at create, kept by rm, removed by rm -v
    // and by --rm
    let volumes = || volume_names(&rb);
    let before = volumes();
    rb.ok(&[
        "create", "--name", "anon1", "--net", "none", "-v", "/cache", "bb", "true",
    ]);
    rb.ok(&[
        "create", "--name", "anon2", "--net", "none", "-v", "/cache", "bb", "true",
    ]);
    let made: Vec<String> = volumes()
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    let inspect = rb.ok(&["inspect", "anon1"]);
    let anon1 = made
        .iter()
        .find(|v| inspect.contains(v.as_str()))
        .unwrap()
        .clone();
    rb.ok(&["rm", "-v", "anon1"]);
    assert!(!volumes().contains(&anon1), "rm -v kept {anon1}");
    rb.ok(&["rm", "anon2"]);
    let anon2 = made.iter().find(|v| **v != anon1).unwrap();
    assert!(volumes().contains(anon2), "rm without -v removed {anon2}");
    run(&["-v", "/scratch", "bb", "true"]);
    assert_eq!(volumes().len(), before.len() + 1, "--rm kept its volume");

    // attach: the output from now on, and the exit code
    rb.ok(&[
        "run",
        "-d",
        "--name",
        "att",
        "--net",
        "none",
        "bb",
        "sh",
        "-c",
        "sleep 1; echo one; sleep 1; echo two; exit 3",
    ]);
    let o = rb.run(&["attach", "att"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).ends_with("two\n"), "{}", stdout(&o));
    let o = rb.run(&["attach", "att"]);
    assert_fails_naming(&o, "attach to a stopped container", "start it first");

    // system df: one image in use by the stopped container
    assert_eq!(df_counts(&rb, "Images"), (1, 1));
    assert_eq!(df_counts(&rb, "Containers"), (1, 0));
    let (vols, _) = df_counts(&rb, "Local Volumes");
    assert_eq!(vols as usize, volumes().len());
    // without -f and without a yes on stdin: nothing goes
    let o = rb.run(&["system", "prune"]);
    assert_fails_naming(&o, "unconfirmed system prune", "not confirmed");
    assert_eq!(df_counts(&rb, "Containers"), (1, 0));
    // -f: the stopped container; the tagged image stays without -a
    let out = rb.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(df_counts(&rb, "Containers"), (0, 0));
    assert_eq!(df_counts(&rb, "Images"), (1, 0));
    assert!(!volumes().is_empty());
    // -a --volumes: every unused image and volume
    let out = rb.ok(&["system", "prune", "-a", "-f", "--volumes"]);
    assert!(
        out.contains("Deleted Images:") && out.contains("Deleted Volumes:"),
        "{out}"
    );
    assert_eq!(df_counts(&rb, "Images"), (0, 0));
    assert!(volumes().is_empty(), "{:?}", volumes());
    assert!(rb.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
#[ignore = "needs root"]
fn image_volumes_become_anonymous_volumes() {
    let _serial = serial();
    let rb = store();
    // the busybox image plus /data/hello, with VOLUME /data in its config
    let tar = rb.dir.path().join("vol.tar");
    std::fs::copy(rb.dir.path().join("bb.tar"), &tar).unwrap();
    let extra = rb.dir.path().join("extra");
    std::fs::create_dir_all(extra.join("data")).unwrap();
    std::fs::write(extra.join("data/hello"), "from the image\n").unwrap();
    let st = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&extra)
        .arg("-rf")
        .arg(&tar)
        .arg("./data")
        .status()
        .unwrap();
    assert!(st.success());
    let tar = tar.to_str().unwrap();
    rb.ok(&["import", "--change", "VOLUME /data", tar, "vol"]);
    let img: serde_json::Value = serde_json::from_str(&rb.ok(&["inspect", "vol"])).unwrap();
    let img = if img.is_array() { &img[0] } else { &img };
    assert!(
        img["Config"]["Volumes"].get("/data").is_some(),
        "{}",
        img["Config"]
    );
    let o = rb.run(&["import", "--change", "VOLUME data", tar, "bad"]);
    assert_fails_naming(&o, "import with a relative VOLUME", "VOLUME");

    let volumes = || volume_names(&rb);
    let before = volumes();
    // run: the image's file is in the new volume (copy-up), which is in
    // volume ls and inspect's Mounts
    rb.ok(&[
        "run", "-d", "--name", "v1", "--net", "none", "vol", "sleep", "300",
    ]);
    assert_eq!(
        rb.ok(&["exec", "v1", "cat", "/data/hello"]),
        "from the image\n"
    );
    let made: Vec<String> = volumes()
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let c: serde_json::Value = serde_json::from_str(&rb.ok(&["inspect", "v1"])).unwrap();
    let c = if c.is_array() { &c[0] } else { &c };
    let mounts = c["Mounts"].as_array().unwrap();
    assert!(
        mounts.iter().any(|m| m["Type"] == "volume"
            && m["Destination"] == "/data"
            && m["Name"] == made[0].as_str()),
        "{mounts:?}"
    );
    // what the container writes there survives a stop and start
    rb.ok(&["exec", "v1", "sh", "-c", "echo kept > /data/new"]);
    rb.ok(&["stop", "-t", "1", "v1"]);
    rb.ok(&["start", "v1"]);
    assert_eq!(rb.ok(&["exec", "v1", "cat", "/data/new"]), "kept\n");
    assert_eq!(
        volumes().len(),
        before.len() + 1,
        "start made another volume"
    );
    // rm -v takes it away
    rb.ok(&["rm", "-f", "-v", "v1"]);
    assert_eq!(volumes(), before, "rm -v kept the image volume");

    // a mount of the user's at /data: no anonymous volume (the named one
    // is filled from the image instead)
    assert_eq!(
        rb.ok(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            "named:/data",
            "vol",
            "cat",
            "/data/hello"
        ]),
        "from the image\n"
    );
    let mut want = before.clone();
    want.push("named".into());
    want.sort();
    let mut have = volumes();
    have.sort();
    assert_eq!(have, want, "-v named:/data made an anonymous volume");
    rb.ok(&["volume", "rm", "named"]);
    // a mount below /data is mounted inside the image volume
    std::fs::create_dir_all(extra.join("host")).unwrap();
    std::fs::write(extra.join("host/f"), "host file\n").unwrap();
    let bind = format!("{}:/data/sub", extra.join("host").display());
    assert_eq!(
        rb.ok(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            &bind,
            "vol",
            "cat",
            "/data/hello",
            "/data/sub/f"
        ]),
        "from the image\nhost file\n"
    );
    // run --rm leaves no volume
    assert_eq!(
        rb.ok(&["run", "--rm", "--net", "none", "vol", "cat", "/data/hello"]),
        "from the image\n"
    );
    assert_eq!(volumes(), before, "run --rm kept the image volume");
    // a create that fails after the image volume was made and filled
    // (the bind below it cannot be made) leaves no volume either
    let o = rb.run(&[
        "create",
        "--net",
        "none",
        "-v",
        "/proc/rbox-no-such-dir:/data/x",
        "vol",
        "true",
    ]);
    assert_fails_naming(
        &o,
        "a bind source that cannot be made",
        "/proc/rbox-no-such-dir",
    );
    assert_eq!(volumes(), before);
}

/// The Docker default capabilities as a /proc/PID/status mask.
fn docker_default_caps() -> String {
    cap_mask(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ])
}

#[test]
#[ignore = "needs root"]
fn containers_cannot_open_host_devices_unless_given() {
    let _serial = serial();
    let rb = store();
    let lo = LoopDevice::new("TOP-SECRET");
    let dev = lo.path.to_str().unwrap();
    let run = |flags: &[&str], node: Option<&str>| {
        let script = device_attack_script(lo.major, lo.minor, node);
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend(["bb", "sh", "-c", &script]);
        rb.ok(&args)
    };
    // Docker's defaults: mknod of any node, but no reading or writing a
    // host disk, nor the kernel log
    assert_eq!(
        run(&[], None),
        "mknod-ok\nread-refused\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    // and not from an exec either
    rb.ok(&[
        "run", "-d", "--name", "devs", "--net", "none", "bb", "sleep", "300",
    ]);
    let script = device_attack_script(lo.major, lo.minor, None);
    assert_eq!(
        rb.ok(&["exec", "devs", "sh", "-c", &script]),
        "mknod-ok\nread-refused\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    rb.ok(&["rm", "-f", "devs"]);
    // --device passes the device in (rwm), at its host path or another,
    // with fewer permissions if asked
    assert_eq!(
        run(&["--device", dev], Some(dev)),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    let mapped = format!("{dev}:/dev/xvdc:r");
    assert_eq!(
        run(&["--device", &mapped], Some("/dev/xvdc")),
        "mknod-ok\nread:TOP-SECRET\nwrite-refused\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    // --device-cgroup-rule allows a node the container makes itself
    let rule = format!("b {}:* rw", lo.major);
    assert_eq!(
        run(&["--device-cgroup-rule", &rule], None),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-refused\n"
    );
    // --privileged: every device, and the host's are in /dev
    assert_eq!(
        run(&["--privileged"], Some(dev)),
        "mknod-ok\nread:TOP-SECRET\nwrite-ok\nkmsg-mknod-ok\nkmsg-write-ok\n"
    );
    let c = rb.ok(&[
        "create",
        "--name",
        "ins",
        "--device",
        &mapped,
        "--device-cgroup-rule",
        &rule,
        "bb",
        "true",
    ]);
    let c: serde_json::Value = serde_json::from_str(&rb.ok(&["inspect", c.trim()])).unwrap();
    let hc = if c.is_array() { &c[0] } else { &c }["HostConfig"].clone();
    assert_eq!(
        hc["Devices"],
        json!([{"PathOnHost": dev, "PathInContainer": "/dev/xvdc", "CgroupPermissions": "r"}])
    );
    assert_eq!(hc["DeviceCgroupRules"], json!([rule]));
    rb.ok(&["rm", "ins"]);
    // bad input: a clear error naming the flag, nothing made
    for (flags, needle) in [
        (vec!["--device", "/etc/hostname"], "not a device node"),
        (vec!["--device", "/no/such/device"], "/no/such/device"),
        (vec!["--device", "/dev/null:null"], "not an absolute path"),
        (vec!["--device", "/dev/null:/dev/x:rwx"], "bad permissions"),
        (
            vec!["--device-cgroup-rule", "x 1:3 r"],
            "--device-cgroup-rule",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(&flags);
        args.extend(["bb", "true"]);
        let o = rb.run(&args);
        assert_fails_naming(&o, &flags.join(" "), needle);
        assert!(stderr(&o).contains(flags[0]), "{}", stderr(&o));
    }
    assert_nothing_left(&rb, &host_veths(), "after the refused flags");
    assert_eq!(lo.head(10), "TOP-SECRET");
}

#[test]
#[ignore = "needs root"]
fn non_root_users_get_no_capabilities_unless_added() {
    let _serial = serial();
    let rb = store();
    let none = cap_mask(&[]);
    let caps = |out: &str, key: &str| {
        status_field(out, key).unwrap_or_else(|| panic!("no {key} in {out}"))
    };
    // binding port 81 needs CAP_NET_BIND_SERVICE: `bound` when nc is still
    // listening a second later
    let bind81 = "grep ^Cap /proc/self/status; timeout 1 nc -l -p 81 2>/dev/null; [ $? = 143 ] && echo bound || echo not-bound";
    let out = rb.ok(&[
        "run", "--rm", "--net", "none", "-u", "1000", "bb", "sh", "-c", bind81,
    ]);
    for key in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(caps(&out, key), none, "{key}: {out}");
    }
    assert_eq!(caps(&out, "CapBnd"), docker_default_caps(), "{out}");
    assert!(out.ends_with("not-bound\n"), "{out}");
    // root keeps Docker's defaults, but nothing inheritable or ambient
    let out = rb.ok(&["run", "--rm", "--net", "none", "bb", "sh", "-c", bind81]);
    for key in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(caps(&out, key), docker_default_caps(), "{key}: {out}");
    }
    for key in ["CapInh", "CapAmb"] {
        assert_eq!(caps(&out, key), none, "{key}: {out}");
    }
    assert!(out.ends_with("\nbound\n"), "{out}");
    // --cap-add gives a non-root user that capability, and only that one
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-u",
        "1000",
        "--cap-add",
        "NET_BIND_SERVICE",
        "bb",
        "sh",
        "-c",
        bind81,
    ]);
    for key in ["CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(
            caps(&out, key),
            cap_mask(&["CAP_NET_BIND_SERVICE"]),
            "{key}: {out}"
        );
    }
    assert!(out.ends_with("\nbound\n"), "{out}");
    // exec -u 1000 into a container whose PID 1 is root: no CAP_KILL to
    // signal it with, no capability at all; exec as root keeps them
    rb.ok(&[
        "run", "-d", "--name", "capx", "--net", "none", "bb", "sleep", "300",
    ]);
    assert_eq!(
        rb.ok(&[
            "exec",
            "-u",
            "1000",
            "capx",
            "sh",
            "-c",
            "kill -0 1 2>/dev/null && echo signalled || echo refused"
        ]),
        "refused\n"
    );
    let out = rb.ok(&[
        "exec",
        "-u",
        "1000",
        "capx",
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    for key in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(caps(&out, key), none, "{key}: {out}");
    }
    let out = rb.ok(&["exec", "capx", "grep", "^Cap", "/proc/self/status"]);
    assert_eq!(caps(&out, "CapEff"), docker_default_caps(), "{out}");
    assert_eq!(caps(&out, "CapAmb"), none, "{out}");
    rb.ok(&["rm", "-f", "capx"]);
}

#[test]
#[ignore = "needs root"]
fn image_volumes_that_lead_into_proc_are_refused() {
    let _serial = serial();
    let rb = store();
    let veths = host_veths();
    // CVE-2019-16884 / CVE-2019-19921 through an image: symlinks into /proc
    // and VOLUMEs on them
    let extra = rb.dir.path().join("links");
    std::fs::create_dir_all(&extra).unwrap();
    std::os::unix::fs::symlink("/proc/self/attr", extra.join("vol")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel", extra.join("core")).unwrap();
    let tar = rb.dir.path().join("links.tar");
    std::fs::copy(rb.dir.path().join("bb.tar"), &tar).unwrap();
    let st = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&extra)
        .arg("-rf")
        .arg(&tar)
        .args(["./vol", "./core"])
        .status()
        .unwrap();
    assert!(st.success());
    let tar = tar.to_str().unwrap();
    let before = volume_names(&rb);
    for (vol, resolved) in [("/vol", "/proc/self/attr"), ("/core", "/proc/sys/kernel")] {
        let name = format!("links{}", &vol[1..]);
        rb.ok(&["import", "--change", &format!("VOLUME {vol}"), tar, &name]);
        let o = rb.run(&["run", "--rm", "--net", "none", &name, "true"]);
        assert_fails_naming(
            &o,
            &format!("VOLUME {vol} -> {resolved}"),
            &format!("VOLUME {vol:?}"),
        );
        assert!(
            stderr(&o).contains(&format!("is {resolved} in the image, inside /proc")),
            "{}",
            stderr(&o)
        );
        assert_nothing_left(&rb, &veths, vol);
    }
    assert_eq!(volume_names(&rb), before, "a volume was left");
}
