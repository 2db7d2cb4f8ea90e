//! Device access rules (`linux.resources.devices`) as runc applies them,
//! whatever the spec says: everything is denied, then the spec's rules
//! apply in order, then the devices every container gets are allowed
//! (mknod of any node, and null, zero, full, random, urandom, tty, console,
//! ptmx, the ptys and tun). A spec without rules is not "allow all": it
//! gets only the defaults; `{"allow": true, "access": "rwm"}` allows all.
//!
//! This module builds that list and writes it to a cgroup v1 `devices`
//! controller. cgroup v2 has no such controller: devfilter.rs turns the
//! same list into an eBPF program.
//!
//! v1 semantics are the kernel's: a cgroup has a default (allow or deny)
//! and a list of exceptions. Writing `a` to `devices.deny` sets the
//! default to deny and clears the exceptions (and `a` to `devices.allow`
//! the reverse); any other line adds (or removes, for the opposite file)
//! one exception. The kernel reads any line starting with `a` as that
//! whole-default switch, so a rule of type `a` that is not `a *:* rwm`
//! is written as one `c` and one `b` line.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// A rule that is invalid for a device cgroup.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("linux.resources.devices[{index}].type: {typ:?} cannot be used in a device rule (use a, b or c)")]
    Type { index: usize, typ: String },
    #[error(
        "linux.resources.devices[{index}].access: {access:?} is not a combination of r, w and m"
    )]
    Access { index: usize, access: String },
}

/// Writing one line to a v1 `devices.allow` or `devices.deny` failed.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {file}: write {line:?}: {err}")]
pub struct WriteError {
    pub file: PathBuf,
    pub line: String,
    pub err: std::io::Error,
}

/// Refuse rules no device cgroup can express, naming the rule.
pub fn validate(rules: &[LinuxDeviceCgroup]) -> Result<(), RuleError> {
    for (index, r) in rules.iter().enumerate() {
        if let Some(t @ (LinuxDeviceType::P | LinuxDeviceType::U)) = r.typ() {
            return Err(RuleError::Type {
                index,
                typ: t.as_str().to_string(),
            });
        }
        if let Some(a) = r.access() {
            let ok = a.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
            if !ok {
                return Err(RuleError::Access {
                    index,
                    access: a.clone(),
                });
            }
        }
    }
    Ok(())
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
    d.set_access(Some(access.to_string()));
    d
}

/// The devices every container may use (runc's AllowedDevices, Docker's
/// defaults): mknod of any node, and read/write/mknod of null, zero, full,
/// random, urandom, tty, console, ptmx, the ptys and tun.
pub fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(7), "rwm"),
        rule(true, C, Some(1), Some(8), "rwm"),
        rule(true, C, Some(1), Some(9), "rwm"),
        rule(true, C, Some(5), Some(0), "rwm"),
        rule(true, C, Some(5), Some(1), "rwm"),
        rule(true, C, Some(5), Some(2), "rwm"),
        rule(true, C, Some(136), None, "rwm"),
        rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

/// The rule that denies everything (`a *:* rwm`).
pub fn deny_all() -> LinuxDeviceCgroup {
    rule(false, LinuxDeviceType::A, None, None, "rwm")
}

/// What is enforced for a spec's rules: deny all, the spec's rules, then
/// the defaults.
pub fn effective(spec_rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let mut out = vec![deny_all()];
    out.extend(spec_rules.iter().cloned());
    out.extend(default_allowed());
    out
}

/// `*` for an absent or negative number (OCI and Docker spell "any" both ways).
fn number(n: Option<i64>) -> String {
    match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".into(),
    }
}

fn access(r: &LinuxDeviceCgroup) -> String {
    let a = r.access().as_deref().unwrap_or("rwm");
    // the kernel wants each letter once, and an empty access matches nothing
    "rwm".chars().filter(|c| a.contains(*c)).collect()
}

/// One write to a v1 devices controller: the file (`true`: devices.allow)
/// and the line.
pub type V1Write = (bool, String);

