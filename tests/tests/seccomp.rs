//! linux.seccomp: actions, errno values, argument conditions, flags,
//! exec'd processes, bad profiles. (Podman's default profile, a Docker-format
//! one, is rbox's to convert: manager/tests/seccomp.rs.)

use rrun_tests::*;
use serde_json::json;

fn with_profile(args: &[&str], profile: serde_json::Value) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.add_probe();
    b.edit(|v| v["linux"]["seccomp"] = profile);
    b
}

const NR_GETPPID: i64 = libc::SYS_getppid;
const NR_UMASK: i64 = libc::SYS_umask;
const NR_PERSONALITY: i64 = libc::SYS_personality;

#[test]
#[ignore = "needs root"]
fn errno_rules_and_argument_conditions() {
    require_root();
    let rt = Runtime::new();
    let script = format!(
        "/probe {NR_GETPPID}; /probe {NR_UMASK} 0x12; /probe {NR_UMASK} 0x1000; \
         /probe {NR_PERSONALITY} 0xffffffff; /probe {NR_PERSONALITY} 0x0108; /probe {NR_PERSONALITY} 0x0100; true"
    );
    let b = with_profile(
        &["sh", "-c", &script],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
                // umask(mask) with mask > 0777
                {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
                 "args": [{"index": 0, "value": 0o777, "op": "SCMP_CMP_GT"}]},
                // personality(p) with (p & 0xff) == 0x08
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                 "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"}
            ]
        }),
    );
    assert_eq!(
        rt.run_ok(&b),
        "errno 42\nok\nerrno 11\nok\nerrno 77\nok\n",
        "getppid denied with 42; umask only above 0777; personality only when the low byte is 8"
    );
}

#[test]
#[ignore = "needs root"]
fn a_filter_denying_getcwd_without_no_new_privileges() {
    require_root();
    let rt = Runtime::new();
    // without no_new_privs the filter goes in before the capabilities are
    // dropped; the cwd and its check (getcwd) must come before it, in the
    // init and in exec
    let nr_getcwd = libc::SYS_getcwd;
    let mut b = with_profile(
        &[
            "sh",
            "-c",
            &format!("cat ./marker; /probe {nr_getcwd}; true"),
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
        }),
    );
    b.with_process(|p| {
        p.set_no_new_privileges(Some(false));
    });
    b.set_cwd("/tmp");
    std::fs::write(b.rootfs().join("tmp/marker"), "in /tmp\n").unwrap();
    assert_eq!(rt.run_ok(&b), "in /tmp\nerrno 1\n");
    b.set_args(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let out = rt.exec_with(&["--cwd", "/tmp"], &id, &["cat", "./marker"]);
    assert_ok(&out, "exec under the filter");
    assert_eq!(stdout(&out), "in /tmp\n");
}

#[test]
#[ignore = "needs root"]
fn kill_and_trap_actions() {
    require_root();
    let rt = Runtime::new();
    // calls the shell itself never makes: syncfs killed, sched_yield trapped
    let b = with_profile(
        &[
            "sh",
            "-c",
            &format!(
                "/probe {} 3; /probe {}; echo after",
                libc::SYS_syncfs,
                libc::SYS_sched_yield
            ),
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["syncfs"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["sched_yield"], "action": "SCMP_ACT_TRAP"}
            ]
        }),
    );
    let out = rt.run_capture(&b);
    // both probes die (SIGSYS); the shell goes on
    assert_eq!(stdout(&out), "after\n", "{}", stderr(&out));
}

#[test]
#[ignore = "needs root"]
fn filter_applies_to_exec_and_with_no_new_privileges() {
    require_root();
    for nnp in [false, true] {
        let rt = Runtime::new();
        let mut b = with_profile(
            &["sleep", "100"],
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]
            }),
        );
        b.with_process(|p| {
            p.set_no_new_privileges(Some(nnp));
        });
        b.set_capabilities(&["CAP_KILL"], &["CAP_KILL"], &["CAP_KILL"], &[], &[]);
        let id = rt.start_detached(&b);
        let out = rt.exec(&id, &["/probe", &NR_GETPPID.to_string()]);
        assert_eq!(stdout(&out), "errno 5\n", "nnp={nnp}");
        let status = rt.exec_ok(&id, &["cat", "/proc/1/status"]);
        let seccomp_line = status.lines().find(|l| l.starts_with("Seccomp:")).unwrap();
        assert!(
            seccomp_line.ends_with('2'),
            "init in filter mode: {seccomp_line}"
        );
        let nnp_line = status
            .lines()
            .find(|l| l.starts_with("NoNewPrivs:"))
            .unwrap();
        assert!(
            nnp_line.ends_with(if nnp { '1' } else { '0' }),
            "{nnp_line}"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn bad_profiles_are_refused_before_anything_is_made() {
    require_root();
    let rt = Runtime::new();
    for (profile, want) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FROB"}]}),
            "linux.seccomp.syscalls[0].action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
                   "listenerPath": "/run/nothing.sock"}),
            "NOTIFY",
        ),
    ] {
        let b = Bundle::busybox(&["true"]);
        b.write_raw(&{
            let mut v = serde_json::to_value(&b.spec).unwrap();
            v["linux"]["seccomp"] = profile;
            v.to_string()
        });
        let id = rt.id("badsec");
        let out = rt.run(&b, &id);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(want),
            "want {want:?} in: {}",
            stderr(&out)
        );
        assert!(!rt.root.path().join(&id).exists(), "state left behind");
    }
}
