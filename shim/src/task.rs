//! The ttrpc `Task` service: containers and their processes, driven
//! through rrun, with events sent to containerd in order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::ExitSignal;
use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageDyn, MessageField};
use containerd_shim_protos::shim::oci::Options;
use containerd_shim_protos::ttrpc::{self, TtrpcContext};
use containerd_shim_protos::Task;

use crate::client::InitStatus;
use crate::error::{Result, ShimError};
use crate::io::{Owner, PendingIo, ProcessIo, StdioPaths};
use crate::oom::{MemoryCgroup, OomWatch};
use crate::reaper::{Exit, Reaper};
use crate::rrun::{Launch, Rrun};
use cgroup_metrics::Cgroup;

type TtrpcResult<T> = ttrpc::Result<T>;

/// Where rrun keeps state when the runtime options name no root; one
/// directory per containerd namespace below it.
pub const DEFAULT_ROOT: &str = "/run/containerd/rrun";
/// Written in the bundle at create, read by `delete` after a shim died.
pub const RUNTIME_FILE: &str = "rrun.json";
/// How long Delete waits for a process's output to be copied out.
const IO_DRAIN: Duration = Duration::from_secs(2);
/// Stack of the shim's own long-lived threads, which do little but wait.
pub const IDLE_STACK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

struct Process {
    pid: i32,
    status: Status,
    exit: Option<Exit>,
    paths: StdioPaths,
    io: Option<ProcessIo>,
    /// exec processes: the OCI process JSON containerd sent
    spec: Vec<u8>,
}

impl Process {
    fn new(paths: StdioPaths) -> Process {
        Process {
            pid: 0,
            status: Status::Created,
            exit: None,
            paths,
            io: None,
            spec: Vec::new(),
        }
    }
}

struct Container {
    bundle: PathBuf,
    rrun: Rrun,
    init: Process,
    execs: HashMap<String, Process>,
    rootfs_mounted: bool,
    /// TaskOOM events sent (by the watcher or at exit)
    ooms: Arc<AtomicU64>,
    /// the container's memory cgroup (v1 or v2), where OOM kills are counted
    memory: Option<MemoryCgroup>,
    /// the container's cgroup (its init's), for Stats
    cgroup: Option<Cgroup>,
}

impl Container {
    fn process(&self, id: &str, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| ShimError::ExecNotFound {
                id: id.into(),
                exec_id: exec_id.into(),
            })
    }

    fn process_mut(&mut self, id: &str, exec_id: &str) -> Result<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::ExecNotFound {
                id: id.into(),
                exec_id: exec_id.into(),
            })
    }
}

type Event = (String, Box<dyn MessageDyn>);

struct Shared {
    namespace: String,
    containers: Mutex<HashMap<String, Container>>,
    /// notified whenever a process exits
    exited: Condvar,
    events: Mutex<Sender<Event>>,
    exits: Mutex<Sender<Exit>>,
    shutdown: Arc<ExitSignal>,
}

#[derive(Clone)]
pub struct TaskService {
    s: Arc<Shared>,
}

fn timestamp(t: SystemTime) -> MessageField<Timestamp> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    MessageField::some(ts)
}

