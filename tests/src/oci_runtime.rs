//! `Runtime`: one state root of the runtime under test (runc's CLI), its
//! commands, and the check that a test's containers left nothing.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    assert_ok, cgroup_dirs, mounts_mentioning, output_via_files, rrun_bin, stdout, unique,
    wait_for, Bundle,
};

/// What a `create`/`run` touched, checked when the `Runtime` drops.
struct Tracked {
    bundle: PathBuf,
    cgroup: Option<String>,
}

/// One state root (`--root`) for one test. Drop kills and deletes every
/// container it made, removes the root, and (unless the test already
/// panicked) fails the test if a state dir, cgroup or host mount is left.
pub struct Runtime {
    pub root: tempfile::TempDir,
    ids: RefCell<Vec<String>>,
    tracked: RefCell<Vec<Tracked>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("rrun-test-root")
                .tempdir()
                .unwrap(),
            ids: Default::default(),
            tracked: Default::default(),
        }
    }

    /// A fresh container id, remembered for cleanup.
    pub fn id(&self, prefix: &str) -> String {
        let id = unique(prefix);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `RRUN_BIN --root ROOT` with stdin from /dev/null.
    pub fn command(&self) -> Command {
        let mut c = Command::new(rrun_bin());
        c.arg("--root").arg(self.root.path());
        c.stdin(Stdio::null());
        c
    }

    /// Note the bundle (and its cgroupsPath) of a create/run command line,
    /// so Drop can check they were cleaned up.
    pub fn track(&self, args: &[&str]) {
        if !args.iter().any(|a| *a == "create" || *a == "run") {
            return;
        }
        let mut bundle = None;
        for (i, a) in args.iter().enumerate() {
            if *a == "-b" || *a == "--bundle" {
                bundle = args.get(i + 1).map(PathBuf::from);
            } else if let Some(p) = a.strip_prefix("--bundle=") {
                bundle = Some(PathBuf::from(p));
            }
        }
        let Some(bundle) = bundle else { return };
        let cgroup = std::fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
            .and_then(|v| v["linux"]["cgroupsPath"].as_str().map(String::from));
        self.tracked.borrow_mut().push(Tracked { bundle, cgroup });
    }

    /// Run `RRUN_BIN --root ROOT ARGS...` and capture its output. Output goes
    /// through files, not pipes: a created container inherits the runtime's
    /// stdio and would hold a pipe open long after the runtime exits.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.track(args);
        output_via_files(self.command().args(args))
    }

    /// `run -b BUNDLE ID` in the foreground, output captured.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd(&["run", "-b", bundle.path_str(), id])
    }

    /// `run` under a fresh id, output captured.
    pub fn run_capture(&self, bundle: &Bundle) -> Output {
        let id = self.id("run");
        self.run(bundle, &id)
    }

    /// Run and demand success; returns stdout.
    #[track_caller]
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let out = self.run_capture(bundle);
        assert_ok(&out, "run");
        stdout(&out)
    }

    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd(&["create", "-b", bundle.path_str(), id])
    }

    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        assert_ok(&out, "state");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        self.state(id)["pid"].as_i64().unwrap() as i32
    }

    /// Poll until the container reaches `status` (or panic after 5 s).
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        wait_for(
            &format!("{id} to be {status}"),
            Duration::from_secs(5),
            || self.status(id) == status,
        );
    }

    /// `create` + `start` of a long-running container; returns its id.
    #[track_caller]
    pub fn start_detached(&self, bundle: &Bundle) -> String {
        let id = self.id("ctr");
        assert_ok(&self.create(bundle, &id), "create");
        assert_ok(&self.cmd(&["start", &id]), "start");
        id
    }

    /// The pids of the container (`ps --format json`).
    #[track_caller]
    pub fn pids(&self, id: &str) -> Vec<i32> {
        let out = self.cmd(&["ps", "--format", "json", id]);
        assert_ok(&out, "ps --format json");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        self.exec_with(&[], id, args)
    }

    /// `exec FLAGS ID ARGS`: flags go before the id, as runc requires.
    pub fn exec_with(&self, flags: &[&str], id: &str, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(flags);
        a.push(id);
        a.extend_from_slice(args);
        self.cmd(&a)
    }

    /// `exec` that must succeed; returns stdout.
    #[track_caller]
    pub fn exec_ok(&self, id: &str, args: &[&str]) -> String {
        let out = self.exec(id, args);
        assert_ok(&out, "exec");
        stdout(&out)
    }

    /// What is left of this runtime's containers: a list of problems.
    fn leftovers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for id in self.ids.borrow().iter() {
            if self.root.path().join(id).exists() {
                problems.push(format!("state dir of {id} left under --root"));
            }
        }
        for t in self.tracked.borrow().iter() {
            if let Some(cg) = &t.cgroup {
                // deletion is synchronous in runc; allow a moment for a
                // killed init to be reaped
                let deadline = Instant::now() + Duration::from_secs(2);
                while !cgroup_dirs(cg).is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let left = cgroup_dirs(cg);
                if !left.is_empty() {
                    problems.push(format!("cgroup left: {left:?}"));
                }
            }
            let m = mounts_mentioning(&t.bundle);
            if !m.is_empty() {
                problems.push(format!("host mounts left: {m:?}"));
            }
        }
        let m = mounts_mentioning(self.root.path());
        if !m.is_empty() {
            problems.push(format!("host mounts left under --root: {m:?}"));
        }
        problems
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = output_via_files(self.command().args(["kill", id, "KILL"]));
            let _ = output_via_files(self.command().args(["delete", "--force", id]));
        }
        let problems = self.leftovers();
        if !problems.is_empty() {
            // best effort, so one failure does not leak into the next run
            for t in self.tracked.borrow().iter() {
                if let Some(cg) = &t.cgroup {
                    for d in cgroup_dirs(cg) {
                        let _ = std::fs::remove_dir(d);
                    }
                }
            }
            if !std::thread::panicking() {
                panic!("left behind after the test: {problems:#?}");
            }
        }
    }
}
