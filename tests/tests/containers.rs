//! rbox's container verbs, black-box: the rbox binary (RBOX_BIN) with rrun
//! (RRUN_BIN) and our CNI plugins (CNI_BIN_DIR), on a busybox image
//! imported into a store of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rrun_tests::*;

/// A store in a temp dir with a busybox image `bb`; cleans up containers,
/// mounts and namespaces of the store on drop.
struct Rbox {
    dir: tempfile::TempDir,
}

impl Rbox {
    fn new() -> Rbox {
        require_root();
        let rb = Rbox {
            dir: tempfile::tempdir().unwrap(),
        };
        let rootfs = rb.dir.path().join("bb-rootfs");
        busybox_rootfs(&rootfs);
        std::fs::create_dir_all(rootfs.join("www")).unwrap();
        std::fs::write(rootfs.join("www/index.html"), "hello from httpd\n").unwrap();
        let tar = rb.dir.path().join("bb.tar");
        let st = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_dir_all(&rootfs).unwrap();
        assert_ok(
            &rb.cmd(&["import", tar.to_str().unwrap(), "bb"])
                .output()
                .unwrap(),
            "import",
        );
        rb
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rbox_bin());
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env("RBOX_RUNTIME", rrun_bin())
            .env("RBOX_CNI_PATH", cni_dir())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_ok(&o, &args.join(" "));
        stdout(&o)
    }
}

impl Drop for Rbox {
    fn drop(&mut self) {
        if let Ok(ids) = self.cmd(&["ps", "-a", "-q", "--no-trunc"]).output() {
            for id in stdout(&ids).lines() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let mut m: Vec<String> = mounts_mentioning(self.dir.path())
            .iter()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .collect();
        m.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in &m {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if !m.is_empty() && !std::thread::panicking() {
            panic!("mounts left behind: {m:?}");
        }
    }
}

fn cni_dir() -> PathBuf {
    std::env::var_os("CNI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "../target/{}-unknown-linux-musl/release",
                std::env::consts::ARCH
            ))
        })
}

/// Network namespaces of rbox containers (`rbox-` and a short id).
fn rbox_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix("rbox-")
                        .is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The tests of this file one at a time: they share the host's rbox0
/// bridge and check for leftover namespaces.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn host_ipv4() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    stdout(&out)
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .nth(3)
                .map(|a| a.split('/').next().unwrap().to_string())
        })
        .expect("a global IPv4 address")
}

#[test]
#[ignore = "needs root"]
fn run_gives_output_and_exit_code_and_rm_leaves_nothing() {
    let _serial = serial();
    let rb = Rbox::new();
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
    let rb = Rbox::new();
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
    let rb = Rbox::new();
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

/// Wait until `f` holds (or panic after `secs`).
fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of `GET /` from addr:port, or "" when nothing answers.
fn fetch(addr: &str, port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(sa) = format!("{addr}:{port}").parse::<std::net::SocketAddr>() else {
        return String::new();
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
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
    let rb = Rbox::new();
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
        wait_for(&format!("{name} to run"), 20, || {
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
        wait_for(&format!("{name} to answer"), 10, || {
            got = fetch("127.0.0.1", port);
            !got.is_empty()
        });
        assert_eq!(got, "hello from httpd\n");
        assert_eq!(fetch(&ip, 80), "hello from httpd\n", "{name} by its IP");
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
    assert_eq!(fetch("127.0.0.1", base), "", "still forwarded after stop");
}

/// Removes the default network's bridge and lease directory on drop
/// when the test made them.
struct HostBridgeCleanup {
    had_bridge: bool,
    had_leases: bool,
    had_cni_dir: bool,
}

const LEASES: &str = "/var/lib/cni/networks/rbox";

impl HostBridgeCleanup {
    fn new() -> Self {
        HostBridgeCleanup {
            had_bridge: Path::new("/sys/class/net/rbox0").exists(),
            had_leases: Path::new(LEASES).exists(),
            had_cni_dir: Path::new("/var/lib/cni").exists(),
        }
    }
}

impl Drop for HostBridgeCleanup {
    fn drop(&mut self) {
        if !self.had_bridge {
            let _ = Command::new("ip").args(["link", "del", "rbox0"]).output();
        }
        if !self.had_leases {
            let _ = std::fs::remove_dir_all(LEASES);
            let _ = std::fs::remove_dir("/var/lib/cni/networks");
        }
        if !self.had_cni_dir {
            let _ = std::fs::remove_dir("/var/lib/cni");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn bad_input_is_refused_and_leaves_nothing() {
    let _serial = serial();
    let rb = Rbox::new();
    for (args, says) in [
        (vec!["run", "--rm", "nosuchimage", "true"], "nosuchimage"),
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
        (vec!["run", "--rm", "-d", "bb", "true"], "-d"),
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
