//! `/images/…`: list.rs (`json`, `history`), pull.rs (`create`); inspect,
//! tag and DELETE here.

pub mod list;
pub mod pull;

use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::http::{self, ApiResponse, Query};
use super::state::Api;
use crate::image::{self, Removed};

/// `GET /images/{name}/json`: `rbox image inspect`'s object.
pub async fn inspect(api: &Arc<Api>, name: String) -> Result<ApiResponse, ApiError> {
    let v = api
        .blocking(move |store| Ok(image::inspect(store, &name)?))
        .await?;
    Ok(http::json(StatusCode::OK, &v))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn tag(api: &Arc<Api>, name: String, q: &Query) -> Result<ApiResponse, ApiError> {
    let Some(repo) = q.text("repo") else {
        return Err(ApiError::BadParam {
            name: "repo",
            value: String::new(),
            why: "the repository to tag in is missing",
        });
    };
    let target = match q.text("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    api.blocking(move |store| Ok(image::tag(store, &name, &target)?))
        .await?;
    Ok(http::empty(StatusCode::CREATED))
}

/// One item of DELETE's answer: `{"Untagged": …}` or `{"Deleted": …}`.
#[derive(Serialize)]
enum Deleted {
    Untagged(String),
    Deleted(String),
}

/// `DELETE /images/{name}?force` (`noprune` is what rbox always does:
/// layers no other image uses go).
pub async fn remove(api: &Arc<Api>, name: String, q: &Query) -> Result<ApiResponse, ApiError> {
    let force = q.flag("force");
    let done = api
        .blocking(move |store| Ok(image::rmi(store, &name, force)?))
        .await?;
    let items: Vec<Deleted> = done
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(n) => Deleted::Untagged(n),
            Removed::Deleted(id) => Deleted::Deleted(id),
        })
        .collect();
    Ok(http::json(StatusCode::OK, &items))
}
