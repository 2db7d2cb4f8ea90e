//! The registry's side of a pull: the sources to ask (the mirrors, then
//! the registry itself), a connection to one, and its manifests read with
//! a cap on their size.

use std::time::Duration;

use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use sha2::{Digest, Sha256};

use super::error::{Answer, ManifestError, PullError, Result};
use super::size::MAX_MANIFEST;
use crate::reference::Reference;
use crate::registry::client::{
    chain, client_config, oci_reference_at, plain_http, registry_message,
};
use crate::registry::config::Config;

const ACCEPT: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// At most this much of an error response is read (its message).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// A registry to pull from: the image's own or one of its mirrors.
pub struct Endpoint {
    /// host[:port]
    pub domain: String,
    pub plain_http: bool,
    pub auth: RegistryAuth,
    pub mirror: bool,
}

impl Endpoint {
    /// The image's own registry, plain HTTP only when on loopback.
    pub fn direct(domain: &str, auth: RegistryAuth) -> Endpoint {
        Endpoint {
            domain: domain.to_string(),
            plain_http: plain_http(domain),
            auth,
            mirror: false,
        }
    }

    /// `http://host:port` or `https://host`, for messages.
    fn url(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}", self.domain)
    }
}

/// Where `r` is pulled from under `config`: the mirrors of its registry
/// (with the credentials stored for each), then the registry itself (with
/// `user`, else its stored credentials).
pub fn endpoints(
    config: &Config,
    r: &Reference,
    user: Option<(String, String)>,
) -> Result<Vec<Endpoint>> {
    config
        .sources(r.domain())
        .into_iter()
        .map(|s| {
            // --user is for the image's registry, not its mirrors
            let u = if s.mirror { None } else { user.clone() };
            Ok(Endpoint {
                auth: crate::registry::auth::registry_auth(&s.host, u)?,
                domain: s.host,
                plain_http: s.plain_http,
                mirror: s.mirror,
            })
        })
        .collect()
}

/// The first of `endpoints` that serves the manifest `r` names: it serves
/// the whole pull. Returns it with the manifest and its digest; when none
/// does, the error says what each one answered.
pub(super) async fn first_to_serve<'a>(
    endpoints: &'a [Endpoint],
    r: &Reference,
    name: &str,
) -> Result<(Remote<'a>, (Vec<u8>, String))> {
    let mut tried = Vec::new();
    for ep in endpoints {
        let oref = oci_reference_at(r, &ep.domain);
        let got = match Remote::connect(ep, oref).await {
            Ok(remote) => remote
                .manifest(&remote.oref, MAX_MANIFEST)
                .await
                .map(|m| (remote, m)),
            Err(e) => Err(e),
        };
        match got {
            Ok(found) => return Ok(found),
            Err(error) => tried.push(Answer {
                source: ep.url(),
                mirror: ep.mirror,
                error,
            }),
        }
    }
    Err(PullError::Manifest {
        reference: name.to_string(),
        tried,
    })
}

/// One source's side of a pull: oci-client for blobs (it keeps the token),
/// a plain HTTP client for the capped manifest reads.
pub(super) struct Remote<'a> {
    pub(super) client: Client,
    http: reqwest::Client,
    ep: &'a Endpoint,
    /// the image's reference at `ep`'s domain
    pub(super) oref: oci_client::Reference,
    /// a bearer token for `ep`, when its registry wants one
    token: Option<String>,
}

impl<'a> Remote<'a> {
    /// Authenticate with `ep` for pulling `oref` (oci-client's token dance;
    /// it keeps the token for the blob requests).
    async fn connect(
        ep: &'a Endpoint,
        oref: oci_client::Reference,
    ) -> std::result::Result<Remote<'a>, ManifestError> {
        let client = Client::new(client_config(ep.plain_http));
        let token = match client.auth(&oref, &ep.auth, RegistryOperation::Pull).await {
            Ok(t) => t,
            // a token service that turns the credentials down: go on
            // anonymously, the registry's 401 says what to do
            Err(OciDistributionError::AuthenticationFailure(_)) => None,
            Err(e) => return Err(ManifestError::Request(registry_message(&e))),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ManifestError::Request(chain(&e)))?;
        Ok(Remote {
            client,
            http,
            ep,
            oref,
            token,
        })
    }

    /// The manifest `oref` names, at most `limit` bytes (the read stops at
    /// `limit` + 1), and the sha256 digest of what came.
    pub(super) async fn manifest(
        &self,
        oref: &oci_client::Reference,
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, String), ManifestError> {
        let scheme = if self.ep.plain_http { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{}",
            oref.resolve_registry(),
            oref.repository(),
            oref.digest()
                .or(oref.tag())
                .unwrap_or(crate::reference::DEFAULT_TAG)
        );
        let mut req = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, ACCEPT.join(", "));
        match (&self.token, &self.ep.auth) {
            (Some(t), _) => req = req.bearer_auth(t),
            (None, RegistryAuth::Basic(u, p)) => req = req.basic_auth(u, Some(p)),
            _ => {}
        }
        let request_err = |e: reqwest::Error| ManifestError::Request(chain(&e));
        let mut res = req.send().await.map_err(request_err)?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ManifestError::Unauthorized { url });
        }
        if !status.is_success() {
            let body = read_capped(&mut res, MAX_ERROR_BODY).await.ok().flatten();
            return Err(ManifestError::Status {
                url,
                status,
                message: body.as_deref().and_then(registry_errors),
            });
        }
        match read_capped(&mut res, limit).await.map_err(request_err)? {
            Some(body) => {
                let digest = format!("sha256:{:x}", Sha256::digest(&body));
                Ok((body, digest))
            }
            None => Err(ManifestError::TooBig { url, limit }),
        }
    }
}

/// A response body of at most `limit` bytes; None when it is longer (the
/// read stops at `limit` + 1 bytes, or at once when Content-Length says so).
async fn read_capped(
    res: &mut reqwest::Response,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, reqwest::Error> {
    if res.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The messages of a distribution-spec error body
/// (`{"errors": [{"code", "message"}]}`).
pub(super) fn registry_errors(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let msgs: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let m = e.get("message").and_then(|m| m.as_str());
            let c = e.get("code").and_then(|c| c.as_str());
            m.or(c).map(|m| m.replace('\n', " "))
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.join(", "))
}
