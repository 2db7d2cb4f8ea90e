//! `rrun spec` and `rrun features`.

use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Mount, Spec};
use serde_json::{json, Value};

/// runc's default config.json (oci-spec's default, plus runc's deny-all
/// device rule and without inheritable capabilities, as runc has it since
/// CVE-2022-29162), made rootless like `runc spec --rootless` when asked.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some("rrun".into()));
    if let Some(process) = spec.process_mut() {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            process.set_capabilities(Some(caps));
        }
    }
    if let Some(linux) = spec.linux_mut() {
        let mut deny_all = oci_spec::runtime::LinuxDeviceCgroup::default();
        deny_all.set_allow(false);
        deny_all.set_access(Some("rwm".into()));
        let mut resources = linux.resources().clone().unwrap_or_default();
        resources.set_devices(Some(vec![deny_all]));
        linux.set_resources(Some(resources));
    }
    if !rootless {
        return spec;
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if let Some(linux) = spec.linux_mut() {
        let mut ns: Vec<LinuxNamespace> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            // runc also drops the network namespace (host networking); rrun
            // keeps it: a rootless container owns its netns, with only lo
            .filter(|n| n.typ() != LinuxNamespaceType::Cgroup)
            .collect();
        let mut user = LinuxNamespace::default();
        user.set_typ(LinuxNamespaceType::User);
        ns.push(user);
        linux.set_namespaces(Some(ns));
        let map = |host| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
                .expect("all fields set")
        };
        linux.set_uid_mappings(Some(vec![map(uid)]));
        linux.set_gid_mappings(Some(vec![map(gid)]));
        linux.set_resources(None);
    }
    if let Some(mounts) = spec.mounts().clone() {
        let mounts: Vec<Mount> = mounts
            .into_iter()
            .filter(|m| m.typ().as_deref() != Some("cgroup"))
            .map(|mut m| {
                if m.destination().as_os_str() == "/sys" {
                    m.set_typ(Some("none".into()));
                    m.set_source(Some("/sys".into()));
                    m.set_options(Some(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .map(String::from)
                            .to_vec(),
                    ));
                }
                if let Some(opts) = m.options().clone() {
                    m.set_options(Some(opts.into_iter().filter(|o| o != "gid=5").collect()));
                }
                m
            })
            .collect();
        spec.set_mounts(Some(mounts));
    }
    spec
}

/// The OCI runtime features document (runtime-spec features.md).
pub fn features() -> Value {
    let mount_options: Vec<&str> = [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    ]
    .to_vec();
    let caps: Vec<String> = caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": [match std::env::consts::ARCH {
                    "x86_64" => "SCMP_ARCH_X86_64",
                    "aarch64" => "SCMP_ARCH_AARCH64",
                    _ => "SCMP_ARCH_NATIVE",
                }],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "mountExtensions": {"idmap": {"enabled": true}},
            "apparmor": {"enabled": crate::attrs::apparmor_enabled()},
            "selinux": {"enabled": crate::attrs::selinux_enabled()},
            "intelRdt": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runc.version": "1.1.0-compatible",
            "io.github.rrun.version": env!("CARGO_PKG_VERSION")
        }
    })
}
