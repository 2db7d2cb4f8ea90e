//! HTTP on either side of a handler: the query parameters as Docker reads
//! them, the JSON body (capped), Docker's response headers, and the body
//! of a response: whole, or streamed from a blocking task through a
//! channel (logs, pull progress, wait).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use super::error::ApiError;

/// The largest request body read (create's JSON is a few kB).
pub const MAX_BODY: usize = 4 << 20;

/// How many chunks a stream holds before its writer waits for the client.
const STREAM_DEPTH: usize = 64;

/// A response body: nothing, one piece, or a stream that ends when its
/// sender is dropped.
pub enum ApiBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ApiBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ApiBody::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ApiBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ApiBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ApiBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// The writing end of a streamed body, for a blocking task.
pub struct StreamTx(mpsc::Sender<Bytes>);

impl StreamTx {
    /// Sends a chunk, waiting while the client is slow; false once the
    /// client is gone. Callable from any thread, also one that drives a
    /// runtime of its own (a pull's progress comes from inside the pull's
    /// `block_on`, where tokio's `blocking_send` refuses to wait): the
    /// receiving end is polled by the server's runtime, on another thread.
    pub fn send(&self, b: Bytes) -> bool {
        b.is_empty() || futures::executor::block_on(self.0.send(b)).is_ok()
    }

    /// Whether the client is gone (the connection closed).
    pub fn closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A streamed body and its writing end.
pub fn stream() -> (StreamTx, ApiBody) {
    let (tx, rx) = mpsc::channel(STREAM_DEPTH);
    (StreamTx(tx), ApiBody::Stream(rx))
}

pub type ApiResponse = Response<ApiBody>;

/// A response with `body`, of content type `ctype`.
pub fn with_body(status: StatusCode, ctype: &'static str, body: ApiBody) -> ApiResponse {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// `v` as JSON.
pub fn json<T: Serialize>(status: StatusCode, v: &T) -> ApiResponse {
    // plain data: serializing cannot fail
    let body = serde_json::to_vec(v).unwrap_or_default();
    with_body(
        status,
        "application/json",
        ApiBody::Full(Some(Bytes::from(body))),
    )
}

/// A status with no body (204, 304, 201 of tag).
pub fn empty(status: StatusCode) -> ApiResponse {
    let mut r = Response::new(ApiBody::Full(None));
    *r.status_mut() = status;
    r
}

/// Docker's error response.
pub fn error(e: &ApiError) -> ApiResponse {
    let status = e.status();
    if status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    with_body(
        status,
        "application/json",
        ApiBody::Full(Some(Bytes::from(e.body()))),
    )
}

/// The query parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty value of `name`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Docker's boolean parameters: absent, empty, `0`, `no`, `false` and
    /// `none` are false, anything else true.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// An integer parameter, if given (and not empty).
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        self.text(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| ApiError::BadParam {
                    name,
                    value: v.to_string(),
                    why: "not an integer",
                })
            })
            .transpose()
    }
}

impl Query {
    /// `filters`: Docker's JSON, `{"status": ["running"]}` (or the old
    /// `{"status": {"running": true}}`), as `KEY=VALUE` strings for
    /// filter.rs.
    pub fn filters(&self) -> Result<Vec<String>, ApiError> {
        let Some(text) = self.text("filters") else {
            return Ok(Vec::new());
        };
        let bad = |why| ApiError::BadParam {
            name: "filters",
            value: text.to_string(),
            why,
        };
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| bad("not a JSON object"))?;
        let mut out = Vec::new();
        for (key, values) in map {
            let values: Vec<String> = match values {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("a filter's values are not strings"))?,
                serde_json::Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(v, _)| v)
                    .collect(),
                _ => return Err(bad("a filter's values are not a list")),
            };
            out.extend(values.into_iter().map(|v| format!("{key}={v}")));
        }
        Ok(out)
    }
}

/// The request body as JSON of type `T` (an empty body is `T`'s default).
pub async fn json_body<T: DeserializeOwned + Default>(body: Incoming) -> Result<T, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(ApiError::BadJson)
}

/// Reads and drops a request body a handler has no use for (up to
/// [`MAX_BODY`]): an answer sent while the client still writes would be
/// lost to a reset connection.
pub async fn drain(body: Incoming) {
    let _ = http_body_util::Limited::new(body, MAX_BODY).collect().await;
}

/// The whole request body, up to [`MAX_BODY`].
async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    if body
        .size_hint()
        .upper()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(ApiError::BodyTooLarge(MAX_BODY));
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(e) => Err(ApiError::BodyRead(*e)),
            // the only other error: the limit
            Err(_) => Err(ApiError::BodyTooLarge(MAX_BODY)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_read_as_docker_reads_them() {
        let q = Query::parse(Some("all=1&force=false&t=5&name=%2Fweb&v=&size=True"));
        assert!(q.flag("all") && q.flag("size"));
        assert!(!q.flag("force") && !q.flag("v") && !q.flag("absent"));
        assert_eq!(q.int("t").unwrap(), Some(5));
        assert_eq!(q.int("v").unwrap(), None);
        assert_eq!(q.get("name"), Some("/web"));
        assert_eq!(q.text("v"), None);
        let f = Query::parse(Some(
            "filters=%7B%22status%22%3A%5B%22running%22%2C%22exited%22%5D%2C%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        assert_eq!(
            f.filters().unwrap(),
            ["label=a=b", "status=running", "status=exited"]
        );
        assert!(Query::parse(Some("filters=%5B1%5D")).filters().is_err());
        let bad = Query::parse(Some("t=soon")).int("t").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
