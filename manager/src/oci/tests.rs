//! `build` on data alone: an image config, run options, paths and the
//! host's answers made up here; nothing is read from this host.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::image::{Config, ImageConfiguration};
use oci_spec::runtime::{
    Capability, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, LinuxSeccomp,
    PosixRlimitType, Spec,
};

use super::*;
use crate::container::record::{NetMode, RunSpec};
use crate::devices::{CgroupRule, DeviceMapping};
use crate::mounts::MountSpec;
use crate::seccomp::Seccomp;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn image(user: &str, entrypoint: &[&str], cmd: &[&str]) -> ImageConfiguration {
    let mut c = Config::default();
    c.set_user(Some(user.into()));
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    c.set_entrypoint(strings(entrypoint).filter(|v: &Vec<String>| !v.is_empty()));
    c.set_cmd(strings(cmd));
    c.set_env(Some(vec!["FOO=bar".into(), "HOSTNAME=image".into()]));
    c.set_working_dir(Some("/srv".into()));
    let mut i = ImageConfiguration::default();
    i.set_config(Some(c));
    i
}

fn files() -> IdFiles {
    IdFiles {
        passwd: Some("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".into()),
        group: Some("root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:\n".into()),
    }
}

/// `-e KEY` finds only FROM_HOST in "rbox's environment".
fn env_of(key: &str) -> Option<String> {
    (key == "FROM_HOST").then(|| "host value".into())
}

/// A profile that says which capabilities it was made for (its
/// architectures carry them), so a test sees what seccomp was asked.
fn seccomp_of(s: &Seccomp, caps: &HashSet<String>) -> crate::seccomp::Result<Option<LinuxSeccomp>> {
    let mut names: Vec<&String> = caps.iter().collect();
    names.sort();
    Ok(match s {
        Seccomp::Unconfined => None,
        _ => Some(
            serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": [],
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
            }))
            .unwrap(),
        ),
    })
}

fn host() -> Host {
    Host {
        nofile_hard: 4096,
        capabilities: [
            Capability::Chown,
            Capability::SysAdmin,
            Capability::NetAdmin,
        ]
        .into_iter()
        .collect(),
        cgroup_ns: true,
        init: None,
        devices: Vec::new(),
        mapped: Vec::new(),
        env: env_of,
        seccomp: seccomp_of,
    }
}

fn paths() -> Paths {
    Paths {
        root: PathBuf::from("/var/lib/rbox"),
        etc: PathBuf::from("/var/lib/rbox/containers").join(ID),
        netns: NetNs::At(PathBuf::from("/run/netns/rbox-0123456789ab")),
    }
}

fn run() -> RunSpec {
    RunSpec {
        image: "app".into(),
        ..Default::default()
    }
}

fn spec_with(rs: &RunSpec, img: &ImageConfiguration, host: &Host, paths: &Paths) -> Result<Spec> {
    build(&Inputs {
        id: ID,
        image_id: "sha256:5e1f",
        image: img,
        run: rs,
        paths,
        files: &files(),
        host,
    })
}

fn spec_of(rs: &RunSpec) -> Spec {
    spec_with(
        rs,
        &image("app", &[], &["/bin/app", "serve"]),
        &host(),
        &paths(),
    )
    .unwrap()
}

fn caps(s: &Spec) -> (HashSet<Capability>, HashSet<Capability>) {
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    (
        c.bounding().clone().unwrap_or_default(),
        c.effective().clone().unwrap_or_default(),
    )
}

fn env(s: &Spec) -> Vec<String> {
    s.process().as_ref().unwrap().env().clone().unwrap()
}

fn mount<'a>(s: &'a Spec, dest: &str) -> Option<&'a oci_spec::runtime::Mount> {
    s.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

