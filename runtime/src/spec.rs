//! Loading and validating `config.json`.
//!
//! Everything that can be checked before a single kernel object exists is
//! checked here, so bad input fails with a message naming the field and
//! leaves nothing behind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use nix::sys::resource::getrlimit;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A parsed bundle: the spec plus the absolute paths it refers to.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// `linux.seccomp`, compiled once here: a bad profile is refused before
    /// anything is made, and the init (a fork) installs this very program.
    pub seccomp: Option<crate::seccomp::Compiled>,
}

/// Read `<bundle>/config.json`, parse it, and validate it.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle).map_err(|e| Error::io(bundle, e))?;
    let config = dir.join("config.json");
    let data = std::fs::read(&config).map_err(|e| Error::io(&config, e))?;
    let spec = parse(&data).map_err(|msg| Error::Config {
        path: config.clone(),
        msg,
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::InvalidConfig {
        field: "root.path".into(),
        msg: format!("{}: {e}", rootfs.display()),
    })?;
    if !rootfs.is_dir() {
        return Err(Error::config(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    validate(&spec)?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        seccomp,
    })
}

/// Parse config.json; errors carry the JSON path of the offending field.
pub fn parse(data: &[u8]) -> std::result::Result<Spec, String> {
    // Tracking the path costs on every field: only a config that fails is
    // read again for it (the same input fails the same way).
    if let Ok(spec) = serde_json::from_slice(data) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid JSON: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// `ociVersion` must be a SemVer 2.0.0 version of the OCI runtime spec's major
/// version 1 (rrun implements 1.0 and 1.1; later 1.x releases keep their
/// configs' meaning): the spec says a runtime MUST refuse a value it does not
/// support. An absent one (serde makes it "") is accepted, as runc and crun do.
fn validate_version(version: &str) -> Result<()> {
    if version.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| Error::config("ociVersion", format!("{version:?}: {why}"));
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |n: &str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    let ident =
        |i: &str| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let semver = numbers.len() == 3
        && numbers.iter().all(|n| numeric(n))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|i| ident(i) && (!i.bytes().all(|b| b.is_ascii_digit()) || numeric(i)))
        })
        && build.is_none_or(|b| b.split('.').all(ident));
    if !semver {
        return Err(bad("not a SemVer 2.0.0 version (MAJOR.MINOR.PATCH)"));
    }
    if numbers[0] != "1" {
        return Err(bad(
            "unsupported: rrun implements version 1 of the OCI runtime specification",
        ));
    }
    Ok(())
}

fn namespace_set(spec: &Spec) -> HashSet<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}

/// Semantic checks on a parsed spec (what serde cannot express).
pub fn validate(spec: &Spec) -> Result<()> {
    validate_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    validate_process(process)?;
    crate::attrs::validate(process, spec.linux().as_ref())?;

    // No mount namespace is fine: the container shares the runtime's
    // (sharedmount.rs).
    let namespaces = namespace_set(spec);
    let linux = spec.linux().as_ref();
    if let Some(nss) = linux.and_then(|l| l.namespaces().as_ref()) {
        let mut seen = HashSet::new();
        for (i, ns) in nss.iter().enumerate() {
            if !seen.insert(ns.typ()) {
                return Err(Error::config(
                    format!("linux.namespaces[{i}]"),
                    format!("namespace {} listed twice", ns.typ()),
                ));
            }
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(Error::config(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} must be an absolute path", p.display()),
                    ));
                }
                if !p.exists() {
                    return Err(Error::config(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} does not exist", p.display()),
                    ));
                }
            }
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !namespaces.contains(&LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "hostname",
            "setting the hostname needs a new uts namespace (linux.namespaces)",
        ));
    }
    if let Some(linux) = linux {
        let has_user = namespaces.contains(&LinuxNamespaceType::User);
        for (field, maps) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            let Some(maps) = maps else { continue };
            if !maps.is_empty() && !has_user {
                return Err(Error::config(
                    field,
                    "id mappings need a user namespace in linux.namespaces",
                ));
            }
            for (i, m) in maps.iter().enumerate() {
                if m.size() == 0 {
                    return Err(Error::config(format!("{field}[{i}].size"), "must be > 0"));
                }
                for (j, other) in maps.iter().enumerate().skip(i + 1) {
                    let overlap = |a: u32, b: u32| {
                        a < b.saturating_add(other.size()) && b < a.saturating_add(m.size())
                    };
                    if overlap(m.container_id(), other.container_id())
                        || overlap(m.host_id(), other.host_id())
                    {
                        return Err(Error::config(
                            format!("{field}[{j}]"),
                            format!("overlaps {field}[{i}]"),
                        ));
                    }
                }
            }
        }
        if has_user {
            let ns_path = linux
                .namespaces()
                .as_ref()
                .and_then(|n| n.iter().find(|n| n.typ() == LinuxNamespaceType::User))
                .and_then(|n| n.path().clone());
            let no_maps = |m: &Option<Vec<_>>| m.as_ref().is_none_or(|v: &Vec<_>| v.is_empty());
            if ns_path.is_none() && (no_maps(linux.uid_mappings()) || no_maps(linux.gid_mappings()))
            {
                return Err(Error::config(
                    "linux.uidMappings",
                    "a new user namespace needs both uidMappings and gidMappings",
                ));
            }
        }
        if let Some(devs) = linux.devices() {
            for (i, d) in devs.iter().enumerate() {
                if !d.path().is_absolute() {
                    return Err(Error::config(
                        format!("linux.devices[{i}].path"),
                        format!("{} must be an absolute path", d.path().display()),
                    ));
                }
            }
        }
        if let Some(rules) = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().as_ref())
        {
            crate::devices::validate(rules)?;
        }
        if let Some(limits) = linux
            .resources()
            .as_ref()
            .and_then(|r| r.hugepage_limits().as_ref())
        {
            crate::resources::check_hugepage_limits(limits)?;
        }
        for (field, paths) in [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ] {
            for (i, p) in paths.iter().flatten().enumerate() {
                if !p.starts_with('/') {
                    return Err(Error::config(
                        format!("{field}[{i}]"),
                        format!("{p:?} must be an absolute path"),
                    ));
                }
            }
        }
        if let Some(prop) = linux.rootfs_propagation() {
            if crate::rootfs::propagation_flag(prop).is_none() {
                return Err(Error::config(
                    "linux.rootfsPropagation",
                    format!("unknown propagation {prop:?}"),
                ));
            }
        }
        if let Some(sysctl) = linux.sysctl() {
            for key in sysctl.keys() {
                if key.contains("..") || key.starts_with('/') {
                    return Err(Error::config(
                        format!("linux.sysctl.{key}"),
                        "not a sysctl name",
                    ));
                }
            }
        }
        if linux.intel_rdt().is_some() {
            return Err(Error::Unsupported("linux.intelRdt".into()));
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(Error::config(
                    format!("mounts[{i}].destination"),
                    format!("{} must be an absolute path", m.destination().display()),
                ));
            }
        }
    }
    crate::hooks::validate(spec)?;
    crate::idmap::validate(spec)?;
    Ok(())
}

