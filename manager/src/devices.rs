//! Device access, as Docker has it: a container may mknod any node but
//! open only /dev/null, zero, full, random, urandom, tty, console, ptmx,
//! the ptys and tun, unless `--device HOST[:CTR[:PERMS]]` passes a host
//! device in, `--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS'` allows more,
//! or `--privileged` allows every device and shows the host's in /dev.
//!
//! The result is two parts of config.json: `linux.devices` (the nodes the
//! runtime makes in the container's /dev) and `linux.resources.devices`
//! (the device cgroup rules, which decide what may be opened).

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--device {0:?}: bad format (HOST[:CONTAINER][:PERMISSIONS], permissions of r, w and m)"
    )]
    BadFormat(String),
    #[error("--device {spec:?}: {path:?} is not an absolute path")]
    NotAbsolute { spec: String, path: String },
    #[error("--device {spec:?}: bad permissions {perms:?} (a combination of r, w and m)")]
    BadPerms { spec: String, perms: String },
    #[error("--device {spec:?}: error gathering device information: {path}: {source}")]
    Gather {
        spec: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--device {spec:?}: {path} is not a device node")]
    NotADevice { spec: String, path: PathBuf },
    #[error("--device-cgroup-rule {0:?}: invalid device cgroup format (TYPE MAJOR:MINOR PERMISSIONS, like 'c 1:3 rwm' or 'a *:* m')")]
    BadRule(String),
    #[error("read the host's devices in {path}: {source}")]
    HostDevices {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, DeviceError>;

/// `--device HOST[:CONTAINER][:PERMISSIONS]` (Docker's `DeviceMapping`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub path_on_host: PathBuf,
    pub path_in_container: PathBuf,
    /// Some of r, w and m (default rwm).
    pub cgroup_permissions: String,
}

fn valid_perms(p: &str) -> bool {
    !p.is_empty()
        && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && p.chars().filter(|c| *c == 'r').count() <= 1
        && p.chars().filter(|c| *c == 'w').count() <= 1
        && p.chars().filter(|c| *c == 'm').count() <= 1
}

/// A path as Docker cleans it (`path.Clean`): no `.`, `..` resolved, no
/// trailing slash.
fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl DeviceMapping {
    /// Docker's parsing: `HOST`, `HOST:CTR`, `HOST:PERMS` (when the second
    /// part is permissions) or `HOST:CTR:PERMS`; CTR defaults to HOST.
    pub fn parse(spec: &str) -> Result<DeviceMapping> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, ctr, perms) = match parts.as_slice() {
            [h] => (*h, None, None),
            [h, p] if valid_perms(p) => (*h, None, Some(*p)),
            [h, c] => (*h, Some(*c), None),
            [h, c, p] => (*h, Some(*c), Some(*p)),
            _ => return Err(DeviceError::BadFormat(spec.into())),
        };
        if host.is_empty() || ctr.is_some_and(str::is_empty) {
            return Err(DeviceError::BadFormat(spec.into()));
        }
        for p in [Some(host), ctr].into_iter().flatten() {
            if !p.starts_with('/') {
                return Err(DeviceError::NotAbsolute {
                    spec: spec.into(),
                    path: p.into(),
                });
            }
        }
        let perms = perms.unwrap_or("rwm");
        if !valid_perms(perms) {
            return Err(DeviceError::BadPerms {
                spec: spec.into(),
                perms: perms.into(),
            });
        }
        Ok(DeviceMapping {
            path_on_host: PathBuf::from(host),
            path_in_container: clean(ctr.unwrap_or(host)),
            cgroup_permissions: perms.into(),
        })
    }

    fn spec(&self) -> String {
        format!(
            "{}:{}:{}",
            self.path_on_host.display(),
            self.path_in_container.display(),
            self.cgroup_permissions
        )
    }

    /// The device node(s) to make in the container and the rules that let
    /// the container use them. A directory passes every device below it
    /// (as Docker does); a symlink is followed.
    pub fn resolve(&self) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
        let gather = |path: &Path| {
            let path = path.to_path_buf();
            let spec = self.spec();
            move |source| DeviceError::Gather { spec, path, source }
        };
        let host = std::fs::canonicalize(&self.path_on_host).map_err(gather(&self.path_on_host))?;
        let meta = std::fs::metadata(&host).map_err(gather(&host))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            collect_devices(&host, &mut found).map_err(gather(&host))?;
            for d in &mut found {
                let rel = d
                    .path()
                    .strip_prefix(&host)
                    .unwrap_or(d.path())
                    .to_path_buf();
                d.set_path(self.path_in_container.join(rel));
            }
        } else {
            let mut d = device_from(&host, &meta).ok_or_else(|| DeviceError::NotADevice {
                spec: self.spec(),
                path: host.clone(),
            })?;
            d.set_path(self.path_in_container.clone());
            found.push(d);
        }
        let rules = found
            .iter()
            .map(|d| {
                allow(
                    d.typ(),
                    Some(d.major()),
                    Some(d.minor()),
                    &self.cgroup_permissions,
                )
            })
            .collect();
        Ok((found, rules))
    }
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS'` (Docker's syntax: type
/// a, b or c; a number or `*`; some of r, w and m).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRule {
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl CgroupRule {
    pub fn parse(s: &str) -> Result<CgroupRule> {
        let bad = || DeviceError::BadRule(s.into());
        let mut words = s.split(' ');
        let (Some(typ), Some(numbers), Some(access), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let typ = match typ {
            "a" | "b" | "c" => typ.chars().next().expect("one letter"),
            _ => return Err(bad()),
        };
        let number = |n: &str| -> Result<Option<i64>> {
            match n {
                "*" => Ok(None),
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().map(Some).map_err(|_| bad())
                }
                _ => Err(bad()),
            }
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
        let (major, minor) = (number(major)?, number(minor)?);
        if access.len() > 3
            || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
            || access.is_empty()
        {
            return Err(bad());
        }
        Ok(CgroupRule {
            typ,
            major,
            minor,
            access: access.into(),
        })
    }

    pub fn to_oci(&self) -> LinuxDeviceCgroup {
        let typ = match self.typ {
            'b' => LinuxDeviceType::B,
            'c' => LinuxDeviceType::C,
            _ => LinuxDeviceType::A,
        };
        allow(typ, self.major, self.minor, &self.access)
    }
}

impl fmt::Display for CgroupRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(allow);
    d.set_typ(Some(typ));
    d.set_major(major);
    d.set_minor(minor);
    d.set_access(Some(access.into()));
    d
}