#[test]
fn the_command_env_and_cwd_are_the_images_with_the_flags_applied() {
    let s = spec_of(&run());
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref().unwrap(), ["/bin/app", "serve"]);
    assert_eq!(p.cwd(), Path::new("/srv"));
    // HOSTNAME first (the image's replaced), a PATH the image lacks, its own env
    assert_eq!(
        env(&s),
        [
            "HOSTNAME=0123456789ab",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "FOO=bar"
        ]
    );
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(p.terminal(), Some(false));

    let rs = RunSpec {
        entrypoint: Some("/bin/echo".into()),
        cmd: vec!["hi".into()],
        env: vec![
            "A=1".into(),
            "FOO=flag".into(),
            "FROM_HOST".into(),
            "NOT_SET".into(),
        ],
        workdir: Some("/tmp".into()),
        hostname: Some("box".into()),
        tty: true,
        ..run()
    };
    let s = spec_of(&rs);
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref().unwrap(), ["/bin/echo", "hi"]);
    assert_eq!(p.cwd(), Path::new("/tmp"));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(s.hostname().as_deref(), Some("box"));
    assert_eq!(
        env(&s),
        [
            "HOSTNAME=box",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "FOO=flag",
            "FROM_HOST=host value",
            "TERM=xterm"
        ]
    );

    // arguments replace the image's Cmd, after its Entrypoint
    let img = image("app", &["/entry", "-x"], &["default"]);
    let rs = RunSpec {
        cmd: vec!["mine".into()],
        ..run()
    };
    let s = spec_with(&rs, &img, &host(), &paths()).unwrap();
    let args = s.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, ["/entry", "-x", "mine"]);

    // --init runs the command under rbox-init, bound read-only
    let mut h = host();
    h.init = Some(PathBuf::from("/usr/local/bin/rbox-init"));
    let rs = RunSpec {
        init: true,
        ..run()
    };
    let s = spec_with(&rs, &image("app", &[], &["/bin/app"]), &h, &paths()).unwrap();
    let args = s.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, [INIT_PATH, "--", "/bin/app"]);
    let m = mount(&s, INIT_PATH).unwrap();
    assert_eq!(
        m.source().as_deref(),
        Some(Path::new("/usr/local/bin/rbox-init"))
    );
    assert!(m.options().as_ref().unwrap().contains(&"ro".to_string()));
    let no_init = spec_with(&rs, &image("app", &[], &["/bin/app"]), &host(), &paths());
    assert!(no_init
        .unwrap_err()
        .to_string()
        .contains("rbox-init not found"));

    // no command at all, a relative -w: named errors
    let e = spec_with(&run(), &image("", &[], &[]), &host(), &paths()).unwrap_err();
    assert_eq!(e.to_string(), "image 5e1f: no command specified");
    let rs = RunSpec {
        workdir: Some("rel".into()),
        ..run()
    };
    let e = spec_with(&rs, &image("", &[], &["x"]), &host(), &paths()).unwrap_err();
    assert_eq!(e.to_string(), "-w \"rel\": not an absolute path");
}

