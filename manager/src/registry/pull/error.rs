//! What a pull refuses, each error naming the image and what is wrong.

use std::io;
use std::path::PathBuf;

use crate::image::unpack::UnpackError;
use crate::image::ImageError;
use crate::media::UnsupportedLayer;
use crate::registry::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pull {reference}: {what}: {message}")]
    Registry {
        reference: String,
        what: &'static str,
        message: String,
    },
    #[error("pull {reference}: no manifest for platform {platform} (the index has {available})")]
    Platform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("pull {reference}: {why}")]
    BadImage { reference: String, why: String },
    /// No source served the manifest: what each one answered
    #[error("pull {reference}: {}", answers(.tried))]
    Manifest {
        reference: String,
        tried: Vec<Answer>,
    },
    /// A descriptor's size, or a blob that does not keep to it
    #[error("pull {reference}: {what} {digest}: {problem}")]
    Size {
        reference: String,
        what: &'static str,
        digest: String,
        problem: SizeProblem,
    },
    #[error(
        "pull {reference}: the manifest gives the layers to download {total} bytes in all, more than the {free} bytes free in {}",
        root.display()
    )]
    NoSpace {
        reference: String,
        total: u64,
        free: u64,
        root: PathBuf,
    },
    #[error("pull {reference}: {source}")]
    MediaType {
        reference: String,
        source: UnsupportedLayer,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("pull {reference}: layer {layer}: {source}")]
    Layer {
        reference: String,
        layer: String,
        source: UnpackError,
    },
    #[error("pull {reference}: layer {layer}: {source}")]
    LayerStore {
        reference: String,
        layer: String,
        source: Box<StoreError>,
    },
    #[error("invalid platform {0:?}: use os/arch[/variant]")]
    BadPlatform(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("pull: starting the I/O runtime: {0}")]
    Runtime(io::Error),
}

pub(super) type Result<T> = std::result::Result<T, PullError>;

/// How a descriptor's size, or the blob sent for it, is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SizeProblem {
    #[error("the manifest gives it a negative size ({0})")]
    Negative(i64),
    #[error("the manifest gives it {size} bytes, more than the {limit}-byte limit for {kind}")]
    OverLimit {
        size: i64,
        limit: u64,
        kind: &'static str,
    },
    #[error("the manifest gives it {size} bytes, more than the {free} bytes free in {}", root.display())]
    NoSpace { size: u64, free: u64, root: PathBuf },
    #[error(
        "the registry announces {announced} bytes (Content-Length), the manifest gives it {size}"
    )]
    Announced { announced: u64, size: u64 },
    #[error("the registry sent more than the {0} bytes the manifest gives it (the download stopped there)")]
    Longer(u64),
    #[error("the registry sent {got} bytes, the manifest gives it {size}")]
    Shorter { got: u64, size: u64 },
}

/// What one source answered when asked for the manifest.
#[derive(Debug)]
pub struct Answer {
    /// `http://host:port` or `https://host`
    pub source: String,
    pub mirror: bool,
    pub error: ManifestError,
}

/// Why a manifest could not be had from one source.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Request(String),
    #[error("Not authorized (401 from {url}): log in with `rbox login` or pass --user")]
    Unauthorized { url: String },
    #[error("GET {url}: {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        url: String,
        status: reqwest::StatusCode,
        /// the registry's own words (its `errors` array)
        message: Option<String>,
    },
    #[error("GET {url}: the registry sent more than {limit} bytes, the limit for a manifest (Docker's and containerd's, 4 MiB)")]
    TooBig { url: String, limit: u64 },
}

/// One source's answer alone keeps the old form (`manifest: …`); with
/// mirrors, each is named: `mirror http://m answered: …; then docker.io: …`.
fn answers(tried: &[Answer]) -> String {
    match tried {
        [] => "no registry to pull from".into(),
        [one] if !one.mirror => format!("manifest: {}", one.error),
        _ => tried
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let then = if i == 0 { "" } else { "then " };
                if a.mirror {
                    format!("{then}mirror {} answered: {}", a.source, a.error)
                } else {
                    format!("{then}{} answered: {}", a.source, a.error)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::super::remote::registry_errors;
    use super::*;

    #[test]
    fn manifest_errors_name_every_source_tried() {
        let err = |m: &str| ManifestError::Status {
            url: format!("http://{m}/v2/app/manifests/1"),
            status: reqwest::StatusCode::NOT_FOUND,
            message: Some("manifest unknown".into()),
        };
        let alone = PullError::Manifest {
            reference: "h:1/app:1".into(),
            tried: vec![Answer {
                source: "http://h:1".into(),
                mirror: false,
                error: err("h:1"),
            }],
        };
        assert_eq!(
            alone.to_string(),
            "pull h:1/app:1: manifest: GET http://h:1/v2/app/manifests/1: 404 Not Found: manifest unknown"
        );
        let both = PullError::Manifest {
            reference: "app:1".into(),
            tried: vec![
                Answer {
                    source: "http://m:5000".into(),
                    mirror: true,
                    error: err("m:5000"),
                },
                Answer {
                    source: "https://docker.io".into(),
                    mirror: false,
                    error: ManifestError::Request("dns error".into()),
                },
            ],
        };
        assert_eq!(
            both.to_string(),
            "pull app:1: mirror http://m:5000 answered: GET http://m:5000/v2/app/manifests/1: 404 Not Found: manifest unknown; then https://docker.io answered: dns error"
        );
        assert_eq!(
            registry_errors(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"X"}]}"#)
                .as_deref(),
            Some("manifest unknown, X")
        );
        assert_eq!(registry_errors(b"<html>"), None);
    }
}
