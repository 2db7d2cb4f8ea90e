//! `POST /containers/{id}/start|stop|restart|kill|wait` and `DELETE
//! /containers/{id}`: the library's verbs, as `rbox start/stop/…` call
//! them. Docker's 304 for a start of a running container and a stop of a
//! stopped one.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::api::http::{self, with_body, ApiResponse, Query};
use crate::api::state::Api;
use crate::container::{self, WaitCondition};

/// Docker's default stop timeout.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `t`: seconds before KILL (negative: wait for ever).
fn timeout(q: &Query) -> Result<Duration, ApiError> {
    Ok(match q.int("t")? {
        None => STOP_TIMEOUT,
        Some(t) if t < 0 => Duration::MAX,
        Some(t) => Duration::from_secs(t as u64),
    })
}

/// `signal=` of stop (API 1.42): TERM is what rbox's stop sends.
fn check_stop_signal(q: &Query) -> Result<(), ApiError> {
    match q.text("signal") {
        None | Some("SIGTERM" | "TERM" | "15") => Ok(()),
        Some(s) => Err(ApiError::Unsupported(format!("stop's signal {s:?}"))),
    }
}

/// `POST /containers/{id}/start`.
pub async fn start(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    if q.text("detachKeys").is_some() {
        return Err(ApiError::Unsupported("start's detachKeys".into()));
    }
    api.blocking(move |store| match container::start(store, &id) {
        Ok(_) => Ok(()),
        Err(container::ContainerError::AlreadyRunning(_)) => {
            Err(ApiError::NotModified(id, "started"))
        }
        Err(e) => Err(e.into()),
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/stop?t=`.
pub async fn stop(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    check_stop_signal(q)?;
    let t = timeout(q)?;
    api.blocking(move |store| {
        let c = container::find(store, &id)?;
        if !container::live_status(&c).is_up() {
            return Err(ApiError::NotModified(id, "stopped"));
        }
        Ok(container::stop(store, &c.id, t)?)
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/restart?t=`.
pub async fn restart(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    check_stop_signal(q)?;
    let t = timeout(q)?;
    api.blocking(move |store| Ok(container::restart(store, &id, t)?))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=` (KILL by default).
pub async fn kill(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    let signal = q.text("signal").unwrap_or("KILL").to_string();
    api.blocking(move |store| Ok(container::kill(store, &id, &signal)?))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force&v`.
pub async fn remove(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    if q.flag("link") {
        return Err(ApiError::Unsupported("links (DELETE's link)".into()));
    }
    let (force, volumes) = (q.flag("force"), q.flag("v"));
    api.blocking(move |store| Ok(container::remove_with_volumes(store, &id, force, volumes)?))
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WaitResponse {
    status_code: i64,
    error: Option<WaitError>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WaitError {
    message: String,
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`:
/// the headers at once (clients go on once they have them: `docker run`
/// starts the container then), the exit code when the condition holds.
/// The wait ends with the client's connection.
pub async fn wait(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    let cond = match q.text("condition") {
        None | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(c) => {
            return Err(ApiError::BadParam {
                name: "condition",
                value: c.into(),
                why: "not not-running, next-exit or removed",
            })
        }
    };
    // a container that is not there is a 404, not a stream
    let id = api
        .blocking(move |store| Ok(container::find(store, &id)?.id))
        .await?;
    let (tx, body) = http::stream();
    api.spawn_blocking(move |store| {
        let out = match container::wait_for(store, &id, cond, &|| tx.closed()) {
            Ok(None) => return,
            Ok(Some(code)) => WaitResponse {
                status_code: code.into(),
                error: None,
            },
            Err(e) => WaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: e.to_string(),
                }),
            },
        };
        let mut line = serde_json::to_vec(&out).unwrap_or_default();
        line.push(b'\n');
        tx.send(Bytes::from(line));
    });
    Ok(with_body(StatusCode::OK, "application/json", body))
}