impl TaskService {
    pub fn new(namespace: &str, publisher: RemotePublisher, shutdown: Arc<ExitSignal>) -> Self {
        Reaper::get();
        let (events, events_rx) = mpsc::channel();
        let (exits, exits_rx) = mpsc::channel();
        let s = Arc::new(Shared {
            namespace: namespace.into(),
            containers: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
            events: Mutex::new(events),
            exits: Mutex::new(exits),
            shutdown,
        });
        let ns = namespace.to_string();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || forward_events(publisher, &ns, events_rx))
            .expect("spawn the events thread");
        let svc = TaskService { s };
        let handler = svc.clone();
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || handler.handle_exits(exits_rx))
            .expect("spawn the exits thread");
        svc
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.s.containers.lock().unwrap()
    }

    fn send(&self, topic: &str, event: impl MessageDyn) {
        let _ = self
            .s
            .events
            .lock()
            .unwrap()
            .send((topic.into(), Box::new(event)));
    }

    fn watch(&self, pid: i32) {
        Reaper::get().subscribe(pid, self.s.exits.lock().unwrap().clone());
    }

    /// Records each exit of a container process and publishes TaskExit.
    /// Start and Exec hold the container table while they start a process
    /// and send TaskStart/TaskExecStarted, so TaskExit always comes after.
    fn handle_exits(&self, exits: Receiver<Exit>) {
        for exit in exits {
            let mut on_exit = None;
            let mut all = self.lock();
            for (id, c) in all.iter_mut() {
                let procs = std::iter::once(("", &mut c.init))
                    .chain(c.execs.iter_mut().map(|(k, v)| (k.as_str(), v)));
                for (exec_id, p) in procs {
                    if p.pid != exit.pid || p.exit.is_some() {
                        continue;
                    }
                    if exec_id.is_empty() {
                        // an OOM kill that ended the container before the
                        // watcher's first look
                        let kills = c.memory.as_ref().map(MemoryCgroup::kills).unwrap_or(0);
                        if kills
                            > c.ooms
                                .swap(kills.max(c.ooms.load(Ordering::SeqCst)), Ordering::SeqCst)
                        {
                            let mut e = ev::TaskOOM::new();
                            e.container_id = id.clone();
                            self.send("/tasks/oom", e);
                        }
                    }
                    p.exit = Some(exit);
                    p.status = Status::Stopped;
                    if let Some(io) = p.io.as_mut() {
                        // the output is copied out before containerd hears of the exit
                        io.close_stdin();
                    }
                    let mut e = ev::TaskExit::new();
                    e.container_id = id.clone();
                    e.id = if exec_id.is_empty() {
                        id.clone()
                    } else {
                        exec_id.into()
                    };
                    e.pid = exit.pid as u32;
                    e.exit_status = exit.code as u32;
                    e.exited_at = timestamp(exit.at);
                    self.send("/tasks/exit", e);
                    if exec_id.is_empty() {
                        InitStatus::Exited(exit.code).record(&c.bundle);
                        on_exit = crate::client::on_exit_command(&c.bundle, id, exit.code);
                    }
                }
            }
            self.s.exited.notify_all();
            drop(all);
            // not waited for here: it may well call back (delete, shutdown)
            if let Some(mut cmd) = on_exit {
                if let Err(e) = Reaper::get().spawn(&mut cmd) {
                    log::warn!("on-exit command: {e}");
                }
            }
        }
    }

    fn do_create(&self, req: &api::CreateTaskRequest) -> Result<u32> {
        let mut all = self.lock();
        if all.contains_key(&req.id) {
            return Err(ShimError::ContainerExists(req.id.clone()));
        }
        if !req.checkpoint.is_empty() {
            return Err(ShimError::Unimplemented("restore from a checkpoint"));
        }
        let bundle = PathBuf::from(&req.bundle);
        let opts = runtime_options(req.options.as_ref())?;
        let rrun = Rrun {
            binary: resolve_binary(&opts.binary_name)?,
            root: runtime_root(&opts.root, &self.s.namespace),
        };
        write_runtime_file(&bundle, &rrun)?;
        let rootfs = bundle.join("rootfs");
        mount_rootfs(&req.rootfs, &rootfs)?;
        let paths = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let created = (|| -> Result<(i32, ProcessIo)> {
            let mut pending = PendingIo::new(
                &paths,
                Owner {
                    namespace: &self.s.namespace,
                    id: &req.id,
                },
            )?;
            let pid_file = bundle.join("init.pid");
            rrun.create(
                &req.id,
                Launch {
                    spec: &bundle,
                    pid_file: &pid_file,
                    console_socket: pending.console.as_ref().map(|c| c.path()),
                    log: &bundle.join("log.json"),
                    stdio: std::mem::take(&mut pending.stdio),
                },
            )?;
            let pid = read_pid(&pid_file)?;
            match pending.start() {
                Ok(io) => Ok((pid, io)),
                Err(e) => {
                    let _ = rrun.delete(&req.id, true);
                    Err(e)
                }
            }
        })();
        let (pid, io) = match created {
            Ok(v) => v,
            Err(e) => {
                if !req.rootfs.is_empty() {
                    unmount_rootfs(&rootfs);
                }
                let _ = std::fs::remove_file(bundle.join(RUNTIME_FILE));
                return Err(e);
            }
        };
        let mut init = Process::new(paths);
        init.pid = pid;
        init.io = Some(io);
        let cgroup = Cgroup::of_process(pid);
        all.insert(
            req.id.clone(),
            Container {
                bundle: bundle.clone(),
                rrun: rrun.clone(),
                init,
                execs: HashMap::new(),
                rootfs_mounted: !req.rootfs.is_empty(),
                ooms: Arc::new(AtomicU64::new(0)),
                memory: cgroup.as_ref().and_then(MemoryCgroup::of),
                cgroup,
            },
        );
        self.watch(pid);
        let mut e = ev::TaskCreate::new();
        e.container_id = req.id.clone();
        e.bundle = req.bundle.clone();
        e.rootfs = req.rootfs.clone();
        let mut tio = ev::TaskIO::new();
        tio.stdin = req.stdin.clone();
        tio.stdout = req.stdout.clone();
        tio.stderr = req.stderr.clone();
        tio.terminal = req.terminal;
        e.io = MessageField::some(tio);
        e.pid = pid as u32;
        self.send("/tasks/create", e);
        if let Some(c) = all.get(&req.id) {
            if let Some(memory) = &c.memory {
                self.watch_oom(&req.id, memory, c.ooms.clone());
            }
        }
        Ok(pid as u32)
    }

    /// A thread that sleeps until the kernel signals an OOM in the
    /// container's memory cgroup and sends TaskOOM when its `oom_kill`
    /// count went up; it ends with the cgroup.
    fn watch_oom(&self, id: &str, memory: &MemoryCgroup, ooms: Arc<AtomicU64>) {
        let watch = match OomWatch::new(memory) {
            Ok(Some(w)) => w,
            Ok(None) => return, // no memory controller: no OOM kills to see
            Err(e) => {
                log::warn!("{id}: cannot watch for OOM kills in {memory:?}: {e}");
                return;
            }
        };
        // counted now, before the container starts: the thread may first
        // run after an OOM kill it must still report (v2)
        let mut seen = memory.kills();
        let svc = self.clone();
        let id = id.to_string();
        let memory = memory.clone();
        let _ = std::thread::Builder::new()
            .name("oom".into())
            .stack_size(IDLE_STACK)
            .spawn(move || {
                while watch.wait() {
                    let kills = memory.kills();
                    let oom = match memory {
                        // v1 signals each OOM before the victim is killed
                        // (and counted), so the signal itself is the event
                        MemoryCgroup::V1(_) => true,
                        // v2 signals every counter change, the kill's too
                        MemoryCgroup::V2(_) => kills > seen,
                    };
                    seen = seen.max(kills);
                    if oom {
                        ooms.fetch_add(1, Ordering::SeqCst);
                        let mut e = ev::TaskOOM::new();
                        e.container_id = id.clone();
                        svc.send("/tasks/oom", e);
                    }
                }
            });
    }

    fn do_start(&self, req: &api::StartRequest) -> Result<u32> {
        let mut all = self.lock();
        let c = all
            .get_mut(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        if req.exec_id.is_empty() {
            if c.init.status != Status::Created {
                return Err(ShimError::Precondition {
                    id: req.id.clone(),
                    msg: "already started".into(),
                });
            }
            c.rrun.start(&req.id)?;
            c.init.status = Status::Running;
            let mut e = ev::TaskStart::new();
            e.container_id = req.id.clone();
            e.pid = c.init.pid as u32;
            self.send("/tasks/start", e);
            return Ok(c.init.pid as u32);
        }
        if c.init.status == Status::Stopped {
            return Err(ShimError::Precondition {
                id: req.id.clone(),
                msg: "container is stopped: cannot start an exec process".into(),
            });
        }
        let rrun = c.rrun.clone();
        let bundle = c.bundle.clone();
        let p = c.process_mut(&req.id, &req.exec_id)?;
        if p.status != Status::Created {
            return Err(ShimError::Precondition {
                id: req.id.clone(),
                msg: format!("process {} already started", req.exec_id),
            });
        }
        let spec_file = bundle.join(format!("exec-{}.json", req.exec_id));
        let pid_file = bundle.join(format!("exec-{}.pid", req.exec_id));
        let log = bundle.join(format!("exec-{}.log.json", req.exec_id));
        let result = (|| -> Result<(i32, ProcessIo)> {
            std::fs::write(&spec_file, &p.spec).map_err(ShimError::io("write", &spec_file))?;
            let mut pending = PendingIo::new(
                &p.paths,
                Owner {
                    namespace: &self.s.namespace,
                    id: &req.id,
                },
            )?;
            rrun.exec(
                &req.id,
                Launch {
                    spec: &spec_file,
                    pid_file: &pid_file,
                    console_socket: pending.console.as_ref().map(|c| c.path()),
                    log: &log,
                    stdio: std::mem::take(&mut pending.stdio),
                },
            )?;
            let pid = read_pid(&pid_file)?;
            Ok((pid, pending.start()?))
        })();
        for f in [&spec_file, &pid_file, &log] {
            let _ = std::fs::remove_file(f);
        }
        let (pid, io) = result?;
        p.pid = pid;
        p.io = Some(io);
        p.status = Status::Running;
        self.watch(pid);
        let mut e = ev::TaskExecStarted::new();
        e.container_id = req.id.clone();
        e.exec_id = req.exec_id.clone();
        e.pid = pid as u32;
        self.send("/tasks/exec-started", e);
        Ok(pid as u32)
    }

    fn do_delete(&self, req: &api::DeleteRequest) -> Result<api::DeleteResponse> {
        let mut all = self.lock();
        let c = all
            .get_mut(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        let mut resp = api::DeleteResponse::new();
        if !req.exec_id.is_empty() {
            let p = c.process(&req.id, &req.exec_id)?;
            if matches!(p.status, Status::Running | Status::Paused) {
                return Err(ShimError::Precondition {
                    id: req.id.clone(),
                    msg: format!("process {} is running: kill it first", req.exec_id),
                });
            }
            let mut p = c.execs.remove(&req.exec_id).expect("found above");
            fill_exit(
                &p,
                &mut resp.pid,
                &mut resp.exit_status,
                &mut resp.exited_at,
            );
            drop(all);
            if let Some(io) = p.io.as_mut() {
                io.close_stdin();
                // as runc's shim does: the output is all out once delete returns
                io.wait(IO_DRAIN);
            }
            return Ok(resp);
        }
        if matches!(c.init.status, Status::Running | Status::Paused) {
            return Err(ShimError::Precondition {
                id: req.id.clone(),
                msg: "the container is running: kill it first".into(),
            });
        }
        c.rrun.delete(&req.id, true)?;
        if c.init.exit.is_none() {
            // a created container: rrun killed its init; wait for the reaper
            let pid = c.init.pid;
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let done = all
                    .get(&req.id)
                    .is_none_or(|c| c.init.exit.is_some() || c.init.pid != pid);
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if done || left.is_zero() {
                    break;
                }
                all = self.s.exited.wait_timeout(all, left).unwrap().0;
            }
        }
        let mut c = all
            .remove(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        // a Wait still blocked on this container answers "not found" now
        self.s.exited.notify_all();
        drop(all);
        if c.rootfs_mounted {
            unmount_rootfs(&c.bundle.join("rootfs"));
        }
        let _ = std::fs::remove_file(c.bundle.join(RUNTIME_FILE));
        if let Some(io) = c.init.io.as_mut() {
            io.wait(IO_DRAIN);
        }
        fill_exit(
            &c.init,
            &mut resp.pid,
            &mut resp.exit_status,
            &mut resp.exited_at,
        );
        if c.init.exit.is_none() {
            resp.exit_status = 128 + libc::SIGKILL as u32;
            resp.exited_at = timestamp(SystemTime::now());
        }
        let mut e = ev::TaskDelete::new();
        e.container_id = req.id.clone();
        e.id = req.id.clone();
        e.pid = resp.pid;
        e.exit_status = resp.exit_status;
        e.exited_at = resp.exited_at.clone();
        self.send("/tasks/delete", e);
        Ok(resp)
    }

    fn do_kill(&self, req: &api::KillRequest) -> Result<()> {
        let all = self.lock();
        let c = all
            .get(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        let p = c.process(&req.id, &req.exec_id)?;
        if p.status == Status::Stopped {
            let what = if req.exec_id.is_empty() {
                &req.id
            } else {
                &req.exec_id
            };
            return Err(ShimError::Finished(what.clone()));
        }
        if req.exec_id.is_empty() {
            c.rrun.kill(&req.id, req.signal, req.all)?;
            return Ok(());
        }
        if p.pid == 0 {
            return Err(ShimError::Precondition {
                id: req.id.clone(),
                msg: format!("process {} is not started", req.exec_id),
            });
        }
        let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
            ShimError::Invalid {
                what: "signal",
                msg: format!("{} is not a signal", req.signal),
            }
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig)
            .map_err(|e| ShimError::io("kill process", req.exec_id.clone())(e.into()))
    }

    fn do_wait(&self, req: &api::WaitRequest) -> Result<api::WaitResponse> {
        let mut all = self.lock();
        loop {
            let c = all
                .get(&req.id)
                .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
            let p = c.process(&req.id, &req.exec_id)?;
            if let Some(exit) = p.exit {
                let mut resp = api::WaitResponse::new();
                resp.exit_status = exit.code as u32;
                resp.exited_at = timestamp(exit.at);
                return Ok(resp);
            }
            all = self.s.exited.wait(all).unwrap();
        }
    }

    fn do_state(&self, req: &api::StateRequest) -> Result<api::StateResponse> {
        let all = self.lock();
        let c = all
            .get(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        let p = c.process(&req.id, &req.exec_id)?;
        let mut r = api::StateResponse::new();
        r.id = if req.exec_id.is_empty() {
            req.id.clone()
        } else {
            req.exec_id.clone()
        };
        r.bundle = c.bundle.display().to_string();
        r.pid = p.pid as u32;
        r.status = match p.status {
            Status::Created => api::Status::CREATED,
            Status::Running => api::Status::RUNNING,
            Status::Paused => api::Status::PAUSED,
            Status::Stopped => api::Status::STOPPED,
        }
        .into();
        r.stdin = p.paths.stdin.clone();
        r.stdout = p.paths.stdout.clone();
        r.stderr = p.paths.stderr.clone();
        r.terminal = p.paths.terminal;
        r.exec_id = req.exec_id.clone();
        if let Some(exit) = p.exit {
            r.exit_status = exit.code as u32;
            r.exited_at = timestamp(exit.at);
        }
        Ok(r)
    }

    fn do_exec(&self, req: &api::ExecProcessRequest) -> Result<()> {
        let mut all = self.lock();
        let c = all
            .get_mut(&req.id)
            .ok_or_else(|| ShimError::ContainerNotFound(req.id.clone()))?;
        if c.execs.contains_key(&req.exec_id) {
            return Err(ShimError::ExecExists {
                id: req.id.clone(),
                exec_id: req.exec_id.clone(),
            });
        }
        if c.init.status == Status::Stopped {
            return Err(ShimError::Precondition {
                id: req.id.clone(),
                msg: "container is stopped: cannot exec".into(),
            });
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        serde_json::from_slice::<oci_spec::runtime::Process>(&spec).map_err(|e| {
            ShimError::Invalid {
                what: "exec process spec",
                msg: e.to_string(),
            }
        })?;
        let mut p = Process::new(StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        });
        p.spec = spec;
        c.execs.insert(req.exec_id.clone(), p);
        let mut e = ev::TaskExecAdded::new();
        e.container_id = req.id.clone();
        e.exec_id = req.exec_id.clone();
        self.send("/tasks/exec-added", e);
        Ok(())
    }

    fn with_process<T>(
        &self,
        id: &str,
        exec_id: &str,
        f: impl FnOnce(&Process) -> Result<T>,
    ) -> Result<T> {
        let all = self.lock();
        let c = all
            .get(id)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))?;
        f(c.process(id, exec_id)?)
    }

    fn pause_resume(&self, id: &str, pause: bool) -> Result<()> {
        let mut all = self.lock();
        let c = all
            .get_mut(id)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))?;
        if pause {
            c.rrun.pause(id)?;
            c.init.status = Status::Paused;
            InitStatus::Paused.record(&c.bundle);
            let mut e = ev::TaskPaused::new();
            e.container_id = id.into();
            self.send("/tasks/paused", e);
        } else {
            c.rrun.resume(id)?;
            c.init.status = Status::Running;
            InitStatus::Running.record(&c.bundle);
            let mut e = ev::TaskResumed::new();
            e.container_id = id.into();
            self.send("/tasks/resumed", e);
        }
        Ok(())
    }

    fn rrun_of(&self, id: &str) -> Result<(Rrun, PathBuf)> {
        let all = self.lock();
        let c = all
            .get(id)
            .ok_or_else(|| ShimError::ContainerNotFound(id.into()))?;
        Ok((c.rrun.clone(), c.bundle.clone()))
    }

    fn do_pids(&self, id: &str) -> Result<api::PidsResponse> {
        let (rrun, _) = self.rrun_of(id)?;
        let pids = rrun.ps(id)?;
        let mut r = api::PidsResponse::new();
        for pid in pids {
            let mut info = api::ProcessInfo::new();
            info.pid = pid as u32;
            r.processes.push(info);
        }
        Ok(r)
    }

    fn do_stats(&self, id: &str) -> Result<api::StatsResponse> {
        let cgroup = {
            let all = self.lock();
            let c = all
                .get(id)
                .ok_or_else(|| ShimError::ContainerNotFound(id.into()))?;
            // found at create; else where the init is now
            c.cgroup.clone().or_else(|| Cgroup::of_process(c.init.pid))
        };
        let cgroup = cgroup.ok_or_else(|| ShimError::Invalid {
            what: "stats",
            msg: format!("the cgroup of container {id} was not found"),
        })?;
        let (type_url, m) = crate::stats::of(&cgroup);
        stats_response(type_url, m.as_ref())
    }

    fn do_update(&self, req: &api::UpdateTaskRequest) -> Result<()> {
        let (rrun, bundle) = self.rrun_of(&req.id)?;
        let json = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        serde_json::from_slice::<oci_spec::runtime::LinuxResources>(&json).map_err(|e| {
            ShimError::Invalid {
                what: "update resources",
                msg: e.to_string(),
            }
        })?;
        let file = bundle.join("update-resources.json");
        std::fs::write(&file, &json).map_err(ShimError::io("write", &file))?;
        let r = rrun.update(&req.id, &file);
        let _ = std::fs::remove_file(&file);
        Ok(r?)
    }
}