/// The writes that put `rules` into a fresh v1 devices cgroup: `a` to
/// devices.deny first (deny all, no exceptions, whatever the cgroup
/// inherited), then one or two lines per rule.
pub fn v1_writes(rules: &[LinuxDeviceCgroup]) -> Vec<V1Write> {
    let mut out = vec![(false, "a".to_string())];
    for r in rules {
        let acc = access(r);
        if acc.is_empty() {
            continue;
        }
        let (major, minor) = (number(r.major()), number(r.minor()));
        let types: &[&str] = match r.typ() {
            Some(LinuxDeviceType::B) => &["b"],
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => &["c"],
            Some(LinuxDeviceType::P) => continue,
            Some(LinuxDeviceType::A) | None => {
                if major == "*" && minor == "*" && acc == "rwm" {
                    out.push((r.allow(), "a".to_string()));
                    continue;
                }
                &["c", "b"]
            }
        };
        for t in types {
            out.push((r.allow(), format!("{t} {major}:{minor} {acc}")));
        }
    }
    out
}

/// Write `rules` (already `effective`) to the v1 devices cgroup `dir`.
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), WriteError> {
    // each file opened once: the kernel takes one rule per write
    let mut open: [Option<std::fs::File>; 2] = [None, None];
    for (allow, line) in v1_writes(rules) {
        let file = dir.join(if allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        let slot = &mut open[usize::from(allow)];
        let f = match slot {
            Some(f) => f,
            None => match std::fs::OpenOptions::new().write(true).open(&file) {
                Ok(f) => slot.insert(f),
                Err(err) => return Err(WriteError { file, line, err }),
            },
        };
        f.write_all(line.as_bytes())
            .map_err(|err| WriteError { file, line, err })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rule(json: serde_json::Value) -> LinuxDeviceCgroup {
        serde_json::from_value(json).unwrap()
    }

    fn lines(rules: &[LinuxDeviceCgroup]) -> Vec<String> {
        v1_writes(rules)
            .into_iter()
            .map(|(allow, l)| format!("{} {l}", if allow { "allow" } else { "deny" }))
            .collect()
    }

    #[test]
    fn no_rules_still_deny_all_but_the_defaults() {
        let l = lines(&effective(&[]));
        assert_eq!(l[0], "deny a", "{l:?}");
        assert_eq!(l[1], "deny a", "{l:?}");
        assert_eq!(
            l[2..],
            [
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "allow c 1:7 rwm",
                "allow c 1:8 rwm",
                "allow c 1:9 rwm",
                "allow c 5:0 rwm",
                "allow c 5:1 rwm",
                "allow c 5:2 rwm",
                "allow c 136:* rwm",
                "allow c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn wildcards_are_stars_whether_absent_or_negative() {
        let r = [
            spec_rule(serde_json::json!({"allow": true, "type": "c", "major": 1, "access": "r"})),
            spec_rule(
                serde_json::json!({"allow": true, "type": "b", "major": -1, "minor": -1, "access": "mr"}),
            ),
        ];
        assert_eq!(lines(&r)[1..], ["allow c 1:* r", "allow b *:* rm"]);
    }

    #[test]
    fn allow_all_switches_the_default_and_partial_a_rules_split() {
        let r = [
            spec_rule(serde_json::json!({"allow": true, "access": "rwm"})),
            spec_rule(serde_json::json!({"allow": false, "type": "a", "major": 7, "access": "rw"})),
            spec_rule(serde_json::json!({"allow": true, "type": "a", "access": "m"})),
        ];
        assert_eq!(
            lines(&r)[1..],
            [
                "allow a",
                "deny c 7:* rw",
                "deny b 7:* rw",
                "allow c *:* m",
                "allow b *:* m"
            ]
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let e = validate(&[
            deny_all(),
            spec_rule(serde_json::json!({"allow": true, "type": "c", "access": "rwx"})),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.devices[1].access: \"rwx\" is not a combination of r, w and m"
        );
        let e = validate(&[spec_rule(
            serde_json::json!({"allow": true, "type": "p", "access": "r"}),
        )])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.devices[0].type"),
            "{e}"
        );
    }
}
