//! The one owner of `waitpid`.
//!
//! The shim is the child subreaper of everything it starts: the rrun
//! commands, and the container and exec processes that rrun leaves behind.
//! `Command::status()` would race a `waitpid(-1)` loop for the same child,
//! so nothing else in the shim waits: a command or a container process
//! subscribes to its pid and receives the exit status from here.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: i32,
    /// The exit code, or 128 + the signal that killed it (as a shell reports it).
    pub code: i32,
    pub at: SystemTime,
}

/// Exits of children nobody subscribed to yet are kept this long (at most
/// this many), so a process that dies before its pid file is read is not lost.
const UNCLAIMED_MAX: usize = 4096;

#[derive(Default)]
struct Table {
    waiters: HashMap<i32, Sender<Exit>>,
    unclaimed: HashMap<i32, Exit>,
}

pub struct Reaper {
    table: Mutex<Table>,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

impl Reaper {
    /// The process-wide reaper; the first call starts its thread, which
    /// handles SIGCHLD. Call it before any child exists.
    pub fn get() -> &'static Reaper {
        REAPER.get_or_init(|| {
            let signals = signal_hook::iterator::Signals::new([libc::SIGCHLD])
                .expect("register a SIGCHLD handler");
            std::thread::Builder::new()
                .name("reaper".into())
                .spawn(move || {
                    let mut signals = signals;
                    // children that ended before the handler existed
                    Reaper::get().reap_all();
                    for _ in signals.forever() {
                        Reaper::get().reap_all();
                    }
                })
                .expect("spawn the reaper thread");
            Reaper {
                table: Mutex::new(Table::default()),
            }
        })
    }

    fn reap_all(&self) {
        loop {
            let exit = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => Exit {
                    pid: pid.as_raw(),
                    code,
                    at: SystemTime::now(),
                },
                Ok(WaitStatus::Signaled(pid, sig, _)) => Exit {
                    pid: pid.as_raw(),
                    code: 128 + sig as i32,
                    at: SystemTime::now(),
                },
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("waitpid: {e}");
                    return;
                }
            };
            self.dispatch(exit);
        }
    }

    fn dispatch(&self, exit: Exit) {
        let mut t = self.table.lock().unwrap();
        match t.waiters.remove(&exit.pid) {
            Some(tx) => {
                let _ = tx.send(exit);
            }
            None => {
                if t.unclaimed.len() >= UNCLAIMED_MAX {
                    let oldest = t.unclaimed.values().min_by_key(|e| e.at).map(|e| e.pid);
                    if let Some(pid) = oldest {
                        t.unclaimed.remove(&pid);
                    }
                }
                t.unclaimed.insert(exit.pid, exit);
            }
        }
    }

    /// Sends the exit of `pid` to `tx` once it happens (at once if it has).
    pub fn subscribe(&self, pid: i32, tx: Sender<Exit>) {
        let mut t = self.table.lock().unwrap();
        match t.unclaimed.remove(&pid) {
            Some(exit) => {
                let _ = tx.send(exit);
            }
            None => {
                t.waiters.insert(pid, tx);
            }
        }
    }

    /// Spawns `cmd` and subscribes to its exit before the reaper can see it.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, Receiver<Exit>)> {
        let (tx, rx) = mpsc::channel();
        let mut t = self.table.lock().unwrap();
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // a previous holder of this pid that nobody claimed is not this child
        t.unclaimed.remove(&pid);
        t.waiters.insert(pid, tx);
        Ok((child, rx))
    }
}
