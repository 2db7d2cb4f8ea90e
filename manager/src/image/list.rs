//! `rbox images`: the rows of the image list.

use super::Result;
use crate::store::Store;

/// One row of `rbox images`.
#[derive(Debug, Clone)]
pub struct ImageLine {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub id: String,
    pub created: String,
    pub size: u64,
}

/// The rows of `rbox images`: one per tag, or one `<none>` row.
pub fn list(store: &Store) -> Result<Vec<ImageLine>> {
    let mut out = Vec::new();
    for img in store.images()? {
        let refs = store.refs(&img.id)?;
        let digest_of = |repo: &str| {
            refs.iter()
                .find(|r| r.repository == repo && r.digest.is_some())
                .and_then(|r| r.digest.clone())
                .unwrap_or_else(|| "<none>".into())
        };
        let line = |repository: String, tag: String, digest: String| ImageLine {
            repository: crate::reference::familiar_repository(&repository),
            tag,
            digest,
            id: img.id.clone(),
            created: img.created.clone(),
            size: img.size,
        };
        let tags: Vec<_> = refs.iter().filter(|r| r.tag.is_some()).collect();
        // the build's images of each step: `docker images` does not list
        // intermediate images either
        if tags.is_empty() && store.cached_image(&img.id)? {
            continue;
        }
        if !tags.is_empty() {
            for r in tags {
                out.push(line(
                    r.repository.clone(),
                    r.tag.clone().unwrap_or_default(),
                    digest_of(&r.repository),
                ));
            }
        } else if let Some(r) = refs.first() {
            out.push(line(
                r.repository.clone(),
                "<none>".into(),
                digest_of(&r.repository),
            ));
        } else {
            out.push(ImageLine {
                repository: "<none>".into(),
                tag: "<none>".into(),
                digest: "<none>".into(),
                id: img.id.clone(),
                created: img.created.clone(),
                size: img.size,
            });
        }
    }
    Ok(out)
}
