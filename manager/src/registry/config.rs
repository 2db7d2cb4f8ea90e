//! `/etc/rbox/rbox.toml` (`--config` moves it): registry mirrors and
//! insecure (plain HTTP) registries.
//!
//! ```toml
//! [registries."docker.io"]
//! mirrors = ["http://127.0.0.1:5000", "https://mirror.example.com", "mirror.lan:5000"]
//!
//! [registries."registry.lan:5000"]
//! insecure = true        # plain HTTP, like Docker's insecure-registries
//! ```
//!
//! A pull tries each mirror of the image's registry in order (same
//! repository path) and the registry itself last; the image keeps its own
//! name. A mirror is written as Docker writes `registry-mirrors`
//! (`http://host[:port]` for plain HTTP, `https://host[:port]`) or as a bare
//! `host[:port]`, which speaks HTTPS unless it is on loopback or listed
//! `insecure` itself. Loopback registries speak plain HTTP without being
//! listed, like Docker. A missing default file is an empty configuration; a
//! missing `--config` file is an error.

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
    #[error("{path}: registries.{registry:?}.mirrors: {mirror:?}: {why}")]
    Mirror {
        path: PathBuf,
        registry: String,
        mirror: String,
        why: &'static str,
    },
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
    /// Registries that serve the same repositories: `http://host[:port]`,
    /// `https://host[:port]` or `host[:port]`
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
        let c = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        for (registry, r) in &c.registries {
            for m in &r.mirrors {
                Mirror::parse(m).map_err(|why| ConfigError::Mirror {
                    path: path.to_path_buf(),
                    registry: registry.clone(),
                    mirror: m.clone(),
                    why,
                })?;
            }
        }
        Ok(c)
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
        super::client::plain_http(domain) || self.registries.get(domain).is_some_and(|r| r.insecure)
    }

    /// Where to pull `domain`'s images from: its mirrors (those that
    /// parse: `load` refused the others), then itself.
    pub fn sources(&self, domain: &str) -> Vec<Source> {
        let mut v: Vec<Source> = self
            .registries
            .get(domain)
            .map(|r| r.mirrors.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| Mirror::parse(m).ok())
            .map(|m| Source {
                plain_http: m.plain_http.unwrap_or_else(|| self.plain_http(&m.host)),
                host: m.host,
                mirror: true,
            })
            .collect();
        v.push(Source {
            host: domain.to_string(),
            plain_http: self.plain_http(domain),
            mirror: false,
        });
        v
    }
}

/// A registry a pull may ask: a mirror or the image's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// host[:port]
    pub host: String,
    pub plain_http: bool,
    pub mirror: bool,
}

/// One entry of `mirrors`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    host: String,
    /// http:// (true) or https:// (false); None for a bare host
    plain_http: Option<bool>,
}

impl Mirror {
    fn parse(s: &str) -> Result<Mirror, &'static str> {
        let (plain_http, rest) = match s.split_once("://") {
            Some(("http", r)) => (Some(true), r),
            Some(("https", r)) => (Some(false), r),
            Some(_) => return Err("unsupported scheme: use http:// or https://"),
            None => (None, s),
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        let (name, port) = match host.rsplit_once(':') {
            // [::1]:5000, host:5000; a bare IPv6 address needs brackets
            Some((n, p)) if !n.ends_with(':') => (n, Some(p)),
            _ => (host, None),
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
            && (!name.contains(':') || (name.starts_with('[') && name.ends_with(']')));
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !name_ok || !port_ok {
            return Err(
                "give host[:port], http://host[:port] or https://host[:port], without a path",
            );
        }
        Ok(Mirror {
            host: host.to_string(),
            plain_http,
        })
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
        let hosts = |d| -> Vec<(String, bool, bool)> {
            c.sources(d)
                .into_iter()
                .map(|s| (s.host, s.plain_http, s.mirror))
                .collect()
        };
        assert_eq!(
            hosts("docker.io"),
            [
                ("127.0.0.1:5000".into(), true, true),
                ("mirror.example.com".into(), false, true),
                ("docker.io".into(), false, false)
            ]
        );
        assert_eq!(hosts("quay.io"), [("quay.io".into(), false, false)]);
        assert!(c.plain_http("registry.lan:5000"));
        assert!(c.plain_http("127.0.0.1:5000"));
        assert!(!c.plain_http("mirror.example.com"));
    }

    #[test]
    fn mirrors_written_as_docker_writes_them() {
        let c = Config::parse(
            r#"
[registries."docker.io"]
mirrors = ["http://127.0.0.1:5000", "https://mirror.example/", "http://lan.example:5000", "[::1]:5001", "lan2.example:5000"]

[registries."lan2.example:5000"]
insecure = true
"#,
        )
        .unwrap();
        let got: Vec<(String, bool)> = c
            .sources("docker.io")
            .into_iter()
            .map(|s| (s.host, s.plain_http))
            .collect();
        assert_eq!(
            got,
            [
                ("127.0.0.1:5000".into(), true),
                ("mirror.example".into(), false),
                ("lan.example:5000".into(), true),
                ("[::1]:5001".into(), true),
                ("lan2.example:5000".into(), true),
                ("docker.io".into(), false),
            ]
        );
        for bad in [
            "ftp://mirror.example",
            "https://mirror.example/v2/",
            "http://",
            "mirror.example:0",
            "mirror.example:http",
            "user@mirror.example",
            "https://mirror.example?x=1",
            "::1",
            "",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_mirror_is_named_with_its_registry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rbox.toml");
        std::fs::write(
            &p,
            "[registries.\"docker.io\"]\nmirrors = [\"ftp://m.example\"]\n",
        )
        .unwrap();
        let e = Config::load(&p, true).unwrap_err().to_string();
        assert!(
            e.contains("registries.\"docker.io\".mirrors: \"ftp://m.example\": unsupported scheme"),
            "{e}"
        );
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