#[test]
fn users_and_capabilities_follow_dockers_rules() {
    let defaults: HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    // the image's user by name: its uid, groups listing it; a non-root
    // user gets no effective capabilities
    let s = spec_of(&run());
    let u = s.process().as_ref().unwrap().user().clone();
    assert_eq!((u.uid(), u.gid()), (1000, 1000));
    assert_eq!(u.additional_gids().as_deref(), Some(&[1000, 10][..]));
    assert_eq!(caps(&s), (defaults.clone(), HashSet::new()));

    // -u root with --group-add: root gets the bounding set as effective
    let rs = RunSpec {
        user: Some("root".into()),
        group_add: vec!["audio".into(), "44".into()],
        ..run()
    };
    let s = spec_of(&rs);
    let u = s.process().as_ref().unwrap().user().clone();
    assert_eq!((u.uid(), u.gid()), (0, 0));
    assert_eq!(u.additional_gids().as_deref(), Some(&[0, 29, 44][..]));
    assert_eq!(caps(&s), (defaults.clone(), defaults.clone()));

    // --cap-add for a non-root user is in every set; --cap-drop leaves the bounding set
    let rs = RunSpec {
        cap_add: vec!["net_admin".into()],
        cap_drop: vec!["CAP_CHOWN".into()],
        ..run()
    };
    let (bounding, effective) = caps(&spec_of(&rs));
    assert!(bounding.contains(&Capability::NetAdmin) && !bounding.contains(&Capability::Chown));
    assert_eq!(effective, HashSet::from([Capability::NetAdmin]));

    // ALL is what the host lets rbox pass on; --privileged too
    let rs = RunSpec {
        cap_add: vec!["ALL".into()],
        user: Some("0".into()),
        ..run()
    };
    assert!(caps(&spec_of(&rs)).0.is_superset(&host().capabilities));
    let rs = RunSpec {
        privileged: true,
        cap_drop: vec!["chown".into()],
        user: Some("0".into()),
        ..run()
    };
    let s = spec_of(&rs);
    let mut want = host().capabilities;
    want.remove(&Capability::Chown);
    assert_eq!(caps(&s).0, want);
    // privileged: no masks, no seccomp
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
    assert!(linux.seccomp().is_none());

    // seccomp is asked for the final bounding set; unconfined has none;
    // no-new-privileges is off unless asked
    let rs = RunSpec {
        cap_add: vec!["SYS_ADMIN".into()],
        ..run()
    };
    let s = spec_of(&rs);
    let filter = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let allowed = filter.syscalls().as_ref().unwrap()[0].names().clone();
    assert!(allowed.contains(&"CAP_SYS_ADMIN".to_string()));
    assert!(!allowed.contains(&"CAP_NET_ADMIN".to_string()));
    assert_eq!(
        s.process().as_ref().unwrap().no_new_privileges(),
        Some(false)
    );
    let rs = RunSpec {
        security_opt: SecurityOptions::parse(&[
            "seccomp=unconfined".into(),
            "no-new-privileges".into(),
        ])
        .unwrap(),
        ..run()
    };
    let s = spec_of(&rs);
    assert!(s.linux().as_ref().unwrap().seccomp().is_none());
    assert_eq!(
        s.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );

    for (rs, says) in [
        (
            RunSpec {
                user: Some("nobody".into()),
                ..run()
            },
            "-u \"nobody\": unable to find user nobody",
        ),
        (
            RunSpec {
                cap_add: vec!["FLY".into()],
                ..run()
            },
            "unknown capability \"FLY\"",
        ),
        (
            RunSpec {
                group_add: vec!["nogroup".into()],
                ..run()
            },
            "nogroup",
        ),
    ] {
        let e = spec_with(&rs, &image("app", &[], &["x"]), &host(), &paths()).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    let e = spec_with(&run(), &image("ghost", &[], &["x"]), &host(), &paths()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "image 5e1f: unable to find user ghost: no matching entries in passwd file"
    );
}

#[test]
fn mounts_volumes_and_the_etc_files() {
    let rs = RunSpec {
        mounts: vec![
            MountSpec::parse_volume("/host/dir:/data:ro").unwrap(),
            MountSpec::parse_volume("named:/var/lib/db").unwrap(),
            MountSpec::parse_mount("type=tmpfs,target=/run,tmpfs-size=1m,tmpfs-mode=1777").unwrap(),
            MountSpec::parse_volume("/host/hosts:/etc/hosts").unwrap(),
        ],
        read_only: true,
        ..run()
    };
    let s = spec_of(&rs);
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    let data = mount(&s, "/data").unwrap();
    assert_eq!(data.source().as_deref(), Some(Path::new("/host/dir")));
    assert_eq!(
        data.options().as_deref().unwrap(),
        ["rbind", "ro", "rprivate"]
    );
    let db = mount(&s, "/var/lib/db").unwrap();
    assert_eq!(
        db.source().as_deref(),
        Some(Path::new("/var/lib/rbox/volumes/named/_data"))
    );
    let run_ = mount(&s, "/run").unwrap();
    assert_eq!(run_.typ().as_deref(), Some("tmpfs"));
    assert_eq!(
        run_.options().as_deref().unwrap(),
        ["nosuid", "nodev", "size=1048576", "mode=1777"]
    );
    // the /etc files come from the container's directory, but the one mounted over
    assert_eq!(
        mount(&s, "/etc/hosts").unwrap().source().as_deref(),
        Some(Path::new("/host/hosts"))
    );
    for f in ["hostname", "resolv.conf"] {
        let m = mount(&s, &format!("/etc/{f}")).unwrap();
        assert_eq!(m.source().clone().unwrap(), paths().etc.join(f));
    }
    // one mount per destination: the user's replaces the image's
    let rs = RunSpec {
        mounts: vec![MountSpec::parse_mount("type=tmpfs,target=/dev/shm").unwrap()],
        ..run()
    };
    let s = spec_of(&rs);
    let shm: Vec<_> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0].options().as_deref().unwrap(), ["nosuid", "nodev"]);
    // a volume create has not named is an error, not a guess
    let rs = RunSpec {
        mounts: vec![MountSpec::parse_volume("/anon").unwrap()],
        ..run()
    };
    let e = spec_with(&rs, &image("app", &[], &["x"]), &host(), &paths()).unwrap_err();
    assert_eq!(e.to_string(), "volume at /anon: it has no name");
}

