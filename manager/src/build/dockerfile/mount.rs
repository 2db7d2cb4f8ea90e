//! `RUN --mount=type=cache|bind|tmpfs|secret|ssh,...`, as BuildKit's
//! `instructions/commands_runmount.go` reads it: a CSV list of `key=value`
//! fields (`ro`, `rw` and `required` may stand alone). The parser checks the
//! keys; the values are expanded by the planner, which then types the mount
//! with [`MountSpec::resolve`].

use crate::build::expand::ExpandError;
use crate::build::path;

use super::instruction::Word;

/// A mount as written: its fields, values not yet expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub fields: Vec<MountField>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountField {
    pub key: MountKey,
    pub value: Option<Word>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKey {
    Type,
    From,
    Source,
    Target,
    ReadOnly,
    ReadWrite,
    Required,
    Size,
    Id,
    Sharing,
    Mode,
    Uid,
    Gid,
    Env,
}

impl MountKey {
    fn parse(key: &str) -> Option<MountKey> {
        Some(match key {
            "type" => MountKey::Type,
            "from" => MountKey::From,
            "source" | "src" => MountKey::Source,
            "target" | "dst" | "destination" => MountKey::Target,
            "readonly" | "ro" => MountKey::ReadOnly,
            "readwrite" | "rw" => MountKey::ReadWrite,
            "required" => MountKey::Required,
            "size" => MountKey::Size,
            "id" => MountKey::Id,
            "sharing" => MountKey::Sharing,
            "mode" => MountKey::Mode,
            "uid" => MountKey::Uid,
            "gid" => MountKey::Gid,
            "env" => MountKey::Env,
            _ => return None,
        })
    }

    /// Keys that may stand without `=value`.
    fn may_stand_alone(self) -> bool {
        matches!(
            self,
            MountKey::ReadOnly | MountKey::ReadWrite | MountKey::Required
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {0}")]
    Csv(&'static str),
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("{0}")]
    Expand(#[from] ExpandError),
    #[error("unsupported mount type {0:?}")]
    Type(String),
    #[error("unsupported sharing value {0:?}")]
    Sharing(String),
    #[error("invalid value for {key}: {value}")]
    Value { key: &'static str, value: String },
    #[error("invalid value {value} for {key}")]
    Number { key: &'static str, value: String },
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyForType {
        key: &'static str,
        kind: &'static str,
    },
    #[error("{key} not allowed for {kind:?} type mounts")]
    FileInfo {
        key: &'static str,
        kind: &'static str,
    },
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {0} mount")]
    SharingForType(&'static str),
    #[error("invalid mount target {0:?}")]
    Target(String),
}

impl MountSpec {
    /// The fields of `--mount=<csv>`, keys checked.
    pub(super) fn parse(csv: &str) -> Result<MountSpec, MountError> {
        let fields = csv_fields(csv)?
            .into_iter()
            .map(|field| parse_field(&field))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MountSpec { fields })
    }

    /// The stage or image named by `from=`, as written (it is never
    /// expanded, as in BuildKit).
    pub fn from(&self) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|f| f.key == MountKey::From)
            .and_then(|f| f.value.as_ref())
            .map(|w| w.0.as_str())
    }

    /// The typed mount: `expand` expands each value, relative targets are
    /// made absolute under `workdir`.
    pub fn resolve(
        &self,
        expand: &mut dyn FnMut(&Word) -> Result<String, ExpandError>,
        workdir: &str,
    ) -> Result<Mount, MountError> {
        let mut fields = Fields::default();
        for field in &self.fields {
            let value = match &field.value {
                Some(w) => Some(expand(w)?),
                None => None,
            };
            fields.set(field.key, value)?;
        }
        fields.into_mount(workdir)
    }
}

fn parse_field(field: &str) -> Result<MountField, MountError> {
    let (key, value) = match field.split_once('=') {
        Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
        None => (field.to_ascii_lowercase(), None),
    };
    let unknown = || MountError::UnknownKey {
        key: key.clone(),
        field: field.to_string(),
    };
    let key = MountKey::parse(&key).ok_or_else(unknown)?;
    if value.is_none() && !key.may_stand_alone() {
        return Err(MountError::NotKeyValue(field.to_string()));
    }
    if key == MountKey::From && value.is_some_and(has_variable) {
        return Err(MountError::FromVariable);
    }
    Ok(MountField {
        key,
        value: value.map(|v| Word(v.to_string())),
    })
}

/// A `$` that is not the last character (BuildKit's test for `from=`).
fn has_variable(v: &str) -> bool {
    v.find('$').is_some_and(|i| i != v.len() - 1)
}

/// One CSV record (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, MountError> {
    if line.is_empty() {
        return Err(MountError::Csv("EOF"));
    }
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let (field, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted_field(quoted)?,
            None => bare_field(rest)?,
        };
        fields.push(field);
        match after {
            Some(next) => rest = next,
            None => return Ok(fields),
        }
    }
}

/// A field up to the next comma; the text after the comma, if any.
fn bare_field(s: &str) -> Result<(String, Option<&str>), MountError> {
    let (field, after) = match s.split_once(',') {
        Some((f, a)) => (f, Some(a)),
        None => (s, None),
    };
    if field.contains('"') {
        return Err(MountError::Csv("bare \" in non-quoted-field"));
    }
    Ok((field.to_string(), after))
}

/// A quoted field (its opening quote already consumed).
fn quoted_field(s: &str) -> Result<(String, Option<&str>), MountError> {
    let mut field = String::new();
    let mut rest = s;
    loop {
        let Some(i) = rest.find('"') else {
            return Err(MountError::Csv("extraneous or missing \" in quoted-field"));
        };
        field.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('"') {
            field.push('"');
            rest = r;
        } else if let Some(r) = rest.strip_prefix(',') {
            return Ok((field, Some(r)));
        } else if rest.is_empty() {
            return Ok((field, None));
        } else {
            return Err(MountError::Csv("extraneous or missing \" in quoted-field"));
        }
    }
}

/// What `RUN --mount` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The build context, a stage or an image, read-only unless `rw`
    /// (writes are then thrown away).
    Bind {
        target: String,
        from: Option<String>,
        source: String,
        read_only: bool,
    },
    /// A directory kept between builds, shared by `id`.
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        from: Option<String>,
        source: String,
        read_only: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Tmpfs {
        target: String,
        /// bytes; `None` for the kernel's default
        size: Option<u64>,
    },
    /// A secret given to the build (`--secret id=...`), as a file or an
    /// environment variable.
    Secret {
        id: String,
        /// the file; `None` when only `env` is asked for
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// The SSH agent socket given to the build.
    Ssh {
        id: String,
        target: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }

    fn parse(s: &str) -> Result<MountType, MountError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return Err(MountError::Type(s.to_string())),
        })
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

