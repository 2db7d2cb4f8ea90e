//! The CNI plugins as a CNI runtime runs them: black-box, real network
//! namespaces. Every test runs against ours (CNI_BIN_DIR, else the
//! workspace build) and against the reference plugins of Debian's
//! containernetworking-plugins (/usr/lib/cni), to prove the expectations.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rrun_tests::*;
use serde_json::{json, Value};

/// Plugin directories under test: ours, then the reference (a host
/// without it fails the test, naming it: the expectations are proved on it).
fn plugin_dirs() -> Vec<PathBuf> {
    require_reference_plugins();
    vec![cni_bin_dir(), PathBuf::from(REFERENCE_CNI_DIR)]
}

/// Run `plugin` with CNI_COMMAND `cmd` and `conf` on stdin.
fn cni(
    dir: &Path,
    plugin: &str,
    cmd: &str,
    id: &str,
    netns: &str,
    ifname: &str,
    conf: &Value,
) -> Output {
    cni_raw(dir, plugin, cmd, id, netns, ifname, &conf.to_string())
}

/// [`cni`] with any bytes on stdin (malformed configurations).
fn cni_raw(
    dir: &Path,
    plugin: &str,
    cmd: &str,
    id: &str,
    netns: &str,
    ifname: &str,
    stdin: &str,
) -> Output {
    feed(cni_command(dir, plugin, cmd, id, netns, ifname), stdin)
}

