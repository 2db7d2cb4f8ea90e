//! `rbox exec`: a process in a running container.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::error::{io_err, ContainerError, Result};
use super::lookup::find;
use super::record::{Container, LiveStatus};
use super::task::live_status;
use super::terminal::{
    copy_stdin_to, forward_signals, handled_signals, terminal_size, RawTerminal,
};
use crate::bundle;
use crate::names::random_hex;
use crate::oci::process::host_env;
use crate::oci::{added_caps, all_caps, override_process, process_caps, Overrides, SpecError};
use crate::rootfs::IdFiles;
use crate::store::Store;
use crate::supervisor;

/// What `rbox exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// `rbox exec`: a process in a running container, with the container's
/// environment, user, capabilities and limits unless overridden. Returns
/// its exit code (0 at once with `-d`).
pub fn exec(store: &Store, what: &str, es: &ExecSpec) -> Result<i32> {
    if !es.detach {
        // before any thread starts: signals wait for the forwarder
        crate::signals::block(&handled_signals(es.tty, true));
    }
    let c = find(store, what)?;
    // paused or stopped (its record, and its shim's): refused at once; an
    // exec that fails later is looked at again
    if let Some(e) = exec_refused(&c) {
        return Err(e);
    }
    let config = c.bundle.join("config.json");
    let text = fs::read(&config).map_err(io_err("read", &config))?;
    let spec: Spec = serde_json::from_slice(&text).map_err(|source| ContainerError::BadConfig {
        path: config.clone(),
        source,
    })?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(es.cmd.clone()));
    // -u's user (and the container's --group-add for it: config.json's
    // process has them otherwise) is resolved in the container's files
    let files = match es.user {
        Some(_) => IdFiles::read(&c.bundle.join("rootfs"))?,
        None => IdFiles::default(),
    };
    let overrides = Overrides {
        env: &es.env,
        tty: es.tty,
        workdir: es.workdir.as_deref(),
        user: es.user.as_deref(),
        group_add: if es.user.is_some() {
            &c.spec.group_add
        } else {
            &[]
        },
    };
    override_process(&mut process, &overrides, &files, host_env)?;
    // the sets follow the exec's user (root gets the bounding set, another
    // user only what --cap-add asked), --privileged widens the bounding set
    if let Some(caps) = process.capabilities().clone() {
        let all = all_caps();
        let bounding = match es.privileged {
            true => all.clone(),
            false => caps.bounding().clone().unwrap_or_default(),
        };
        let added = added_caps(&c.spec.cap_add, &all)?;
        let uid = process.user().uid();
        process.set_capabilities(Some(
            process_caps(bounding, uid, &added).map_err(SpecError::from)?,
        ));
    }
    let exec_id = format!("exec-{}", random_hex(8));
    let cdir = bundle::container_dir(store, &c.id);
    let fifo = |s: &str| cdir.join(format!("{exec_id}.{s}"));
    let mut io = shim::client::ProcessIo {
        terminal: es.tty,
        ..Default::default()
    };
    let mut made = Vec::new();
    if !es.detach {
        io.stdout = Some(fifo("out"));
        if !es.tty {
            io.stderr = Some(fifo("err"));
        }
        if es.interactive {
            io.stdin = Some(fifo("in"));
        }
        for p in [&io.stdin, &io.stdout, &io.stderr].into_iter().flatten() {
            supervisor::mkfifo(p)?;
            made.push(p.clone());
        }
    }
    let cleanup = |made: &[PathBuf]| made.iter().for_each(|p| drop(fs::remove_file(p)));
    // the readers first: open non-blocking, so without waiting for the shim
    let open_reader = |p: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)
            .map_err(io_err("open", p))
    };
    let readers = (|| -> Result<Vec<(fs::File, bool)>> {
        let mut v = Vec::new();
        if let Some(p) = &io.stdout {
            v.push((open_reader(p)?, false));
        }
        if let Some(p) = &io.stderr {
            v.push((open_reader(p)?, true));
        }
        Ok(v)
    })();
    let readers = match readers {
        Ok(r) => r,
        Err(e) => {
            cleanup(&made);
            return Err(e);
        }
    };
    let client = match supervisor::exec(store, &c, &exec_id, &process, &io) {
        Ok(client) => client,
        Err(e) => {
            cleanup(&made);
            return Err(exec_refused(&c).unwrap_or(e));
        }
    };
    if let Err(e) = client.start_process(&exec_id) {
        let _ = client.delete(&exec_id);
        cleanup(&made);
        let msg = match e {
            shim::client::ClientError::Rpc { msg, .. } => msg,
            e => e.to_string(),
        };
        return Err(exec_refused(&c).unwrap_or(ContainerError::ExecStart(msg)));
    }
    if es.detach {
        return Ok(0);
    }
    let raw = RawTerminal::new(es.tty);
    if es.tty {
        if let Some((w, h)) = terminal_size() {
            let _ = client.resize_pty(&exec_id, w, h);
        }
    }
    if let Some(p) = io.stdin.clone() {
        copy_stdin_to(p);
    }
    // the shim has the FIFOs open now: blocking reads until it closes them
    let copies: Vec<_> = readers
        .into_iter()
        .map(|(f, is_err)| {
            let _ = nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            );
            let fifos = made.clone();
            std::thread::spawn(move || {
                let mut f = f;
                if is_err {
                    let _ = std::io::copy(&mut f, &mut std::io::stderr());
                } else {
                    let mut out = std::io::stdout();
                    let mut buf = [0u8; 32 * 1024];
                    loop {
                        match std::io::Read::read(&mut f, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                use std::io::Write;
                                match out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                                    Ok(()) => {}
                                    // the reader went away (`exec … | head -1`):
                                    // like Docker's CLI, rbox ends; the process
                                    // runs on, its output to a FIFO nobody reads
                                    Err(e) if crate::stdio::closed(&e) => {
                                        fifos.iter().for_each(|p| drop(fs::remove_file(p)));
                                        crate::stdio::exit_closed();
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // one connection: the wait blocks this thread, signals go from another
    let waiter = client.share();
    let (eid, tty) = (exec_id.clone(), es.tty);
    let status = crate::signals::forwarding(
        &handled_signals(es.tty, true),
        move |s| forward_signals(&client, &eid, tty, s),
        || waiter.wait(&exec_id),
    );
    for t in copies {
        let _ = t.join();
    }
    drop(raw);
    let _ = waiter.delete(&exec_id);
    cleanup(&made);
    match status {
        Ok(code) => Ok(code as i32),
        Err(e) => Err(supervisor::map_err(e)),
    }
}

/// Why an exec into `c` cannot run: paused, or not running at all (its
/// shim's record says); `None` if it is running.
fn exec_refused(c: &Container) -> Option<ContainerError> {
    match live_status(c) {
        LiveStatus::Running => None,
        LiveStatus::Paused => Some(ContainerError::Paused(c.name.clone())),
        _ => Some(ContainerError::NotRunning(c.name.clone())),
    }
}
