//! Security by design: no leaked fds, cwd inside the container
//! (CVE-2024-21626), a sealed runtime binary (CVE-2019-5736), mount and
//! device targets that cannot escape the rootfs through symlinks.

use rrun_tests::*;
use std::time::Duration;

#[test]
#[ignore = "needs root"]
fn only_stdio_reaches_the_container() {
    require_root();
    let rt = Runtime::new();
    // ls opens one fd of its own for the directory listing (3)
    let b = Bundle::busybox(&["ls", "/proc/self/fd"]);
    let out = rt.run_ok(&b);
    let fds: Vec<&str> = out.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{fds:?}");
    // and in exec
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    let out = rt.exec_ok(&id, &["ls", "/proc/self/fd"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
    // the init holds nothing but its stdio (seen from the host)
    let pid = rt.pid(&id);
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "init {pid} holds extra fds");
}

// A cwd outside the container's root shows from inside: `pwd -P` (getcwd)
// fails or reads "(unreachable)", and `ls` lists host files.
#[test]
#[ignore = "needs root"]
fn cwd_through_a_leaked_fd_is_refused() {
    require_root();
    let rt = Runtime::new();
    for fd in 3..10 {
        let mut b = Bundle::busybox(&["sh", "-c", "pwd -P; ls -a | head -50"]);
        b.set_cwd(&format!("/proc/self/fd/{fd}"));
        let id = rt.id("cve");
        let out = rt.run(&b, &id);
        if out.status.success() {
            let s = stdout(&out);
            assert!(
                s.starts_with('/') && !s.contains("(unreachable)"),
                "fd {fd}: container cwd outside its root: {s}"
            );
            // and it is not a host directory (the host has /sys/fs/cgroup's files)
            assert!(
                !s.lines()
                    .any(|l| l == "cgroup.procs" || l == "release_agent"),
                "fd {fd}: cwd is a host cgroup directory: {s}"
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn exec_cwd_through_a_leaked_fd_is_refused() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.start_detached(&b);
    for fd in 3..10 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = rt.exec_with(
            &["--cwd", &cwd],
            &id,
            &["sh", "-c", "pwd -P; ls -a | head -50"],
        );
        if out.status.success() {
            let s = stdout(&out);
            assert!(
                s.starts_with('/') && !s.contains("(unreachable)"),
                "exec fd {fd}: cwd outside the container: {s}"
            );
            assert!(
                !s.lines()
                    .any(|l| l == "cgroup.procs" || l == "release_agent"),
                "exec fd {fd}: cwd is a host cgroup directory: {s}"
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn container_process_cannot_overwrite_the_runtime_binary() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("exe");
    assert_ok(&rt.create(&b, &id), "create");
    // while created, the init is runtime code: its exe must be a sealed
    // copy (memfd), or at least not open for writing
    let pid = rt.pid(&id);
    let exe_link = format!("/proc/{pid}/exe");
    let exe = std::fs::read_link(&exe_link).unwrap();
    let sealed = exe.to_string_lossy().starts_with("/memfd:");
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe_link)
        .is_ok();
    assert!(
        sealed || !writable,
        "the created init runs from {exe:?} and it is writable"
    );
    // once running, the init is the container's program, not the runtime
    assert_ok(&rt.cmd(&["start", &id]), "start");
    wait_for("the init to exec", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
    });
    let exe = std::fs::read_link(&exe_link).unwrap();
    assert!(exe.ends_with("bin/busybox"), "{exe:?}");
    assert_ne!(
        dev_ino(std::path::Path::new(&exe_link)),
        dev_ino(&rrun_bin()),
        "the running init is the runtime binary"
    );
    let out = rt.exec_ok(&id, &["readlink", "/proc/self/exe"]);
    assert_eq!(out.trim(), "/bin/busybox");
}

#[test]
#[ignore = "needs root"]
fn created_init_exe_can_never_be_written() {
    require_root();
    // Not writable while it runs (ETXTBSY) is not enough: CVE-2019-5736
    // keeps a handle on /proc/<pid>/exe and reopens it for writing once the
    // runtime code has gone. The init's binary must be a write-sealed memfd,
    // a file on a read-only mount (runc 1.1's bind of itself), or a private
    // unlinked copy: never the writable on-disk binary.
    use std::os::fd::AsRawFd;
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "100"]);
    let id = rt.id("seal");
    assert_ok(&rt.create(&b, &id), "create");
    let pid = rt.pid(&id);
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let fd = exe.as_raw_fd();
    // SAFETY: fcntl on an fd we own; F_GET_SEALS takes no pointer.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    let write_sealed = seals >= 0 && seals & libc::F_SEAL_WRITE != 0;
    let read_only_mount = nix::sys::statvfs::fstatvfs(&exe)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    use std::os::unix::fs::MetadataExt;
    let meta = exe.metadata().unwrap();
    let private_copy = meta.nlink() == 0 && dev_ino(&rrun_bin()) != Some((meta.dev(), meta.ino()));
    assert!(
        write_sealed || read_only_mount || private_copy,
        "the created init {pid} runs from a writable file ({:?}, seals {seals}, nlink {})",
        std::fs::read_link(format!("/proc/{pid}/exe")),
        meta.nlink()
    );
    // after start the runtime code is gone; through the old handle, a
    // sealed memfd reopens for writing but every write fails (EPERM);
    // anything else must not reopen at all (EROFS). Nothing is written
    // unless the file is a sealed memfd.
    assert_ok(&rt.cmd(&["start", &id]), "start");
    wait_for("the init to exec", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
    });
    if let Ok(mut w) = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
    {
        assert!(
            write_sealed,
            "the init's old binary reopened for writing and is not write-sealed"
        );
        use std::io::Write;
        assert!(w.write(b"x").is_err(), "wrote into the sealed init binary");
    }
}

#[test]
#[ignore = "needs root"]
fn mount_target_symlink_cannot_escape() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let rt = Runtime::new();
    let inside = format!("{}/sub", host.path().display());
    let mut b = Bundle::busybox(&["grep", "-c", &format!(" {inside} "), "/proc/self/mountinfo"]);
    // rootfs/evil -> <host dir>: an absolute symlink that would leave the rootfs
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.add_mount(mount("/evil/sub", "tmpfs", "tmpfs", &[]));
    let out = rt.run_capture(&b);
    assert!(
        !host.path().join("sub").exists(),
        "a mount point was created on the host"
    );
    assert!(
        mounts_under(host.path()).is_empty(),
        "something was mounted on the host"
    );
    // the symlink was resolved inside the rootfs: the mount landed there
    assert_ok(&out, "run");
    assert_eq!(stdout(&out), "1\n");
    assert!(b
        .rootfs()
        .join(host.path().strip_prefix("/").unwrap())
        .join("sub")
        .is_dir());
    // a relative symlink climbing out (../../..) is resolved inside the rootfs too
    let host2 = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox(&["true"]);
    let up = "../".repeat(20);
    let target = format!(
        "{up}{}",
        host2.path().to_str().unwrap().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&target, b.rootfs().join("climb")).unwrap();
    b.add_mount(mount("/climb/sub", "tmpfs", "tmpfs", &[]));
    let _ = rt.run_capture(&b);
    assert!(
        !host2.path().join("sub").exists(),
        "mount point made on the host"
    );
    assert!(mounts_under(host2.path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn device_path_symlink_cannot_escape() {
    require_root();
    let host = tempfile::tempdir().unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("devlink")).unwrap();
    b.edit(|v| {
        v["linux"]["devices"] =
            json!([{"path": "/devlink/node", "type": "c", "major": 1, "minor": 3}])
    });
    let _ = rt.run_capture(&b);
    assert!(
        !host.path().join("node").exists(),
        "device node created on the host"
    );
}

#[test]
#[ignore = "needs root"]
fn foreground_run_without_pid_namespace_runs_sealed() {
    require_root();
    assert!(
        !testing_runc(),
        "`runc run` itself runs from /usr/sbin/runc (rrun seals it): run this test against rrun"
    );
    // The container shares the runtime's pid namespace, so it could see the
    // waiting `run` process: that process must not be the host binary either.
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "100"]);
    b.remove_namespace(NsType::Pid);
    let id = rt.id("nopid");
    rt.track(&["run", "-b", b.path_str()]);
    let mut child = rt
        .command()
        .args(["run", "-b", b.path_str(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the container to run", Duration::from_secs(5), || {
        rt.cmd(&["state", &id]).status.success()
    });
    let exe_link = format!("/proc/{}/exe", child.id());
    let exe = std::fs::read_link(&exe_link).unwrap();
    let memfd = exe.to_string_lossy().starts_with("/memfd:");
    let read_only_mount = nix::sys::statvfs::statvfs(exe_link.as_str())
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    assert!(memfd || read_only_mount, "run runs from {exe:?}");
    if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&exe_link) {
        use std::io::Write;
        assert!(
            memfd,
            "the `run` process's binary {exe:?} opened for writing"
        );
        assert!(w.write(b"x").is_err(), "wrote into the sealed rrun copy");
    }
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    let _ = child.wait();
}