/// A plugin call's command: the CNI environment only.
fn cni_command(
    dir: &Path,
    plugin: &str,
    cmd: &str,
    id: &str,
    netns: &str,
    ifname: &str,
) -> Command {
    let mut c = Command::new(dir.join(plugin));
    c.env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", dir)
        // ours need no PATH (no tool on the hot path); the reference
        // portmap runs iptables from it
        .env(
            "PATH",
            if dir == Path::new(REFERENCE_CNI_DIR) {
                "/usr/sbin:/usr/bin:/sbin:/bin"
            } else {
                ""
            },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `c` with `stdin` written to it.
fn feed(mut c: Command, stdin: &str) -> Output {
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn link_up(ns: &NetNs, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "ip", "-o", "link", "show", dev])
        .output()
        .unwrap();
    stdout(&out).contains(",UP")
}

#[test]
#[ignore = "needs root"]
fn loopback_add_check_del() {
    require_root();
    for dir in plugin_dirs() {
        let ns = NetNs::new();
        let conf = json!({"cniVersion": "1.0.0", "name": "lo-test", "type": "loopback"});
        assert!(!link_up(&ns, "lo"));
        let out = cni(&dir, "loopback", "ADD", "c1", &ns.path(), "lo", &conf);
        assert_ok(&out, "loopback ADD");
        let r = json_out(&out);
        assert_eq!(r["cniVersion"], "1.0.0", "{dir:?}");
        assert_eq!(r["interfaces"][0]["name"], "lo");
        assert_eq!(r["ips"][0]["address"], "127.0.0.1/8");
        assert!(link_up(&ns, "lo"), "{dir:?}");
        assert_ok(
            &cni(&dir, "loopback", "CHECK", "c1", &ns.path(), "lo", &conf),
            "CHECK",
        );
        assert_ok(
            &cni(&dir, "loopback", "DEL", "c1", &ns.path(), "lo", &conf),
            "DEL",
        );
        assert!(!link_up(&ns, "lo"), "{dir:?}");
        // DEL when the namespace is gone succeeds
        assert_ok(
            &cni(
                &dir,
                "loopback",
                "DEL",
                "c1",
                "/run/netns/no-such-ns",
                "lo",
                &conf,
            ),
            "DEL of a gone netns",
        );
    }
}

fn hl_conf(version: &str, data_dir: &Path, ranges: Value) -> Value {
    json!({"cniVersion": version, "name": "hl-net", "type": "bridge",
           "ipam": {"type": "host-local", "ranges": ranges, "dataDir": data_dir,
                    "routes": [{"dst": "0.0.0.0/0"}]}})
}

#[test]
#[ignore = "needs root"]
fn host_local_allocates_releases_and_shares_state_with_the_reference() {
    require_root();
    let dirs = plugin_dirs();
    for dir in &dirs {
        let data = tempfile::tempdir().unwrap();
        let conf = hl_conf(
            "1.0.0",
            data.path(),
            json!([[{"subnet": "10.89.40.0/24"}], [{"subnet": "fd00:89:40::/64"}]]),
        );
        let out = cni(
            dir,
            "host-local",
            "ADD",
            "c1",
            "/run/netns/x",
            "eth0",
            &conf,
        );
        assert_ok(&out, "host-local ADD");
        let r = json_out(&out);
        assert_eq!(r["ips"][0]["address"], "10.89.40.2/24", "{dir:?}: {r}");
        assert_eq!(r["ips"][0]["gateway"], "10.89.40.1");
        assert_eq!(r["ips"][1]["address"], "fd00:89:40::2/64");
        assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
        let lease = data.path().join("hl-net/10.89.40.2");
        assert_eq!(
            std::fs::read_to_string(&lease).unwrap(),
            "c1\r\neth0",
            "{dir:?}"
        );
        // older callers get ip versions
        let old = hl_conf("0.4.0", data.path(), json!([[{"subnet": "10.89.40.0/24"}]]));
        let out = cni(dir, "host-local", "ADD", "c2", "/run/netns/x", "eth0", &old);
        assert_eq!(json_out(&out)["ips"][0]["version"], "4", "{dir:?}");
        assert_ok(
            &cni(
                dir,
                "host-local",
                "CHECK",
                "c1",
                "/run/netns/x",
                "eth0",
                &conf,
            ),
            "CHECK",
        );
        assert_ok(
            &cni(dir, "host-local", "DEL", "c1", "", "eth0", &conf),
            "DEL",
        );
        assert!(!lease.exists(), "{dir:?}: lease survived DEL");
        assert_ok(
            &cni(dir, "host-local", "DEL", "c1", "", "eth0", &conf),
            "second DEL",
        );
        assert!(!cni(
            dir,
            "host-local",
            "CHECK",
            "c1",
            "/run/netns/x",
            "eth0",
            &conf
        )
        .status
        .success());
    }
    // cross-compatibility: what one ADDs, the other DELs
    for (add, del) in [(&dirs[0], &dirs[1]), (&dirs[1], &dirs[0])] {
        let data = tempfile::tempdir().unwrap();
        let conf = hl_conf("1.0.0", data.path(), json!([[{"subnet": "10.89.41.0/24"}]]));
        assert_ok(
            &cni(
                add,
                "host-local",
                "ADD",
                "x1",
                "/run/netns/x",
                "eth0",
                &conf,
            ),
            "ADD",
        );
        // the other allocates the next address, not the same one
        let out = cni(
            del,
            "host-local",
            "ADD",
            "x2",
            "/run/netns/x",
            "eth0",
            &conf,
        );
        assert_eq!(
            json_out(&out)["ips"][0]["address"],
            "10.89.41.3/24",
            "{add:?} then {del:?}"
        );
        assert_ok(
            &cni(del, "host-local", "DEL", "x1", "", "eth0", &conf),
            "DEL",
        );
        assert!(
            !data.path().join("hl-net/10.89.41.2").exists(),
            "{del:?} did not release {add:?}'s lease"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn host_local_fifty_concurrent_adds_get_fifty_addresses() {
    require_root();
    for dir in plugin_dirs() {
        let data = tempfile::tempdir().unwrap();
        let conf = hl_conf("1.0.0", data.path(), json!([[{"subnet": "10.89.42.0/24"}]]));
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (dir, conf) = (dir.clone(), conf.clone());
                std::thread::spawn(move || {
                    cni(
                        &dir,
                        "host-local",
                        "ADD",
                        &format!("c{i}"),
                        "/run/netns/x",
                        "eth0",
                        &conf,
                    )
                })
            })
            .collect();
        let mut addrs: Vec<String> = handles
            .into_iter()
            .map(|h| {
                let out = h.join().unwrap();
                assert_ok(&out, "concurrent ADD");
                json_out(&out)["ips"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 50, "{dir:?}: duplicates");
        for i in 0..50 {
            assert_ok(
                &cni(
                    &dir,
                    "host-local",
                    "DEL",
                    &format!("c{i}"),
                    "",
                    "eth0",
                    &conf,
                ),
                "DEL",
            );
        }
        let left: Vec<_> = std::fs::read_dir(data.path().join("hl-net"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
            .collect();
        assert!(left.is_empty(), "{dir:?}: leases left after DEL");
    }
}

#[test]
#[ignore = "needs root"]
fn cni_errors_have_codes_and_name_the_problem() {
    require_root();
    let ours = &plugin_dirs()[0];
    let data = tempfile::tempdir().unwrap();
    let run = |plugin: &str, cmd: &str, conf: &str| {
        let out = cni_raw(
            ours,
            plugin,
            cmd,
            "c1",
            "/run/netns/does-not-exist",
            "eth0",
            conf,
        );
        assert!(!out.status.success(), "{plugin} {cmd} {conf}: succeeded");
        json_out(&out)
    };
    let e = run("host-local", "ADD", "{not json");
    assert_eq!(e["code"], 6, "{e}");
    let e = run(
        "host-local",
        "ADD",
        r#"{"cniVersion": "7.0.0", "name": "n", "ipam": {}}"#,
    );
    assert_eq!(e["code"], 1, "{e}");
    let e = run(
        "host-local",
        "ADD",
        &hl_conf("1.0.0", data.path(), json!([[{"subnet": "10.89.43.0/33"}]])).to_string(),
    );
    assert_eq!(e["code"], 7, "{e}");
    assert!(
        e["msg"].as_str().unwrap().contains("ranges[0][0].subnet"),
        "{e}"
    );
    let e = run(
        "loopback",
        "ADD",
        r#"{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}"#,
    );
    assert_eq!(e["code"], 4, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("does-not-exist"), "{e}");
    // exhausted range: a clear error, and no lease taken
    let tiny = hl_conf("1.0.0", data.path(), json!([[{"subnet": "10.89.44.0/30"}]]));
    assert_ok(
        &cni(ours, "host-local", "ADD", "only", "/x", "eth0", &tiny),
        "ADD",
    );
    let e = run("host-local", "ADD", &tiny.to_string());
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("no IP addresses available"),
        "{e}"
    );
    // VERSION
    let out = cni(
        ours,
        "host-local",
        "VERSION",
        "",
        "",
        "",
        &json!({"cniVersion": "1.1.0"}),
    );
    let v = json_out(&out);
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

fn bridge_conf(version: &str, bridge: &str, data: &Path, subnet: &str) -> Value {
    json!({"cniVersion": version, "name": "br-net", "type": "bridge", "bridge": bridge,
           "isGateway": true, "isDefaultGateway": true,
           "ipam": {"type": "host-local", "dataDir": data, "ranges": [[{"subnet": subnet}]]}})
}

fn in_ns(ns: &NetNs, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .args(args)
        .output()
        .unwrap()
}

fn link_exists_in(ns: &NetNs, dev: &str) -> bool {
    in_ns(ns, &["ip", "link", "show", dev]).status.success()
}

#[test]
#[ignore = "needs root"]
fn bridge_connects_namespaces_and_cleans_up() {
    require_root();
    for (n, dir) in plugin_dirs().iter().enumerate() {
        let bridge = format!("rcnib{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let subnet = format!("10.89.{}.0/24", 60 + n);
        let conf = bridge_conf("1.0.0", &bridge, data.path(), &subnet);
        let (a, b) = (NetNs::new(), NetNs::new());
        let mut results = Vec::new();
        for (ns, id) in [(&a, "ca"), (&b, "cb")] {
            let out = cni(dir, "bridge", "ADD", id, &ns.path(), "eth0", &conf);
            assert_ok(&out, &format!("{dir:?} bridge ADD"));
            results.push(json_out(&out));
        }
        let r = &results[0];
        if n == 0 {
            // CNI_IFNAME taken in the namespace: refused, and the lease the
            // ADD took first is given back
            let out = cni(dir, "bridge", "ADD", "cdup", &a.path(), "eth0", &conf);
            assert!(!out.status.success(), "second eth0 in one netns");
            assert!(json_out(&out)["msg"]
                .as_str()
                .unwrap()
                .contains("already exists"));
            let leases = std::fs::read_dir(data.path().join("br-net"))
                .unwrap()
                .flatten();
            assert!(!leases
                .into_iter()
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.starts_with("cdup"))));
        }
        assert_eq!(r["interfaces"][0]["name"], bridge.as_str(), "{dir:?}: {r}");
        assert_eq!(r["interfaces"][2]["name"], "eth0");
        assert_eq!(r["interfaces"][2]["sandbox"], a.path());
        assert_eq!(r["ips"][0]["interface"], 2);
        let ip_b = results[1]["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let gw = r["ips"][0]["gateway"].as_str().unwrap().to_string();
        // the two namespaces reach each other and the gateway on the bridge
        for target in [&ip_b, &gw] {
            let out = in_ns(&a, &["busybox", "ping", "-c", "1", "-W", "2", target]);
            assert_ok(&out, &format!("{dir:?}: ping {target}"));
        }
        let default = stdout(&in_ns(&a, &["ip", "route", "show", "default"]));
        assert!(default.contains(&gw), "{dir:?}: {default}");
        // CHECK with the prevResult, as a runtime passes it
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = r.clone();
        assert_ok(
            &cni(dir, "bridge", "CHECK", "ca", &a.path(), "eth0", &with_prev),
            "CHECK",
        );
        // CHECK fails once the interface is removed by hand
        assert_ok(&in_ns(&a, &["ip", "link", "del", "eth0"]), "ip link del");
        let out = cni(dir, "bridge", "CHECK", "ca", &a.path(), "eth0", &with_prev);
        assert!(!out.status.success(), "{dir:?}: CHECK passed without eth0");
        // DEL removes veth and lease, and a second DEL succeeds
        for (ns, id) in [(&a, "ca"), (&b, "cb")] {
            let mut with_prev = conf.clone();
            with_prev["prevResult"] = results[if id == "ca" { 0 } else { 1 }].clone();
            assert_ok(
                &cni(dir, "bridge", "DEL", id, &ns.path(), "eth0", &with_prev),
                "DEL",
            );
            assert_ok(
                &cni(dir, "bridge", "DEL", id, &ns.path(), "eth0", &with_prev),
                "second DEL",
            );
            assert!(!link_exists_in(ns, "eth0"), "{dir:?}: eth0 left in {id}");
        }
        for r in &results {
            let host = r["interfaces"][1]["name"].as_str().unwrap();
            let out = Command::new("ip")
                .args(["link", "show", host])
                .output()
                .unwrap();
            assert!(!out.status.success(), "{dir:?}: host veth {host} left");
        }
        let leases: Vec<_> = std::fs::read_dir(data.path().join("br-net"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
            .collect();
        assert!(leases.is_empty(), "{dir:?}: leases left");
        // DEL after the namespace is gone
        let gone = NetNs::new();
        let path = gone.path();
        drop(gone);
        assert_ok(
            &cni(dir, "bridge", "DEL", "cz", &path, "eth0", &conf),
            "DEL without netns",
        );
    }
}

#[test]
#[ignore = "needs root"]
fn bridge_refuses_a_non_bridge_device_and_leaves_nothing() {
    require_root();
    let ours = &plugin_dirs()[0];
    let name = format!("rcnid{}", std::process::id() % 10000);
    let _guard = HostLink(name.clone());
    assert_ok(
        &Command::new("ip")
            .args([
                "link",
                "add",
                &name,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{name}p"),
            ])
            .output()
            .unwrap(),
        "ip link add veth",
    );
    let data = tempfile::tempdir().unwrap();
    let conf = bridge_conf("1.0.0", &name, data.path(), "10.89.70.0/24");
    let ns = NetNs::new();
    let out = cni(ours, "bridge", "ADD", "c1", &ns.path(), "eth0", &conf);
    assert!(!out.status.success());
    let e = json_out(&out);
    assert_eq!(e["code"], 7, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("not a bridge"), "{e}");
    // nothing in the namespace but lo (no veth end, renamed or not)
    let links = stdout(&in_ns(&ns, &["ip", "-o", "link"]));
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(!link_exists_in(&ns, "eth0"));
    let leases: Vec<_> = std::fs::read_dir(data.path().join("br-net"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
                .count()
        })
        .unwrap_or(0)
        .to_string()
        .into_bytes();
    assert_eq!(leases, b"0", "a lease was left behind");
}

#[test]
#[ignore = "needs root"]
fn gc_through_bridge_releases_leases_of_gone_attachments() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnig{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let conf = bridge_conf("1.1.0", &bridge, data.path(), "10.89.71.0/24");
    let (a, b) = (NetNs::new(), NetNs::new());
    for (ns, id) in [(&a, "keep"), (&b, "stale")] {
        assert_ok(
            &cni(ours, "bridge", "ADD", id, &ns.path(), "eth0", &conf),
            "ADD",
        );
    }
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    assert_ok(&cni(ours, "bridge", "GC", "", "", "", &gc), "GC");
    assert_ok(&cni(ours, "bridge", "STATUS", "", "", "", &conf), "STATUS");
    let leases: Vec<String> = std::fs::read_dir(data.path().join("br-net"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(leases, ["keep\r\neth0"]);
    for (ns, id) in [(&a, "keep"), (&b, "stale")] {
        assert_ok(
            &cni(ours, "bridge", "DEL", id, &ns.path(), "eth0", &conf),
            "DEL",
        );
    }
}

/// rbox's CNI_ARGS `RBOX_NETNS_REMOVED=1` (with `IgnoreUnknown=1`,
/// as the reference plugins need): our bridge's DEL releases the lease but
/// leaves the veth to the namespace, whose removal takes the pair away.
#[test]
#[ignore = "needs root"]
fn bridge_del_before_the_namespace_goes_leaves_the_veth_to_the_kernel() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnik{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let conf = bridge_conf("1.0.0", &bridge, data.path(), "10.89.72.0/24");
    let ns = NetNs::new();
    let add = cni(ours, "bridge", "ADD", "gone", &ns.path(), "eth0", &conf);
    assert_ok(&add, "ADD");
    let veth = host_veth(&json_out(&add), &bridge);
    let mut del = cni_command(ours, "bridge", "DEL", "gone", &ns.path(), "eth0");
    del.env("CNI_ARGS", "IgnoreUnknown=1;RBOX_NETNS_REMOVED=1");
    assert_ok(&feed(del, &conf.to_string()), "DEL");
    let leases: Vec<_> = std::fs::read_dir(data.path().join("br-net"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "the lease is kept: {leases:?}");
    assert!(
        link_exists_in(&ns, "eth0"),
        "the veth went before the namespace"
    );
    let host_end = Path::new("/sys/class/net").join(&veth);
    assert!(host_end.exists());
    drop(ns);
    let begin = std::time::Instant::now();
    while host_end.exists() {
        assert!(
            begin.elapsed() < std::time::Duration::from_secs(5),
            "{veth} outlived its namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `nft list table FAMILY rcni`, or None when it does not exist.
fn rcni_table(family: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", family, "rcni"])
        .output()
        .unwrap();
    out.status.success().then(|| stdout(&out))
}

#[test]
#[ignore = "needs root"]
fn bridge_ip_masq_translates_outbound_traffic_and_del_removes_the_rule() {
    require_root();
    let ours = &plugin_dirs()[0];
    let id = std::process::id() % 10000;
    let bridge = format!("rcnim{id}");
    let _guard = HostLink(bridge.clone());
    // "outside": a namespace on another host link, with no route back to
    // the container subnet, so only masqueraded packets get an answer
    let outside = NetNs::new();
    let host_end = format!("rcnio{id}");
    let _outside_link = HostLink(host_end.clone());
    for args in [
        vec![
            "link", "add", &host_end, "type", "veth", "peer", "name", "out0", "netns", &outside.0,
        ],
        vec!["addr", "add", "10.89.81.1/24", "dev", &host_end],
        vec!["link", "set", &host_end, "up"],
    ] {
        assert_ok(&Command::new("ip").args(&args).output().unwrap(), "ip");
    }
    assert_ok(
        &in_ns(
            &outside,
            &["ip", "addr", "add", "10.89.81.2/24", "dev", "out0"],
        ),
        "ip addr",
    );
    assert_ok(
        &in_ns(&outside, &["ip", "link", "set", "out0", "up"]),
        "ip link up",
    );
    let data = tempfile::tempdir().unwrap();
    let mut conf = bridge_conf("1.0.0", &bridge, data.path(), "10.89.82.0/24");
    conf["ipMasq"] = json!(true);
    let ctr = NetNs::new();
    let out = cni(ours, "bridge", "ADD", "masq1", &ctr.path(), "eth0", &conf);
    assert_ok(&out, "ADD with ipMasq");
    let r = json_out(&out);
    let table = rcni_table("ip").expect("the masquerade table");
    assert!(
        table.contains("masquerade") && table.contains("rcni br-net masq1"),
        "{table}"
    );
    let ping = in_ns(
        &ctr,
        &["busybox", "ping", "-c", "1", "-W", "2", "10.89.81.2"],
    );
    assert_ok(&ping, "ping outside through the masquerade");
    let mut with_prev = conf.clone();
    with_prev["prevResult"] = r;
    assert_ok(
        &cni(
            ours,
            "bridge",
            "CHECK",
            "masq1",
            &ctr.path(),
            "eth0",
            &with_prev,
        ),
        "CHECK",
    );
    // DEL after the namespace is gone still removes the rule (the
    // reference plugin leaks it then)
    let path = ctr.path();
    drop(ctr);
    assert_ok(
        &cni(ours, "bridge", "DEL", "masq1", &path, "eth0", &with_prev),
        "DEL",
    );
    assert!(
        rcni_table("ip").is_none_or(|t| !t.contains("masq1")),
        "the masquerade rule survived DEL"
    );
}

/// A TCP server in `ns` answering every connection with `reply`.
struct Server(std::process::Child);

impl Server {
    fn start(ns: &NetNs, port: u16, reply: &str) -> Server {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                "busybox",
                "nc",
                "-ll",
                "-p",
                &port.to_string(),
                "-e",
                "/bin/echo",
                reply,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connect to addr:port from the host and read the answer (empty if none).
fn fetch(addr: &str, port: u16) -> String {
    for _ in 0..20 {
        let out = Command::new("busybox")
            .args(["nc", "-w", "2", addr, &port.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return stdout(&out).trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    String::new()
}

#[test]
#[ignore = "needs root"]
fn conflist_chain_with_portmap_two_servers_on_port_80() {
    require_root();
    let mut dirs = plugin_dirs();
    if !Command::new("sh")
        .args(["-c", "command -v iptables"])
        .output()
        .unwrap()
        .status
        .success()
    {
        // the reference portmap (1.1.1) drives iptables, which is not installed
        dirs.truncate(1);
    }
    let host = host_ipv4();
    let _iptables = ReferenceIptablesCleanup::new();
    for (n, dir) in dirs.iter().enumerate() {
        let bridge = format!("rcnip{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let mut br = bridge_conf(
            "1.0.0",
            &bridge,
            data.path(),
            &format!("10.89.{}.0/24", 84 + n),
        );
        // a container reaching itself through the host port needs hairpin
        // on its bridge port when br_netfilter is loaded
        br["hairpinMode"] = json!(true);
        let lo = json!({"cniVersion": "1.0.0", "name": "br-net", "type": "loopback"});
        let (a, b) = (NetNs::new(), NetNs::new());
        let base = 18000 + 100 * n as u16 + (std::process::id() % 50) as u16;
        let mut added = Vec::new();
        for (ns, id, host_port, reply) in
            [(&a, "pa", base, "from-a"), (&b, "pb", base + 1, "from-b")]
        {
            assert_ok(
                &cni(dir, "loopback", "ADD", id, &ns.path(), "lo", &lo),
                "loopback ADD",
            );
            let out = cni(dir, "bridge", "ADD", id, &ns.path(), "eth0", &br);
            assert_ok(&out, "bridge ADD");
            let prev = json_out(&out);
            let pm = json!({"cniVersion": "1.0.0", "name": "br-net", "type": "portmap",
                            "runtimeConfig": {"portMappings": [
                                {"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
                            "prevResult": prev});
            let out = cni(dir, "portmap", "ADD", id, &ns.path(), "eth0", &pm);
            assert_ok(&out, "portmap ADD");
            // portmap passes the result on
            assert_eq!(json_out(&out)["ips"], prev["ips"], "{dir:?}");
            let mut check = pm.clone();
            check["prevResult"] = json_out(&out);
            if n == 0 {
                // the reference (1.1.1) fails CHECK on IPv4-only containers:
                // it looks for IPv6 rules (a known bug ours must not have)
                assert_ok(
                    &cni(dir, "portmap", "CHECK", id, &ns.path(), "eth0", &check),
                    "portmap CHECK",
                );
            }
            added.push((ns, id, host_port, reply, pm, Server::start(ns, 80, reply)));
        }
        // both listen on 80 inside; each is reached through its host port,
        // on the host address and on 127.0.0.1
        for (_, _, port, reply, _, _) in &added {
            assert_eq!(fetch(&host, *port), *reply, "{dir:?}: {host}:{port}");
            assert_eq!(
                fetch("127.0.0.1", *port),
                *reply,
                "{dir:?}: 127.0.0.1:{port}"
            );
        }
        // hairpin: a container reaches itself through the host port
        let (ns, _, port, reply, _, _) = &added[0];
        let hairpin = in_ns(ns, &["busybox", "nc", "-w", "2", &host, &port.to_string()]);
        assert_eq!(stdout(&hairpin).trim(), *reply, "{dir:?}: hairpin");
        if n == 0 {
            // the reference's mark bit (13) for what is masqueraded
            let t = rcni_table("ip").expect("portmap rules");
            assert!(t.contains("meta mark set meta mark | 0x00002000"), "{t}");
        }
        for (ns, id, port, _, pm, _) in &added {
            assert_ok(
                &cni(dir, "portmap", "DEL", id, &ns.path(), "eth0", pm),
                "portmap DEL",
            );
            assert_ok(
                &cni(dir, "portmap", "DEL", id, &ns.path(), "eth0", pm),
                "second portmap DEL",
            );
            assert_ok(
                &cni(dir, "bridge", "DEL", id, &ns.path(), "eth0", &br),
                "bridge DEL",
            );
            assert_ok(
                &cni(dir, "loopback", "DEL", id, &ns.path(), "lo", &lo),
                "loopback DEL",
            );
            assert_eq!(
                fetch("127.0.0.1", *port),
                "",
                "{dir:?}: port {port} still forwarded after DEL"
            );
        }
        if n == 0 {
            assert!(
                rcni_table("ip").is_none_or(|t| !t.contains("rcni-pm br-net")),
                "rules left"
            );
        }
    }
}

/// One container's DEL leaves every other container's port mappings and
/// masquerade rules in place: removing the last rule of a tagged set once
/// deleted the whole `ip rcni` table (a chain deleted with its rules).
#[test]
#[ignore = "needs root"]
fn del_of_one_container_keeps_the_others_port_mappings_and_masquerade() {
    require_root();
    let ours = &plugin_dirs()[0];
    let host = host_ipv4();
    let bridge = format!("rcnikp{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let mut br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.160.0/24");
    br["name"] = json!("keep-net");
    br["ipMasq"] = json!(true);
    let lo = json!({"cniVersion": "1.0.0", "name": "keep-net", "type": "loopback"});
    let (a, b) = (NetNs::new(), NetNs::new());
    let base = 18600 + 2 * (std::process::id() % 50) as u16;
    // when the test fails half-way: the DELs it did not reach (DEL is
    // idempotent; the bridge's removes every rule its id tags)
    let _undo = RunOnDrop(Box::new(|| {
        for (ns, id) in [(&a, "keepa"), (&b, "keepb")] {
            for (plugin, conf, ifname) in [
                (
                    "portmap",
                    &json!({"cniVersion": "1.0.0", "name": "keep-net", "type": "portmap"}),
                    "eth0",
                ),
                ("bridge", &br, "eth0"),
            ] {
                let _ = cni(ours, plugin, "DEL", id, &ns.path(), ifname, conf);
            }
        }
    }));
    let mut added = Vec::new();
    for (ns, id, port, reply) in [
        (&a, "keepa", base, "from-a"),
        (&b, "keepb", base + 1, "from-b"),
    ] {
        assert_ok(
            &cni(ours, "loopback", "ADD", id, &ns.path(), "lo", &lo),
            "loopback ADD",
        );
        let prev = bridge_add(ours, ns, id, &br);
        let pm = json!({"cniVersion": "1.0.0", "name": "keep-net", "type": "portmap",
                        "runtimeConfig": {"portMappings": [
                            {"hostPort": port, "containerPort": 80, "protocol": "tcp"}]},
                        "prevResult": prev});
        assert_ok(
            &cni(ours, "portmap", "ADD", id, &ns.path(), "eth0", &pm),
            "portmap ADD",
        );
        added.push((ns, id, port, reply, pm, Server::start(ns, 80, reply)));
    }
    for (_, _, port, reply, _, _) in &added {
        assert_eq!(fetch(&host, *port), *reply, "{host}:{port}");
    }
    let rules_of = |id: &str| -> Vec<String> {
        rcni_table("ip")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("keep-net {id}\"")))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let b_rules = rules_of("keepb");
    assert!(
        b_rules.iter().any(|l| l.contains("dnat"))
            && b_rules
                .iter()
                .any(|l| l.contains("masquerade") && l.contains("rcni keep-net keepb")),
        "{b_rules:#?}"
    );
    // the bridge's MAC is its own: a port with a lower MAC (here a's)
    // does not become it, so a's going cannot change it under b, whose
    // ARP entry for the gateway would then be stale for seconds (b's
    // replies lost: the fetch below failed now and then before)
    let mac_of = |dev: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/address"))
            .unwrap()
            .trim()
            .to_string()
    };
    let bridge_mac = mac_of(&bridge);
    let a_veth = added[0].4["prevResult"]["interfaces"][1]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let st = std::process::Command::new("ip")
        .args([
            "link",
            "set",
            "dev",
            &a_veth,
            "address",
            "02:00:00:00:00:01",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(mac_of(&bridge), bridge_mac, "the bridge took a port's MAC");
    // a's DEL, the way a runtime tears it down
    let (ns, id, port, _, pm, _) = &added[0];
    for (plugin, conf, ifname) in [
        ("portmap", pm, "eth0"),
        ("bridge", &br, "eth0"),
        ("loopback", &lo, "lo"),
    ] {
        assert_ok(
            &cni(ours, plugin, "DEL", id, &ns.path(), ifname, conf),
            &format!("{plugin} DEL"),
        );
    }
    assert_eq!(fetch("127.0.0.1", *port), "", "a's port still forwarded");
    assert!(rules_of("keepa").is_empty(), "{:#?}", rules_of("keepa"));
    assert_eq!(rules_of("keepb"), b_rules, "b's rules after a's DEL");
    assert_eq!(
        mac_of(&bridge),
        bridge_mac,
        "the bridge's MAC after a's DEL"
    );
    assert_eq!(fetch(&host, base + 1), "from-b", "b's port after a's DEL");
    assert_eq!(fetch("127.0.0.1", base + 1), "from-b");
    let (ns, id, _, _, pm, _) = &added[1];
    for (plugin, conf, ifname) in [
        ("portmap", pm, "eth0"),
        ("bridge", &br, "eth0"),
        ("loopback", &lo, "lo"),
    ] {
        assert_ok(
            &cni(ours, plugin, "DEL", id, &ns.path(), ifname, conf),
            &format!("{plugin} DEL"),
        );
    }
    assert!(rules_of("keepb").is_empty(), "{:#?}", rules_of("keepb"));
}

/// Host interfaces enslaved to `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    host_links(&["master", bridge])
}

/// Lease files in `dir`: (address, contents).
fn leases(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .parse::<std::net::IpAddr>()
                        .is_ok()
                })
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read_to_string(e.path()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A second ADD of the same container and interface fails (the interface
/// exists) and leaves the first attachment its lease: the next container
/// gets another address, as with the reference. An invalid CNI_IFNAME is
/// refused with code 4 (invalid environment) before anything is made.
#[test]
#[ignore = "needs root"]
fn duplicate_add_keeps_the_lease_and_bad_ifnames_make_nothing() {
    require_root();
    for (n, dir) in plugin_dirs().iter().enumerate() {
        let bridge = format!("rcnidu{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let conf = bridge_conf(
            "1.0.0",
            &bridge,
            data.path(),
            &format!("10.89.{}.0/24", 166 + n),
        );
        let lease_dir = data.path().join("br-net");
        let (ns, other) = (NetNs::new(), NetNs::new());
        let first = bridge_add(dir, &ns, "dup1", &conf);
        let addr = first["ips"][0]["address"].as_str().unwrap().to_string();
        let held = leases(&lease_dir);
        assert_eq!(held.len(), 1, "{dir:?}: {held:?}");
        let ports = bridge_ports(&bridge);
        let out = cni(dir, "bridge", "ADD", "dup1", &ns.path(), "eth0", &conf);
        assert!(!out.status.success(), "{dir:?}: a duplicate ADD succeeded");
        assert_eq!(
            leases(&lease_dir),
            held,
            "{dir:?}: the duplicate ADD changed the leases"
        );
        assert_eq!(bridge_ports(&bridge), ports, "{dir:?}");
        let shown = in_ns(&ns, &["ip", "-o", "addr", "show", "eth0"]);
        assert!(
            stdout(&shown).contains(&addr),
            "{dir:?}: {}",
            stdout(&shown)
        );
        // the address is still reserved for dup1
        let second = bridge_add(dir, &other, "dup2", &conf);
        assert_ne!(second["ips"][0]["address"], addr.as_str(), "{dir:?}");
        // bad interface names: code 4, no lease, no veth
        let held = leases(&lease_dir);
        let ports = bridge_ports(&bridge);
        let fresh = NetNs::new();
        for ifname in ["et/h0", "sixteen-chars-xx", "..", ".", "eth 0"] {
            let out = cni(dir, "bridge", "ADD", "badif", &fresh.path(), ifname, &conf);
            assert!(!out.status.success(), "{dir:?}: {ifname:?} accepted");
            let e = json_out(&out);
            assert_eq!(e["code"], 4, "{dir:?}: {ifname:?}: {e}");
            assert_eq!(leases(&lease_dir), held, "{dir:?}: {ifname:?}");
            assert_eq!(bridge_ports(&bridge), ports, "{dir:?}: {ifname:?}");
            let links = in_ns(&fresh, &["ip", "-o", "link", "show"]);
            assert_eq!(
                stdout(&links).lines().count(),
                1,
                "{dir:?}: {ifname:?}: {}",
                stdout(&links)
            );
        }
        for (id, ns) in [("dup2", &other), ("dup1", &ns)] {
            assert_ok(
                &cni(dir, "bridge", "DEL", id, &ns.path(), "eth0", &conf),
                "bridge DEL",
            );
        }
        assert_eq!(leases(&lease_dir), vec![], "{dir:?}");
    }
}

/// The chain as containerd's CRI runs it (go-cni): its runtimeConfig
/// structs have no JSON tags, so the keys come capitalised
/// (`HostPort`, ...; `Subnet`, ... with "" for what it does not set).
/// The reference plugins decode them case-insensitively (Go's
/// encoding/json); ours must too, in ADD, CHECK and DEL. A DEL whose
/// mappings or IPAM section cannot be read still removes everything the
/// container id identifies, as the CNI spec asks (ours only: the
/// reference fails such a DEL).
#[test]
#[ignore = "needs root"]
fn containerds_capitalised_runtime_config_add_check_del() {
    require_root();
    let mut dirs = plugin_dirs();
    if !Command::new("sh")
        .args(["-c", "command -v iptables"])
        .output()
        .unwrap()
        .status
        .success()
    {
        dirs.truncate(1);
    }
    let host = host_ipv4();
    let _iptables = ReferenceIptablesCleanup::new();
    for (n, dir) in dirs.iter().enumerate() {
        let bridge = format!("rcnicd{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let subnet = format!("10.89.{}.0", 170 + n);
        let br = json!({"cniVersion": "1.0.0", "name": "cd-net", "type": "bridge",
            "bridge": bridge, "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
            "capabilities": {"ipRanges": true},
            "ipam": {"type": "host-local", "dataDir": data.path()},
            "runtimeConfig": {"ipRanges": [[{"Subnet": format!("{subnet}/24"),
                "RangeStart": format!("{}.50", &subnet[..subnet.len() - 2]),
                "RangeEnd": "", "Gateway": ""}]]}});
        let lo = json!({"cniVersion": "1.0.0", "name": "cd-net", "type": "loopback"});
        let port = 18800 + 2 * (std::process::id() % 50) as u16 + 100 * n as u16;
        let ns = NetNs::new();
        assert_ok(
            &cni(dir, "loopback", "ADD", "cd1", &ns.path(), "lo", &lo),
            "loopback ADD",
        );
        let prev = bridge_add(dir, &ns, "cd1", &br);
        assert_eq!(
            prev["ips"][0]["address"],
            format!("{}.50/24", &subnet[..subnet.len() - 2]).as_str(),
            "{dir:?}: runtimeConfig.ipRanges (RangeStart) not honoured: {prev}"
        );
        let pm = json!({"cniVersion": "1.0.0", "name": "cd-net", "type": "portmap",
            "capabilities": {"portMappings": true}, "snat": true,
            "runtimeConfig": {"portMappings": [
                {"HostPort": port, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]},
            "prevResult": prev});
        let out = cni(dir, "portmap", "ADD", "cd1", &ns.path(), "eth0", &pm);
        assert_ok(&out, "portmap ADD with containerd's keys");
        let _server = Server::start(&ns, 80, "from-cd1");
        assert_eq!(fetch(&host, port), "from-cd1", "{dir:?}: {host}:{port}");
        assert_eq!(
            fetch("127.0.0.1", port),
            "from-cd1",
            "{dir:?}: 127.0.0.1:{port}"
        );
        if n == 0 {
            let mut check = pm.clone();
            check["prevResult"] = json_out(&out);
            assert_ok(
                &cni(dir, "portmap", "CHECK", "cd1", &ns.path(), "eth0", &check),
                "portmap CHECK with containerd's keys",
            );
        }
        for (plugin, conf, ifname) in [
            ("portmap", &pm, "eth0"),
            ("bridge", &br, "eth0"),
            ("loopback", &lo, "lo"),
        ] {
            assert_ok(
                &cni(dir, plugin, "DEL", "cd1", &ns.path(), ifname, conf),
                &format!("{plugin} DEL with containerd's keys"),
            );
        }
        assert_eq!(
            fetch("127.0.0.1", port),
            "",
            "{dir:?}: still forwarded after DEL"
        );
        assert_eq!(leases(&data.path().join("cd-net")), vec![], "{dir:?}");
        assert_eq!(bridge_ports(&bridge), Vec::<String>::new(), "{dir:?}");
        if n > 0 {
            continue;
        }
        assert!(
            rcni_table("ip").is_none_or(|t| !t.contains("cd-net")),
            "rules left: {:?}",
            rcni_table("ip")
        );
        // a DEL it cannot fully read still removes what the id identifies
        let ns2 = NetNs::new();
        let prev = bridge_add(dir, &ns2, "cd2", &br);
        let mut pm2 = pm.clone();
        pm2["prevResult"] = prev;
        assert_ok(
            &cni(dir, "portmap", "ADD", "cd2", &ns2.path(), "eth0", &pm2),
            "portmap ADD",
        );
        let mut bad_pm = pm2.clone();
        bad_pm["runtimeConfig"]["portMappings"][0]["HostPort"] = json!("not a port");
        let mut bad_br = br.clone();
        bad_br["vlan"] = json!(9999);
        bad_br["ipam"]["ranges"] = json!("not ranges");
        bad_br["runtimeConfig"]["ipRanges"] = json!(7);
        for (plugin, conf) in [("portmap", &bad_pm), ("bridge", &bad_br)] {
            assert_ok(
                &cni(dir, plugin, "DEL", "cd2", &ns2.path(), "eth0", conf),
                &format!("{plugin} DEL of an unreadable configuration"),
            );
        }
        assert_eq!(fetch("127.0.0.1", port), "", "still forwarded after DEL");
        assert_eq!(leases(&data.path().join("cd-net")), vec![], "lease left");
        assert_eq!(bridge_ports(&bridge), Vec::<String>::new(), "veth left");
        assert!(
            rcni_table("ip").is_none_or(|t| !t.contains("cd-net")),
            "rules left: {:?}",
            rcni_table("ip")
        );
    }
}

/// The chain a runtime runs for one container (loopback, bridge with
/// host-local, portmap with one host port), ADD or DEL (in reverse);
/// the first failure's output, if any.
fn chain(
    dir: &Path,
    cmd: &str,
    id: &str,
    ns: &str,
    br: &Value,
    host_port: u16,
) -> Result<(), String> {
    let name = br["name"].as_str().unwrap();
    let lo = json!({"cniVersion": "1.0.0", "name": name, "type": "loopback"});
    let mut pm = json!({"cniVersion": "1.0.0", "name": name, "type": "portmap",
                        "runtimeConfig": {"portMappings": [
                            {"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
                        "prevResult": {"cniVersion": "1.0.0"}});
    let step = |plugin: &str, ifname: &str, conf: &Value| -> Result<Output, String> {
        let out = cni(dir, plugin, cmd, id, ns, ifname, conf);
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "{plugin} {cmd} {id}: {}{}",
                stdout(&out),
                stderr(&out)
            ))
        }
    };
    if cmd == "ADD" {
        step("loopback", "lo", &lo)?;
        pm["prevResult"] = json_out(&step("bridge", "eth0", br)?);
        step("portmap", "eth0", &pm)?;
    } else {
        step("portmap", "eth0", &pm)?;
        step("bridge", "eth0", br)?;
        step("loopback", "lo", &lo)?;
    }
    Ok(())
}

/// 20 chain ADDs at once, then 20 chain DELs at once, five times: every
/// call succeeds and nothing is left (a DEL once failed when another
/// container's DEL removed the table its rules were in, leaving its veth
/// and lease).
#[test]
#[ignore = "needs root"]
fn twenty_concurrent_chain_adds_and_dels_succeed_and_leave_nothing() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnicc{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let mut br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.165.0/24");
    br["name"] = json!("conc-net");
    const N: usize = 20;
    let base = 21400 + 20 * (std::process::id() % 100) as u16;
    let nss: Vec<NetNs> = (0..N).map(|_| NetNs::new()).collect();
    for round in 0..5 {
        for cmd in ["ADD", "DEL"] {
            let failed: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = nss
                    .iter()
                    .enumerate()
                    .map(|(i, ns)| {
                        let br = &br;
                        s.spawn(move || {
                            chain(
                                ours,
                                cmd,
                                &format!("cc{i}"),
                                &ns.path(),
                                br,
                                base + i as u16,
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap().err())
                    .collect()
            });
            assert!(failed.is_empty(), "round {round}, {cmd}: {failed:#?}");
        }
        let leases: Vec<_> = std::fs::read_dir(data.path().join("conc-net"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
            .map(|e| e.file_name())
            .collect();
        assert!(leases.is_empty(), "round {round}: leases left {leases:?}");
        let ports = Command::new("ip")
            .args(["-o", "link", "show", "master", &bridge])
            .output()
            .unwrap();
        assert_eq!(
            stdout(&ports),
            "",
            "round {round}: veths left on the bridge"
        );
        let rules = rcni_table("ip").unwrap_or_default();
        assert!(
            !rules.contains("conc-net"),
            "round {round}: rules left\n{rules}"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn portmap_without_mappings_passes_the_result_through() {
    require_root();
    let ours = &plugin_dirs()[0];
    let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.89.86.2/24", "gateway": "10.89.86.1"}]});
    let conf =
        json!({"cniVersion": "1.0.0", "name": "pm-none", "type": "portmap", "prevResult": prev});
    let out = cni(
        ours,
        "portmap",
        "ADD",
        "c1",
        "/run/netns/none",
        "eth0",
        &conf,
    );
    assert_ok(&out, "portmap ADD without mappings");
    assert_eq!(json_out(&out)["ips"], prev["ips"]);
    assert!(rcni_table("ip").is_none_or(|t| !t.contains("pm-none")));
    // a bad mapping names the field
    let mut bad = conf.clone();
    bad["runtimeConfig"] = json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]});
    let out = cni(
        ours,
        "portmap",
        "ADD",
        "c1",
        "/run/netns/none",
        "eth0",
        &bad,
    );
    assert!(!out.status.success());
    let e = json_out(&out);
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("portMappings[0].hostPort"),
        "{e}"
    );
}

/// A UDP socket bound inside `ns` (made on a thread that entered it; the
/// socket stays in that namespace).
fn udp_socket_in(ns: &NetNs, port: u16) -> std::net::UdpSocket {
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap()
    })
    .join()
    .unwrap()
}

/// A bridge+host-local ADD of `id` in `ns`; returns the result.
fn bridge_add(dir: &Path, ns: &NetNs, id: &str, conf: &Value) -> Value {
    let out = cni(dir, "bridge", "ADD", id, &ns.path(), "eth0", conf);
    assert_ok(&out, "bridge ADD");
    json_out(&out)
}

#[test]
#[ignore = "needs root"]
fn portmap_forgets_stale_udp_flows_of_a_mapped_port() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcniu{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.87.0/24");
    let ns = NetNs::new();
    let prev = bridge_add(ours, &ns, "udp1", &br);
    let server = udp_socket_in(&ns, 5353);
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let host = host_ipv4();
    let host_port = 19000 + (std::process::id() % 500) as u16;
    // NAT is decided once per flow only where nat hooks exist: another
    // mapping keeps the rcni table (and its hooks) alive, as on any host
    // with containers
    let other = json!({"cniVersion": "1.0.0", "name": "udp-net", "type": "portmap",
                    "runtimeConfig": {"portMappings": [
                        {"hostPort": host_port + 1, "containerPort": 5354, "protocol": "udp"}]},
                    "prevResult": prev});
    assert_ok(
        &cni(ours, "portmap", "ADD", "udp0", &ns.path(), "eth0", &other),
        "portmap ADD of another port",
    );
    // a client already talking to the host port before it is mapped: its
    // flow is tracked without translation
    let client = std::net::UdpSocket::bind((host.as_str(), 0)).unwrap();
    client
        .send_to(b"early", (host.as_str(), host_port))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pm = json!({"cniVersion": "1.0.0", "name": "udp-net", "type": "portmap",
                    "runtimeConfig": {"portMappings": [
                        {"hostPort": host_port, "containerPort": 5353, "protocol": "udp"}]},
                    "prevResult": prev});
    assert_ok(
        &cni(ours, "portmap", "ADD", "udp1", &ns.path(), "eth0", &pm),
        "portmap ADD",
    );
    // the same flow now reaches the container: ADD flushed the stale entry
    client.send_to(b"late", (host.as_str(), host_port)).unwrap();
    let mut buf = [0u8; 16];
    let got = server.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
    assert_ok(
        &cni(ours, "portmap", "DEL", "udp1", &ns.path(), "eth0", &pm),
        "portmap DEL",
    );
    assert_ok(
        &cni(ours, "portmap", "DEL", "udp0", &ns.path(), "eth0", &other),
        "portmap DEL",
    );
    assert_ok(
        &cni(ours, "bridge", "DEL", "udp1", &ns.path(), "eth0", &br),
        "bridge DEL",
    );
    assert_eq!(
        got.as_deref().ok(),
        Some(&b"late"[..]),
        "the mapped UDP port did not reach the container: {got:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn portmap_conditions_and_mark_bit() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnic{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.88.0/24");
    let ns = NetNs::new();
    let prev = bridge_add(ours, &ns, "cond1", &br);
    let _server = Server::start(&ns, 80, "conditional");
    let host = host_ipv4();
    let host_port = 19600 + (std::process::id() % 300) as u16;
    let pm = |extra: Value| {
        let mut c = json!({"cniVersion": "1.0.0", "name": "cond-net", "type": "portmap",
                    "runtimeConfig": {"portMappings": [
                        {"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
                    "prevResult": prev.clone()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // only traffic from another subnet is forwarded: not the host's own
    let only_other = pm(json!({"conditionsV4": ["-s", "10.89.250.0/24"], "markMasqBit": 14}));
    assert_ok(
        &cni(
            ours,
            "portmap",
            "ADD",
            "cond1",
            &ns.path(),
            "eth0",
            &only_other,
        ),
        "portmap ADD with conditions",
    );
    let t = rcni_table("ip").expect("portmap rules");
    assert!(t.contains("ip saddr 10.89.250.0/24"), "{t}");
    assert!(t.contains("meta mark set meta mark | 0x00004000"), "{t}");
    assert_eq!(fetch(&host, host_port), "", "the condition was ignored");
    assert_ok(
        &cni(
            ours,
            "portmap",
            "DEL",
            "cond1",
            &ns.path(),
            "eth0",
            &only_other,
        ),
        "portmap DEL",
    );
    // negated: everything but that subnet
    let but_other = pm(json!({"conditionsV4": ["!", "-s", "10.89.250.0/24"]}));
    assert_ok(
        &cni(
            ours,
            "portmap",
            "ADD",
            "cond1",
            &ns.path(),
            "eth0",
            &but_other,
        ),
        "portmap ADD with a negated condition",
    );
    assert_eq!(fetch(&host, host_port), "conditional");
    assert_ok(
        &cni(
            ours,
            "portmap",
            "DEL",
            "cond1",
            &ns.path(),
            "eth0",
            &but_other,
        ),
        "portmap DEL",
    );
    // what cannot be translated is refused, naming it, and adds nothing
    for (bad, code, names) in [
        (json!({"conditionsV4": ["-m", "addrtype"]}), 2, "\"-m\""),
        (json!({"conditionsV4": ["-s", "fd00::/64"]}), 7, "IPv4"),
        (json!({"markMasqBit": 32}), 7, "markMasqBit"),
        (
            json!({"externalSetMarkChain": "KUBE-MARK-MASQ"}),
            2,
            "externalSetMarkChain",
        ),
    ] {
        let out = cni(
            ours,
            "portmap",
            "ADD",
            "cond1",
            &ns.path(),
            "eth0",
            &pm(bad.clone()),
        );
        assert!(!out.status.success(), "{bad}");
        let e = json_out(&out);
        assert_eq!(e["code"], code, "{bad}: {e}");
        assert!(e["msg"].as_str().unwrap().contains(names), "{bad}: {e}");
        assert!(
            rcni_table("ip").is_none_or(|t| !t.contains("cond-net")),
            "{bad} left rules"
        );
    }
    assert_ok(
        &cni(ours, "bridge", "DEL", "cond1", &ns.path(), "eth0", &br),
        "bridge DEL",
    );
}

fn ping(ns: &NetNs, addr: &str) -> bool {
    in_ns(ns, &["busybox", "ping", "-c", "1", "-W", "1", addr])
        .status
        .success()
}

/// The host-side veth of a bridge result.
fn host_veth(result: &Value, bridge: &str) -> String {
    result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sandbox"].is_null() && i["name"] != bridge)
        .and_then(|i| i["name"].as_str())
        .expect("a host veth in the result")
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn bridge_vlan_separates_ports() {
    require_root();
    let probe = format!("rcnivp{}", std::process::id() % 10000);
    let _probe = HostLink(probe.clone());
    let filtering = Command::new("ip")
        .args([
            "link",
            "add",
            &probe,
            "type",
            "bridge",
            "vlan_filtering",
            "1",
        ])
        .output()
        .unwrap()
        .status
        .success();
    for (n, dir) in plugin_dirs().iter().enumerate() {
        if !filtering {
            // a kernel without CONFIG_BRIDGE_VLAN_FILTERING: a clear refusal
            // that leaves no veth and no lease
            let bridge = format!("rcniv{}{n}", std::process::id() % 10000);
            let _guard = HostLink(bridge.clone());
            let data = tempfile::tempdir().unwrap();
            let mut conf = bridge_conf("1.0.0", &bridge, data.path(), "10.89.89.0/24");
            conf["vlan"] = json!(100);
            let ns = NetNs::new();
            let out = cni(dir, "bridge", "ADD", "va", &ns.path(), "eth0", &conf);
            assert!(
                !out.status.success(),
                "{dir:?}: VLAN without kernel support"
            );
            if n == 0 {
                let e = json_out(&out);
                assert_eq!(e["code"], 2, "{e}");
                assert!(e["msg"].as_str().unwrap().contains("VLAN filtering"), "{e}");
            }
            assert!(!link_exists_in(&ns, "eth0"), "{dir:?}: a veth was left");
            let leases = std::fs::read_dir(data.path().join("br-net"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
                        .count()
                })
                .unwrap_or(0);
            assert_eq!(leases, 0, "{dir:?}: a lease was left");
            continue;
        }
        let bridge = format!("rcniv{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let mut v100 = bridge_conf("1.0.0", &bridge, data.path(), "10.89.89.0/24");
        v100["vlan"] = json!(100);
        // the same subnet on VLAN 200, without a gateway
        let mut v200 = v100.clone();
        v200["vlan"] = json!(200);
        v200["isGateway"] = json!(false);
        v200["isDefaultGateway"] = json!(false);
        let (a, b, c) = (NetNs::new(), NetNs::new(), NetNs::new());
        let ra = bridge_add(dir, &a, "va", &v100);
        let rb = bridge_add(dir, &b, "vb", &v100);
        bridge_add(dir, &c, "vc", &v200);
        let ip = |r: &Value| {
            r["ips"][0]["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        };
        let vlans = Command::new("bridge")
            .args(["vlan", "show", "dev", &host_veth(&ra, &bridge)])
            .output()
            .unwrap();
        let same_vlan = ping(&a, &ip(&rb));
        let gateway = ping(&a, "10.89.89.1");
        let across = ping(&c, &ip(&ra));
        for (ns, id, conf) in [(&a, "va", &v100), (&b, "vb", &v100), (&c, "vc", &v200)] {
            assert_ok(
                &cni(dir, "bridge", "DEL", id, &ns.path(), "eth0", conf),
                "DEL",
            );
        }
        assert!(
            stdout(&vlans).contains("100 PVID Egress Untagged"),
            "{dir:?}: {}",
            stdout(&vlans)
        );
        assert!(same_vlan, "{dir:?}: no ping within VLAN 100");
        assert!(gateway, "{dir:?}: no ping to the gateway on VLAN 100");
        assert!(!across, "{dir:?}: VLAN 200 reached VLAN 100");
    }
}

#[test]
#[ignore = "needs root"]
fn bridge_vlan_bad_ids_are_refused_and_leave_nothing() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnivb{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let ns = NetNs::new();
    for (field, value, names) in [
        ("vlan", json!(4095), "vlan"),
        (
            "vlanTrunk",
            json!([{"minID": 20, "maxID": 10}]),
            "vlanTrunk[0].minID",
        ),
    ] {
        let mut conf = bridge_conf("1.0.0", &bridge, data.path(), "10.89.90.0/24");
        conf[field] = value;
        let out = cni(ours, "bridge", "ADD", "vbad", &ns.path(), "eth0", &conf);
        assert!(!out.status.success(), "{field}");
        let e = json_out(&out);
        assert_eq!(e["code"], 7, "{e}");
        assert!(e["msg"].as_str().unwrap().contains(names), "{e}");
        assert!(!link_exists_in(&ns, "eth0"), "{field}: a veth was left");
        let leases = std::fs::read_dir(data.path().join("br-net"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(leases, 0, "{field}: a lease was left");
    }
}

#[test]
#[ignore = "needs root"]
fn bridge_macspoofchk_drops_frames_with_another_source_mac() {
    require_root();
    // the reference plugin's nftables table, left behind after its DEL
    let _reference_table = NftTableCleanup::new("bridge", "nat");
    for (n, dir) in plugin_dirs().iter().enumerate() {
        let bridge = format!("rcnis{}{n}", std::process::id() % 10000);
        let _guard = HostLink(bridge.clone());
        let data = tempfile::tempdir().unwrap();
        let mut conf = bridge_conf("1.0.0", &bridge, data.path(), "10.89.91.0/24");
        conf["macspoofchk"] = json!(true);
        let ns = NetNs::new();
        let r = bridge_add(dir, &ns, "spoof", &conf);
        let own = ping(&ns, "10.89.91.1");
        for args in [
            ["ip", "link", "set", "eth0", "down"],
            ["ip", "link", "set", "eth0", "address"],
        ] {
            let mut args = args.to_vec();
            if args.len() == 5 && args[4] == "address" {
                args.push("02:00:00:00:be:ef");
            }
            assert_ok(&in_ns(&ns, &args), "change the MAC");
        }
        assert_ok(&in_ns(&ns, &["ip", "link", "set", "eth0", "up"]), "up");
        // no cached neighbour entry on the host may answer for the old MAC
        let _ = Command::new("ip")
            .args(["neigh", "flush", "dev", &bridge])
            .output();
        let spoofed = ping(&ns, "10.89.91.1");
        let mut check = conf.clone();
        check["prevResult"] = r;
        let check_ok = cni(dir, "bridge", "CHECK", "spoof", &ns.path(), "eth0", &check);
        assert_ok(
            &cni(dir, "bridge", "DEL", "spoof", &ns.path(), "eth0", &conf),
            "DEL",
        );
        assert!(own, "{dir:?}: no ping with the container's own MAC");
        assert!(!spoofed, "{dir:?}: a spoofed source MAC got through");
        if n == 0 {
            assert_ok(&check_ok, "CHECK");
            assert!(
                Command::new("nft")
                    .args(["list", "table", "bridge", "rcni"])
                    .output()
                    .is_ok_and(|o| !stdout(&o).contains("spoof")),
                "the macspoofchk rule survived DEL"
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn portmap_dual_stack_forwards_ipv4_and_ipv6() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcni6{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let br = json!({"cniVersion": "1.0.0", "name": "pm6-net", "type": "bridge", "bridge": bridge,
           "isGateway": true, "isDefaultGateway": true,
           "ipam": {"type": "host-local", "dataDir": data.path(),
                    "ranges": [[{"subnet": "10.89.92.0/24"}], [{"subnet": "fd00:89:92::/64"}]]}});
    let ns = NetNs::new();
    let prev = bridge_add(ours, &ns, "pm6", &br);
    assert_eq!(prev["ips"].as_array().unwrap().len(), 2, "{prev}");
    let _server = Server::start(&ns, 80, "dual");
    let port = 19900 + (std::process::id() % 90) as u16;
    let pm = json!({"cniVersion": "1.0.0", "name": "pm6-net", "type": "portmap",
                    "runtimeConfig": {"portMappings": [
                        {"hostPort": port, "containerPort": 80, "protocol": "tcp"}]},
                    "prevResult": prev});
    let out = cni(ours, "portmap", "ADD", "pm6", &ns.path(), "eth0", &pm);
    assert_ok(&out, "portmap ADD");
    let mut check = pm.clone();
    check["prevResult"] = json_out(&out);
    let checked = cni(ours, "portmap", "CHECK", "pm6", &ns.path(), "eth0", &check);
    // the host reaches the container through its own addresses on the
    // bridge, in both families
    let v4 = fetch("10.89.92.1", port);
    let v6 = fetch("fd00:89:92::1", port);
    let rules6 = rcni_table("ip6");
    assert_ok(
        &cni(ours, "portmap", "DEL", "pm6", &ns.path(), "eth0", &pm),
        "portmap DEL",
    );
    let after = fetch("fd00:89:92::1", port);
    assert_ok(
        &cni(ours, "bridge", "DEL", "pm6", &ns.path(), "eth0", &br),
        "bridge DEL",
    );
    assert_ok(&checked, "portmap CHECK");
    assert_eq!(v4, "dual", "IPv4");
    assert_eq!(v6, "dual", "IPv6");
    assert!(
        rules6.is_some_and(|t| t.contains("dnat to [fd00:89:92::2]:80")),
        "no IPv6 DNAT rule"
    );
    assert_eq!(after, "", "IPv6 still forwarded after DEL");
    assert!(rcni_table("ip6").is_none_or(|t| !t.contains("pm6")));
}

#[test]
#[ignore = "needs root"]
fn our_del_removes_what_the_reference_add_made() {
    require_root();
    let dirs = plugin_dirs();
    let (ours, reference) = (&dirs[0], &dirs[1]);
    let _iptables = ReferenceIptablesCleanup::new();
    let id = format!("xdel{}", std::process::id());
    let before = reference_nat_of(&id);
    let bridge = format!("rcnix{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let data = tempfile::tempdir().unwrap();
    let mut br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.93.0/24");
    br["ipMasq"] = json!(true);
    let ns = NetNs::new();
    let prev = bridge_add(reference, &ns, &id, &br);
    let pm = json!({"cniVersion": "1.0.0", "name": "br-net", "type": "portmap",
                    "runtimeConfig": {"portMappings": [
                        {"hostPort": 19990, "containerPort": 80, "protocol": "tcp"}]},
                    "prevResult": prev});
    assert_ok(
        &cni(reference, "portmap", "ADD", &id, &ns.path(), "eth0", &pm),
        "reference portmap ADD",
    );
    let made = reference_nat_of(&id);
    assert!(
        made.iter()
            .any(|l| l.contains("MASQUERADE") || l.contains("-j CNI-")),
        "the reference made no rules: {made:?}"
    );
    assert_ok(
        &cni(ours, "portmap", "DEL", &id, &ns.path(), "eth0", &pm),
        "our portmap DEL",
    );
    assert_ok(
        &cni(ours, "bridge", "DEL", &id, &ns.path(), "eth0", &br),
        "our bridge DEL",
    );
    assert_eq!(reference_nat_of(&id), before, "left after our DEL");
    let leases = std::fs::read_dir(data.path().join("br-net"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .count();
    assert_eq!(leases, 0, "the reference's lease survived our DEL");
}

/// Runs its closure when dropped: a test's undo, also when it fails.
struct RunOnDrop<'a>(Box<dyn Fn() + 'a>);

impl Drop for RunOnDrop<'_> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A bridge whose last port went has the MAC 00:00:00:00:00:00 (the
/// kernel's doing; rbox0 between two runs, say): the plugin gives it a
/// usable MAC of its own before it carries a container, which is then
/// reached through it.
#[test]
#[ignore = "needs root"]
fn a_bridge_left_with_no_port_and_a_zero_mac_gets_a_usable_one() {
    require_root();
    let ours = &plugin_dirs()[0];
    let bridge = format!("rcnizm{}", std::process::id() % 10000);
    let _guard = HostLink(bridge.clone());
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    let port = format!("rcnizp{}", std::process::id() % 10000);
    ip(&["link", "add", &bridge, "type", "bridge"]);
    ip(&[
        "link",
        "add",
        &port,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{port}b"),
    ]);
    ip(&["link", "set", &port, "master", &bridge]);
    ip(&["link", "del", &port]);
    let mac = || {
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/address"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(mac(), "00:00:00:00:00:00", "the kernel's zero MAC");
    let data = tempfile::tempdir().unwrap();
    let br = bridge_conf("1.0.0", &bridge, data.path(), "10.89.161.0/24");
    let ns = NetNs::new();
    let result = bridge_add(ours, &ns, "zeromac", &br);
    assert_ne!(mac(), "00:00:00:00:00:00");
    let kind =
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/addr_assign_type")).unwrap();
    assert_eq!(kind.trim(), "3", "the MAC is set, not taken from a port");
    let addr = result["ips"][0]["address"].as_str().unwrap();
    let addr = addr.split('/').next().unwrap().to_string();
    let _server = Server::start(&ns, 80, "through-the-bridge");
    assert_eq!(fetch(&addr, 80), "through-the-bridge");
    assert_ok(
        &cni(ours, "bridge", "DEL", "zeromac", &ns.path(), "eth0", &br),
        "bridge DEL",
    );
}
