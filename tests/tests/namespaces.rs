//! Namespaces: new ones of every kind, user namespace mappings, and joining
//! an existing namespace by path. Each check compares inode numbers of
//! /proc/self/ns/* inside with the host's.

use rrun_tests::*;

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
#[ignore = "needs root"]
fn every_default_namespace_is_new() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done; echo pid=$$; hostname; ip -o link | cut -d: -f2; cat /proc/self/cgroup"]);
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_ne!(lines[i], host_ns(n), "{n} namespace is the host's");
    }
    assert_eq!(lines[6], "pid=1");
    assert_eq!(lines[7], "rrun-test");
    assert_eq!(lines[8].trim(), "lo", "only lo in a new netns: {out}");
    // cgroup namespace: the container's cgroup is its root
    assert!(lines[9..].iter().all(|l| l.ends_with(":/")), "{out}");
}

#[test]
#[ignore = "needs root"]
fn domainname_is_set() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/sys/kernel/domainname"]);
    b.edit(|v| v["domainname"] = "example.test".into());
    assert_eq!(rt.run_ok(&b), "example.test\n");
}

#[test]
#[ignore = "needs root"]
fn time_namespace() {
    require_root();
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: kernel has no time namespaces");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["readlink", "/proc/self/ns/time"]);
    b.add_namespace("time", None);
    let out = rt.run_ok(&b);
    assert_ne!(out.trim(), host_ns("time"));
}

#[test]
#[ignore = "needs root"]
fn user_namespace_maps_root_to_an_unprivileged_range() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; touch /tmp/made-in-userns",
    ]);
    b.add_namespace("user", None);
    b.edit(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    // the rootfs must belong to the mapped root to be writable
    std::process::Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    let out = rt.run_ok(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    let uid_map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(uid_map, ["0", "200000", "65536"]);
    let gid_map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(gid_map, ["0", "200000", "65536"]);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(b.rootfs().join("tmp/made-in-userns")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (200000, 200000),
        "file made by container root must be owned by the mapped host id"
    );
}

/// A network namespace made for the test, removed on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = unique("rrun-test-ns");
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add");
        NetNs(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
#[ignore = "needs root"]
fn joins_a_network_namespace_by_path() {
    require_root();
    let ns = NetNs::new();
    use std::os::unix::fs::MetadataExt;
    let want = format!("net:[{}]", std::fs::metadata(ns.path()).unwrap().ino());
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["readlink", "/proc/self/ns/net"]);
    b.add_namespace("network", Some(&ns.path()));
    let out = rt.run_ok(&b);
    assert_eq!(out.trim(), want);
}

#[test]
#[ignore = "needs root"]
fn sysctl_is_applied_in_the_container_netns() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    b.edit(|v| v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(rt.run_ok(&b), "1\n");
}
