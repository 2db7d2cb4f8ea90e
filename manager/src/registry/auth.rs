//! Registry credentials: `rbox login` / `rbox logout` and the lookup that
//! `pull` and `push` use.
//!
//! Credentials live in `~/.config/rbox/auth.json` (`$XDG_CONFIG_HOME` is
//! honored), mode 0600, in Docker's format: `{"auths": {"host:port":
//! {"auth": base64(user:pass)}}}`; other keys in the file are kept. Docker's
//! `~/.docker/config.json` (`$DOCKER_CONFIG`) is read as a fallback, where
//! Docker Hub is `https://index.docker.io/v1/`.
//!
//! `login` checks the credentials with the registry first, as Docker does:
//! `GET /v2/`, then basic auth against it or, when it answers with a
//! `Bearer` challenge, a token request to its realm with basic auth.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};

use super::client::chain;
use crate::store::temp_name;

const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    BadFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: the credentials of {registry} are not base64 of USER:PASSWORD")]
    BadEntry { path: PathBuf, registry: String },
    #[error("login {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("login {registry}: unauthorized: incorrect username or password")]
    Unauthorized { registry: String },
    #[error("neither $XDG_CONFIG_HOME nor $HOME is set: no place for the credentials")]
    NoHome,
    #[error("login: starting the I/O runtime: {0}")]
    Runtime(io::Error),
}

type Result<T> = std::result::Result<T, AuthError>;

/// `~/.config/rbox/auth.json`.
pub fn auth_file() -> Result<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = env("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(x).join("rbox/auth.json"));
    }
    env("HOME")
        .map(|h| PathBuf::from(h).join(".config/rbox/auth.json"))
        .ok_or(AuthError::NoHome)
}

