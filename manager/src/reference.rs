//! Image references with Docker's normalization rules.
//!
//! `busybox` is `docker.io/library/busybox:latest`; the first path part is a
//! registry domain only when it contains a `.` or a `:`, or is `localhost`
//! (so `user/app:1` is `docker.io/user/app:1` and `127.0.0.1:5000/app` or
//! `localhost/app` name their registry). A reference with neither tag nor
//! digest gets the tag `latest`; one with a digest keeps its tag, if any.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?} is empty")]
    Empty(String),
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {reference:?}: {what}")]
    Format {
        reference: String,
        what: &'static str,
    },
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

/// A normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parse and normalize like `docker pull`: the tag `latest` is added
    /// when neither a tag nor a digest is given.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parse without adding a default tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        let bad = |what| ReferenceError::Format {
            reference: s.to_string(),
            what,
        };
        if s.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            if !valid_digest(d) {
                return Err(bad(
                    "the digest must be sha256: and 64 lowercase hex digits",
                ));
            }
        }
        // the tag is after the last ':' that follows the last '/'
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(
                    "a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        if name.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if name.len() > NAME_MAX {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        let (domain, path) = split_domain(name);
        if is_hex64(&path) && domain == DEFAULT_DOMAIN && !name.contains('/') {
            return Err(ReferenceError::HexName(name.to_string()));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        if !valid_domain(&domain) {
            return Err(bad("the registry domain is not a host name or host:port"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(bad(
                "a repository path component is [a-z0-9] runs separated by '.', '_', '__' or dashes",
            ));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(String::from),
            digest: digest.map(String::from),
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path inside the registry, `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `docker.io/library/busybox`
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository with a digest and no tag.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// `busybox:latest`, `user/app:1`, `localhost:5000/app@sha256:…`:
    /// what `docker images` and `docker inspect` show.
    pub fn familiar(&self) -> String {
        let mut s = familiar_repository(&self.repository());
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `docker.io/library/busybox` → `busybox`, `docker.io/user/app` → `user/app`.
pub fn familiar_repository(repo: &str) -> String {
    match repo.strip_prefix("docker.io/") {
        Some(p) => p.strip_prefix(OFFICIAL_PREFIX).unwrap_or(p).to_string(),
        None => repo.to_string(),
    }
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let domain = if first == LEGACY_DOMAIN {
                DEFAULT_DOMAIN
            } else {
                first
            };
            (domain.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    }
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(is_hex64)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn official_images_get_docker_io_library_and_latest() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn user_repositories_stay_on_docker_io() {
        assert_eq!(full("user/app:1"), "docker.io/user/app:1");
        assert_eq!(full("user/sub/app"), "docker.io/user/sub/app:latest");
    }

    #[test]
    fn domains_need_a_dot_a_port_or_localhost() {
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/app:v2"), "localhost:5000/app:v2");
        assert_eq!(full("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        assert_eq!(full("quay.io/org/app:x"), "quay.io/org/app:x");
        assert_eq!(full("registry:5000/app"), "registry:5000/app:latest");
        let r = Reference::parse("[::1]:5000/app").unwrap();
        assert_eq!(r.domain(), "[::1]:5000");
    }

    #[test]
    fn digests_with_and_without_tags() {
        let r = Reference::parse(&format!("host:5000/repo@{D}")).unwrap();
        assert_eq!(r.domain(), "host:5000");
        assert_eq!(r.path(), "repo");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{D}"));
        assert_eq!(r.familiar(), format!("busybox:1@{D}"));
    }

    #[test]
    fn familiar_names_drop_docker_io_and_library() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("user/app:1").unwrap().familiar(),
            "user/app:1"
        );
        assert_eq!(
            Reference::parse("localhost:5000/app").unwrap().familiar(),
            "localhost:5000/app:latest"
        );
    }

    #[test]
    fn bad_references_are_refused() {
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            Reference::parse(""),
            Err(ReferenceError::Empty(_))
        ));
        for bad in [
            "busybox:",
            "busybox:-x",
            ":tag",
            "a//b",
            "a/",
            "/a",
            "a_-b",
            "a..b",
            "-a",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "host:port/app",
            "bad_host.com:5000/app",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        let hex = &D[7..];
        assert!(matches!(
            Reference::parse(hex),
            Err(ReferenceError::HexName(_))
        ));
    }

    #[test]
    fn separators_follow_the_distribution_grammar() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a0/b-c_d.e"] {
            assert!(Reference::parse(ok).is_ok(), "{ok} should parse");
        }
    }
}
