//! `/containers/…`: list.rs (`json`), create.rs (Docker's create body into
//! a RunSpec), lifecycle.rs (start, stop, restart, kill, wait, DELETE),
//! logs.rs (Docker's stream framing); inspect and top here.

pub mod create;
pub mod lifecycle;
pub mod list;
pub mod logs;

use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::http::{self, ApiResponse, Query};
use super::state::Api;
use crate::container;

/// `GET /containers/{id}/json`: `rbox inspect`'s object.
pub async fn inspect(api: &Arc<Api>, id: String) -> Result<ApiResponse, ApiError> {
    let v = api
        .blocking(move |store| {
            let c = container::find(store, &id)?;
            Ok(container::inspect(store, &c))
        })
        .await?;
    Ok(http::json(StatusCode::OK, &v))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Top {
    titles: [&'static str; 3],
    processes: Vec<[String; 3]>,
}

/// `GET /containers/{id}/top`: `rbox top`'s columns (no `ps_args`).
pub async fn top(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    if q.text("ps_args").is_some() {
        return Err(ApiError::Unsupported("top's ps_args".into()));
    }
    let procs = api
        .blocking(move |store| Ok(container::top(store, &id)?))
        .await?;
    let top = Top {
        titles: ["PID", "UID", "CMD"],
        processes: procs
            .into_iter()
            .map(|(pid, uid, cmd)| [pid.to_string(), uid.to_string(), cmd])
            .collect(),
    };
    Ok(http::json(StatusCode::OK, &top))
}