/// `~/.docker/config.json`.
pub fn docker_config_file() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys a registry may be stored under.
fn keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" || registry == "index.docker.io" {
        vec![
            "docker.io".into(),
            DOCKER_HUB_KEY.into(),
            "index.docker.io".into(),
            "https://index.docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

/// The key `login` stores a registry under.
fn store_key(registry: &str) -> String {
    if registry == "index.docker.io" {
        "docker.io".into()
    } else {
        registry.to_string()
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| AuthError::BadFile {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn decode(path: &Path, registry: &str, entry: &Value) -> Result<Option<(String, String)>> {
    let bad = || AuthError::BadEntry {
        path: path.to_path_buf(),
        registry: registry.to_string(),
    };
    if let Some(a) = entry.get("auth").and_then(Value::as_str) {
        let raw = STANDARD.decode(a.trim()).map_err(|_| bad())?;
        let s = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = s.split_once(':').ok_or_else(bad)?;
        return Ok(Some((u.to_string(), p.to_string())));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) => Ok(Some((u.to_string(), p.to_string()))),
        _ => Ok(None),
    }
}

/// The stored credentials for `registry`: rbox's file first, then Docker's.
pub fn lookup(registry: &str) -> Result<Option<(String, String)>> {
    let files = [auth_file().ok(), docker_config_file()];
    for path in files.into_iter().flatten() {
        let Some(v) = read_json(&path)? else {
            continue;
        };
        for k in keys(registry) {
            if let Some(e) = v.get("auths").and_then(|a| a.get(&k)) {
                if let Some(c) = decode(&path, registry, e)? {
                    return Ok(Some(c));
                }
            }
        }
    }
    Ok(None)
}

/// What `pull`/`push` authenticate with: `--user` if given, else the
/// stored credentials, else anonymous.
pub fn registry_auth(registry: &str, user: Option<(String, String)>) -> Result<RegistryAuth> {
    let creds = match user {
        Some(c) => Some(c),
        None => lookup(registry)?,
    };
    Ok(match creds {
        Some((u, p)) => RegistryAuth::Basic(u, p),
        None => RegistryAuth::Anonymous,
    })
}

/// Write `v` to `path` (mode 0600, dir 0700) through a temp file and rename.
fn write_json(path: &Path, v: &Value) -> Result<()> {
    let io = |op, p: &Path| {
        let p = p.to_path_buf();
        move |source| AuthError::Io {
            op,
            path: p,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", dir))?;
    }
    let tmp = dir.join(temp_name());
    let res = (|| {
        let mut f = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        let mut data = serde_json::to_vec_pretty(v).unwrap_or_default();
        data.push(b'\n');
        f.write_all(&data).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io("rename", path))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Store credentials for `registry` in rbox's auth file.
pub fn save(registry: &str, user: &str, password: &str) -> Result<PathBuf> {
    let path = auth_file()?;
    let mut v = read_json(&path)?.unwrap_or_else(|| json!({}));
    if !v.is_object() {
        v = json!({});
    }
    let auth = STANDARD.encode(format!("{user}:{password}"));
    let auths = v
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| json!({})));
    if let Some(a) = auths {
        if !a.is_object() {
            *a = json!({});
        }
        if let Some(o) = a.as_object_mut() {
            for k in keys(registry) {
                o.remove(&k);
            }
            o.insert(store_key(registry), json!({ "auth": auth }));
        }
    }
    write_json(&path, &v)?;
    Ok(path)
}

/// Remove the credentials for `registry`; false when there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let path = auth_file()?;
    let Some(mut v) = read_json(&path)? else {
        return Ok(false);
    };
    let mut removed = false;
    if let Some(o) = v.get_mut("auths").and_then(Value::as_object_mut) {
        for k in keys(registry) {
            removed |= o.remove(&k).is_some();
        }
    }
    if removed {
        write_json(&path, &v)?;
    }
    Ok(removed)
}

/// Check `user`/`password` with the registry (see the module doc).
pub fn verify(registry: &str, plain_http: bool, user: &str, password: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AuthError::Runtime)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(verify_async(registry, plain_http, user, password))
}

/// `Bearer realm="…",service="…"` → (realm, service).
fn bearer_challenge(h: &str) -> Option<(String, Option<String>)> {
    let rest = h.trim().strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some((realm?, service))
}

async fn verify_async(registry: &str, plain_http: bool, user: &str, password: &str) -> Result<()> {
    let reg_err = |e: &dyn std::error::Error| AuthError::Registry {
        registry: registry.to_string(),
        message: chain(e),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| reg_err(&e))?;
    let host = if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    };
    let scheme = if plain_http { "http" } else { "https" };
    let url = format!("{scheme}://{host}/v2/");
    let res = client.get(&url).send().await.map_err(|e| reg_err(&e))?;
    if res.status().is_success() {
        return Ok(()); // an open registry: any credentials do
    }
    if res.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(AuthError::Registry {
            registry: registry.to_string(),
            message: format!("GET {url}: {}", res.status()),
        });
    }
    let challenge = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let req = match bearer_challenge(&challenge) {
        Some((realm, service)) => {
            let mut q = vec![("account", user.to_string())];
            if let Some(s) = service {
                q.push(("service", s));
            }
            let query: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect();
            let sep = if realm.contains('?') { '&' } else { '?' };
            client.get(format!("{realm}{sep}{}", query.join("&")))
        }
        None => client.get(&url),
    };
    let res = req
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(|e| reg_err(&e))?;
    match res.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            Err(AuthError::Unauthorized {
                registry: registry.to_string(),
            })
        }
        s => Err(AuthError::Registry {
            registry: registry.to_string(),
            message: format!("authentication: {s}"),
        }),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        assert_eq!(
            bearer_challenge(r#"Bearer realm="http://127.0.0.1:1/token",service="reg""#),
            Some(("http://127.0.0.1:1/token".into(), Some("reg".into())))
        );
        assert_eq!(bearer_challenge(r#"Basic realm="x""#), None);
    }

    #[test]
    fn docker_hub_has_several_keys() {
        assert!(keys("docker.io").contains(&DOCKER_HUB_KEY.to_string()));
        assert_eq!(keys("127.0.0.1:5000")[0], "127.0.0.1:5000");
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
