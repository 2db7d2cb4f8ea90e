//! `-v`/`--volume` and `--mount` as Docker reads them, into one
//! [`MountSpec`] the container verbs turn into OCI mounts.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{flag} {spec:?}: {why}")]
pub struct MountError {
    pub flag: &'static str,
    pub spec: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// A host path (absolute).
    Bind(PathBuf),
    /// A named volume; `None`: anonymous (a fresh volume per container).
    Volume(Option<String>),
    /// A tmpfs with its size in bytes and mode, if given.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
    /// An overlay made in the container (a build's `RUN --mount` of a
    /// stage or image): read-only directories, top first, and for writes
    /// that are thrown away an upper dir and its work dir.
    Overlay {
        lower: Vec<PathBuf>,
        upper: Option<(PathBuf, PathBuf)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    pub source: Source,
    /// Absolute path in the container.
    pub target: PathBuf,
    pub readonly: bool,
    /// bind propagation (`rprivate` unless given).
    pub propagation: Option<String>,
    /// A volume `create` named for this container alone (`-v /path`):
    /// removed with `rm -v` or `--rm`.
    #[serde(default)]
    pub anonymous: bool,
    /// A bind source that must exist (`--mount type=bind`; `-v` makes a
    /// missing one as a directory), checked before the container is made.
    #[serde(default)]
    pub must_exist: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Docker's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_volume_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

fn target(flag: &'static str, spec: &str, t: &str) -> Result<PathBuf, MountError> {
    if !t.starts_with('/') {
        return Err(MountError {
            flag,
            spec: spec.into(),
            why: format!("the container path {t:?} is not absolute"),
        });
    }
    if t == "/" {
        return Err(MountError {
            flag,
            spec: spec.into(),
            why: "the container path cannot be /".into(),
        });
    }
    Ok(PathBuf::from(t))
}

impl MountSpec {
    /// `-v [SRC:]DST[:OPTS]`: SRC absolute is a bind mount, else a volume
    /// name; no SRC is an anonymous volume. OPTS: `ro`, `rw`, a
    /// propagation, `z`/`Z` (accepted, no SELinux relabel here), `nocopy`.
    pub fn parse_volume(spec: &str) -> Result<MountSpec, MountError> {
        let err = |why: String| MountError {
            flag: "-v",
            spec: spec.into(),
            why,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [d] => (None, *d, ""),
            [s, d] if d.starts_with('/') => (Some(*s), *d, ""),
            [d, o] => (None, *d, *o),
            [s, d, o] => (Some(*s), *d, *o),
            _ => return Err(err("expected [SOURCE:]TARGET[:OPTIONS]".into())),
        };
        let source = match src {
            None => Source::Volume(None),
            Some("") => return Err(err("the source is empty".into())),
            Some(s) if s.starts_with('/') => Source::Bind(PathBuf::from(s)),
            Some(s) if valid_volume_name(s) => Source::Volume(Some(s.to_string())),
            Some(s) => {
                return Err(err(format!(
                    "{s:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
                )))
            }
        };
        let mut m = MountSpec {
            source,
            target: target("-v", spec, dst)?,
            readonly: false,
            propagation: None,
            anonymous: false,
            must_exist: false,
        };
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => m.readonly = true,
                "rw" => m.readonly = false,
                "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
                p if PROPAGATIONS.contains(&p) => m.propagation = Some(p.to_string()),
                other => return Err(err(format!("unknown option {other:?}"))),
            }
        }
        if m.propagation.is_some() && !matches!(m.source, Source::Bind(_)) {
            return Err(err("propagation applies to bind mounts only".into()));
        }
        Ok(m)
    }

