//! rbox's CNI driver against the real plugins (ours from the workspace
//! build, `CNI_BIN_DIR`), in real network namespaces.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rbox::net::cni::{parse_port, Cni, NetNs, Network};

fn plugin_dir() -> PathBuf {
    std::env::var_os("CNI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "../target/{}-unknown-linux-musl/release",
                std::env::consts::ARCH
            ))
        })
}

/// Removes the test's namespace and bridge, also when the test fails.
struct Cleanup {
    ns: Option<NetNs>,
    bridge: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(ns) = &self.ns {
            let _ = ns.remove();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

fn fetch(addr: &str, port: u16) -> String {
    for _ in 0..20 {
        let out = Command::new("busybox")
            .args(["nc", "-w", "2", addr, &port.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    String::new()
}

#[test]
#[ignore = "needs root"]
fn attach_publishes_a_port_and_detach_leaves_nothing() {
    assert!(nix::unistd::geteuid().is_root(), "run as root");
    let pid = std::process::id();
    let net = Network {
        name: format!("rbox-test-{pid}"),
        bridge: format!("rboxt{}", pid % 100000),
        subnet: "10.89.201.0/24".parse().unwrap(),
        gateway: None,
    };
    let data = tempfile::tempdir().unwrap();
    let conflist = net.conflist(data.path());
    let name = format!("rbox-test-{pid}");
    let mut guard = Cleanup {
        ns: None,
        bridge: net.bridge.clone(),
    };
    let ns = NetNs::create(&name).unwrap();
    guard.ns = Some(ns.clone());
    assert!(
        NetNs::create(&name).is_err(),
        "a second namespace of the same name"
    );
    let cni = Cni::new(vec![plugin_dir()]);
    cni.check_installed().unwrap();
    let mut ports = vec![parse_port("80").unwrap()];
    rbox::net::cni::reserve_host_ports(&mut ports).unwrap();
    assert_ne!(ports[0].host_port, 0, "a host port was picked");
    let id = format!("ctr{pid}");
    let att = cni.attach(&conflist, &id, &ns, &ports).unwrap();
    assert!(
        ipnet::IpNet::V4(net.subnet).contains(&att.ip.addr()),
        "{att:?}"
    );
    assert_eq!(att.gateway.unwrap().to_string(), "10.89.201.1");
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &name,
            "busybox",
            "nc",
            "-ll",
            "-p",
            "80",
            "-e",
            "/bin/echo",
            "hello",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let by_ip = fetch(&att.ip.addr().to_string(), 80);
    let by_port = fetch("127.0.0.1", ports[0].host_port);
    let _ = server.kill();
    let _ = server.wait();
    let veths = rbox::net::cni::host_veths(&att.result);
    assert_eq!(veths.len(), 1, "{}", att.result);
    // the namespace goes after: the veth pair goes with it
    cni.detach(&conflist, &id, &ns, &ports, Some(&att.result), true)
        .unwrap();
    // idempotent, also without the result
    cni.detach(&conflist, &id, &ns, &ports, None, true).unwrap();
    ns.remove().unwrap();
    ns.remove().unwrap();
    rbox::net::cni::wait_gone(&veths, std::time::Duration::from_secs(5));
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&veths[0])
            .exists(),
        "{} outlived its namespace",
        veths[0]
    );
    assert_eq!(by_ip, "hello");
    assert_eq!(by_port, "hello");
    assert!(!ns.path.exists());
    let leases: Vec<_> = std::fs::read_dir(data.path().join(&net.name))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "{leases:?}");
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains(&id),
        "rules of {id} left"
    );
}

#[test]
#[ignore = "needs root"]
fn a_failing_plugin_is_named_and_undone() {
    assert!(nix::unistd::geteuid().is_root(), "run as root");
    let pid = std::process::id();
    // a "bridge" that is a veth: the bridge plugin refuses it after
    // host-local allocated an address, which must be released
    let bridge = format!("rboxf{}", pid % 100000);
    let ok = Command::new("ip")
        .args([
            "link",
            "add",
            &bridge,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{bridge}p"),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let net = Network {
        name: format!("rbox-fail-{pid}"),
        bridge: bridge.clone(),
        subnet: "10.89.202.0/24".parse().unwrap(),
        gateway: None,
    };
    let data = tempfile::tempdir().unwrap();
    let name = format!("rbox-fail-{pid}");
    let mut guard = Cleanup { ns: None, bridge };
    let ns = NetNs::create(&name).unwrap();
    guard.ns = Some(ns.clone());
    let cni = Cni::new(vec![plugin_dir()]);
    let err = cni
        .attach(&net.conflist(data.path()), "failing", &ns, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bridge ADD") && err.contains("not a bridge"),
        "{err}"
    );
    let leases = std::fs::read_dir(data.path().join(&net.name))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(leases, 0, "the lease survived the failed ADD");
    // no plugins at all: a clear error naming the plugin and the path
    let none = Cni::new(vec![PathBuf::from("/nonexistent")]);
    let err = none.check_installed().unwrap_err().to_string();
    assert!(
        err.contains("\"bridge\"") && err.contains("/nonexistent"),
        "{err}"
    );
}
