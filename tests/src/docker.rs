//! A private dockerd (Debian's docker.io, installed by `make deps` with no
//! system daemon) for a test: data root, exec root, pid file and API socket
//! in a temp dir, rrun added as the runtime `rrun`, the cgroupfs driver with
//! a cgroup parent of the test's own, no iptables (published ports go
//! through docker-proxy) on a bridge the test makes, `rrun-test-dk0` with
//! 10.89.171.1/24. Dropping it removes the containers, stops the daemon
//! (and its containerd, shims, docker-proxy), unmounts what it left under
//! the temp dir, deletes the bridge and removes what dockerd and its
//! containerd made outside their roots whatever their flags say
//! (/etc/docker/key.json, /run/docker, /run/containerd entries) and the
//! cgroup BuildKit makes below the test's (`docker build`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::containerd::RunContainerd;
use crate::{assert_ok, output_via_files, stdout, CgroupParent};

pub const BRIDGE: &str = "rrun-test-dk0";
pub const BRIDGE_ADDR: &str = "10.89.171.1/24";

/// The Docker client: Debian's, the daemon's own version (a newer client
/// elsewhere in PATH would work too, through API version negotiation).
fn docker_client() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// Paths outside the daemon's roots that dockerd or its containerd make.
const STRAYS: [&str; 3] = ["/etc/docker/key.json", "/etc/docker", "/run/docker"];

pub struct Dockerd {
    pub dir: tempfile::TempDir,
    pub cgroup_parent: CgroupParent,
    daemon: Option<Child>,
    strays: Vec<&'static str>,
    run_containerd: Vec<PathBuf>,
    _one: RunContainerd,
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// What dockerd's containerd keeps under /run/containerd (shim sockets,
/// fifos, the shim's runtime roots of namespace moby).
fn run_containerd_entries() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["fifo", "s"]
        .iter()
        .filter_map(|d| std::fs::read_dir(Path::new("/run/containerd").join(d)).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .collect();
    for sub in ["runc", "rrun"] {
        let p = Path::new("/run/containerd").join(sub).join("moby");
        if p.exists() {
            out.push(p);
        }
    }
    out
}

impl Dockerd {
    /// Starts the daemon with `rrun` (the binary under test) as a runtime.
    pub fn start(rrun: &Path) -> Dockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists() || which("dockerd"),
            "dockerd is missing (make deps installs Debian's docker.io)"
        );
        assert!(
            !link_exists(BRIDGE),
            "{BRIDGE} exists: a dockerd test left it or runs already"
        );
        // dockerd's containerd keeps shim sockets in /run/containerd
        let one = RunContainerd::take();
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-dockerd")
            .tempdir()
            .unwrap();
        let strays = STRAYS
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let mut d = Dockerd {
            dir,
            cgroup_parent: CgroupParent::default(),
            daemon: None,
            strays,
            run_containerd: run_containerd_entries(),
            _one: one,
        };
        for args in [
            vec!["link", "add", BRIDGE, "type", "bridge"],
            vec!["addr", "add", BRIDGE_ADDR, "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert_ok(&out, &format!("ip {args:?}"));
        }
        let p = d.dir.path();
        std::fs::write(p.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", p.join("docker.sock").display()))
            .args(["--bridge", BRIDGE])
            .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", &d.cgroup_parent.0])
            .arg("--add-runtime")
            .arg(format!("rrun={}", rrun.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        d.daemon = Some(daemon);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.docker(&["info"]).status.success() {
            let exited = d.daemon.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "dockerd did not start ({exited:?}): {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "120", docker_client(), "-H"])
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .stdin(Stdio::null());
        c
    }

    /// `docker ARGS` against this daemon, output captured (through files:
    /// a detached container must not hold a pipe).
    pub fn docker(&self, args: &[&str]) -> Output {
        output_via_files(self.command().args(args))
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert_ok(&out, &format!("docker {args:?}"));
        stdout(&out)
    }

    /// Stops the daemon: TERM (it stops its containers and containerd),
    /// KILL after 20 s.
    fn stop(&mut self) {
        let Some(mut d) = self.daemon.take() else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = d.kill();
        let _ = d.wait();
    }
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
}

/// Processes whose command line (arguments joined by spaces) contains
/// every one of `needles`.
fn processes_mentioning(needles: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let line = String::from_utf8_lossy(&c).replace('\0', " ");
                needles.iter().all(|n| line.contains(n))
            })
        })
        .collect()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = stdout(&self.docker(&["ps", "-aq"]));
            for id in ids.lines() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.stop();
        // its containerd and shims (they name the exec root), docker-proxy
        let exec_root = self.dir.path().join("exec");
        let exec_root = exec_root.to_string_lossy();
        let left = [
            processes_mentioning(&[&exec_root]),
            processes_mentioning(&["docker-proxy", "-container-ip 10.89.171."]),
        ];
        for pid in left.iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let mut mounts = crate::mounts_under(self.dir.path());
        mounts.reverse();
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
        // BuildKit's RUN steps run in cgroups below `PARENT/buildkit`,
        // which it leaves; the parent itself goes with `cgroup_parent`
        for d in crate::cgroup_dirs(&format!("{}/buildkit", self.cgroup_parent.0)) {
            let _ = std::fs::remove_dir(d);
        }
        for p in &self.strays {
            let p = Path::new(p);
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
        for e in run_containerd_entries() {
            if self.run_containerd.contains(&e) {
                continue;
            }
            let _ = if e.is_dir() {
                std::fs::remove_dir_all(&e)
            } else {
                std::fs::remove_file(&e)
            };
        }
        // the data root holds overlay directories only root can remove
        let _ = std::fs::remove_dir_all(self.dir.path().join("data"));
    }
}
