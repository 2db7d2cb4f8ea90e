//! `linux.seccomp`: the OCI profile compiled to classic BPF with
//! seccompiler, installed with seccomp(2) just before the container process
//! runs.
//!
//! seccompiler builds filters with one action on match and one on mismatch.
//! An OCI profile has a default action and any number of per-rule actions,
//! so it becomes a small stack of filters, relying on the kernel running
//! every filter and keeping the result with the highest precedence
//! (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW):
//!
//! * the default filter: a call that matches any rule → ALLOW, anything
//!   else → the default action (left out when the default is ALLOW);
//! * one filter per other action A: a call matching a rule of A → A,
//!   anything else → ALLOW.
//!
//! A call matching a rule with action A thus ends as A, and a call matching
//! nothing ends as the default action: the OCI semantics. Syscall names this
//! kernel's architecture does not know are skipped, like runc does.
//! Calls from another ABI (32-bit x86 on x86_64) get the default action
//! instead of seccompiler's kill.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: libc::c_ulong = 1;
const FLAG_LOG: libc::c_ulong = 2;
const FLAG_SPEC_ALLOW: libc::c_ulong = 4;

/// The filters of one profile, ready to install.
#[derive(Debug)]
pub struct Compiled {
    programs: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

fn native_arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| Error::Unsupported(format!("linux.seccomp on {}", std::env::consts::ARCH)))
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActAllow => SeccompAction::Allow,
        ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        ScmpActLog => SeccompAction::Log,
        ScmpActNotify => {
            return Err(Error::Unsupported(format!(
                "{field}: SCMP_ACT_NOTIFY (a seccomp user-notification listener)"
            )))
        }
    })
}

fn condition(arg: &oci_spec::runtime::LinuxSeccompArg, field: &str) -> Result<SeccompCondition> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| Error::config(format!("{field}.index"), "must be 0 to 5"))?;
    // libseccomp's SCMP_CMP_MASKED_EQ: `value` is the mask, `valueTwo` the datum
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::config(field, e.to_string()))
}

/// Rules per syscall number, for one action.
type RuleMap = BTreeMap<i64, Vec<SeccompRule>>;

fn build(
    rules: RuleMap,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
    other_abi: SeccompAction,
) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, matched, arch)
        .map_err(|e| Error::config("linux.seccomp", e.to_string()))?;
    let mut prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error::config("linux.seccomp", e.to_string()))?;
    // seccompiler's prologue: load arch, jump if native, return KILL_PROCESS
    if let Some(ret) = prog.get_mut(2) {
        ret.k = u32::from(other_abi);
    }
    Ok(prog)
}

/// Compile `linux.seccomp`. Errors name the offending field.
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    let arch = native_arch()?;
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            // only meaningful with a notify listener, which is refused above
            _ => 0,
        };
    }
    // every call some rule matches (for the default filter), and the rules
    // of each non-default action
    let mut any: RuleMap = BTreeMap::new();
    let mut by_action: Vec<(SeccompAction, RuleMap, Vec<i64>)> = Vec::new();
    let mut any_unconditional: Vec<i64> = Vec::new();
    for (i, sc) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        let conditions = sc
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        let rule = if conditions.is_empty() {
            None
        } else {
            Some(
                SeccompRule::new(conditions)
                    .map_err(|e| Error::config(field.clone(), e.to_string()))?,
            )
        };
        if sc.names().is_empty() {
            return Err(Error::config(format!("{field}.names"), "is empty"));
        }
        for name in sc.names() {
            let Ok(nr) = name.parse::<syscalls::Sysno>() else {
                continue; // unknown to this architecture: skipped like runc
            };
            let nr = nr.id() as i64;
            push_rule(&mut any, &mut any_unconditional, nr, rule.clone());
            if act == default {
                continue;
            }
            let idx = match by_action.iter().position(|(a, _, _)| *a == act) {
                Some(p) => p,
                None => {
                    by_action.push((act.clone(), BTreeMap::new(), Vec::new()));
                    by_action.len() - 1
                }
            };
            let (_, rules, unconditional) = &mut by_action[idx];
            push_rule(rules, unconditional, nr, rule.clone());
        }
    }
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        programs.push(build(
            any,
            default.clone(),
            SeccompAction::Allow,
            arch,
            default.clone(),
        )?);
    }
    for (act, rules, _) in by_action {
        if act == SeccompAction::Allow {
            continue;
        }
        programs.push(build(
            rules,
            SeccompAction::Allow,
            act,
            arch,
            SeccompAction::Allow,
        )?);
    }
    Ok(Compiled { programs, flags })
}

/// Add a rule (None: unconditional) for `nr`: an unconditional rule wins
/// over any conditional ones (seccompiler expresses it as an empty chain).
fn push_rule(map: &mut RuleMap, unconditional: &mut Vec<i64>, nr: i64, rule: Option<SeccompRule>) {
    if unconditional.contains(&nr) {
        return;
    }
    match rule {
        Some(r) => map.entry(nr).or_default().push(r),
        None => {
            unconditional.push(nr);
            map.insert(nr, Vec::new());
        }
    }
}

/// Install the filters on the calling thread (and its future children).
/// Needs no_new_privs or CAP_SYS_ADMIN.
pub fn install(c: &Compiled) -> Result<()> {
    for prog in &c.programs {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(2) reads `len` instructions from a live program;
        // seccompiler's sock_filter has the kernel's layout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                c.flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(Error::sys(
                "install the seccomp filter",
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn one_filter_per_non_default_action() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }));
        let c = compile(&p).unwrap();
        // the default filter and the ERRNO(1) one; ERRNO(38) is the default
        assert_eq!(c.programs.len(), 2);
    }

    #[test]
    fn notify_is_refused_clearly() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let e = compile(&p).unwrap_err().to_string();
        assert!(
            e.contains("syscalls[0].action") && e.contains("NOTIFY"),
            "{e}"
        );
    }

    #[test]
    fn bad_arg_index_names_the_field() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
    }
}
