//! Namespaces: new ones of every kind, user namespace mappings, and joining
//! an existing namespace by path. Checks compare /proc/self/ns/* inside
//! with the host's and look at what each namespace isolates.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rrun_tests::*;

#[test]
#[ignore = "needs root"]
fn every_default_namespace_is_new() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done",
    ]);
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_ne!(lines[i], host_ns(n), "{n} namespace is the host's");
    }
    // no user namespace asked for: the host's
    let b = Bundle::busybox(&["readlink", "/proc/self/ns/user"]);
    assert_eq!(rt.run_ok(&b).trim(), host_ns("user"));
}

#[test]
#[ignore = "needs root"]
fn pid_namespace_init_is_pid_1() {
    require_root();
    let rt = Runtime::new();
    // the shell lists /proc with a glob, without forking: only itself shows
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done",
    ]);
    assert_eq!(rt.run_ok(&b), "1\n1\n");
    // without a pid namespace the host's pids show
    let mut b = Bundle::busybox(&["sh", "-c", "echo $$"]);
    b.remove_namespace(NsType::Pid);
    let pid: i32 = rt.run_ok(&b).trim().parse().unwrap();
    assert!(pid > 1);
}

#[test]
#[ignore = "needs root"]
fn uts_namespace_hostname_and_domainname() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"]);
    b.set_hostname("box-a");
    b.with_spec(|s| {
        s.set_domainname(Some("example.test".into()));
    });
    assert_eq!(rt.run_ok(&b), "box-a\nexample.test\n");
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(host.to_str(), Some("box-a"), "hostname leaked to the host");
}

#[test]
#[ignore = "needs root"]
fn ipc_namespace_hides_host_sysv_objects() {
    require_root();
    // a SysV message queue on the host, removed at the end
    // SAFETY: plain syscall wrappers, no pointers passed.
    let q = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    assert!(q >= 0, "msgget: {}", std::io::Error::last_os_error());
    struct Rm(i32);
    impl Drop for Rm {
        fn drop(&mut self) {
            // SAFETY: IPC_RMID ignores the buffer argument.
            unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
    let _rm = Rm(q);
    let host = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    assert!(host.lines().count() >= 2, "{host}");
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "tail -n +2 /proc/sysvipc/msg | wc -l"]);
    assert_eq!(rt.run_ok(&b), "0\n");
}

#[test]
#[ignore = "needs root"]
fn network_namespace_has_only_lo() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "ls /sys/class/net; ip -o link | wc -l"]);
    assert_eq!(rt.run_ok(&b), "lo\n1\n");
}

/// `sh -c` script: a server on 127.0.0.1:5000 answering with a line,
/// then a client that prints what it got (busybox nc).
const LOOPBACK_ROUND_TRIP: &str =
    "nc -l -p 5000 -e echo hello-over-lo & sleep 0.3; nc -w 2 127.0.0.1 5000 || echo connect-failed";

#[test]
#[ignore = "needs root"]
fn a_new_network_namespace_has_lo_up() {
    require_root();
    let rt = Runtime::new();
    // like runc and crun: a program can talk to itself over 127.0.0.1
    // without any CNI set-up
    let b = Bundle::busybox(&["sh", "-c", LOOPBACK_ROUND_TRIP]);
    assert_eq!(rt.run_ok(&b), "hello-over-lo\n");
    // in a user namespace too (its root owns the network namespace)
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        &format!("{LOOPBACK_ROUND_TRIP}; ip -o link show lo | grep -o ',UP,' || echo lo-down"),
    ]);
    b.add_namespace("user", None);
    b.edit(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    assert_eq!(rt.run_ok(&b), "hello-over-lo\n,UP,\n");
}

#[test]
#[ignore = "needs root"]
fn mount_namespace_keeps_container_mounts_inside() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "grep -c ' /inside-only ' /proc/self/mountinfo"]);
    b.add_mount(mount("/inside-only", "tmpfs", "tmpfs", &[]));
    assert_eq!(rt.run_ok(&b), "1\n");
    assert!(
        mounts_mentioning(b.path()).is_empty(),
        "container mounts visible on the host"
    );
}

/// The propagation field of `/` in this mount namespace's mountinfo
/// ("shared:N", "master:N"; "-" when private).
const ROOT_PROPAGATION: &str = "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo";

