//! Paths to handlers. A path may start with an API version (`/v1.41/…`,
//! any `/vX.Y/` from the oldest rbox serves to its own) or not; the rest
//! is matched segment by segment. Image names hold slashes
//! (`/images/localhost:5000/app/json`): an image route takes every segment
//! between `images` and its last. Docker's endpoints of later phases answer
//! 501 naming themselves; anything else 404.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};

use super::containers;
use super::error::ApiError;
use super::http::{self, ApiResponse, Query};
use super::images;
use super::state::Api;
use super::system;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    ContainerList,
    ContainerCreate,
    Container(String, ContainerOp),
    ImageList,
    /// `POST /images/create`: a pull
    ImageCreate,
    Image(String, ImageOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Wait,
    Remove,
    Logs,
    Top,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOp {
    Inspect,
    History,
    Tag,
    Remove,
}

/// An API version `X.Y` as a comparable pair.
fn version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The path without its version prefix; a version rbox does not serve is
/// Docker's 400.
pub fn strip_version(path: &str) -> Result<&str, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (v, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(asked) = version(v) else {
        // not a version: a path of its own (there is none starting with v)
        return Ok(path);
    };
    let newest = version(super::API_VERSION).unwrap_or_default();
    let oldest = version(super::MIN_API_VERSION).unwrap_or_default();
    if asked > newest {
        return Err(ApiError::VersionTooNew(v.into()));
    }
    if asked < oldest {
        return Err(ApiError::VersionTooOld(v.into()));
    }
    Ok(if tail.is_empty() { "/" } else { tail })
}

/// The route of `method` on `path` (version prefix already stripped).
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method;
    let (get, post, delete) = (m == Method::GET, m == Method::POST, m == Method::DELETE);
    let r = match s.as_slice() {
        ["_ping"] if get || m == Method::HEAD => Route::Ping,
        ["version"] if get => Route::Version,
        ["info"] if get => Route::Info,
        ["containers", "json"] if get => Route::ContainerList,
        ["containers", "create"] if post => Route::ContainerCreate,
        ["containers", id, op] => {
            let op = match (*op, m) {
                ("json", &Method::GET) => ContainerOp::Inspect,
                ("start", &Method::POST) => ContainerOp::Start,
                ("stop", &Method::POST) => ContainerOp::Stop,
                ("restart", &Method::POST) => ContainerOp::Restart,
                ("kill", &Method::POST) => ContainerOp::Kill,
                ("wait", &Method::POST) => ContainerOp::Wait,
                ("logs", &Method::GET) => ContainerOp::Logs,
                ("top", &Method::GET) => ContainerOp::Top,
                _ => return Err(later_or_unknown(m, path, &s)),
            };
            Route::Container(id.to_string(), op)
        }
        ["containers", id] if delete => Route::Container(id.to_string(), ContainerOp::Remove),
        ["images", "json"] if get => Route::ImageList,
        ["images", "create"] if post => Route::ImageCreate,
        ["images", name @ .., op] if !name.is_empty() && !reserved_image_path(name) => {
            let op = match (*op, m) {
                ("json", &Method::GET) => ImageOp::Inspect,
                ("history", &Method::GET) => ImageOp::History,
                ("tag", &Method::POST) => ImageOp::Tag,
                _ if delete => return Ok(Route::Image(s[1..].join("/"), ImageOp::Remove)),
                _ => return Err(later_or_unknown(m, path, &s)),
            };
            Route::Image(name.join("/"), op)
        }
        ["images", name @ ..] if delete && !name.is_empty() => {
            Route::Image(name.join("/"), ImageOp::Remove)
        }
        _ => return Err(later_or_unknown(m, path, &s)),
    };
    Ok(r)
}

/// `/images/get`, `/images/load`, `/images/search`, `/images/prune`: not
/// image names.
fn reserved_image_path(name: &[&str]) -> bool {
    matches!(name, ["get" | "load" | "search" | "prune"])
}

/// Docker's endpoints of later phases: 501 naming them; others 404.
fn later_or_unknown(m: &Method, path: &str, s: &[&str]) -> ApiError {
    let what = match s {
        ["containers", _, "attach"] | ["containers", _, "attach", "ws"] => "attach",
        ["containers", _, "exec"] | ["exec", ..] => "exec",
        ["containers", _, "archive"] => "archive (docker cp)",
        ["containers", _, "stats"] => "stats",
        ["containers", _, "changes"] => "changes",
        ["containers", _, "export"] => "export",
        ["containers", _, "resize"] => "resize",
        ["containers", _, "pause" | "unpause"] => "pause and unpause",
        ["containers", _, "rename"] => "rename",
        ["containers", _, "update"] => "update",
        ["containers", "prune"] => "container prune",
        ["build", ..] | ["session"] => "build",
        ["events"] => "events",
        ["networks", ..] => "networks",
        ["volumes", ..] => "volumes",
        ["images", "get"] | ["images", .., "get"] => "image save",
        ["images", "load"] => "image load",
        ["images", "search"] => "image search",
        ["images", "prune"] => "image prune",
        ["images", .., "push"] => "image push",
        ["commit"] => "commit",
        ["auth"] => "login",
        ["system", "df"] => "system df",
        _ => return ApiError::NoSuchEndpoint,
    };
    ApiError::NotImplemented {
        method: m.to_string(),
        path: path.to_string(),
        what,
    }
}