impl Sharing {
    fn parse(s: &str) -> Result<Sharing, MountError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "shared" => Sharing::Shared,
            "private" => Sharing::Private,
            "locked" => Sharing::Locked,
            _ => return Err(MountError::Sharing(s.to_string())),
        })
    }
}

/// The fields as BuildKit collects them before checking the combination.
#[derive(Default)]
struct Fields {
    kind: Option<MountType>,
    from: Option<String>,
    source: String,
    target: String,
    read_only: Option<bool>,
    required: bool,
    size: Option<u64>,
    id: String,
    sharing: Option<Sharing>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    env: Option<String>,
}

impl Fields {
    fn kind(&self) -> MountType {
        self.kind.unwrap_or(MountType::Bind)
    }

    /// One field, in order: `required` and `size` are checked against the
    /// type given so far, as in BuildKit.
    fn set(&mut self, key: MountKey, value: Option<String>) -> Result<(), MountError> {
        let v = value.unwrap_or_default();
        match key {
            MountKey::Type => self.kind = Some(MountType::parse(&v)?),
            MountKey::From => self.from = Some(v),
            MountKey::Source => self.source = v,
            MountKey::Target => self.target = v,
            MountKey::ReadOnly => self.read_only = Some(flag("readonly", &v)?),
            MountKey::ReadWrite => self.read_only = Some(!flag("readwrite", &v)?),
            MountKey::Required => self.required = self.required_value(&v)?,
            MountKey::Size => self.size = Some(self.size_value(&v)?),
            MountKey::Id => self.id = v,
            MountKey::Sharing => self.sharing = Some(Sharing::parse(&v)?),
            MountKey::Mode => self.mode = Some(number("mode", &v, 8)?),
            MountKey::Uid => self.uid = Some(number("uid", &v, 10)?),
            MountKey::Gid => self.gid = Some(number("gid", &v, 10)?),
            MountKey::Env => self.env = Some(v),
        }
        Ok(())
    }

    fn required_value(&self, v: &str) -> Result<bool, MountError> {
        match self.kind() {
            MountType::Secret | MountType::Ssh => flag("required", v),
            other => Err(MountError::KeyForType {
                key: "required",
                kind: other.name(),
            }),
        }
    }

    fn size_value(&self, v: &str) -> Result<u64, MountError> {
        match self.kind() {
            MountType::Tmpfs => ram_in_bytes(v).ok_or_else(|| MountError::Value {
                key: "size",
                value: v.to_string(),
            }),
            other => Err(MountError::KeyForType {
                key: "size",
                kind: other.name(),
            }),
        }
    }