#[test]
#[ignore = "needs root"]
fn without_a_mount_namespace_the_container_shares_the_runtimes() {
    require_root();
    // Bundles first: they drop after the runtime, whose drop deletes the
    // containers (and fails the test if a mount is left under a bundle).
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "{ readlink /proc/self/ns/mnt; cat /marker-inside-rootfs; wc -c < /proc/timer_list; \
           grep ' /proc/sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1; } > /report; \
         exec sleep 100",
    ]);
    b.remove_namespace(NsType::Mount);
    let mut quick = Bundle::busybox(&["true"]);
    quick.remove_namespace(NsType::Mount);
    let mut bad = Bundle::busybox(&["true"]);
    bad.remove_namespace(NsType::Mount);
    bad.add_mount(mount("/data", "none", "/no/such/source", &["bind"]));
    let rt = Runtime::new();
    let host_mnt = host_ns("mnt");

    // the spec: a namespace not listed is the runtime's. The container is
    // in the test's mount namespace, chrooted into its rootfs, with the
    // spec's mounts, masked and read-only paths
    let id = rt.start_detached(&b);
    let report = b.rootfs().join("report");
    wait_for("the report", Duration::from_secs(5), || {
        std::fs::read_to_string(&report).is_ok_and(|r| r.lines().count() == 4)
    });
    let r = std::fs::read_to_string(&report).unwrap();
    assert_eq!(r, format!("{host_mnt}\nrootfs\n0\nro\n"));
    // its mounts are here, below the rootfs
    let proc = b.rootfs().join("proc");
    assert!(
        mounts_under(&b.rootfs())
            .iter()
            .any(|m| Path::new(m) == proc),
        "{:?}",
        mounts_under(&b.rootfs())
    );
    // exec enters the same root
    assert_eq!(
        rt.exec_ok(
            &id,
            &[
                "sh",
                "-c",
                "readlink /proc/self/ns/mnt; cat /marker-inside-rootfs"
            ]
        ),
        format!("{host_mnt}\nrootfs\n")
    );
    // delete takes every mount away (runc leaves them)
    assert_ok(&rt.cmd(&["kill", &id, "KILL"]), "kill");
    rt.wait_status(&id, "stopped");
    assert_ok(&rt.cmd(&["delete", &id]), "delete");
    assert_eq!(mounts_mentioning(b.path()), Vec::<String>::new());

    // the runtime's `/` keeps its propagation (runc makes it rslave):
    // seen in a mount namespace whose `/` is shared
    let id = rt.id("noms");
    let script = format!(
        "{ROOT_PROPAGATION}; \"$0\" --root \"$1\" run -b \"$2\" \"$3\" >&2 || exit 9; {ROOT_PROPAGATION}"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "shared", "sh", "-c", &script])
        .arg(rrun_bin())
        .arg(rt.root.path())
        .args([quick.path_str(), id.as_str()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out, "run in a shared /");
    let props: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(props.len(), 2, "{props:?}");
    assert!(props[0].starts_with("shared:"), "{props:?}");
    assert_eq!(props[0], props[1], "the propagation of / changed");

    // a create that fails leaves no mount behind
    let id = rt.id("noms");
    let out = rt.run(&bad, &id);
    assert_fails_naming(&out, "a bind of a missing source", "/no/such/source");
    assert_eq!(mounts_mentioning(bad.path()), Vec::<String>::new());
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
#[ignore = "needs root"]
fn cgroup_namespace_root_is_the_container_cgroup() {
    require_root();
    let rt = Runtime::new();
    let b = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    let out = rt.run_ok(&b);
    assert!(
        out.lines().all(|l| l.ends_with(":/")),
        "the cgroup namespace root is not the container's cgroup: {out}"
    );
    // cgroupns=host: the full path shows
    let mut b = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    b.remove_namespace(NsType::Cgroup);
    let cg = b.cgroup_path();
    let out = rt.run_ok(&b);
    assert!(
        out.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        "{cg} not in {out}"
    );
}

#[test]
#[ignore = "needs root"]
fn time_namespace() {
    require_root();
    assert!(
        std::path::Path::new("/proc/self/ns/time").exists(),
        "this kernel has no time namespaces (/proc/self/ns/time, Linux 5.6): the test needs them"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["readlink", "/proc/self/ns/time"]);
    b.add_namespace("time", None);
    let out = rt.run_ok(&b);
    assert_ne!(out.trim(), host_ns("time"));
}

#[test]
#[ignore = "needs root"]
fn user_namespace_maps_root_to_an_unprivileged_range() {
    require_root();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; touch /tmp/made-in-userns; readlink /proc/self/ns/user",
    ]);
    b.add_namespace("user", None);
    b.edit(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    // the rootfs must belong to the mapped root to be writable
    let ok = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(ok.success());
    let out = rt.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["0", "0"], "{out}");
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(lines[2]), ["0", "100000", "65536"]);
    assert_eq!(words(lines[3]), ["0", "100000", "65536"]);
    assert_ne!(lines[4], host_ns("user"));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(b.rootfs().join("tmp/made-in-userns")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (100000, 100000),
        "file made by container root must be owned by the mapped host id"
    );
}

