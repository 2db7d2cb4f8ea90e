//! What every talk to a registry shares: plain HTTP or TLS, the
//! distribution client's settings, references in oci-client's form, and
//! errors in one line.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};

use crate::reference::Reference;
use crate::store::hex;

pub(crate) const MAX_CONCURRENT_DOWNLOADS: usize = 3;

/// Registries spoken to over plain HTTP, like Docker's default insecure
/// range: loopback only.
pub(crate) fn plain_http(domain: &str) -> bool {
    let host = domain
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(domain, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// A distribution client's settings.
pub(crate) fn client_config(plain_http: bool) -> ClientConfig {
    let protocol = if plain_http {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        max_concurrent_download: MAX_CONCURRENT_DOWNLOADS,
        ..Default::default()
    }
}

/// The oci-client form of a reference (tag `latest` when it has neither).
pub(crate) fn oci_reference(r: &Reference) -> oci_client::Reference {
    oci_reference_at(r, r.domain())
}

/// `r`'s repository at another registry (a mirror).
pub(crate) fn oci_reference_at(r: &Reference, domain: &str) -> oci_client::Reference {
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(
            domain.into(),
            r.path().into(),
            t.into(),
            d.into(),
        ),
        (_, Some(d)) => {
            oci_client::Reference::with_digest(domain.into(), r.path().into(), d.into())
        }
        (t, None) => oci_client::Reference::with_tag(
            domain.into(),
            r.path().into(),
            t.unwrap_or(crate::reference::DEFAULT_TAG).into(),
        ),
    }
}

/// One line for a registry error; a 401 says what to do about it.
pub(crate) fn registry_message(e: &oci_client::errors::OciDistributionError) -> String {
    match e {
        oci_client::errors::OciDistributionError::UnauthorizedError { url } => {
            format!("Not authorized (401 from {url}): log in with `rbox login` or pass --user")
        }
        e => chain(e),
    }
}

/// One line from an error and all its sources.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s = format!("{s}: {m}");
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}

pub(crate) fn short(digest: &str) -> &str {
    let h = hex(digest);
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_speak_http() {
        assert!(plain_http("127.0.0.1:5000"));
        assert!(plain_http("localhost"));
        assert!(plain_http("localhost:5000"));
        assert!(plain_http("[::1]:5000"));
        assert!(!plain_http("docker.io"));
        assert!(!plain_http("registry.example.com:5000"));
    }
}