#[test]
fn devices_limits_and_resources() {
    let node = |path: &str, major: i64, minor: i64| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(path));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d
    };
    let rule = |major: i64| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_major(Some(major));
        r
    };
    let mut h = host();
    // as Host::read resolves --device: nodes and the rules that allow them
    h.mapped = vec![(vec![node("/dev/mine", 1, 3)], vec![rule(1)])];
    h.devices = vec![node("/dev/sda", 8, 0), node("/dev/mine", 9, 9)];
    let rs = RunSpec {
        devices: vec![DeviceMapping::parse("/dev/null:/dev/mine").unwrap()],
        device_cgroup_rules: vec![CgroupRule::parse("c 42:* rw").unwrap()],
        memory: Some(64 << 20),
        pids_limit: Some(100),
        cpus: Some(1.5),
        ulimits: vec![
            Ulimit::parse("nofile=1024:2048").unwrap(),
            Ulimit::parse("core=-1").unwrap(),
        ],
        cgroup_parent: Some("/tenants/a".into()),
        ..run()
    };
    let s = spec_with(&rs, &image("app", &[], &["x"]), &h, &paths()).unwrap();
    let linux = s.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(&format!("/tenants/a/{ID}")))
    );
    let nodes = linux.devices().clone().unwrap();
    assert_eq!(nodes.len(), 1, "only --device's node without --privileged");
    assert_eq!((nodes[0].major(), nodes[0].minor()), (1, 3));
    let res = linux.resources().as_ref().unwrap();
    let rules = res.devices().clone().unwrap();
    let default_rules = crate::devices::default_rules();
    assert_eq!(rules[..default_rules.len()], default_rules[..]);
    assert_eq!(rules[default_rules.len()].major(), Some(1));
    assert_eq!(rules[default_rules.len() + 1].major(), Some(42));
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 100);
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    let rl = s.process().as_ref().unwrap().rlimits().clone().unwrap();
    let limit = |t| {
        rl.iter()
            .find(|r| r.typ() == t)
            .map(|r| (r.soft(), r.hard()))
    };
    assert_eq!(limit(PosixRlimitType::RlimitNofile), Some((1024, 2048)));
    assert_eq!(
        limit(PosixRlimitType::RlimitCore),
        Some((u64::MAX, u64::MAX))
    );

    // without --ulimit nofile: Docker's default within the host's hard limit
    let rl = spec_of(&run())
        .process()
        .as_ref()
        .unwrap()
        .rlimits()
        .clone()
        .unwrap();
    assert_eq!(
        (rl[0].typ(), rl[0].soft(), rl[0].hard()),
        (PosixRlimitType::RlimitNofile, 4096, 4096)
    );

    // --privileged: the host's devices (the last asked for a path wins) and every rule
    let rs = RunSpec {
        privileged: true,
        devices: vec![DeviceMapping::parse("/dev/null:/dev/mine").unwrap()],
        ..run()
    };
    let s = spec_with(&rs, &image("app", &[], &["x"]), &h, &paths()).unwrap();
    let linux = s.linux().as_ref().unwrap();
    let nodes = linux.devices().clone().unwrap();
    let paths_of: Vec<&Path> = nodes.iter().map(|d| d.path().as_path()).collect();
    assert_eq!(paths_of, [Path::new("/dev/sda"), Path::new("/dev/mine")]);
    assert_eq!((nodes[1].major(), nodes[1].minor()), (1, 3));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(rules.contains(&crate::devices::allow_all()));
}

#[test]
fn network_modes_set_the_namespaces() {
    let ns_of = |s: &Spec| {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect::<Vec<_>>()
    };
    let find = |s: &Spec, t| ns_of(s).into_iter().find(|(typ, _)| *typ == t);
    // its own namespace, by the path start mounts it at: in config.json from create on
    let s = spec_of(&run());
    assert_eq!(
        find(&s, LinuxNamespaceType::Network),
        Some((
            LinuxNamespaceType::Network,
            Some(PathBuf::from("/run/netns/rbox-0123456789ab"))
        ))
    );
    assert!(find(&s, LinuxNamespaceType::Uts).is_some());
    assert!(find(&s, LinuxNamespaceType::Cgroup).is_some());
    // --net host: the host's network and UTS, no hostname
    let mut p = paths();
    p.netns = NetNs::Host;
    let rs = RunSpec {
        net: Some(NetMode::Host),
        ..run()
    };
    let s = spec_with(&rs, &image("app", &[], &["x"]), &host(), &p).unwrap();
    assert_eq!(find(&s, LinuxNamespaceType::Network), None);
    assert_eq!(find(&s, LinuxNamespaceType::Uts), None);
    assert_eq!(s.hostname(), &None);
    // --net container: of a --net host container: the host's network, its own UTS
    p.netns = NetNs::HostNetwork;
    let s = spec_with(&run(), &image("app", &[], &["x"]), &host(), &p).unwrap();
    assert_eq!(find(&s, LinuxNamespaceType::Network), None);
    assert!(find(&s, LinuxNamespaceType::Uts).is_some());
    assert!(s.hostname().is_some());
    // --net container: of another: its namespace and its /etc files
    p.netns = NetNs::At(PathBuf::from("/run/netns/rbox-fedcba987654"));
    p.etc = PathBuf::from("/var/lib/rbox/containers/fedcba9876543210");
    let s = spec_with(&run(), &image("app", &[], &["x"]), &host(), &p).unwrap();
    assert_eq!(
        find(&s, LinuxNamespaceType::Network).unwrap().1,
        Some(PathBuf::from("/run/netns/rbox-fedcba987654"))
    );
    assert_eq!(
        mount(&s, "/etc/resolv.conf")
            .unwrap()
            .source()
            .clone()
            .unwrap(),
        p.etc.join("resolv.conf")
    );
    // no cgroup namespace on a v1 host
    let mut h = host();
    h.cgroup_ns = false;
    let s = spec_with(&run(), &image("app", &[], &["x"]), &h, &paths()).unwrap();
    assert!(find(&s, LinuxNamespaceType::Cgroup).is_none());
}