#[test]
#[ignore = "needs root"]
fn joins_a_network_namespace_by_path() {
    require_root();
    let ns = NetNs::new();
    // something to recognise it by: a dummy link made on the host side
    let ok = std::process::Command::new("ip")
        .args(["-n", &ns.0, "link", "add", "rrtdummy0", "type", "dummy"])
        .status()
        .unwrap();
    let has_dummy = ok.success();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"]);
    b.add_namespace("network", Some(&ns.path()));
    let out = rt.run_ok(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(ns.ns_link().as_str()));
    if has_dummy {
        assert!(out.contains("rrtdummy0"), "{out}");
    }
    // the namespace outlives the container
    assert!(std::path::Path::new(&ns.path()).exists());
}

#[test]
#[ignore = "needs root"]
fn joins_the_uts_namespace_of_another_container() {
    require_root();
    let rt = Runtime::new();
    let mut first = Bundle::busybox(&["sleep", "100"]);
    first.set_hostname("first-box");
    let id = rt.start_detached(&first);
    let pid = rt.pid(&id);
    let mut second = Bundle::busybox(&["sh", "-c", "hostname; readlink /proc/self/ns/uts"]);
    second.with_spec(|s| {
        s.set_hostname(None);
    });
    second.add_namespace("uts", Some(&format!("/proc/{pid}/ns/uts")));
    let out = rt.run_ok(&second);
    let want = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    assert_eq!(out, format!("first-box\n{}\n", want.display()));
}

#[test]
#[ignore = "needs root"]
fn sysctl_is_applied_in_the_container_netns() {
    require_root();
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    b.with_linux(|l| {
        l.set_sysctl(Some(
            [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        ));
    });
    assert_eq!(rt.run_ok(&b), "1\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host,
        "the host's sysctl changed"
    );
}

#[test]
#[ignore = "needs root"]
fn id_mapped_bind_mount_shows_host_files_as_container_ids() {
    require_root();
    // a host directory owned by host root, and a container whose root is
    // host uid 100000: without an id-mapped mount it sees the files as
    // nobody and cannot write; with one it sees them as its own root's
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "x").unwrap();
    let rt = Runtime::new();
    let run = |idmap: bool| {
        let mut b = Bundle::busybox(&[
            "sh",
            "-c",
            "stat -c %u:%g /vol/file; touch /vol/made-inside 2>/dev/null && echo wrote || echo denied",
        ]);
        b.add_namespace("user", None);
        let mut vol = json!({"destination": "/vol", "type": "bind",
                             "source": host.path(), "options": ["bind"]});
        if idmap {
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            vol["uidMappings"] = map.clone();
            vol["gidMappings"] = map;
        }
        b.edit(|v| {
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["mounts"].as_array_mut().unwrap().push(vol);
        });
        let ok = std::process::Command::new("chown")
            .args(["-R", "100000:100000"])
            .arg(b.rootfs())
            .status()
            .unwrap();
        assert!(ok.success());
        rt.run_ok(&b)
    };
    assert_eq!(run(false), "65534:65534\ndenied\n");
    assert_eq!(run(true), "0:0\nwrote\n");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(host.path().join("made-inside")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "written through the id-mapped mount"
    );
    // the host directory itself was never mounted over
    assert!(mounts_under(host.path()).is_empty());
}

#[test]
#[ignore = "needs root"]
fn id_mapped_mount_refusals_name_the_mount() {
    require_root();
    let rt = Runtime::new();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    for (vol, want) in [
        (
            json!({"destination": "/vol", "type": "bind", "source": "/tmp", "options": ["bind"], "uidMappings": map}),
            "uidMappings and gidMappings must be given together",
        ),
        (
            json!({"destination": "/vol", "type": "tmpfs", "source": "tmpfs", "uidMappings": map, "gidMappings": map}),
            "only bind mounts can be id-mapped",
        ),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|v| v["mounts"].as_array_mut().unwrap().push(vol));
        let id = rt.id("badidmap");
        let out = rt.run(&b, &id);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("mounts[") && err.contains(want), "{err}");
        assert!(!rt.root.path().join(&id).exists());
    }
}

/// A namespace path of another type (the runtime-tools suite's
/// linux_ns_path_type case) or a file that is no namespace is refused at
/// create naming the entry, the path and both types, not with setns's bare
/// EINVAL; nothing is left behind.
#[test]
#[ignore = "needs root"]
fn a_namespace_path_of_the_wrong_type_is_refused_naming_it() {
    require_root();
    let rt = Runtime::new();
    for (typ, path, want) in [
        (
            "network",
            "/proc/self/ns/ipc",
            "/proc/self/ns/ipc is a namespace of type ipc, not network",
        ),
        (
            "uts",
            "/proc/self/ns/pid",
            "/proc/self/ns/pid is a namespace of type pid, not uts",
        ),
        ("ipc", "/etc/hostname", "/etc/hostname is not a namespace"),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.add_namespace(typ, Some(path));
        let id = rt.id("nstype");
        let out = rt.create(&b, &id);
        assert_fails_naming(&out, "create", "linux.namespaces[");
        assert_fails_naming(&out, "create", want);
        assert!(!rt.root.path().join(&id).exists(), "state of {id} left");
    }
}
