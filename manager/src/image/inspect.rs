//! The views of one image: its config, `docker image inspect`'s object
//! and `rbox history`'s rows.

use oci_spec::image::ImageConfiguration;
use serde_json::{json, Value};

use super::Result;
use crate::reference::Reference;
use crate::store::{ImageRow, Store};

/// The image config of an image.
pub fn config(store: &Store, img: &ImageRow) -> Result<ImageConfiguration> {
    Ok(store.read_json(&img.id, &img.id)?)
}

/// `docker image inspect`'s object for one image.
pub fn inspect(store: &Store, what: &str) -> Result<Value> {
    let img = store.resolve(what)?;
    let cfg = config(store, &img)?;
    let refs = store.refs(&img.id)?;
    let familiar = |n: &str| {
        Reference::parse_named(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.to_string())
    };
    let tags: Vec<String> = refs
        .iter()
        .filter(|r| r.tag.is_some())
        .map(|r| familiar(&r.name))
        .collect();
    let digests: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            r.digest.as_ref().map(|d| {
                format!(
                    "{}@{d}",
                    crate::reference::familiar_repository(&r.repository)
                )
            })
        })
        .collect();
    let comment = cfg
        .history()
        .as_ref()
        .and_then(|h| h.last())
        .and_then(|h| h.comment().clone())
        .unwrap_or_default();
    Ok(json!({
        "Id": img.id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": comment,
        "Created": img.created,
        "Author": cfg.author().clone().unwrap_or_default(),
        "Config": cfg.config().as_ref().map(serde_json::to_value).transpose().ok().flatten().unwrap_or(Value::Null),
        "Architecture": cfg.architecture().to_string(),
        "Os": cfg.os().to_string(),
        "Size": img.size,
        "RootFS": { "Type": "layers", "Layers": cfg.rootfs().diff_ids() },
        "Metadata": { "ManifestDigest": img.manifest_digest },
    }))
}

/// One row of `rbox history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryLine {
    pub image: String,
    pub created: String,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

pub fn history(store: &Store, what: &str) -> Result<Vec<HistoryLine>> {
    let img = store.resolve(what)?;
    let cfg = config(store, &img)?;
    let layers = store.layers(&img.id)?;
    let mut sizes = layers.iter().map(|l| l.size);
    let mut out = Vec::new();
    for h in cfg.history().clone().unwrap_or_default() {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            sizes.next().unwrap_or(0)
        };
        out.push(HistoryLine {
            image: "<missing>".into(),
            created: h.created().clone().unwrap_or_default(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size,
            comment: h.comment().clone().unwrap_or_default(),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.image = img.id.clone();
    }
    Ok(out)
}
