//! A private Kubernetes node without the kubelet: containerd 1.6 with its
//! CRI plugin on, set up as docs/kubernetes.md tells an operator, but every
//! path its own (root, state, sockets, CNI config and leases under a temp
//! dir; a bridge, subnet, cgroup parent and CNI network name of its own).
//!
//! - runtime handlers: `rrun` (runtime_type io.containerd.rrun.v2: the shim
//!   under test, with rrun beside it, first in containerd's PATH) and
//!   `runc` (containerd's runc shim and Debian's runc, the reference);
//! - CNI: the plugins under test (CNI_BIN_DIR) or the reference ones
//!   (/usr/lib/cni) as the bin dir; one conflist: bridge with host-local,
//!   then portmap with the portMappings capability (containerd runs the
//!   loopback plugin itself, from the same bin dir);
//! - images, imported into containerd's `k8s.io` namespace (no registry
//!   is reachable): the sandbox image (rrun-pause alone) and busybox.
//!
//! Dropped, it does what the kubelet would (stop and remove every pod),
//! then removes whatever a failed test left: shims, containers, cgroups,
//! the bridge, our portmap's rules, and the reference plugins' chains.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_cri::v1::*;
use rrun_tests::containerd::Containerd;
use rrun_tests::*;
use serde_json::{json, Value};

use crate::client::{image_spec, info_json, Cri};

/// The sandbox image: rrun-pause as /pause, nothing else.
pub const PAUSE_IMAGE: &str = "localhost/rrun-pause:latest";
/// busybox-static with an applet link each (sh, httpd, ...), PATH=/bin.
pub const BUSYBOX_IMAGE: &str = "localhost/rrun-busybox:latest";
/// The runtime handlers (what a RuntimeClass's `handler` names).
pub const RRUN: &str = "rrun";
pub const RUNC: &str = "runc";
/// containerd's namespace for everything the CRI makes.
const K8S_NAMESPACE: &str = "k8s.io";
/// The reference plugins, Debian's containernetworking-plugins.
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// Which CNI plugins the node runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plugins {
    /// ours: CNI_BIN_DIR, else the workspace's build
    Ours,
    /// the reference plugins of containernetworking-plugins
    Reference,
}

pub struct CriNode {
    pub cri: Cri,
    pub ctd: Containerd,
    pub plugins: Plugins,
    /// The CNI network (the conflist's name).
    pub network: String,
    pub bridge: String,
    /// The pod subnet, `10.89.N.0/24`, and its first three octets.
    pub subnet: String,
    subnet_prefix: String,
    /// host-local's dataDir: one file per lease under `<network>/`.
    pub ipam_dir: PathBuf,
    /// The pods' cgroup parent (the kubelet's pod cgroup), cgroupfs style.
    pub cgroup_parent: String,
    /// The shim copy and rrun beside it (first in containerd's PATH).
    _bin: tempfile::TempDir,
    /// Pod ids this node started (for the cleanup of a failed test).
    pods: RefCell<Vec<String>>,
    _reference_iptables: Option<ReferenceIptablesCleanup>,
}

static NODES: AtomicU32 = AtomicU32::new(0);

/// libcni's cache of ADD results, where containerd's CRI keeps one file per
/// pod network attachment (`<network>-<sandbox id>-<ifname>`); its parent,
/// /var/lib/cni, is also host-local's default data dir.
const CNI_RESULTS: &str = "/var/lib/cni/results";
const CNI_DIR: &str = "/var/lib/cni";

/// Whether libcni's cache dirs existed before this process's first node
/// (nodes of one test binary run side by side: the last one to go removes
/// what none of them found).
fn cni_cache_existed() -> (bool, bool) {
    static EXISTED: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
    *EXISTED.get_or_init(|| (Path::new(CNI_DIR).exists(), Path::new(CNI_RESULTS).exists()))
}

