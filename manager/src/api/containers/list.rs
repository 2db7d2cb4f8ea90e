//! `GET /containers/json`: Docker's container summaries of the containers
//! `rbox ps` would list (listing.rs picks them, with the same filters).

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::http::{self, ApiResponse, Query};
use crate::api::state::Api;
use crate::container::{self, Container, LiveStatus};
use crate::filter::{Filters, CONTAINER_KEYS};
use crate::listing::{select_containers, status_text};
use crate::store::Store;

/// Docker's `ContainerSummary`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    id: String,
    names: Vec<String>,
    image: String,
    #[serde(rename = "ImageID")]
    image_id: String,
    command: String,
    created: i64,
    ports: Vec<Port>,
    labels: BTreeMap<String, String>,
    state: &'static str,
    status: String,
    host_config: HostConfig,
    network_settings: NetworkSettings,
    mounts: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP")]
    ip: String,
    private_port: u16,
    public_port: u16,
    #[serde(rename = "Type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    network_mode: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    networks: Value,
}

/// `GET /containers/json?all&limit&filters` (`size` is not computed).
pub async fn list(api: &Arc<Api>, q: &Query) -> Result<ApiResponse, ApiError> {
    let filters = Filters::parse(&q.filters()?, CONTAINER_KEYS)?;
    let limit = q.int("limit")?.filter(|&n| n > 0);
    let all = q.flag("all") || limit.is_some();
    let list = api
        .blocking(move |store| {
            let mut picked = select_containers(store, all, &filters)?;
            if let Some(n) = limit {
                picked.truncate(n as usize);
            }
            Ok(picked
                .iter()
                .map(|(c, status)| summary(store, c, *status))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(http::json(StatusCode::OK, &list))
}

fn summary(store: &Store, c: &Container, status: LiveStatus) -> Summary {
    // the networks and mounts as inspect has them
    let inspect = container::inspect(store, c);
    let config = c.spec.run_config();
    let ports = if status == LiveStatus::Running {
        c.state
            .ports
            .iter()
            .map(|p| Port {
                ip: p
                    .host_ip
                    .map_or_else(|| "0.0.0.0".into(), |ip| ip.to_string()),
                private_port: p.container_port,
                public_port: p.host_port,
                kind: p.protocol.as_str(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Summary {
        id: c.id.clone(),
        names: vec![format!("/{}", c.name)],
        image: c.spec.image.clone(),
        image_id: inspect["Image"].as_str().unwrap_or_default().to_string(),
        command: config.command(),
        created: chrono::DateTime::parse_from_rfc3339(&c.created).map_or(0, |t| t.timestamp()),
        ports,
        labels: config.labels,
        state: status.as_str(),
        status: status_text(c, status),
        host_config: HostConfig {
            network_mode: inspect["HostConfig"]["NetworkMode"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        },
        network_settings: NetworkSettings {
            networks: inspect["NetworkSettings"]["Networks"].clone(),
        },
        mounts: inspect["Mounts"].clone(),
    }
}