fn allow(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    rule(true, typ, major, minor, access)
}

/// Docker's device rules for every container: deny all, then mknod of any
/// node, and read/write of null, zero, full, random, urandom, tty,
/// console, ptmx, the ptys and tun.
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    vec![
        rule(false, A, None, None, "rwm"),
        allow(C, None, None, "m"),
        allow(B, None, None, "m"),
        allow(C, Some(1), Some(3), "rwm"),
        allow(C, Some(1), Some(5), "rwm"),
        allow(C, Some(1), Some(7), "rwm"),
        allow(C, Some(1), Some(8), "rwm"),
        allow(C, Some(1), Some(9), "rwm"),
        allow(C, Some(5), Some(0), "rwm"),
        allow(C, Some(5), Some(1), "rwm"),
        allow(C, Some(5), Some(2), "rwm"),
        allow(C, Some(136), None, "rwm"),
        allow(C, Some(10), Some(200), "rwm"),
    ]
}

/// `--privileged`: every device.
pub fn allow_all() -> LinuxDeviceCgroup {
    allow(LinuxDeviceType::A, None, None, "rwm")
}

/// The device node at `path` (with `meta`, not following symlinks), or
/// None if it is not a block or character device.
fn device_from(path: &Path, meta: &std::fs::Metadata) -> Option<LinuxDevice> {
    let ft = meta.file_type();
    let typ = if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_char_device() {
        LinuxDeviceType::C
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(path.to_path_buf());
    d.set_typ(typ);
    d.set_major(nix::sys::stat::major(rdev) as i64);
    d.set_minor(nix::sys::stat::minor(rdev) as i64);
    d.set_file_mode(Some(meta.permissions().mode() & 0o7777));
    d.set_uid(Some(meta.uid()));
    d.set_gid(Some(meta.gid()));
    Some(d)
}

/// Every block and character device below `dir`, as runc's and
/// containerd's HostDevices walk /dev: symlinks are not followed, and
/// /dev/pts, shm, fd, mqueue and the console are left out.
fn collect_devices(dir: &Path, out: &mut Vec<LinuxDevice>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue; // gone meanwhile
        };
        if meta.is_dir() {
            if matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                continue;
            }
            collect_devices(&e.path(), out)?;
        } else if name != "console" {
            out.extend(device_from(&e.path(), &meta));
        }
    }
    Ok(())
}

