//! Pods through containerd's CRI, driven as the kubelet drives them: each
//! test starts a private node (node.rs: containerd 1.6 with the CRI plugin,
//! runtime handlers `rrun` and `runc`, a conflist of bridge + host-local +
//! portmap, a pause image of our own) and speaks CRI v1 gRPC to it
//! (client.rs). Every test runs with our shim and plugins and, to prove the
//! expectations, with the reference plugins (Debian's
//! containernetworking-plugins) and containerd's runc shim.

mod client;
mod node;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use k8s_cri::v1::{PodSandboxState, PortMapping, Protocol};
use node::{CriNode, Plugins, BUSYBOX_IMAGE, RRUN, RUNC};
use rrun_tests::*;

/// A host port of 18300-18399 for this test process (`variant` 0-3).
fn host_port(variant: u16) -> u16 {
    18300 + 4 * (std::process::id() % 25) as u16 + variant
}

/// `GET /` on addr:port: the body, or why there is none.
fn http_get(addr: &str, port: u16) -> Result<String, String> {
    let sa: SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))
        .map_err(|e| format!("connect {sa}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("send to {sa}: {e}"))?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)
        .map_err(|e| format!("read from {sa}: {e}"))?;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{sa}: not HTTP: {reply:?}"))?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(format!("{sa}: {head}"));
    }
    Ok(body.to_string())
}

/// [`http_get`] until it answers (the server may still be starting).
fn http_get_eventually(addr: &str, port: u16) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(addr, port) {
            Ok(b) => return Ok(b),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Issue 24: a pod with a hostPort (containerd hands portmap its mappings
/// with capitalised keys) is reachable from the host on that port, at
/// 127.0.0.1 and at the host's own address; its IP is from our bridge's
/// subnet; StopPodSandbox + RemovePodSandbox leave nothing: no veth, lease,
/// rule, mount, cgroup, netns, shim or process.
fn host_port_pod(plugins: Plugins, handler: &str, variant: u16) {
    let node = CriNode::new(plugins);
    let port = host_port(variant);
    let name = unique("web");
    let mut pod = node.pod_config(&name);
    pod.port_mappings = vec![PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 80,
        host_port: port as i32,
        host_ip: String::new(),
    }];
    let pod_id = node.run_pod(&pod, handler);

    let status = node.cri.pod_status(&pod_id, false).unwrap().status.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        node.in_subnet(&ip),
        "pod IP {ip:?} is not from the bridge's subnet {}",
        node.subnet
    );
    assert_eq!(
        node.leases(),
        vec![(ip.clone(), pod_id.clone())],
        "host-local's lease"
    );
    assert_eq!(node.bridge_ports().len(), 1, "the pod's veth on the bridge");

    let page = format!("served by {name} in a {handler} pod\n");
    let serve = format!(
        "mkdir /www && printf '%s' '{page}' >/www/index.html && exec httpd -f -p 80 -h /www"
    );
    let httpd = node.container_config("httpd", BUSYBOX_IMAGE, &["sh", "-c", &serve]);
    let cid = node.start_container(&pod_id, &httpd, &pod);
    let fp = node.footprint(&pod_id, &[&cid]);
    assert!(fp.netns.is_some(), "no netns in the pod's status: {fp:?}");
    assert!(
        fp.host_veth.is_some(),
        "no host veth in the CNI result: {fp:?}"
    );
    assert_eq!(fp.processes.len(), 2, "pause and httpd: {fp:?}");
    // the handler's shim and runtime run the pod, one shim for all of it
    let shims = node.shims_of(&pod_id);
    let shim = format!("containerd-shim-{handler}-v2 ");
    assert!(
        shims.len() == 1 && shims[0].contains(&shim),
        "one {shim}for the pod: {shims:?}"
    );
    for id in [&pod_id, &cid] {
        let state = node.runtime_state(handler, id);
        assert!(
            state.is_dir(),
            "{handler} runs {id}: no {}",
            state.display()
        );
    }
    // containerd brought up the pod's lo with the plugins' loopback
    let lo = std::process::Command::new("nsenter")
        .arg(format!("--net={}", fp.netns.as_deref().unwrap()))
        .args(["ip", "-o", "link", "show", "lo"])
        .output()
        .unwrap();
    assert!(stdout(&lo).contains(",UP"), "the pod's lo: {}", stdout(&lo));

    assert_eq!(
        http_get_eventually(&ip, 80).as_deref(),
        Ok(page.as_str()),
        "the pod at its own IP"
    );
    assert_eq!(
        http_get_eventually("127.0.0.1", port).as_deref(),
        Ok(page.as_str()),
        "hostPort {port} at 127.0.0.1"
    );
    // the host's own address (traffic to it stays on the host); a host
    // without a global IPv4 address has only loopback to try
    match host_ipv4_if_any() {
        Some(host) => assert_eq!(
            http_get_eventually(&host, port).as_deref(),
            Ok(page.as_str()),
            "hostPort {port} at the host's {host}"
        ),
        None => eprintln!("no global IPv4 address: hostPort checked at 127.0.0.1 only"),
    }

    node.cri.stop_pod(&pod_id).unwrap_or_else(|e| {
        panic!(
            "StopPodSandbox: {e}\ncontainerd's log:\n{}",
            node.log_tail()
        )
    });
    node.cri.remove_pod(&pod_id).unwrap_or_else(|e| {
        panic!(
            "RemovePodSandbox: {e}\ncontainerd's log:\n{}",
            node.log_tail()
        )
    });
    node.assert_gone(&fp);
    assert!(
        http_get("127.0.0.1", port).is_err(),
        "hostPort {port} still answers after the pod's removal"
    );
}

#[test]
#[ignore = "needs root"]
fn host_port_pod_with_rrun_and_our_plugins() {
    host_port_pod(Plugins::Ours, RRUN, 0);
}

#[test]
#[ignore = "needs root"]
fn host_port_pod_with_rrun_and_the_reference_plugins() {
    host_port_pod(Plugins::Reference, RRUN, 1);
}

#[test]
#[ignore = "needs root"]
fn host_port_pod_with_runc_and_our_plugins() {
    host_port_pod(Plugins::Ours, RUNC, 2);
}

#[test]
#[ignore = "needs root"]
fn host_port_pod_with_runc_and_the_reference_plugins() {
    host_port_pod(Plugins::Reference, RUNC, 3);
}