impl CriNode {
    /// Starts the node and waits until the CRI reports the runtime and the
    /// network ready and knows the sandbox image.
    pub fn new(plugins: Plugins) -> CriNode {
        require_root();
        cni_cache_existed();
        let n = NODES.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let cni_bin_dir = match plugins {
            Plugins::Ours => cni_bin_dir(),
            Plugins::Reference => {
                assert!(
                    Path::new(REFERENCE_PLUGINS).join("portmap").exists(),
                    "the reference CNI plugins are missing: apt-get install \
                     containernetworking-plugins (make deps)"
                );
                PathBuf::from(REFERENCE_PLUGINS)
            }
        };
        let bin = tempfile::Builder::new()
            .prefix("rrun-test-cribin")
            .tempdir()
            .unwrap();
        std::fs::copy(shim_bin(), bin.path().join("containerd-shim-rrun-v2")).unwrap();
        std::os::unix::fs::symlink(rrun_bin(), bin.path().join("rrun")).unwrap();

        let network = format!("rrun-cri-{pid}-{n}");
        let bridge = format!("rcri{}{}", pid % 10000, n % 10);
        let subnet_prefix = format!("10.89.{}", 220 + n % 8);
        let subnet = format!("{subnet_prefix}.0/24");
        let cgroup_parent = format!("/rrun-cri-{pid}-{n}");
        let mut ipam_dir = PathBuf::new();
        let ctd = Containerd::start_with(K8S_NAMESPACE, Some(bin.path()), |dir| {
            ipam_dir = dir.join("cni-ipam");
            let conf_dir = dir.join("net.d");
            std::fs::create_dir_all(&conf_dir).unwrap();
            std::fs::write(
                conf_dir.join("10-rrun.conflist"),
                serde_json::to_string_pretty(&conflist(&network, &bridge, &subnet, &ipam_dir))
                    .unwrap(),
            )
            .unwrap();
            cri_config(&cni_bin_dir, &conf_dir)
        });
        // the reference portmap and bridge leave shared iptables chains
        let reference_iptables =
            (plugins == Plugins::Reference).then(ReferenceIptablesCleanup::new);
        let cri = Cri::connect(&ctd.socket());
        let node = CriNode {
            cri,
            ctd,
            plugins,
            network,
            bridge,
            subnet,
            subnet_prefix,
            ipam_dir,
            cgroup_parent,
            _bin: bin,
            pods: RefCell::new(Vec::new()),
            _reference_iptables: reference_iptables,
        };
        node.import_images();
        node.wait_ready();
        node
    }

