//! The platform a pull or a load picks from an index: `os/arch[/variant]`.

use oci_client::manifest::OciImageIndex;

use super::error::{PullError, Result};
use crate::image;

/// `os/arch[/variant]`, `linux/amd64` by default on x86_64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: image::host_arch().to_string(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(PullError::BadPlatform(s.to_string())),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

pub(crate) fn select(index: &OciImageIndex, want: &Platform) -> Option<String> {
    select_entry(index, want).map(|m| m.digest.clone())
}

/// The index entry for `want`.
pub(super) fn select_entry<'a>(
    index: &'a OciImageIndex,
    want: &Platform,
) -> Option<&'a oci_client::manifest::ImageIndexEntry> {
    index.manifests.iter().find(|m| {
        m.platform.as_ref().is_some_and(|p| {
            p.os.to_string() == want.os
                && p.architecture.to_string() == want.arch
                && want
                    .variant
                    .as_ref()
                    .is_none_or(|v| p.variant.as_deref() == Some(v.as_str()))
        })
    })
}

pub(super) fn available(index: &OciImageIndex) -> String {
    let all: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os, p.architecture);
            if let Some(v) = &p.variant {
                s = format!("{s}/{v}");
            }
            s
        })
        .collect();
    if all.is_empty() {
        "no platforms".into()
    } else {
        all.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform {
                os: "linux".into(),
                arch: "arm64".into(),
                variant: Some("v8".into())
            }
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_selection_by_platform() {
        let index: OciImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bb", "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
            ]
        }))
        .unwrap();
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(
            select(&index, &p("linux/amd64")).as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(
            select(&index, &p("linux/arm64")).as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(
            select(&index, &p("linux/arm64/v8")).as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(select(&index, &p("linux/arm64/v7")), None);
        assert_eq!(select(&index, &p("linux/s390x")), None);
        assert_eq!(available(&index), "linux/amd64, linux/arm64/v8");
    }
}
