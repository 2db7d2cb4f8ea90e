//! What a container runs and is labelled with, as Docker reports it: the
//! image's `Entrypoint`, `Cmd` and `Labels` with the command line's
//! `--entrypoint`, arguments and `--label` applied. `inspect` shows it as
//! `Config.Entrypoint`, `Config.Cmd`, `Config.Labels`, `Path` and `Args`;
//! `ps` as COMMAND and LABELS.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error("--label {0:?}: the name is empty (KEY=VALUE or KEY)")]
    EmptyKey(String),
}

/// A container's command and labels, fixed when it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `--label KEY=VALUE` or `--label KEY` (empty value), later ones win.
pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, LabelError> {
    let mut out = BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(LabelError::EmptyKey(l.clone()));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The strings of a JSON array (nothing for anything else).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl RunConfig {
    /// Docker's rules: `--entrypoint` replaces the image's entrypoint and
    /// drops its Cmd (an empty `--entrypoint` clears it); arguments replace
    /// the Cmd; the command line's labels override the image's.
    /// `image_config`: the image config's `config` object (JSON).
    pub fn new(
        image_config: &Value,
        entrypoint: Option<&str>,
        cmd: &[String],
        labels: &BTreeMap<String, String>,
    ) -> RunConfig {
        let (entrypoint, cmd) = match entrypoint {
            Some("") => (Vec::new(), cmd.to_vec()),
            Some(ep) => (vec![ep.to_string()], cmd.to_vec()),
            None if cmd.is_empty() => (
                strings(&image_config["Entrypoint"]),
                strings(&image_config["Cmd"]),
            ),
            None => (strings(&image_config["Entrypoint"]), cmd.to_vec()),
        };
        let mut all: BTreeMap<String, String> = image_config["Labels"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        all.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        RunConfig {
            entrypoint,
            cmd,
            labels: all,
        }
    }

    /// Docker's `Path`: the program (the entrypoint's first word, else the
    /// Cmd's).
    pub fn path(&self) -> &str {
        self.entrypoint
            .first()
            .or(self.cmd.first())
            .map_or("", String::as_str)
    }

    /// Docker's `Args`: the rest of entrypoint and Cmd.
    pub fn args(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(&self.cmd)
            .skip(1)
            .cloned()
            .collect()
    }

    /// `ps`'s COMMAND before quoting: Path and Args, an argument with a
    /// space in single quotes (Docker's daemon does the same).
    pub fn command(&self) -> String {
        let mut out = self.path().to_string();
        for a in self.args() {
            out.push(' ');
            if a.contains(' ') {
                out.push_str(&format!("'{a}'"));
            } else {
                out.push_str(&a);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn image_command_with_dockers_overrides() {
        let img = json!({"Entrypoint": ["redis-server"], "Cmd": ["--port", "6379"],
                         "Labels": {"maintainer": "x", "tier": "db"}});
        let none = BTreeMap::new();
        let c = RunConfig::new(&img, None, &[], &none);
        assert_eq!(
            (c.path(), c.args()),
            ("redis-server", s(&["--port", "6379"]))
        );
        assert_eq!(c.command(), "redis-server --port 6379");
        assert_eq!(c.cmd, s(&["--port", "6379"]));
        // arguments replace the Cmd only
        let c = RunConfig::new(&img, None, &s(&["--save", ""]), &none);
        assert_eq!(c.entrypoint, s(&["redis-server"]));
        assert_eq!(c.cmd, s(&["--save", ""]));
        // --entrypoint drops the image's Cmd
        let c = RunConfig::new(&img, Some("sh"), &s(&["-c", "echo a b"]), &none);
        assert_eq!(c.command(), "sh -c 'echo a b'");
        let c = RunConfig::new(&img, Some("sh"), &[], &none);
        assert_eq!((c.path(), c.cmd.len()), ("sh", 0));
        let c = RunConfig::new(&img, Some(""), &s(&["ls"]), &none);
        assert_eq!((c.path(), c.entrypoint.len()), ("ls", 0));
        // labels: the command line's win
        let mine = parse_labels(&s(&["tier=front", "new"])).unwrap();
        let c = RunConfig::new(&img, None, &[], &mine);
        assert_eq!(c.labels["tier"], "front");
        assert_eq!(c.labels["new"], "");
        assert_eq!(c.labels["maintainer"], "x");
        assert_eq!(RunConfig::new(&json!({}), None, &[], &none).path(), "");
    }

    #[test]
    fn labels_need_a_name() {
        assert_eq!(
            parse_labels(&s(&["=x"])),
            Err(LabelError::EmptyKey("=x".into()))
        );
    }
}