    /// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
    pub fn parse_mount(spec: &str) -> Result<MountSpec, MountError> {
        let err = |why: String| MountError {
            flag: "--mount",
            spec: spec.into(),
            why,
        };
        let (mut kind, mut src, mut dst) = ("volume", None::<String>, None::<String>);
        let (mut readonly, mut propagation) = (false, None);
        let (mut size, mut mode) = (None, None);
        for kv in spec.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "type" => {
                    kind = match v {
                        "bind" => "bind",
                        "volume" => "volume",
                        "tmpfs" => "tmpfs",
                        other => {
                            return Err(err(format!("type {other:?} is not bind, volume or tmpfs")))
                        }
                    }
                }
                "source" | "src" => src = Some(v.to_string()),
                "target" | "destination" | "dst" => dst = Some(v.to_string()),
                "readonly" | "ro" => {
                    readonly = match v {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(err(format!("readonly={other:?} is not a boolean"))),
                    }
                }
                "bind-propagation" if PROPAGATIONS.contains(&v) => {
                    propagation = Some(v.to_string())
                }
                "tmpfs-size" => {
                    size =
                        Some(parse_size(v).ok_or_else(|| {
                            err(format!("tmpfs-size {v:?} is not a size (like 64m)"))
                        })?)
                }
                "tmpfs-mode" => {
                    mode = Some(
                        u32::from_str_radix(v, 8)
                            .map_err(|_| err(format!("tmpfs-mode {v:?} is not an octal mode")))?,
                    )
                }
                "consistency" | "volume-nocopy" => {}
                other => return Err(err(format!("unknown key {other:?}"))),
            }
        }
        let dst = dst.ok_or_else(|| err("target is missing".into()))?;
        let source = match (kind, src) {
            ("bind", Some(s)) if s.starts_with('/') => Source::Bind(PathBuf::from(s)),
            ("bind", Some(s)) => {
                return Err(err(format!("bind source {s:?} is not an absolute path")))
            }
            ("bind", None) => return Err(err("a bind mount needs a source".into())),
            ("volume", None) => Source::Volume(None),
            ("volume", Some(s)) if valid_volume_name(&s) => Source::Volume(Some(s)),
            ("volume", Some(s)) => return Err(err(format!("{s:?} is not a volume name"))),
            (_, Some(_)) => return Err(err("a tmpfs mount has no source".into())),
            (_, None) => Source::Tmpfs { size, mode },
        };
        if (size.is_some() || mode.is_some()) && !matches!(source, Source::Tmpfs { .. }) {
            return Err(err("tmpfs-size and tmpfs-mode are for type=tmpfs".into()));
        }
        Ok(MountSpec {
            must_exist: matches!(source, Source::Bind(_)),
            source,
            target: target("--mount", spec, &dst)?,
            readonly,
            propagation,
            anonymous: false,
        })
    }
}

/// `64m`, `1g`, `512k`, `100` (bytes), `1.5g` is not accepted.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flag_like_docker() {
        let v = |s| MountSpec::parse_volume(s).unwrap();
        assert_eq!(v("/tmp:/tmp").source, Source::Bind("/tmp".into()));
        assert!(!v("/tmp:/tmp").readonly);
        assert!(v("/tmp:/data:ro").readonly);
        assert_eq!(
            v("data:/var/lib/x").source,
            Source::Volume(Some("data".into()))
        );
        assert_eq!(v("/data").source, Source::Volume(None));
        assert_eq!(v("/data:ro").source, Source::Volume(None));
        assert!(v("/data:ro").readonly);
        assert_eq!(
            v("/a:/b:ro,rshared").propagation.as_deref(),
            Some("rshared")
        );
        for bad in ["", "/a:b", "/a:/b:rx", "/a:/b:c:d", "bad name:/x", "/a:/"] {
            assert!(MountSpec::parse_volume(bad).is_err(), "{bad:?}");
        }
        let e = MountSpec::parse_volume("/a:/b:rx").unwrap_err().to_string();
        assert!(e.contains("-v") && e.contains("rx"), "{e}");
    }

    #[test]
    fn mount_flag_like_docker() {
        let m = |s| MountSpec::parse_mount(s).unwrap();
        let b = m("type=bind,source=/srv,target=/srv,readonly");
        assert_eq!(b.source, Source::Bind("/srv".into()));
        assert!(b.readonly);
        assert_eq!(
            m("type=volume,src=data,dst=/data").source,
            Source::Volume(Some("data".into()))
        );
        assert_eq!(
            m("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1777").source,
            Source::Tmpfs {
                size: Some(64 << 20),
                mode: Some(0o1777)
            }
        );
        for bad in [
            "type=bind,target=/x",
            "type=bind,source=rel,target=/x",
            "type=tmpfs,source=/x,target=/y",
            "type=nfs,target=/x",
            "type=volume,source=v",
            "type=bind,source=/a,target=/b,tmpfs-size=1m",
            "type=bind,source=/a,target=/b,color=red",
        ] {
            assert!(MountSpec::parse_mount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("512kb"), Some(512 << 10));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