/// Checks on a process (the container's, or one given to `exec`).
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(Error::config("process.args", "must name a program")),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("{:?} must be an absolute path", process.cwd()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(Error::config(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    validate_rlimits(process)
}

/// Raising a hard limit above the current one needs CAP_SYS_RESOURCE; say so
/// before anything is created instead of failing half-way in the init.
fn validate_rlimits(process: &oci_spec::runtime::Process) -> Result<()> {
    let Some(rlimits) = process.rlimits().as_ref() else {
        return Ok(());
    };
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    for (i, rl) in rlimits.iter().enumerate() {
        let name = rl.typ().to_string();
        if rl.soft() > rl.hard() {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!(
                    "{name}: soft limit {} exceeds hard limit {}",
                    rl.soft(),
                    rl.hard()
                ),
            ));
        }
        let Some(res) = crate::process::rlimit_resource(&name) else {
            return Err(Error::config(
                format!("process.rlimits[{i}].type"),
                format!("unknown rlimit {name}"),
            ));
        };
        if !can_raise {
            if let Ok((_, hard)) = getrlimit(res) {
                if hard != libc::RLIM_INFINITY && rl.hard() > hard {
                    return Err(Error::config(
                        format!("process.rlimits[{i}]"),
                        format!(
                            "{name}: hard limit {} is above the current hard limit {hard}; raising it needs CAP_SYS_RESOURCE",
                            rl.hard()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_version() {
        for ok in [
            "",
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.0",
            "1.0.0-rc5+dev",
            "1.3.0+abc.1",
        ] {
            assert!(validate_version(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "invalid", "1", "1.0", "1.x.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", " 1.0.0",
        ] {
            let err = validate_version(bad).unwrap_err().to_string();
            assert!(
                err.contains("ociVersion") && err.contains("SemVer"),
                "{bad:?}: {err}"
            );
        }
        for other in ["0.9.0", "2.0.0"] {
            let err = validate_version(other).unwrap_err().to_string();
            assert!(
                err.contains(other) && err.contains("version 1"),
                "{other:?}: {err}"
            );
        }
    }

    fn spec_json(patch: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        patch(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn check(patch: impl FnOnce(&mut serde_json::Value)) -> std::result::Result<(), String> {
        let spec = parse(&spec_json(patch))?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn default_spec_is_valid() {
        check(|_| {}).unwrap();
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let err = check(|v| v["linux"]["namespaces"][0]["type"] = "bogus".into()).unwrap_err();
        assert!(err.contains("linux.namespaces[0].type"), "{err}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let err = parse(b"{\"ociVersion\": ").unwrap_err();
        assert!(err.contains("EOF"), "{err}");
    }

    #[test]
    fn relative_mount_destination_is_refused() {
        let err = check(|v| v["mounts"][0]["destination"] = "proc".into()).unwrap_err();
        assert!(err.contains("mounts[0].destination"), "{err}");
    }

    #[test]
    fn relative_cwd_is_refused() {
        let err = check(|v| v["process"]["cwd"] = "tmp".into()).unwrap_err();
        assert!(err.contains("process.cwd"), "{err}");
    }

    #[test]
    fn mappings_without_user_namespace_are_refused() {
        let err = check(|v| {
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        })
        .unwrap_err();
        assert!(err.contains("linux.uidMappings"), "{err}");
    }

    #[test]
    fn overlapping_mappings_are_refused() {
        let err = check(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] = serde_json::json!([
                {"containerID": 0, "hostID": 100000, "size": 1000},
                {"containerID": 500, "hostID": 200000, "size": 10}
            ]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        })
        .unwrap_err();
        assert!(
            err.contains("linux.uidMappings[1]") && err.contains("overlaps"),
            "{err}"
        );
    }

    #[test]
    fn zero_size_mapping_is_refused() {
        let err = check(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
        })
        .unwrap_err();
        assert!(err.contains("linux.uidMappings[0].size"), "{err}");
    }

    #[test]
    fn soft_above_hard_rlimit_is_refused() {
        let err = check(|v| {
            v["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}])
        })
        .unwrap_err();
        assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let err = check(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "uts");
        })
        .unwrap_err();
        assert!(err.contains("hostname"), "{err}");
    }

    #[test]
    fn no_mount_namespace_is_accepted() {
        // the container shares the runtime's (sharedmount.rs)
        check(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "mount");
        })
        .unwrap();
    }
}
