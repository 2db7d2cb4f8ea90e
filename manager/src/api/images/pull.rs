//! `POST /images/create?fromImage=&tag=`: `rbox pull`, its progress as
//! Docker's JSON messages (`{"status": "Pull complete", "id": "…"}`), one a
//! line, while it goes; a failure is the last message (`{"error": …,
//! "errorDetail": {"message": …}}`), as Docker's daemon sends it once the
//! stream has begun. Credentials come from `X-Registry-Auth` (user and
//! password), else from what `rbox login` stored.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use hyper::body::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::http::{self, with_body, ApiResponse, Query, StreamTx};
use crate::api::state::Api;
use crate::reference::Reference;
use crate::registry::pull::{self, Platform, PullOptions};

/// `X-Registry-Auth`: base64 of a JSON object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RegistryAuth {
    username: String,
    password: String,
    identitytoken: String,
    registrytoken: String,
}

/// The user and password of `X-Registry-Auth`, if it has them.
fn credentials(header: Option<&str>) -> Result<Option<(String, String)>, ApiError> {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::BadParam {
        name: "X-Registry-Auth",
        value: h.to_string(),
        why: "not base64 of a JSON object",
    };
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let raw = URL_SAFE
        .decode(h)
        .or_else(|_| STANDARD.decode(h))
        .map_err(|_| bad())?;
    let auth: RegistryAuth = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if !auth.identitytoken.is_empty() || !auth.registrytoken.is_empty() {
        return Err(ApiError::Unsupported(
            "X-Registry-Auth with an identity or registry token".into(),
        ));
    }
    Ok((!auth.username.is_empty()).then_some((auth.username, auth.password)))
}

/// One line of `rbox pull`'s progress as Docker's message: `ID: status`
/// has an id (a layer's short digest, or the tag), the others are a status.
fn message(line: &str) -> Value {
    match line.split_once(": ") {
        Some((id, status)) if !id.contains(' ') && !matches!(id, "Digest" | "Status") => {
            json!({"status": status, "id": id})
        }
        _ => json!({ "status": line }),
    }
}

/// The pull's progress lines to the client, as messages.
struct Messages {
    tx: StreamTx,
    pending: Vec<u8>,
}

impl Messages {
    fn send(&self, v: &Value) {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        // a client that went away: the pull goes on, as in Docker
        self.tx.send(Bytes::from(line));
    }
}

impl Write for Messages {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(n) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=n).collect();
            let text = String::from_utf8_lossy(&line[..n]).into_owned();
            if !text.trim().is_empty() {
                self.send(&message(&text));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `POST /images/create?fromImage=&tag=&platform=`.
pub async fn pull(api: &Arc<Api>, q: &Query, auth: Option<&str>) -> Result<ApiResponse, ApiError> {
    if q.text("fromSrc").is_some() {
        return Err(ApiError::NotImplemented {
            method: "POST".into(),
            path: "/images/create?fromSrc=".into(),
            what: "image import",
        });
    }
    let Some(from) = q.text("fromImage") else {
        return Err(ApiError::BadParam {
            name: "fromImage",
            value: String::new(),
            why: "the image to pull is missing",
        });
    };
    let reference = match q.text("tag") {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let r = Reference::parse(&reference)?;
    if q.text("tag").is_none() && r.tag().is_none() && r.digest().is_none() {
        return Err(ApiError::Unsupported(
            "pulling every tag of a repository (docker pull -a)".into(),
        ));
    }
    if let Some(p) = q.text("platform") {
        let asked = Platform::parse(p).map_err(|e| ApiError::BadField {
            field: "platform".into(),
            message: e.to_string(),
        })?;
        if asked != Platform::host() {
            return Err(ApiError::Unsupported(format!(
                "platform {p:?} (not this host's)"
            )));
        }
    }
    let opts = PullOptions {
        platform: Platform::host(),
        endpoints: pull::endpoints(&api.registry_config()?, &r, credentials(auth)?)?,
    };
    let (tx, body) = http::stream();
    api.spawn_blocking(move |store| {
        let mut out = Messages {
            tx,
            pending: Vec::new(),
        };
        if let Err(e) = pull::pull_to(store, &r, &opts, &mut out) {
            let msg = e.to_string();
            out.send(&json!({"errorDetail": {"message": msg}, "error": msg}));
        }
    });
    Ok(with_body(StatusCode::OK, "application/json", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_become_dockers_messages() {
        assert_eq!(
            message("latest: Pulling from library/busybox"),
            json!({"status": "Pulling from library/busybox", "id": "latest"})
        );
        assert_eq!(
            message("0123456789ab: Pull complete"),
            json!({"status": "Pull complete", "id": "0123456789ab"})
        );
        assert_eq!(
            message("Digest: sha256:00"),
            json!({"status": "Digest: sha256:00"})
        );
        assert_eq!(
            message("Status: Downloaded newer image for bb:latest"),
            json!({"status": "Status: Downloaded newer image for bb:latest"})
        );
    }

    #[test]
    fn registry_auth_gives_user_and_password() {
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE.encode(v.to_string());
        assert_eq!(credentials(None).unwrap(), None);
        assert_eq!(credentials(Some(&enc(json!({})))).unwrap(), None);
        assert_eq!(
            credentials(Some(&enc(json!({"username": "u", "password": "p"})))).unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert!(credentials(Some(&enc(json!({"identitytoken": "t"})))).is_err());
        assert!(credentials(Some("%%%")).is_err());
    }
}