    fn import_images(&self) {
        let rootfs = self.ctd.dir.path().join("pause-rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::copy(pause_bin(), rootfs.join("pause")).unwrap();
        self.ctd.import_image(
            PAUSE_IMAGE,
            &rootfs,
            json!({"Entrypoint": ["/pause"], "Env": ["PATH=/"]}),
        );
        std::fs::remove_dir_all(&rootfs).unwrap();
        self.ctd.import_busybox(BUSYBOX_IMAGE);
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let conditions = self.cri.conditions();
            let ready = conditions
                .as_ref()
                .is_ok_and(|c| c.len() >= 2 && c.iter().all(|c| c.1));
            let images = [PAUSE_IMAGE, BUSYBOX_IMAGE]
                .iter()
                .all(|i| self.cri.image_status(i).is_ok_and(|s| s.is_some()));
            if ready && images {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the CRI is not ready: conditions {conditions:?}, images known: {images}\n\
                 containerd's log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of containerd's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = self.ctd.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A pod as the kubelet describes it: name, uid, namespace, hostname,
    /// the node's cgroup parent; no log directory.
    pub fn pod_config(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: unique("uid"),
                namespace: "rrun-test".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container of `image` running `command`.
    pub fn container_config(&self, name: &str, image: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(image_spec(image)),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// RunPodSandbox, remembered for the cleanup; panics with containerd's
    /// log on failure.
    pub fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> String {
        self.try_run_pod(config, handler).unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox (handler {handler}, {:?} plugins): {e}\ncontainerd's log:\n{}",
                self.plugins,
                self.log_tail()
            )
        })
    }

    /// RunPodSandbox; the error as the CRI returned it.
    pub fn try_run_pod(
        &self,
        config: &PodSandboxConfig,
        handler: &str,
    ) -> Result<String, tonic::Status> {
        let id = self.cri.run_pod(config, handler)?;
        self.pods.borrow_mut().push(id.clone());
        Ok(id)
    }

    /// CreateContainer + StartContainer, then waits until it runs.
    pub fn start_container(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> String {
        let fail = |what: &str, e: tonic::Status| -> ! {
            panic!("{what}: {e}\ncontainerd's log:\n{}", self.log_tail())
        };
        let id = self
            .cri
            .create_container(pod_id, config, pod_config)
            .unwrap_or_else(|e| fail("CreateContainer", e));
        self.cri
            .start_container(&id)
            .unwrap_or_else(|e| fail("StartContainer", e));
        wait_for("the container to run", Duration::from_secs(10), || {
            self.cri.container_status(&id, false).is_ok_and(|s| {
                s.status
                    .is_some_and(|s| s.state == ContainerState::ContainerRunning as i32)
            })
        });
        id
    }

    /// Is `ip` an address of the node's pod subnet?
    pub fn in_subnet(&self, ip: &str) -> bool {
        ip.strip_prefix(&self.subnet_prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|host| host.parse::<u8>().ok())
            .is_some_and(|h| h > 1)
    }

    /// host-local's lease files of the network: (address, owner's id).
    pub fn leases(&self) -> Vec<(String, String)> {
        std::fs::read_dir(self.ipam_dir.join(&self.network))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.parse::<std::net::IpAddr>().ok()?;
                let owner = std::fs::read_to_string(e.path()).unwrap_or_default();
                Some((name, owner.lines().next().unwrap_or("").trim().to_string()))
            })
            .collect()
    }

    /// The host ends of veth pairs on the node's bridge.
    pub fn bridge_ports(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .unwrap();
        stdout(&out)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect()
    }

    /// What a running pod has on the host, read from containerd's verbose
    /// statuses, to check after its removal that all of it is gone.
    pub fn footprint(&self, pod_id: &str, containers: &[&str]) -> PodFootprint {
        let pod = self.cri.pod_status(pod_id, true).unwrap();
        let info = info_json(&pod.info);
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|ns| ns["type"] == "network")
            .and_then(|ns| ns["path"].as_str())
            .map(String::from);
        // the CNI result's interfaces without a sandbox: the bridge and
        // the pod's host-side veth
        let host_veth = info["cniResult"]["Interfaces"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(name, i)| {
                *name != &self.bridge && i["Sandbox"].as_str().is_none_or(str::is_empty)
            })
            .map(|(name, _)| name.clone());
        let mut pids = vec![info["pid"].as_i64().unwrap_or(0) as i32];
        for c in containers {
            let s = self.cri.container_status(c, true).unwrap();
            pids.push(info_json(&s.info)["pid"].as_i64().unwrap_or(0) as i32);
        }
        let processes = pids
            .into_iter()
            .filter(|p| *p > 0)
            .filter_map(|p| Some((p, start_time(p)?)))
            .collect();
        PodFootprint {
            id: pod_id.into(),
            containers: containers.iter().map(|s| s.to_string()).collect(),
            ip,
            netns,
            host_veth,
            processes,
        }
    }

    /// The command lines of the shims serving the pod `pod_id` (containerd
    /// starts a shim with `-id <sandbox id>`).
    pub fn shims_of(&self, pod_id: &str) -> Vec<String> {
        processes_naming(&[pod_id])
            .into_iter()
            .map(|(_, cmd)| cmd)
            .filter(|cmd| cmd.contains("containerd-shim"))
            .collect()
    }

    /// The state directory the runtime behind `handler` keeps for the
    /// container or sandbox `id` (rrun's and runc's roots for containerd).
    pub fn runtime_state(&self, handler: &str, id: &str) -> PathBuf {
        Path::new("/run/containerd")
            .join(handler)
            .join(K8S_NAMESPACE)
            .join(id)
    }