/// The host's devices for `--privileged` (all of /dev but the ptys, shm,
/// mqueue, the console and ptmx: the container has its own).
pub fn host_devices() -> Result<Vec<LinuxDevice>> {
    let mut out = Vec::new();
    collect_devices(Path::new("/dev"), &mut out).map_err(|source| DeviceError::HostDevices {
        path: "/dev".into(),
        source,
    })?;
    out.retain(|d| d.path() != Path::new("/dev/ptmx"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_mappings_parse_like_dockers() {
        let m = |s| DeviceMapping::parse(s).unwrap();
        let want = |h: &str, c: &str, p: &str| DeviceMapping {
            path_on_host: h.into(),
            path_in_container: c.into(),
            cgroup_permissions: p.into(),
        };
        assert_eq!(m("/dev/sda"), want("/dev/sda", "/dev/sda", "rwm"));
        assert_eq!(
            m("/dev/sda:/dev/xvdc"),
            want("/dev/sda", "/dev/xvdc", "rwm")
        );
        assert_eq!(m("/dev/sda:r"), want("/dev/sda", "/dev/sda", "r"));
        assert_eq!(
            m("/dev/sda:/dev/xvdc:rw"),
            want("/dev/sda", "/dev/xvdc", "rw")
        );
        assert_eq!(
            m("/dev/sda:/dev/x/../y/"),
            want("/dev/sda", "/dev/y", "rwm")
        );
        for bad in [
            "",
            "/a:/b:rw:x",
            ":/b",
            "/a::r",
            "sda",
            "/dev/sda:xvdc",
            "/a:/b:rwx",
            "/a:/b:rr",
        ] {
            let e = DeviceMapping::parse(bad).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("--device {bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn cgroup_rules_parse_like_dockers() {
        let r = CgroupRule::parse("c 1:3 mr").unwrap();
        assert_eq!(
            (r.typ, r.major, r.minor, r.access.as_str()),
            ('c', Some(1), Some(3), "mr")
        );
        assert_eq!(r.to_string(), "c 1:3 mr");
        let r = CgroupRule::parse("a *:* rwm").unwrap();
        assert_eq!((r.major, r.minor), (None, None));
        assert_eq!(r.to_oci().typ(), Some(LinuxDeviceType::A));
        assert_eq!(
            CgroupRule::parse("b 7:* rw").unwrap().to_string(),
            "b 7:* rw"
        );
        for bad in [
            "",
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c 1:3 rwx",
            "c -1:3 r",
            "c 1:3 rwmr",
            "c  1:3 r",
            "c 1:3 r extra",
        ] {
            let e = CgroupRule::parse(bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("--device-cgroup-rule {bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_device_passes_with_its_rule_and_a_file_is_refused() {
        let (devs, rules) = DeviceMapping::parse("/dev/null:/dev/mynull:rw")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].path(), Path::new("/dev/mynull"));
        assert_eq!((devs[0].major(), devs[0].minor()), (1, 3));
        assert_eq!(rules[0].access().as_deref(), Some("rw"));
        assert!(rules[0].allow());
        let e = DeviceMapping::parse("/etc/hostname")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("not a device node"), "{e}");
        let e = DeviceMapping::parse("/no/such/dev")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(
            e.to_string().contains("error gathering device information"),
            "{e}"
        );
    }

    #[test]
    fn host_devices_hold_null_but_not_the_ptys() {
        let all = host_devices().unwrap();
        assert!(all.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(!all.iter().any(|d| d.path().starts_with("/dev/pts")));
        assert!(!all.iter().any(|d| d.path() == Path::new("/dev/ptmx")));
    }
}
