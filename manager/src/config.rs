//! `/etc/rbox/rbox.toml` (`--config` moves it): registry mirrors and
//! insecure (plain HTTP) registries.
//!
//! ```toml
//! [registries."docker.io"]
//! mirrors = ["127.0.0.1:5000", "mirror.example.com"]
//!
//! [registries."registry.lan:5000"]
//! insecure = true        # plain HTTP, like Docker's insecure-registries
//! ```
//!
//! A pull tries each mirror of the image's registry in order (same
//! repository path) and the registry itself last; the image keeps its own
//! name. Loopback registries speak plain HTTP without being listed, like
//! Docker. A missing default file is an empty configuration; a missing
//! `--config` file is an error.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/rbox/rbox.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub registries: BTreeMap<String, Registry>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// host[:port] of registries that serve the same repositories
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// speak plain HTTP to it
    #[serde(default)]
    pub insecure: bool,
}

impl Config {
    /// Read `path`; `required` false makes a missing file an empty config.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (a source excerpt): keep one
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }
        })
    }

    /// Whether `domain` is spoken to over plain HTTP.
    pub fn plain_http(&self, domain: &str) -> bool {
        crate::pull::plain_http(domain) || self.registries.get(domain).is_some_and(|r| r.insecure)
    }

    /// Where to pull `domain`'s images from: its mirrors, then itself.
    pub fn endpoints(&self, domain: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .registries
            .get(domain)
            .map(|r| r.mirrors.clone())
            .unwrap_or_default();
        v.push(domain.to_string());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_and_insecure_registries() {
        let c = Config::parse(
            r#"
[registries."docker.io"]
mirrors = ["127.0.0.1:5000", "mirror.example.com"]

[registries."registry.lan:5000"]
insecure = true
"#,
        )
        .unwrap();
        assert_eq!(
            c.endpoints("docker.io"),
            ["127.0.0.1:5000", "mirror.example.com", "docker.io"]
        );
        assert_eq!(c.endpoints("quay.io"), ["quay.io"]);
        assert!(c.plain_http("registry.lan:5000"));
        assert!(c.plain_http("127.0.0.1:5000"));
        assert!(!c.plain_http("mirror.example.com"));
    }

    #[test]
    fn errors_are_one_line_with_the_line_number() {
        let e = Config::parse("[registries.\"docker.io\"]\nmirrors = 5\n").unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = Config::parse("[registries.x]\nmirror = []\n").unwrap_err();
        assert!(e.contains("mirror"), "{e}");
    }
}
