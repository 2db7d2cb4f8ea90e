//! Layer media types: the one list `pull` and `load` (and `push`) check a
//! manifest's layers against.
//!
//! Accepted are the OCI and Docker layer tars, plain, gzip or zstd (the
//! content's compression is sniffed from its first bytes, as Docker does),
//! and their foreign / non-distributable variants, which are skipped as
//! containerd does (served from elsewhere, never part of the rootfs).
//! Anything else (an encrypted layer, a Helm chart, `application/x-evil`)
//! is refused with the media type named, before anything is downloaded.

/// What a layer descriptor's media type makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A layer tar to download and unpack
    Tar,
    /// Non-distributable: not downloaded, not unpacked
    Foreign,
}

const TARS: [&str; 6] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    // containerd's names for Docker layers without or with zstd compression
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

const FOREIGN: [&str; 5] = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];

/// A layer whose media type is none of the above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "layer {digest}: unsupported media type {media_type:?} (rbox takes OCI and Docker layer tars, plain, gzip or zstd)"
)]
pub struct UnsupportedLayer {
    pub digest: String,
    pub media_type: String,
}

/// The kind of the layer `digest` of media type `media_type`.
pub fn layer_kind(media_type: &str, digest: &str) -> Result<LayerKind, UnsupportedLayer> {
    if TARS.contains(&media_type) {
        Ok(LayerKind::Tar)
    } else if FOREIGN.contains(&media_type) {
        Ok(LayerKind::Foreign)
    } else {
        Err(UnsupportedLayer {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
        })
    }
}

/// Whether a layer is foreign (unknown media types are not).
pub fn is_foreign(media_type: &str) -> bool {
    FOREIGN.contains(&media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_and_docker_layers_are_taken_others_refused() {
        for t in TARS {
            assert_eq!(layer_kind(t, "sha256:a"), Ok(LayerKind::Tar), "{t}");
        }
        for t in FOREIGN {
            assert_eq!(layer_kind(t, "sha256:a"), Ok(LayerKind::Foreign), "{t}");
            assert!(is_foreign(t));
        }
        for t in [
            "application/x-evil",
            "",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.oci.image.config.v1+json",
            "APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR",
        ] {
            let e = layer_kind(t, "sha256:ab").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("layer sha256:ab: unsupported media type {t:?}")),
                "{e}"
            );
            assert!(!is_foreign(t));
        }
    }
}
