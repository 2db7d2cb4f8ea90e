//! Forking a process that is born in its cgroup2 directory.
//!
//! Moving a process by writing to a `cgroup.procs` file takes the write
//! side of the kernel's global `cgroup_threadgroup_rwsem`, and the first
//! writer after a quiet spell waits for an RCU grace period (8-12 ms here,
//! docs/performance.md). `clone3(CLONE_INTO_CGROUP)` (Linux 5.7) puts the
//! child in a cgroup2 directory as it is made, under the read side only,
//! which every fork takes anyway. Where clone3 is refused (an older kernel,
//! or a seccomp filter of an outer container answering ENOSYS or EPERM) or
//! fails for any other reason, a plain fork is made and the caller joins the
//! cgroup by writing to it, as before: [`Forked::Child`] says which.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult, Pid};
use tracing::debug;

use crate::error::{ErrnoExt, Result};

/// `struct clone_args` of linux/sched.h up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h; the libc crate defines it for glibc targets only.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub enum Forked {
    Parent(Pid),
    /// `in_cgroup`: the child was born in the cgroup2 directory it was
    /// given; otherwise it still has to join it.
    Child {
        in_cgroup: bool,
    },
}

/// Fork like `fork(2)`; with `cgroup2` (a directory of a cgroup2 hierarchy)
/// the child is made in that cgroup when the kernel allows.
///
/// Only for a single-threaded caller, like `fork`; the child must leave with
/// `_exit` or `execve`, or fork again before doing more than a short,
/// self-contained job: the C library is not told about a raw clone3, so in
/// the child it still caches the parent's thread id. The only uses of that
/// id in what a child of rrun runs are `raise` and `abort` (which would
/// signal the parent's thread): the child's panics therefore end in
/// `_exit` instead of `abort`. A child made by the C library's `fork` from
/// it has its own id again.
pub fn fork_into(cgroup2: Option<BorrowedFd>) -> Result<Forked> {
    if let Some(fd) = cgroup2 {
        match clone_into_cgroup(fd) {
            Ok(0) => {
                exit_on_panic();
                return Ok(Forked::Child { in_cgroup: true });
            }
            Ok(child) => return Ok(Forked::Parent(Pid::from_raw(child))),
            Err(e) => {
                debug!("clone3(CLONE_INTO_CGROUP): {e}; forking and joining the cgroup by a write")
            }
        }
    }
    // SAFETY: the caller is single-threaded (documented above); the child
    // only runs rrun's code and leaves with _exit or execve.
    match unsafe { fork() }.op(|| "fork".into())? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child { in_cgroup: false }),
    }
}

/// clone3 with only CLONE_INTO_CGROUP: a fork whose child starts in `fd`'s
/// cgroup. Returns the child's pid in the parent and 0 in the child.
fn clone_into_cgroup(fd: BorrowedFd) -> std::result::Result<i32, Errno> {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 reads `size` bytes of `args`, which outlives the call.
    // Without CLONE_VM the child runs on a copy of this address space, as
    // after fork, and returns from this call with 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(ret).map(|pid| pid as i32)
}

/// In a child of a raw clone3: a panic prints its message as usual and
/// then `_exit`s, so that `abort` never runs with the parent's thread id.
fn exit_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        // SAFETY: ends this process at once, as the panic would have.
        unsafe { libc::_exit(101) }
    }));
}
