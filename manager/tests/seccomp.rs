//! A Docker-format seccomp profile (Podman's default, containers-common's
//! /usr/share/containers/seccomp.json) resolved by rbox's converter, the
//! one Docker-to-OCI converter, and enforced by rrun: run through the rrun
//! test harness (`rrun-tests`, a dev-dependency: `RRUN_BIN`), so the suite's
//! other test binaries do not link rbox.

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn podman_default_profile_runs_busybox_and_denies_the_rest() {
    require_root();
    let path = std::path::Path::new("/usr/share/containers/seccomp.json");
    assert!(
        path.exists(),
        "golang-github-containers-common is missing (make deps installs it)"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    let bounding: std::collections::HashSet<String> = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .iter()
        .flatten()
        .map(|c| format!("CAP_{c}"))
        .collect();
    // resolved by rbox's converter, the one Docker-to-OCI converter
    let profile = rbox::seccomp::load_profile(path, &bounding).unwrap();
    b.add_probe();
    // busybox works normally; vmsplice (denied with EPERM by the profile,
    // EBADF otherwise) and add_key (not listed: the default ENOSYS) do not;
    // mount and unshare fail with EPERM (no CAP_SYS_ADMIN)
    let script = format!(
        "ls / >/dev/null && ps >/dev/null && echo hi > /tmp/f && cat /tmp/f; \
         /probe {} -1 0 0 0; /probe {} 0 0 0 0 0; \
         mkdir -p /mnt; mount -t tmpfs t /mnt 2>&1; unshare -m true 2>&1; true",
        libc::SYS_vmsplice,
        libc::SYS_add_key
    );
    b.set_args(&["sh", "-c", &script]);
    b.edit(|v| v["linux"]["seccomp"] = serde_json::to_value(&profile).unwrap());
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi", "{out}");
    assert_eq!(lines[1], "errno 1", "vmsplice: {out}");
    assert_eq!(lines[2], "errno 38", "add_key: {out}");
    assert!(
        lines[3].contains("Operation not permitted") || lines[3].contains("permission denied"),
        "mount: {out}"
    );
    assert!(
        lines[4].contains("Operation not permitted"),
        "unshare: {out}"
    );
    // without the profile the same calls get the kernel's answers
    b.edit(|v| {
        v["linux"]
            .as_object_mut()
            .unwrap()
            .remove("seccomp")
            .map(|_| ())
            .unwrap_or(())
    });
    let plain = rt.run_ok(&b);
    let plain: Vec<&str> = plain.lines().collect();
    assert_eq!(plain[1], "errno 9", "vmsplice without seccomp");
    assert_ne!(plain[2], "errno 38", "add_key without seccomp");
}
