//! Device access control on cgroup v2: there is no devices controller, so
//! the allowlist becomes a small eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup. The
//! kernel runs it on every open and mknod of a device node.
//!
//! Rules keep their OCI (and cgroup v1) meaning: the last rule that matches
//! decides, and nothing matching means denied. The program checks the rules
//! from last to first and returns at the first match.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

// linux/bpf.h
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes used (BPF_CLASS | BPF_OP/BPF_MODE | BPF_SRC/BPF_SIZE).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn access_bits(access: Option<&str>) -> i32 {
    let a = access.unwrap_or("rwm");
    let mut bits = 0;
    for c in a.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        };
    }
    bits
}

/// The program for `rules`. Registers: r2 device type, r3 requested
/// access, r4 major, r5 minor (from `struct bpf_cgroup_dev_ctx`).
fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // Each test jumps to the end of this rule's block when it fails;
        // offsets are filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps = Vec::new();
        let typ = match rule.typ() {
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(DEV_CHAR),
            _ => None, // 'a' or unset: any type
        };
        if let Some(t) = typ {
            jumps.push(block.len());
            block.push(insn(JNE_K, 2, 0, 0, t));
        }
        let acc = access_bits(rule.access().as_deref());
        if acc != ACC_READ | ACC_WRITE | ACC_MKNOD {
            // the requested access must be within the rule's
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, acc));
            jumps.push(block.len());
            block.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = rule.major().filter(|m| *m >= 0) {
            jumps.push(block.len());
            block.push(insn(JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor().filter(|m| *m >= 0) {
            jumps.push(block.len());
            block.push(insn(JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        let unconditional = jumps.is_empty();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
        if unconditional {
            // matches everything: rules before it can never decide, and the
            // verifier refuses unreachable instructions
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> Result<i64, Errno> {
    // SAFETY: bpf(2) with a zero-initialised 128-byte attr union that lives
    // across the call; the kernel reads only the fields of `cmd`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// Load the program for `rules` and attach it to the cgroup2 directory
/// `dir`. The attachment keeps the program alive after rrun exits.
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), String> {
    let insns = program(rules);
    let license = CString::new("Apache-2.0").expect("static string");
    // union bpf_attr, BPF_PROG_LOAD: u32 prog_type, u32 insn_cnt,
    // u64 insns, u64 license, u32 log_level, u32 log_size, u64 log_buf
    let load = |log: Option<&mut Vec<u8>>| {
        let mut attr = [0u64; 16];
        attr[0] = u64::from(BPF_PROG_TYPE_CGROUP_DEVICE) | ((insns.len() as u64) << 32);
        attr[1] = insns.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        if let Some(log) = log {
            attr[3] = 1 | ((log.len() as u64) << 32);
            attr[4] = log.as_mut_ptr() as u64;
        }
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    let prog = load(None).map_err(|e| {
        // load again with the verifier's log to say why
        let mut log = vec![0u8; 1 << 20];
        let _ = load(Some(&mut log));
        let log = String::from_utf8_lossy(&log);
        let last = log
            .trim_end_matches('\0')
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>();
        format!("load the device filter program: {e}: {}", last.join(" / "))
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that we now own.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    // BPF_PROG_ATTACH: u32 target_fd, u32 attach_bpf_fd, u32 attach_type,
    // u32 attach_flags
    let mut attr = [0u64; 16];
    attr[0] = cgroup.as_raw_fd() as u64 | ((prog.as_raw_fd() as u64) << 32);
    attr[1] = u64::from(BPF_CGROUP_DEVICE) | (u64::from(BPF_F_ALLOW_MULTI) << 32);
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map_err(|e| format!("attach the device filter to {}: {e}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(allow);
        d.set_typ(Some(typ));
        d.set_major(Some(major));
        d.set_minor(Some(minor));
        d.set_access(Some(acc.into()));
        d
    }

    /// Evaluate the generated program in a tiny interpreter: the jump
    /// offsets and the rule order are what matter.
    fn run(p: &[Insn], typ: i32, acc: i32, major: i32, minor: i32) -> i64 {
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        let ctx = [
            ((acc as u32) << 16 | typ as u32),
            major as u32,
            minor as u32,
        ];
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = i64::from(ctx[(i.off / 4) as usize]),
                AND32_K => r[dst] &= i64::from(i.imm),
                RSH32_K => r[dst] >>= i.imm,
                MOV32_X => r[dst] = r[src],
                MOV64_K => r[dst] = i64::from(i.imm),
                JNE_K if r[dst] != i64::from(i.imm) => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn last_matching_rule_decides() {
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all.set_allow(false);
        deny_all.set_access(Some("rwm".into()));
        let rules = vec![
            deny_all,
            rule(true, LinuxDeviceType::C, 1, 3, "rwm"),
            rule(true, LinuxDeviceType::C, 1, 5, "r"),
            rule(false, LinuxDeviceType::C, 1, 3, "w"),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 11), 0);
    }

    #[test]
    fn no_rule_matching_denies() {
        let p = program(&[rule(true, LinuxDeviceType::C, 1, 3, "rwm")]);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 4), 0);
    }
}