fn stats_response(type_url: &str, m: &dyn MessageDyn) -> Result<api::StatsResponse> {
    let mut any = Any::new();
    any.type_url = type_url.into();
    any.value = m.write_to_bytes_dyn().map_err(|e| ShimError::Invalid {
        what: "metrics",
        msg: e.to_string(),
    })?;
    let mut r = api::StatsResponse::new();
    r.stats = MessageField::some(any);
    Ok(r)
}

fn fill_exit(p: &Process, pid: &mut u32, status: &mut u32, at: &mut MessageField<Timestamp>) {
    *pid = p.pid as u32;
    if let Some(exit) = p.exit {
        *status = exit.code as u32;
        *at = timestamp(exit.at);
    }
}

/// Publishes events in order; while containerd is away (restarting),
/// retries with a new connection for a while, then drops the event. A
/// publisher whose connection failed is retired ([`crate::retire`]), not
/// dropped: its reader thread could otherwise swallow the request of the
/// next client the shim accepts.
fn forward_events(publisher: RemotePublisher, namespace: &str, events: Receiver<Event>) {
    let mut publisher = Some(publisher);
    for (topic, event) in events {
        let bytes = event.write_to_bytes_dyn().unwrap_or_default();
        let descriptor = event.descriptor_dyn();
        for attempt in 0..50 {
            if publisher.is_none() {
                publisher = std::env::var("TTRPC_ADDRESS")
                    .ok()
                    .and_then(|a| RemotePublisher::new(a).ok());
            }
            if let Some(p) = &publisher {
                let mut msg = descriptor.new_instance();
                let _ = msg.merge_from_bytes_dyn(&bytes);
                let ctx = ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64);
                match p.publish(ctx, &topic, namespace, msg) {
                    Ok(()) => break,
                    Err(e) => {
                        log::warn!("publish {topic} (attempt {attempt}): {e}");
                        if let Some(p) = publisher.take() {
                            crate::retire::retire(p);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

struct RuntimeOpts {
    binary_name: String,
    root: String,
}

fn runtime_options(any: Option<&Any>) -> Result<RuntimeOpts> {
    let mut r = RuntimeOpts {
        binary_name: String::new(),
        root: String::new(),
    };
    if let Some(any) = any {
        if any.type_url.ends_with("containerd.runc.v1.Options") {
            let o = Options::parse_from_bytes(&any.value).map_err(|e| ShimError::Invalid {
                what: "runtime options",
                msg: e.to_string(),
            })?;
            r.binary_name = o.binary_name;
            r.root = o.root;
        } else if any.type_url.ends_with("runtimeoptions.v1.Options") {
            // what CRI sends for a runtime that is not runc: a config file path
            let path = config_path(&any.value).map_err(|e| ShimError::Invalid {
                what: "runtime options",
                msg: e.to_string(),
            })?;
            if !path.is_empty() {
                let text = std::fs::read_to_string(&path)
                    .map_err(ShimError::io("read runtime config", &path))?;
                for (key, value) in config_entries(&text) {
                    match key {
                        "BinaryName" => r.binary_name = value,
                        "Root" => r.root = value,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(r)
}

/// Field 2 (`config_path`) of containerd's `runtimeoptions.v1.Options`.
fn config_path(bytes: &[u8]) -> containerd_shim_protos::protobuf::Result<String> {
    let mut is = containerd_shim_protos::protobuf::CodedInputStream::from_bytes(bytes);
    let mut path = String::new();
    while let Some(tag) = is.read_raw_tag_or_eof()? {
        if tag == (2 << 3) | 2 {
            path = is.read_string()?;
        } else {
            is.skip_field(
                containerd_shim_protos::protobuf::rt::WireType::new(tag & 7)
                    .unwrap_or(containerd_shim_protos::protobuf::rt::WireType::LengthDelimited),
            )?;
        }
    }
    Ok(path)
}

/// `Key = "value"` lines of a runtime config file (a TOML subset).
fn config_entries(text: &str) -> Vec<(&str, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some((k.trim(), v.to_string()))
        })
        .collect()
}

/// The runtime binary: the options' BinaryName (a path, or a name looked up
/// like the default), else `rrun` next to the shim, else `rrun` in PATH.
pub fn resolve_binary(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(p),
            Ok(_) => Err(ShimError::Invalid {
                what: "runtime binary",
                msg: format!("{name} is not a file"),
            }),
            Err(e) => Err(ShimError::io("runtime binary", p)(e)),
        };
    }
    let name = if name.is_empty() { "rrun" } else { name };
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let beside = dir.join(name);
    if beside.symlink_metadata().is_ok() {
        // there, but perhaps a dangling link: name it rather than look further
        return match std::fs::metadata(&beside) {
            Ok(m) if m.is_file() => Ok(beside),
            Ok(_) => Err(ShimError::Invalid {
                what: "runtime binary",
                msg: format!("{} is not a file", beside.display()),
            }),
            Err(e) => Err(ShimError::io("runtime binary", beside)(e)),
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(ShimError::BinaryNotFound {
            name: name.into(),
            dir,
        })
}

pub fn runtime_root(root: &str, namespace: &str) -> PathBuf {
    let root = if root.is_empty() { DEFAULT_ROOT } else { root };
    Path::new(root).join(namespace)
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct RuntimeFile {
    pub binary: PathBuf,
    pub root: PathBuf,
}

fn write_runtime_file(bundle: &Path, rrun: &Rrun) -> Result<()> {
    let path = bundle.join(RUNTIME_FILE);
    let json = serde_json::to_vec(&RuntimeFile {
        binary: rrun.binary.clone(),
        root: rrun.root.clone(),
    })
    .expect("plain struct");
    std::fs::write(&path, json).map_err(ShimError::io("write", path))
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(ShimError::io("read pid file", path))?;
    text.trim().parse().map_err(|_| ShimError::Invalid {
        what: "pid file",
        msg: format!("{}: {text:?} is not a pid", path.display()),
    })
}

fn mount_rootfs(
    mounts: &[containerd_shim_protos::types::mount::Mount],
    rootfs: &Path,
) -> Result<()> {
    for m in mounts {
        if let Err(e) = crate::mount::mount_one(&m.type_, &m.source, &m.options, rootfs) {
            unmount_rootfs(rootfs);
            return Err(e);
        }
    }
    Ok(())
}

pub fn unmount_rootfs(rootfs: &Path) {
    crate::mount::unmount_all(rootfs);
}

impl Task for TaskService {
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let pid = self.do_create(&req)?;
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid;
        Ok(r)
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let pid = self.do_start(&req)?;
        let mut r = api::StartResponse::new();
        r.pid = pid;
        Ok(r)
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        Ok(self.do_state(&req)?)
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        Ok(self.do_wait(&req)?)
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        self.do_kill(&req)?;
        Ok(api::Empty::new())
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        Ok(self.do_delete(&req)?)
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        Ok(self.do_pids(&req.id)?)
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        self.do_exec(&req)?;
        Ok(api::Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        self.with_process(&req.id, &req.exec_id, |p| match &p.io {
            Some(io) => io.resize(req.width, req.height),
            None => Ok(()),
        })?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        self.with_process(&req.id, &req.exec_id, |p| {
            if let Some(io) = &p.io {
                io.close_stdin();
            }
            Ok(())
        })?;
        Ok(api::Empty::new())
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.pause_resume(&req.id, true)?;
        Ok(api::Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        self.pause_resume(&req.id, false)?;
        Ok(api::Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        Ok(self.do_stats(&req.id)?)
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        self.do_update(&req)?;
        Ok(api::Empty::new())
    }

    fn checkpoint(
        &self,
        _: &TtrpcContext,
        _: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(ShimError::Unimplemented("checkpoint (rrun has no checkpoint/restore)").into())
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = self
            .lock()
            .get(&req.id)
            .map(|c| c.init.pid as u32)
            .unwrap_or(0);
        r.version = env!("CARGO_PKG_VERSION").into();
        Ok(r)
    }

    fn shutdown(&self, _: &TtrpcContext, _: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.lock().is_empty() {
            // the socket goes now: the bundle (cwd, with the address file)
            // may be removed as soon as this call returns
            if let Ok(address) = std::fs::read_to_string("address") {
                let _ = std::fs::remove_file(address.trim().trim_start_matches("unix://"));
            }
            self.s.shutdown.signal();
            // the framework then stops the ttrpc server, which joins every
            // handler thread; should one be stuck, exit anyway
            let _ = std::thread::Builder::new().name("exit".into()).spawn(|| {
                std::thread::sleep(Duration::from_secs(3));
                std::process::exit(0);
            });
        }
        Ok(api::Empty::new())
    }
}
