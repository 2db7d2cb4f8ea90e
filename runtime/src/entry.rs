//! The rrun binary's ELF entry point (x86_64 musl, the `make build`
//! target; runtime/build.rs passes `-e rrun_entry` to the linker): the
//! CVE-2019-5736 re-exec of seal.rs done before anything else runs.
//!
//! `create`, `run` and `exec` start rrun twice: the caller's process only
//! re-executes the binary from a read-only clone of itself. A static PIE
//! first relocates itself (musl's `_start`: some 9,700 pointers in 48
//! pages, each page a copy-on-write fault) and sets up the C and Rust
//! runtimes, a third of a start-up's page faults, all thrown away by the
//! execve. So the entry point checks the command line and re-executes
//! before musl's `_start`: a handful of system calls.
//!
//! Before relocation nothing may touch a pointer stored in the binary's
//! data: [`pre_main`] reads only the stack the kernel made (argc, argv,
//! envp), byte-string literals (addressed relative to the code), and makes
//! its system calls with inline assembly (the C library's wrappers set
//! `errno`, a thread-local, and the thread pointer is not set up yet). It
//! has no panic path. When it does not re-execute (another command, the
//! binary already protected, or any failure), it returns and musl's
//! `_start` runs as usual; `main` then makes the same check
//! ([`crate::seal::ensure_sealed`]) and handles what the fast path leaves:
//! the sealed memfd copy (rootless, kernels before 5.12) and errors.

use core::arch::{asm, global_asm};

global_asm!(
    ".globl rrun_entry",
    ".type rrun_entry,@function",
    "rrun_entry:",
    // as musl's _start: no frame above; rbx (callee-saved) keeps the
    // kernel's stack pointer, where argc, argv and envp are
    "xor ebp, ebp",
    "mov rbx, rsp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {pre_main}",
    "mov rsp, rbx",
    "jmp _start",
    ".size rrun_entry, . - rrun_entry",
    pre_main = sym pre_main,
);

const SYS_CLOSE: usize = 3;
const SYS_OPEN: usize = 2;
const SYS_FCNTL: usize = 72;
const SYS_FSTATFS: usize = 138;
const SYS_EXECVEAT: usize = 322;
const SYS_OPEN_TREE: usize = 428;
const SYS_MOUNT_SETATTR: usize = 442;

/// A raw system call with up to five arguments; returns the kernel's value
/// (a negative errno on failure).
///
/// # Safety
/// The arguments must be valid for system call `n`.
#[inline(always)]
unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for `n`; the syscall
    // instruction clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Whether the NUL-terminated `arg` is `word` (`word` ends in NUL).
///
/// # Safety
/// `arg` must point to a NUL-terminated string.
#[inline(always)]
unsafe fn is(arg: *const u8, word: &[u8]) -> bool {
    let mut i = 0;
    while i < word.len() {
        // SAFETY: `arg` is NUL-terminated and this stops at its NUL: bytes
        // up to a mismatch or the common NUL are read, no further.
        if unsafe { *arg.add(i) } != word[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `mount_setattr(2)`'s argument (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Re-execute from a read-only clone of the binary when the command enters
/// a container and the binary is not protected already; else return.
///
/// # Safety
/// Only for [`rrun_entry`]: `sp` is the initial stack pointer the kernel
/// gave the process (argc, then argv and envp, each NULL-terminated).
unsafe extern "C" fn pre_main(sp: *const usize) {
    // SAFETY: the kernel's initial stack: argc, argv[argc] = NULL, envp.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    // SAFETY: envp starts after argv's NULL.
    let envp = unsafe { argv.add(argc + 1) };
    // as main: any argument that names a command entering a container
    let mut enters = false;
    let mut i = 1;
    while i < argc {
        // SAFETY: argv has argc NUL-terminated strings.
        let arg = unsafe { *argv.add(i) };
        // SAFETY: as above.
        if unsafe { is(arg, b"create\0") || is(arg, b"run\0") || is(arg, b"exec\0") } {
            enters = true;
            break;
        }
        i += 1;
    }
    if !enters {
        return;
    }
    let exe = b"/proc/self/exe\0";
    // SAFETY: open of a NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        syscall5(
            SYS_OPEN,
            exe.as_ptr() as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
            0,
            0,
        )
    };
    if fd < 0 {
        return;
    }
    // SAFETY: fcntl on the fd just opened.
    let seals = unsafe { syscall5(SYS_FCNTL, fd as usize, libc::F_GET_SEALS as usize, 0, 0, 0) };
    let sealed = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: fstatfs writes one struct statfs into `st`.
    let statfs = unsafe {
        syscall5(
            SYS_FSTATFS,
            fd as usize,
            &mut st as *mut libc::statfs as usize,
            0,
            0,
            0,
        )
    };
    // SAFETY: closes the fd opened above.
    unsafe { syscall5(SYS_CLOSE, fd as usize, 0, 0, 0, 0) };
    let read_only = statfs == 0 && st.f_flags as u64 & libc::ST_RDONLY == libc::ST_RDONLY;
    if (seals >= 0 && seals as i32 & sealed == sealed) || read_only {
        return;
    }
    // A detached read-only bind mount of the binary, as seal.rs makes it.
    // SAFETY: open_tree of a NUL-terminated path; returns a new fd.
    let tree = unsafe {
        syscall5(
            SYS_OPEN_TREE,
            libc::AT_FDCWD as usize,
            exe.as_ptr() as usize,
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as usize,
            0,
            0,
        )
    };
    if tree < 0 {
        return;
    }
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = b"\0";
    // SAFETY: mount_setattr on the tree fd with a correctly sized struct
    // that outlives the call.
    let set = unsafe {
        syscall5(
            SYS_MOUNT_SETATTR,
            tree as usize,
            empty.as_ptr() as usize,
            libc::AT_EMPTY_PATH as usize,
            &attr as *const MountAttr as usize,
            core::mem::size_of::<MountAttr>(),
        )
    };
    if set == 0 {
        // SAFETY: argv and envp are the kernel's NULL-terminated arrays;
        // returns only on failure.
        unsafe {
            syscall5(
                SYS_EXECVEAT,
                tree as usize,
                empty.as_ptr() as usize,
                argv as usize,
                envp as usize,
                libc::AT_EMPTY_PATH as usize,
            )
        };
    }
    // SAFETY: closes the tree fd; main tries again and reports errors.
    unsafe { syscall5(SYS_CLOSE, tree as usize, 0, 0, 0, 0) };
}
