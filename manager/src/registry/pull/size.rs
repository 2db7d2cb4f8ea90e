//! Nothing the registry says about sizes is trusted: each descriptor's
//! size is checked (not negative, under its kind's limit, within the
//! store's free space) before anything is downloaded, and each blob is
//! counted against it as it streams.

use oci_client::manifest::OciDescriptor;

use super::error::{PullError, Result, SizeProblem};
use crate::media::LayerKind;
use crate::store::Store;

/// The largest manifest or index read: Docker's registry refuses to store
/// bigger ones, and Docker and containerd to read them (4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest image config read: containers/image's limit (Podman, CRI-O
/// and skopeo read configs under it), 4 MiB. Configs are a few KiB; even
/// images of hundreds of layers stay far below.
pub const MAX_CONFIG: u64 = 4 << 20;

/// A descriptor's size as a byte count: refused when negative or over
/// `limit` (None: no limit but the disk's).
pub(super) fn checked_size(
    name: &str,
    what: &'static str,
    digest: &str,
    size: i64,
    limit: Option<(u64, &'static str)>,
) -> Result<u64> {
    let problem = |problem| PullError::Size {
        reference: name.to_string(),
        what,
        digest: digest.to_string(),
        problem,
    };
    let n = u64::try_from(size).map_err(|_| problem(SizeProblem::Negative(size)))?;
    if let Some((limit, kind)) = limit {
        if n > limit {
            return Err(problem(SizeProblem::OverLimit { size, limit, kind }));
        }
    }
    Ok(n)
}

/// Counts a blob's bytes as they stream against its descriptor's size.
pub(super) struct Counted {
    pub(super) size: u64,
    pub(super) got: u64,
}

impl Counted {
    /// Whether `n` more bytes keep to the size (they are counted if so).
    pub(super) fn take(&mut self, n: usize) -> std::result::Result<(), SizeProblem> {
        if self.got + n as u64 > self.size {
            return Err(SizeProblem::Longer(self.size));
        }
        self.got += n as u64;
        Ok(())
    }

    /// A Content-Length that is not the size is refused before any read.
    pub(super) fn announced(
        &self,
        content_length: Option<u64>,
    ) -> std::result::Result<(), SizeProblem> {
        match content_length {
            Some(n) if n != self.size => Err(SizeProblem::Announced {
                announced: n,
                size: self.size,
            }),
            _ => Ok(()),
        }
    }
}

/// Bytes free (for root's use) in the store's filesystem; None when it
/// cannot be told.
fn free_space(store: &Store) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(store.root()).ok()?;
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// The compressed layers to download must fit in the store's filesystem,
/// each one and all together. `diff_ids` and `kinds` are the layers'.
pub(super) fn check_free_space(
    store: &Store,
    layers: &[OciDescriptor],
    diff_ids: &[String],
    kinds: &[LayerKind],
    name: &str,
) -> Result<()> {
    let Some(free) = free_space(store) else {
        return Ok(());
    };
    let mut total: u64 = 0;
    for ((desc, diff_id), kind) in layers.iter().zip(diff_ids).zip(kinds) {
        if *kind != LayerKind::Tar || store.has_layer(diff_id)? {
            continue;
        }
        let size = desc.size as u64; // not negative: checked before
        if size > free {
            return Err(PullError::Size {
                reference: name.to_string(),
                what: "layer",
                digest: desc.digest.clone(),
                problem: SizeProblem::NoSpace {
                    size,
                    free,
                    root: store.root().to_path_buf(),
                },
            });
        }
        total = total.saturating_add(size);
    }
    if total > free {
        return Err(PullError::NoSpace {
            reference: name.to_string(),
            total,
            free,
            root: store.root().to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_held_to_their_descriptor_size() {
        let mut c = Counted { size: 1000, got: 0 };
        assert!(c.announced(Some(1000)).is_ok());
        assert!(c.announced(None).is_ok());
        assert_eq!(
            c.announced(Some(1001)).unwrap_err().to_string(),
            "the registry announces 1001 bytes (Content-Length), the manifest gives it 1000"
        );
        assert!(c.take(600).is_ok());
        assert!(c.take(400).is_ok());
        // one byte more is one too many, and is not counted
        assert_eq!(
            c.take(1).unwrap_err().to_string(),
            "the registry sent more than the 1000 bytes the manifest gives it (the download stopped there)"
        );
        assert_eq!(c.got, 1000);
        let e = checked_size("x:1", "layer", "sha256:ab", -1, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pull x:1: layer sha256:ab: the manifest gives it a negative size (-1)"
        );
        let e = checked_size(
            "x:1",
            "config",
            "sha256:ab",
            5 << 20,
            Some((MAX_CONFIG, "an image config")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "pull x:1: config sha256:ab: the manifest gives it 5242880 bytes, more than the 4194304-byte limit for an image config"
        );
        assert_eq!(
            checked_size("x:1", "layer", "d", 1 << 62, None).unwrap(),
            1 << 62
        );
    }
}
