//! `GET /images/json` and `GET /images/{name}/history`: Docker's image
//! summaries of the images `rbox images` lists (listing.rs picks them,
//! with the same filters), and `rbox history`'s rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::http::{self, ApiResponse, Query};
use crate::api::state::Api;
use crate::filter::{Filters, IMAGE_KEYS};
use crate::image;
use crate::listing::select_images;
use crate::runconfig::strings;

/// Docker's `ImageSummary`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    id: String,
    parent_id: &'static str,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    created: i64,
    size: i64,
    shared_size: i64,
    virtual_size: i64,
    labels: BTreeMap<String, String>,
    containers: i64,
}

fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

fn summary(inspect: &Value) -> Summary {
    let mut repo_tags = strings(&inspect["RepoTags"]);
    if repo_tags.is_empty() {
        // API 1.41's way of saying untagged
        repo_tags.push("<none>:<none>".into());
    }
    let size = inspect["Size"].as_i64().unwrap_or(0);
    Summary {
        id: inspect["Id"].as_str().unwrap_or_default().to_string(),
        parent_id: "",
        repo_tags,
        repo_digests: strings(&inspect["RepoDigests"]),
        created: unix_time(inspect["Created"].as_str().unwrap_or_default()),
        size,
        shared_size: -1,
        virtual_size: size,
        labels: inspect["Config"]["Labels"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        containers: -1,
    }
}

/// `GET /images/json?filters` (`all`: there are no intermediate images to
/// show; `digests`: always there).
pub async fn list(api: &Arc<Api>, q: &Query) -> Result<ApiResponse, ApiError> {
    let mut filter = q.filters()?;
    // the old `filter=REPO` parameter
    filter.extend(q.text("filter").map(|r| format!("reference={r}")));
    let filters = Filters::parse(&filter, IMAGE_KEYS)?;
    let list = api
        .blocking(move |store| {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for line in select_images(store, &filters)? {
                // one summary per image, not per tag
                if seen.insert(line.id.clone()) {
                    out.push(summary(&image::inspect(store, &line.id)?));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &list))
}

/// One row of Docker's history answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryItem {
    id: String,
    created: i64,
    created_by: String,
    tags: Option<Vec<String>>,
    size: u64,
    comment: String,
}

/// `GET /images/{name}/history`: newest first, the image's id and tags on
/// the top row.
pub async fn history(api: &Arc<Api>, name: String) -> Result<ApiResponse, ApiError> {
    let (rows, tags) = api
        .blocking(move |store| {
            let rows = image::history(store, &name)?;
            let tags = strings(&image::inspect(store, &name)?["RepoTags"]);
            Ok((rows, tags))
        })
        .await?;
    let items: Vec<HistoryItem> = rows
        .into_iter()
        .enumerate()
        .map(|(i, h)| HistoryItem {
            id: h.image,
            created: unix_time(&h.created),
            created_by: h.created_by,
            tags: (i == 0).then(|| tags.clone()),
            size: h.size,
            comment: h.comment,
        })
        .collect();
    Ok(http::json(StatusCode::OK, &items))
}
