//! `GET /containers/{id}/logs`: the entries `rbox logs` picks, in Docker's
//! stream format. Without a terminal each entry is a frame: a header (the
//! stream, 1 stdout or 2 stderr, three zero bytes, the length as a
//! big-endian u32), then the line; a terminal's output is sent as it is.
//! Frames are sent in batches, and at once while following.

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::StatusCode;

use crate::api::error::ApiError;
use crate::api::http::{self, with_body, ApiResponse, Query, StreamTx};
use crate::api::state::Api;
use crate::container::logs::{LogOptions, LogSink};
use crate::container::{self};
use crate::logs::{parse_since, Entry};

/// How much is gathered before it is sent.
const BATCH: usize = 32 << 10;

/// Docker's stream numbers in a frame header.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;

/// A frame: header and payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `since` and `until`: Unix times (`1700000000.5`) or RFC 3339; `0` and
/// nothing mean no bound.
fn time_param(
    q: &Query,
    name: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match q.text(name) {
        None | Some("0") => Ok(None),
        Some(v) => parse_since(v).map(Some).ok_or_else(|| ApiError::BadParam {
            name,
            value: v.into(),
            why: "not a Unix time nor an RFC 3339 time",
        }),
    }
}

/// The entries to the client, framed (or raw for a terminal).
struct Frames {
    tx: StreamTx,
    buf: Vec<u8>,
    tty: bool,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
}

impl Frames {
    fn flush(&mut self) -> bool {
        let ok = self.tx.send(Bytes::from(std::mem::take(&mut self.buf)));
        ok && !self.tx.closed()
    }
}

impl LogSink for Frames {
    fn entry(&mut self, e: &Entry) -> bool {
        let err = e.stream == "stderr";
        if (err && !self.stderr) || (!err && !self.stdout) {
            return true;
        }
        let line = if self.timestamps {
            format!("{} {}", e.time, e.log)
        } else {
            e.log.clone()
        };
        if self.tty {
            self.buf.extend_from_slice(line.as_bytes());
        } else {
            let f = frame(if err { STDERR } else { STDOUT }, line.as_bytes());
            self.buf.extend_from_slice(&f);
        }
        self.buf.len() < BATCH || self.flush()
    }

    fn idle(&mut self) -> bool {
        self.flush()
    }
}

/// `GET /containers/{id}/logs?stdout&stderr&follow&since&until&timestamps&tail`.
pub async fn logs(api: &Arc<Api>, id: String, q: &Query) -> Result<ApiResponse, ApiError> {
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::BadParam {
            name: "stdout",
            value: String::new(),
            why: "you must choose at least one stream (stdout or stderr)",
        });
    }
    let opts = LogOptions {
        since: time_param(q, "since")?,
        until: time_param(q, "until")?,
        // Docker's daemon reads anything but a count as all
        tail: q.text("tail").and_then(|t| t.parse::<usize>().ok()),
        follow: q.flag("follow"),
    };
    let timestamps = q.flag("timestamps");
    // a container that is not there is a 404, not a stream
    let (id, tty) = api
        .blocking(move |store| {
            let c = container::find(store, &id)?;
            Ok((c.id, c.spec.tty))
        })
        .await?;
    let (tx, body) = http::stream();
    api.spawn_blocking(move |store| {
        let mut frames = Frames {
            tx,
            buf: Vec::new(),
            tty,
            stdout,
            stderr,
            timestamps,
        };
        // removed meanwhile: the stream just ends
        let _ = container::logs(store, &id, &opts, &mut frames);
    });
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(with_body(StatusCode::OK, ctype, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        assert_eq!(frame(STDERR, b"oops\n"), b"\x02\0\0\0\0\0\0\x05oops\n");
        assert_eq!(frame(STDOUT, b""), b"\x01\0\0\0\0\0\0\0");
    }
}