/// Serves one request: its route's handler, Docker's headers, and errors
/// as Docker's JSON.
pub async fn handle(api: Arc<Api>, req: Request<Incoming>, debug: bool) -> ApiResponse {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = match dispatch(api, req).await {
        Ok(r) => r,
        Err(e) => http::error(&e),
    };
    if debug {
        eprintln!("rbox serve: {method} {path} {}", resp.status().as_u16());
    }
    let h = resp.headers_mut();
    for (k, v) in [
        ("api-version", super::API_VERSION),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        (
            "server",
            concat!("rbox/", env!("CARGO_PKG_VERSION"), " (linux)"),
        ),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    resp
}

async fn dispatch(api: Arc<Api>, req: Request<Incoming>) -> Result<ApiResponse, ApiError> {
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let route = match strip_version(parts.uri.path()).and_then(|p| route(&parts.method, p)) {
        // the one route that reads a body
        Ok(Route::ContainerCreate) => return containers::create::create(&api, &q, body).await,
        other => {
            http::drain(body).await;
            other?
        }
    };
    let head = parts.method == Method::HEAD;
    let auth = parts
        .headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    use ContainerOp as C;
    use ImageOp as I;
    match route {
        Route::Ping => Ok(system::ping(head)),
        Route::Version => system::version(&api).await,
        Route::Info => system::info(&api).await,
        Route::ContainerList => containers::list::list(&api, &q).await,
        Route::ContainerCreate => unreachable!("answered above"),
        Route::Container(id, op) => match op {
            C::Inspect => containers::inspect(&api, id).await,
            C::Top => containers::top(&api, id, &q).await,
            C::Start => containers::lifecycle::start(&api, id, &q).await,
            C::Stop => containers::lifecycle::stop(&api, id, &q).await,
            C::Restart => containers::lifecycle::restart(&api, id, &q).await,
            C::Kill => containers::lifecycle::kill(&api, id, &q).await,
            C::Wait => containers::lifecycle::wait(&api, id, &q).await,
            C::Remove => containers::lifecycle::remove(&api, id, &q).await,
            C::Logs => containers::logs::logs(&api, id, &q).await,
        },
        Route::ImageList => images::list::list(&api, &q).await,
        Route::ImageCreate => images::pull::pull(&api, &q, auth.as_deref()).await,
        Route::Image(name, op) => match op {
            I::Inspect => images::inspect(&api, name).await,
            I::History => images::list::history(&api, name).await,
            I::Tag => images::tag(&api, name, &q).await,
            I::Remove => images::remove(&api, name, &q).await,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: Method, p: &str) -> Result<Route, ApiError> {
        route(&m, strip_version(p)?)
    }

    #[test]
    fn versions_are_stripped_and_checked() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(strip_version("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(
            strip_version("/containers/json").unwrap(),
            "/containers/json"
        );
        assert!(matches!(
            strip_version("/v1.51/info"),
            Err(ApiError::VersionTooNew(_))
        ));
        assert!(matches!(
            strip_version("/v1.11/info"),
            Err(ApiError::VersionTooOld(_))
        ));
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
    }

    #[test]
    fn docker_paths_map_to_routes() {
        assert_eq!(r(Method::HEAD, "/_ping").unwrap(), Route::Ping);
        assert_eq!(
            r(Method::POST, "/v1.41/containers/web/stop").unwrap(),
            Route::Container("web".into(), ContainerOp::Stop)
        );
        assert_eq!(
            r(Method::DELETE, "/v1.41/containers/web").unwrap(),
            Route::Container("web".into(), ContainerOp::Remove)
        );
        assert_eq!(
            r(Method::GET, "/v1.41/images/localhost:5000/app:1/json").unwrap(),
            Route::Image("localhost:5000/app:1".into(), ImageOp::Inspect)
        );
        assert_eq!(
            r(Method::GET, "/images/a%2Fb/json").unwrap(),
            Route::Image("a/b".into(), ImageOp::Inspect)
        );
        assert_eq!(
            r(Method::DELETE, "/images/library/busybox:latest").unwrap(),
            Route::Image("library/busybox:latest".into(), ImageOp::Remove)
        );
        assert_eq!(
            r(Method::DELETE, "/images/json").unwrap(),
            Route::Image("json".into(), ImageOp::Remove)
        );
        assert_eq!(r(Method::GET, "/images/json").unwrap(), Route::ImageList);
    }

    #[test]
    fn later_endpoints_say_so_unknown_ones_are_404() {
        for (m, p, what) in [
            (Method::POST, "/v1.41/containers/web/attach", "attach"),
            (Method::POST, "/containers/web/exec", "exec"),
            (Method::POST, "/exec/abc/start", "exec"),
            (
                Method::PUT,
                "/containers/web/archive",
                "archive (docker cp)",
            ),
            (Method::POST, "/build", "build"),
            (Method::GET, "/events", "events"),
            (Method::GET, "/networks", "networks"),
            (Method::POST, "/volumes/create", "volumes"),
            (Method::POST, "/images/app/push", "image push"),
        ] {
            match r(m, p) {
                Err(e @ ApiError::NotImplemented { .. }) => {
                    assert_eq!(e.status(), hyper::StatusCode::NOT_IMPLEMENTED);
                    assert!(e.to_string().contains(what), "{e}");
                }
                other => panic!("{p}: {other:?}"),
            }
        }
        for (m, p) in [
            (Method::GET, "/nope"),
            (Method::GET, "/containers/web/nope"),
            (Method::PUT, "/containers/create"),
        ] {
            assert!(matches!(r(m, p), Err(ApiError::NoSuchEndpoint)), "{p}");
        }
    }
}
