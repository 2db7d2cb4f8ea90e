//! Which layers a pull downloads: not those the store has (by diff_id),
//! nor foreign ones.

use indicatif::ProgressBar;
use oci_client::manifest::OciDescriptor;

use super::error::Result;
use super::progress::Progress;
use crate::image::NewLayer;
use crate::media::LayerKind;
use crate::registry::client::short;
use crate::store::Store;

/// What a pull does about one layer of the manifest.
pub(super) enum Step<'m> {
    /// The store has it: "Already exists"
    Have(NewLayer),
    /// Download and unpack it; its bar, on a terminal
    Fetch {
        desc: &'m OciDescriptor,
        diff_id: &'m str,
        bar: Option<ProgressBar>,
    },
}

/// A step for each layer of `layers` (with their `diff_ids` and `kinds`),
/// each said on `progress`; a foreign layer is skipped, like containerd
/// does: not downloaded, not part of the rootfs.
pub(super) fn plan<'m>(
    store: &Store,
    layers: &'m [OciDescriptor],
    diff_ids: &'m [String],
    kinds: &[LayerKind],
    progress: &mut Progress<'_>,
) -> Result<Vec<Step<'m>>> {
    let mut steps = Vec::new();
    for ((desc, diff_id), kind) in layers.iter().zip(diff_ids).zip(kinds) {
        let short = short(&desc.digest);
        if *kind == LayerKind::Foreign {
            progress.println(format!(
                "{short}: Skipping foreign layer {} ({}{})",
                desc.digest,
                desc.media_type,
                desc.urls
                    .as_ref()
                    .and_then(|u| u.first())
                    .map(|u| format!(", from {u}"))
                    .unwrap_or_default()
            ));
            continue;
        }
        if let Some(size) = store.layer_size(diff_id)? {
            progress.already_exists(short);
            steps.push(Step::Have(NewLayer {
                diff_id: diff_id.clone(),
                size,
                blob_digest: desc.digest.clone(),
                blob: None,
                snapshot: None,
            }));
        } else {
            let bar = progress.waiting(short, desc.size as u64);
            steps.push(Step::Fetch { desc, diff_id, bar });
        }
    }
    progress.flush();
    Ok(steps)
}
