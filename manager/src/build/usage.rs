//! What the build cache holds, for `system df`'s "Build Cache" line, as
//! Docker's CLI sums BuildKit's records: TOTAL the records, ACTIVE those
//! in use, SIZE the bytes only the cache holds (a layer an image also has
//! is BuildKit's "shared" and counts with the images), RECLAIMABLE what
//! `builder prune` would free.
//!
//! Here a record is a cache entry (a step's key and the image of its
//! stage after it; steps that changed nothing share their parent's image)
//! or a `RUN --mount=type=cache` directory. The cache's images are the
//! untagged images it keeps (`rbox images` does not list them); a record
//! is in use while a container (a running RUN step) uses its image.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::{Store, StoreError};
use crate::system::dir_size;

/// One stored image, as far as the cache's sums go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// its layers: (diff_id, unpacked bytes)
    pub layers: Vec<(String, u64)>,
    /// the cache entries that name it
    pub entries: usize,
    /// whether a tag names it (then it is an image, not only cache)
    pub tagged: bool,
    /// whether a container uses it
    pub in_use: bool,
}

impl ImageUse {
    /// Kept by the build cache only: `builder prune`'s to remove.
    pub fn cache_only(&self) -> bool {
        self.entries > 0 && !self.tagged
    }
}

/// The "Build Cache" line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub entries: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// The sums over `images` (every stored image) and the cache mount
/// directories of `mounts` bytes each.
pub fn sum(images: &[ImageUse], mounts: &[u64]) -> CacheUsage {
    // the bytes of the layers of `of` that none of `except` has
    let own = |of: &dyn Fn(&ImageUse) -> bool| -> u64 {
        let mut sizes = BTreeMap::new();
        let mut kept = BTreeSet::new();
        for img in images {
            for (d, n) in &img.layers {
                if of(img) {
                    sizes.insert(d.as_str(), *n);
                } else {
                    kept.insert(d.as_str());
                }
            }
        }
        sizes
            .iter()
            .filter(|(d, _)| !kept.contains(*d))
            .map(|(_, n)| n)
            .sum()
    };
    let mount_bytes: u64 = mounts.iter().sum();
    CacheUsage {
        entries: images.iter().map(|i| i.entries).sum::<usize>() + mounts.len(),
        active: images.iter().filter(|i| i.in_use).map(|i| i.entries).sum(),
        size: own(&|i| i.cache_only()) + mount_bytes,
        reclaimable: own(&|i| i.cache_only() && !i.in_use) + mount_bytes,
    }
}

/// The store's images and cache mounts, summed.
pub fn usage(store: &Store) -> Result<CacheUsage, StoreError> {
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    for r in store.cache_rows()? {
        *entries.entry(r.image_id).or_default() += 1;
    }
    let mut images = Vec::new();
    for img in store.images()? {
        images.push(ImageUse {
            layers: store
                .layers(&img.id)?
                .into_iter()
                .map(|l| (l.diff_id, l.size))
                .collect(),
            entries: entries.get(&img.id).copied().unwrap_or(0),
            tagged: store.refs(&img.id)?.iter().any(|r| r.tag.is_some()),
            in_use: !store.containers_of(&img.id)?.is_empty(),
        });
    }
    Ok(sum(&images, &mount_sizes(store)))
}

/// The bytes of each `RUN --mount=type=cache` directory (`build-cache/*`).
fn mount_sizes(store: &Store) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(store.root().join("build-cache")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| dir_size(&e.path()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(layers: &[(&str, u64)], entries: usize, tagged: bool, in_use: bool) -> ImageUse {
        ImageUse {
            layers: layers.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
            entries,
            tagged,
            in_use,
        }
    }

    #[test]
    fn nothing_cached_is_all_zero() {
        let images = [img(&[("base", 100)], 0, true, true)];
        assert_eq!(sum(&images, &[]), CacheUsage::default());
    }

    #[test]
    fn layers_an_image_shares_count_with_the_images() {
        // base (tagged), two steps cached, the final image tagged: the
        // final image has every layer, the cache holds nothing of its own
        let base = img(&[("b", 100)], 0, true, false);
        let step1 = img(&[("b", 100), ("s1", 10)], 1, false, false);
        let step2 = img(&[("b", 100), ("s1", 10), ("s2", 1)], 2, false, false);
        let last = img(&[("b", 100), ("s1", 10), ("s2", 1)], 0, true, false);
        let u = sum(&[base.clone(), step1.clone(), step2.clone(), last], &[]);
        assert_eq!(
            u,
            CacheUsage {
                entries: 3,
                active: 0,
                size: 0,
                reclaimable: 0
            }
        );
        // the final image removed: its layers are the cache's alone
        let u = sum(&[base.clone(), step1.clone(), step2.clone()], &[]);
        assert_eq!((u.entries, u.size, u.reclaimable), (3, 11, 11));
        // a running step's container holds its image: active, not
        // reclaimable (what a layer of it shares with a free one is not
        // freed either)
        let running = img(&[("b", 100), ("s1", 10), ("s2", 1)], 2, false, true);
        let u = sum(&[base, step1, running], &[50, 7]);
        assert_eq!(
            u,
            CacheUsage {
                entries: 5,
                active: 2,
                size: 11 + 57,
                reclaimable: 57
            }
        );
    }

    #[test]
    fn a_tagged_cache_image_is_an_image() {
        // `-t` on a build whose last step made the image the cache names
        let both = img(&[("x", 5)], 1, true, false);
        assert!(!both.cache_only());
        let u = sum(&[both], &[]);
        assert_eq!((u.entries, u.size), (1, 0));
    }
}