    /// What is left on the host of a removed pod (empty: nothing).
    pub fn leftovers(&self, fp: &PodFootprint) -> Vec<String> {
        let mut left = Vec::new();
        let ids: Vec<&String> = std::iter::once(&fp.id).chain(&fp.containers).collect();
        if let Ok(s) = self.cri.pod_status(&fp.id, false) {
            left.push(format!("the CRI still has the pod: {:?}", s.status));
        }
        for (pid, start) in &fp.processes {
            if start_time(*pid).as_ref() == Some(start) {
                left.push(format!("process {pid} of the pod still runs"));
            }
        }
        for (pid, cmd) in processes_naming(&ids) {
            left.push(format!("process {pid} names the pod: {cmd}"));
        }
        let ports = self.bridge_ports();
        if !ports.is_empty() {
            left.push(format!("veths on {}: {ports:?}", self.bridge));
        }
        if let Some(v) = &fp.host_veth {
            if Command::new("ip")
                .args(["link", "show", v])
                .output()
                .unwrap()
                .status
                .success()
            {
                left.push(format!("the pod's veth {v} exists"));
            }
        }
        for (ip, owner) in self.leases() {
            if ip == fp.ip || ids.contains(&&owner) {
                left.push(format!("lease of {ip} held by {owner}"));
            }
        }
        // ours tag their rules with the id in nft comments; the reference
        // plugins' iptables-nft comments show only in iptables-save
        let mut rules = stdout(
            &Command::new("nft")
                .args(["list", "ruleset"])
                .output()
                .unwrap(),
        );
        for save in ["iptables-save", "ip6tables-save"] {
            if let Ok(out) = Command::new(save).output() {
                rules.push_str(&stdout(&out));
            }
        }
        for l in rules
            .lines()
            .filter(|l| ids.iter().any(|id| l.contains(*id)))
        {
            left.push(format!("rule naming the pod: {}", l.trim()));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for l in mountinfo
            .lines()
            .filter(|l| ids.iter().any(|id| l.contains(*id)))
        {
            left.push(format!("mount naming the pod: {l}"));
        }
        if let Some(ns) = &fp.netns {
            if Path::new(ns).exists() {
                left.push(format!("the pod's netns {ns} exists"));
            }
        }
        for id in &ids {
            for d in cgroup_dirs(&format!("{}/{id}", self.cgroup_parent)) {
                left.push(format!("cgroup {}", d.display()));
            }
            for runtime in [RRUN, RUNC] {
                let state = self.runtime_state(runtime, id);
                if state.exists() {
                    left.push(format!("{runtime} state {}", state.display()));
                }
            }
        }
        left
    }

    /// Nothing of the removed pod is left (processes get 10 s to exit).
    #[track_caller]
    pub fn assert_gone(&self, fp: &PodFootprint) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = self.leftovers(fp);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            left = self.leftovers(fp);
        }
        assert!(
            left.is_empty(),
            "left after RemovePodSandbox ({:?} plugins): {left:#?}",
            self.plugins
        );
    }

    /// Our portmap's and bridge's rules of this node's network (their
    /// comments name it), by handle; then the chains and table they leave
    /// empty.
    fn remove_our_rules(&self) {
        for family in ["ip", "ip6"] {
            let out = Command::new("nft")
                .args(["-a", "list", "table", family, "rcni"])
                .output()
                .unwrap();
            if !out.status.success() {
                continue;
            }
            // `rcni NETWORK ID` (bridge), `rcni-pm NETWORK ID` (portmap)
            let network = format!(" {} ", self.network);
            let ours = |l: &str| l.contains("comment \"rcni") && l.contains(&network);
            let mut chain = String::new();
            let mut removed = false;
            for l in stdout(&out).lines().map(str::trim) {
                if let Some(c) = l.strip_prefix("chain ") {
                    // `chain NAME { # handle N`
                    chain = c.split_whitespace().next().unwrap_or("").to_string();
                } else if ours(l) {
                    if let Some(handle) = l.rsplit("# handle ").next() {
                        let _ = Command::new("nft")
                            .args(["delete", "rule", family, "rcni", &chain, "handle"])
                            .arg(handle.trim())
                            .output();
                        removed = true;
                    }
                }
            }
            if !removed {
                continue;
            }
            for l in stdout(&out).lines().map(str::trim) {
                if let Some(c) = l.strip_prefix("chain ") {
                    // refused while the chain holds rules or is jumped to
                    let name = c.split_whitespace().next().unwrap_or("");
                    let _ = Command::new("nft")
                        .args(["delete", "chain", family, "rcni", name])
                        .output();
                }
            }
            let after = Command::new("nft")
                .args(["list", "table", family, "rcni"])
                .output()
                .unwrap();
            if after.status.success() && !stdout(&after).contains("chain ") {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, "rcni"])
                    .output();
            }
        }
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        // as the kubelet would
        let mut pods = self.pods.borrow().clone();
        pods.extend(
            self.cri
                .list_pods()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.id),
        );
        pods.sort();
        pods.dedup();
        for id in &pods {
            let _ = self.cri.stop_pod(id);
            let _ = self.cri.remove_pod(id);
        }
        // what a failed removal left: our daemon's shims, then the
        // containers in the runtimes' state dirs
        let sock = self.ctd.socket().display().to_string();
        for (pid, cmd) in processes_naming(&[&sock]) {
            if cmd.contains("containerd-shim") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for (runtime, bin) in [("rrun", rrun_bin()), ("runc", PathBuf::from("runc"))] {
            let root = Path::new("/run/containerd")
                .join(runtime)
                .join(K8S_NAMESPACE);
            for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                let _ = Command::new(&bin)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
        // the pods' cgroups, then the parent (the kubelet's to remove)
        for d in cgroup_dirs(&self.cgroup_parent) {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        self.remove_our_rules();
        // the CRI's CNI result cache of this node's network, and the dirs
        // libcni made for it when nothing had made them before
        let prefix = format!("{}-", self.network);
        for e in std::fs::read_dir(CNI_RESULTS)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let (had_dir, had_results) = cni_cache_existed();
        if !had_results {
            let _ = std::fs::remove_dir(CNI_RESULTS);
        }
        if !had_dir {
            let _ = std::fs::remove_dir(CNI_DIR);
        }
        // then the fields: the daemon (and the netns and rootfs mounts
        // under its dir), the reference plugins' iptables chains
    }
}

/// What a running pod has on the host (see [`CriNode::footprint`]).
#[derive(Debug)]
pub struct PodFootprint {
    pub id: String,
    pub containers: Vec<String>,
    /// The pod's IP (from PodSandboxStatus).
    pub ip: String,
    /// The network namespace containerd made (a bind mount).
    pub netns: Option<String>,
    /// The host end of the pod's veth pair (from the CNI result).
    pub host_veth: Option<String>,
    /// (pid, start time) of the sandbox's and containers' inits.
    pub processes: Vec<(i32, String)>,
}

/// The node's conflist: bridge (the pods' gateway, masquerading their
/// outbound traffic) with host-local, then portmap for hostPorts.
fn conflist(network: &str, bridge: &str, subnet: &str, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

/// containerd's CRI plugin section: the sandbox image, the two runtime
/// handlers, the CNI dirs; the pods' network namespaces under the
/// daemon's state dir (not the host's /run/netns); oom_score_adj kept at
/// or above containerd's own when root cannot lower it.
fn cri_config(cni_bin_dir: &Path, conf_dir: &Path) -> String {
    format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # this host's root lacks CAP_SYS_RESOURCE: no oom_score_adj below
  # containerd's own (the sandbox asks for -998)
  restrict_oom_score_adj = {restrict_oom}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{RUNC}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{RRUN}]
      runtime_type = "io.containerd.rrun.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{RUNC}]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{}"
    conf_dir = "{}"
    max_conf_num = 1
"#,
        cni_bin_dir.display(),
        conf_dir.display(),
        restrict_oom = !has_cap_sys_resource(),
    )
}

/// Whether this process may lower an oom_score_adj (CAP_SYS_RESOURCE in
/// its effective set): some sandboxes' root has not.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    status_field(&status, "CapEff")
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// Field 22 of /proc/PID/stat (the start time), to tell a process from a
/// later one with the same pid.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19).map(String::from)
}

/// Processes whose command line contains any of `needles`.
fn processes_naming<S: AsRef<str>>(needles: &[S]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            needles
                .iter()
                .any(|n| cmd.contains(n.as_ref()))
                .then_some((pid, cmd.trim().to_string()))
        })
        .collect()
}