    fn into_mount(self, workdir: &str) -> Result<Mount, MountError> {
        self.check()?;
        let kind = self.kind();
        // bind, secret and ssh mounts are read-only unless told otherwise
        let read_only = self
            .read_only
            .unwrap_or(!matches!(kind, MountType::Cache | MountType::Tmpfs));
        match kind {
            MountType::Bind => Ok(Mount::Bind {
                target: absolute_target(&self.target, workdir)?,
                from: self.from,
                source: self.source,
                read_only,
            }),
            MountType::Cache => self.cache(workdir, read_only),
            MountType::Tmpfs => Ok(Mount::Tmpfs {
                target: absolute_target(&self.target, workdir)?,
                size: self.size,
            }),
            MountType::Secret => Ok(self.secret()),
            MountType::Ssh => Ok(self.ssh()),
        }
    }

    /// The combinations BuildKit refuses.
    fn check(&self) -> Result<(), MountError> {
        let kind = self.kind();
        if matches!(kind, MountType::Bind | MountType::Tmpfs) {
            let given = [("mode", self.mode), ("uid", self.uid), ("gid", self.gid)];
            if let Some((key, _)) = given.iter().find(|(_, v)| v.is_some()) {
                return Err(MountError::FileInfo {
                    key,
                    kind: kind.name(),
                });
            }
        }
        if kind == MountType::Secret {
            self.check_secret()?;
        }
        if self.sharing.is_some() && kind != MountType::Cache {
            return Err(MountError::SharingForType(kind.name()));
        }
        Ok(())
    }

    fn check_secret(&self) -> Result<(), MountError> {
        if self.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if self.sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if self.source.is_empty() && self.target.is_empty() && self.id.is_empty() {
            return Err(MountError::SecretTarget);
        }
        if !self.source.is_empty() && !self.id.is_empty() {
            return Err(MountError::SecretSourceAndId);
        }
        Ok(())
    }

    fn cache(self, workdir: &str, read_only: bool) -> Result<Mount, MountError> {
        let id = if self.id.is_empty() {
            path::clean(&self.target)
        } else {
            self.id
        };
        Ok(Mount::Cache {
            target: absolute_target(&self.target, workdir)?,
            id,
            sharing: self.sharing.unwrap_or_default(),
            from: self.from,
            source: self.source,
            read_only,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        })
    }

    /// The secret's id is its source, else its id, else the base name of
    /// its target; a secret not given as `env` is a file, by default
    /// `/run/secrets/<id>`.
    fn secret(self) -> Mount {
        let id = [&self.source, &self.id]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| base_name(&self.target));
        let target = match (&self.env, self.target.is_empty()) {
            (_, false) => Some(self.target.clone()),
            (None, true) => Some(format!("/run/secrets/{}", base_name(&id))),
            (Some(_), true) => None,
        };
        Mount::Secret {
            id,
            target,
            env: self.env,
            required: self.required,
            mode: self.mode.unwrap_or(0o400),
            uid: self.uid.unwrap_or(0),
            gid: self.gid.unwrap_or(0),
        }
    }

    fn ssh(self) -> Mount {
        let id = if self.id.is_empty() {
            "default".to_string()
        } else {
            self.id
        };
        Mount::Ssh {
            id,
            target: (!self.target.is_empty()).then_some(self.target),
            required: self.required,
            mode: self.mode.unwrap_or(0o600),
            uid: self.uid.unwrap_or(0),
            gid: self.gid.unwrap_or(0),
        }
    }
}

/// A target relative to the working directory made absolute; `/` itself
/// cannot be a mount target.
fn absolute_target(target: &str, workdir: &str) -> Result<String, MountError> {
    let abs = path::join(&path::join("/", workdir), target);
    if abs == "/" {
        return Err(MountError::Target(abs));
    }
    Ok(abs)
}

fn base_name(p: &str) -> String {
    let clean = path::clean(p);
    match clean.rsplit_once('/') {
        Some((_, "")) => "/".to_string(),
        Some((_, name)) => name.to_string(),
        None => clean,
    }
}

/// Go's `strconv.ParseBool`; a key standing alone is true.
fn flag(key: &'static str, v: &str) -> Result<bool, MountError> {
    match v {
        "" | "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(MountError::Value {
            key,
            value: v.to_string(),
        }),
    }
}

fn number(key: &'static str, v: &str, radix: u32) -> Result<u32, MountError> {
    u32::from_str_radix(v, radix).map_err(|_| MountError::Number {
        key,
        value: v.to_string(),
    })
}

/// docker/go-units' `RAMInBytes`: `512`, `64k`, `1.5g`, `2MiB` (binary
/// multiples, case-insensitive).
fn ram_in_bytes(s: &str) -> Option<u64> {
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(number_end);
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    // truncation to whole bytes is what go-units does
    Some((value * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests;
