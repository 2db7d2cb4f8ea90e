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
            // reaped and recorded under the lock: `subscribe` never sees a
            // child that is gone but whose exit is not in the table yet
            let mut t = self.table.lock().unwrap();
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
            Self::dispatch(&mut t, exit);
        }
    }

    fn dispatch(t: &mut Table, exit: Exit) {
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
        Self::subscribe_in(&mut t, pid, tx, is_live_child(pid));
    }

    /// An unclaimed exit of `pid` is this process's unless `pid` is a live
    /// child now: then it was an earlier holder's (an orphan reparented to
    /// the shim, e.g. a CNI plugin's helper under the exit hook, its exit
    /// kept until the pid numbers wrapped round) and is dropped.
    fn subscribe_in(t: &mut Table, pid: i32, tx: Sender<Exit>, live_child: bool) {
        match t.unclaimed.remove(&pid) {
            Some(exit) if !live_child => {
                let _ = tx.send(exit);
            }
            _ => {
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

/// Whether `pid` is a child of this process that has not been reaped.
fn is_live_child(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // after the command, which is in parentheses and may hold anything
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    ppid == Some(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(pid: i32, code: i32) -> Exit {
        Exit {
            pid,
            code,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn an_unclaimed_exit_goes_to_its_process_and_not_to_a_later_holder_of_the_pid() {
        let mut t = Table::default();
        Reaper::dispatch(&mut t, exit(4242, 3));
        // the process that exited subscribes late: it gets its exit
        let (tx, rx) = mpsc::channel();
        Reaper::subscribe_in(&mut t, 4242, tx, false);
        assert_eq!(rx.try_recv().unwrap().code, 3);
        assert!(t.unclaimed.is_empty() && t.waiters.is_empty());

        // an orphan's exit kept until the pid came round again: the live
        // child now holding the pid waits for its own
        Reaper::dispatch(&mut t, exit(4243, 1));
        let (tx, rx) = mpsc::channel();
        Reaper::subscribe_in(&mut t, 4243, tx, true);
        assert!(rx.try_recv().is_err());
        assert!(t.unclaimed.is_empty());
        Reaper::dispatch(&mut t, exit(4243, 0));
        assert_eq!(rx.try_recv().unwrap().code, 0);
    }

    #[test]
    fn only_unreaped_children_are_live_children() {
        assert!(!is_live_child(std::process::id() as i32));
        assert!(!is_live_child(std::os::unix::process::parent_id() as i32));
        assert!(!is_live_child(i32::MAX));
    }
}
