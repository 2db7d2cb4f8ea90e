//! Guards that undo what a test's containers and plugins did to the host
//! (nat tables and chains, bridges, leases, run directories), also when the
//! test panics.

use std::path::Path;
use std::process::Command;

/// The reference portmap leaves its shared iptables chains (and, through
/// iptables-nft, the `ip nat` table) behind even after every DEL: remove
/// them when the test created them. The chains are shared by every test
/// that runs the reference portmap, so such tests (of one test binary) hold
/// one lock: one test's cleanup must not delete a chain another is using.
pub struct ReferenceIptablesCleanup {
    /// (iptables, iptables-save, nft family), and whether the nat table
    /// existed before the test
    families: Vec<(&'static str, &'static str, &'static str, bool)>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static REFERENCE_IPTABLES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl ReferenceIptablesCleanup {
    pub fn new() -> Self {
        // a failed test poisons the lock; the next one still cleans up
        let serial = REFERENCE_IPTABLES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let had = |family: &str| {
            Command::new("nft")
                .args(["list", "table", family, "nat"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        ReferenceIptablesCleanup {
            families: vec![
                ("iptables", "iptables-save", "ip", had("ip")),
                ("ip6tables", "ip6tables-save", "ip6", had("ip6")),
            ],
            _serial: serial,
        }
    }
}

impl Default for ReferenceIptablesCleanup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReferenceIptablesCleanup {
    fn drop(&mut self) {
        for (tool, save, family, had_table) in &self.families {
            let ipt = |args: &[String]| {
                let _ = Command::new(tool)
                    .args(["-w", "-t", "nat"])
                    .args(args)
                    .output();
            };
            if let Ok(out) = Command::new(save).args(["-t", "nat"]).output() {
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                // jumps into CNI chains from the built-in chains
                for line in text.lines().filter(|l| l.contains("-j CNI-")) {
                    let Some(rest) = line.strip_prefix("-A ") else {
                        continue;
                    };
                    if ["PREROUTING ", "OUTPUT ", "POSTROUTING "]
                        .iter()
                        .any(|c| rest.starts_with(c))
                    {
                        let mut args = vec!["-D".to_string()];
                        args.extend(shell_words(rest));
                        ipt(&args);
                    }
                }
                let chains: Vec<String> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix(':'))
                    .filter(|l| l.starts_with("CNI-"))
                    .map(|l| l.split_whitespace().next().unwrap().to_string())
                    .collect();
                for c in &chains {
                    ipt(&["-F".to_string(), c.clone()]);
                }
                for c in &chains {
                    ipt(&["-X".to_string(), c.clone()]);
                }
            }
            if !had_table {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, "nat"])
                    .output();
            }
        }
    }
}

/// Split an iptables-save rule into arguments (double-quoted comments kept
/// together).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The reference plugins' iptables nat lines of container `id` (their
/// comments name it) and the per-container chains there are.
pub fn reference_nat_of(id: &str) -> Vec<String> {
    let out = Command::new("iptables-save")
        .args(["-t", "nat"])
        .output()
        .unwrap();
    crate::stdout(&out)
        .lines()
        .filter(|l| {
            l.contains(&format!("id: \\\"{id}\\\""))
                || (l.starts_with(":CNI-") && !l.starts_with(":CNI-HOSTPORT-"))
        })
        .map(str::to_string)
        .collect()
}

/// Deletes nftables table `family name` on drop unless it existed before.
pub struct NftTableCleanup(&'static str, &'static str, bool);

impl NftTableCleanup {
    pub fn new(family: &'static str, name: &'static str) -> Self {
        let had = Command::new("nft")
            .args(["list", "table", family, name])
            .output()
            .is_ok_and(|o| o.status.success());
        NftTableCleanup(family, name, had)
    }
}

impl Drop for NftTableCleanup {
    fn drop(&mut self) {
        if !self.2 {
            let _ = Command::new("nft")
                .args(["delete", "table", self.0, self.1])
                .output();
        }
    }
}

/// A host link (bridge, dummy, veth end) deleted on drop.
pub struct HostLink(pub String);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// Where host-local keeps the leases of rbox's default network.
pub const RBOX_LEASES: &str = "/var/lib/cni/networks/rbox";

/// rbox's default bridge (rbox0) and its leases dir, removed on drop if
/// the test made them.
pub struct HostBridgeCleanup {
    had_bridge: bool,
    had_leases: bool,
    had_cni_dir: bool,
}

impl HostBridgeCleanup {
    pub fn new() -> Self {
        HostBridgeCleanup {
            had_bridge: Path::new("/sys/class/net/rbox0").exists(),
            had_leases: Path::new(RBOX_LEASES).exists(),
            had_cni_dir: Path::new("/var/lib/cni").exists(),
        }
    }
}

impl Default for HostBridgeCleanup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HostBridgeCleanup {
    fn drop(&mut self) {
        if !self.had_bridge {
            let _ = Command::new("ip").args(["link", "del", "rbox0"]).output();
        }
        if !self.had_leases {
            let _ = std::fs::remove_dir_all(RBOX_LEASES);
            let _ = std::fs::remove_dir("/var/lib/cni/networks");
        }
        if !self.had_cni_dir {
            let _ = std::fs::remove_dir("/var/lib/cni");
        }
    }
}

/// The host directories rbox and its shims make for containers: the shims'
/// socket dir /run/containerd/s, /run/netns (rbox makes it for its
/// namespaces and leaves it, as `ip netns` does) and /run/rbox/ports (the
/// host-port claims and their lock). On drop each is removed if it was not
/// there before, and only when empty (but for the ports lock): anything
/// left in them would be a bug for the test to see.
pub struct RunDirs {
    had_run_containerd: bool,
    had_netns_dir: bool,
    had_ports_dir: bool,
}

impl RunDirs {
    pub fn new() -> Self {
        RunDirs {
            had_run_containerd: Path::new("/run/containerd").exists(),
            had_netns_dir: Path::new("/run/netns").exists(),
            had_ports_dir: Path::new("/run/rbox/ports").exists(),
        }
    }
}

impl Default for RunDirs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RunDirs {
    fn drop(&mut self) {
        if !self.had_netns_dir {
            let _ = std::fs::remove_dir("/run/netns");
        }
        if !self.had_ports_dir {
            let _ = std::fs::remove_file("/run/rbox/ports/lock");
            let _ = std::fs::remove_dir("/run/rbox/ports");
            let _ = std::fs::remove_dir("/run/rbox");
        }
        if !self.had_run_containerd {
            let _ = std::fs::remove_dir("/run/containerd/s");
            let _ = std::fs::remove_dir("/run/containerd");
        }
    }
}
