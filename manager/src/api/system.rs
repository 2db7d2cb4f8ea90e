//! `/_ping`, `/version`, `/info`: what clients ask first (the API version
//! they then speak), from the same data as `rbox version` and `rbox info`
//! (info.rs).

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::http::{self, with_body, ApiBody, ApiResponse};
use super::state::Api;
use super::{API_VERSION, MIN_API_VERSION};
use crate::info::{host_info, versions, HostInfo, Versions};

/// `GET|HEAD /_ping`: `OK` and the headers clients negotiate with.
pub fn ping(head: bool) -> ApiResponse {
    let body = if head {
        ApiBody::Full(None)
    } else {
        ApiBody::Full(Some(Bytes::from_static(b"OK")))
    };
    let mut r = with_body(StatusCode::OK, "text/plain; charset=utf-8", body);
    let h = r.headers_mut();
    for (k, v) in [
        // the classic builder's number: BuildKit is not served
        ("builder-version", "1"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    r
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Version {
    platform: Platform,
    components: Vec<Component>,
    version: &'static str,
    api_version: &'static str,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: &'static str,
    git_commit: &'static str,
    go_version: &'static str,
    os: &'static str,
    arch: &'static str,
    kernel_version: String,
    build_time: &'static str,
    experimental: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Platform {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    name: &'static str,
    version: String,
    details: BTreeMap<&'static str, String>,
}

/// `GET /version`: rbox as the engine, rrun as the runtime.
pub async fn version(api: &Arc<Api>) -> Result<ApiResponse, ApiError> {
    let (v, kernel) = api.blocking(|_| Ok((versions(), kernel_release()))).await?;
    Ok(http::json(StatusCode::OK, &version_of(&v, kernel)))
}

fn version_of(v: &Versions, kernel: String) -> Version {
    let engine = BTreeMap::from([
        ("ApiVersion", API_VERSION.to_string()),
        ("MinAPIVersion", MIN_API_VERSION.to_string()),
        ("Os", v.os.to_string()),
        ("Arch", v.arch.to_string()),
        ("KernelVersion", kernel.clone()),
        ("Experimental", "false".to_string()),
    ]);
    let runtime = BTreeMap::from([("Path", v.runtime.display().to_string())]);
    Version {
        platform: Platform {
            name: format!("rbox {}", v.rbox),
        },
        components: vec![
            Component {
                name: "Engine",
                version: v.rbox.to_string(),
                details: engine,
            },
            Component {
                name: "rrun",
                version: v.runtime_version.clone().unwrap_or_default(),
                details: runtime,
            },
        ],
        version: v.rbox,
        api_version: API_VERSION,
        min_api_version: MIN_API_VERSION,
        git_commit: "",
        go_version: "",
        os: v.os,
        arch: v.arch,
        kernel_version: kernel,
        build_time: "",
        experimental: false,
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Docker's `/info` object: the fields its clients print, from
/// [`HostInfo`]. What rbox has no counterpart of is Docker's zero value.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Info {
    #[serde(rename = "ID")]
    id: String,
    containers: usize,
    containers_running: usize,
    containers_paused: usize,
    containers_stopped: usize,
    images: usize,
    driver: &'static str,
    driver_status: Vec<[String; 2]>,
    plugins: Plugins,
    memory_limit: bool,
    swap_limit: bool,
    cpu_cfs_period: bool,
    cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    cpu_set: bool,
    pids_limit: bool,
    oom_kill_disable: bool,
    #[serde(rename = "IPv4Forwarding")]
    ipv4_forwarding: bool,
    debug: bool,
    #[serde(rename = "NFd")]
    nfd: usize,
    #[serde(rename = "NGoroutines")]
    ngoroutines: usize,
    system_time: String,
    logging_driver: &'static str,
    cgroup_driver: &'static str,
    cgroup_version: &'static str,
    #[serde(rename = "NEventsListener")]
    nevents_listener: usize,
    kernel_version: String,
    operating_system: String,
    #[serde(rename = "OSVersion")]
    os_version: &'static str,
    #[serde(rename = "OSType")]
    os_type: &'static str,
    architecture: &'static str,
    index_server_address: &'static str,
    registry_config: RegistryConfig,
    #[serde(rename = "NCPU")]
    ncpu: usize,
    mem_total: u64,
    docker_root_dir: String,
    name: String,
    labels: Vec<String>,
    experimental_build: bool,
    server_version: &'static str,
    runtimes: BTreeMap<&'static str, RuntimeInfo>,
    default_runtime: &'static str,
    swarm: Swarm,
    /// containers outlive rbox serve: each runs under its own shim
    live_restore_enabled: bool,
    isolation: &'static str,
    init_binary: &'static str,
    security_options: Vec<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Plugins {
    volume: Vec<&'static str>,
    network: Vec<&'static str>,
    log: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    insecure_registry_cidrs: Vec<String>,
    index_configs: BTreeMap<String, serde_json::Value>,
    mirrors: Vec<String>,
}

#[derive(Serialize)]
struct RuntimeInfo {
    path: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Swarm {
    #[serde(rename = "NodeID")]
    node_id: &'static str,
    node_addr: &'static str,
    local_node_state: &'static str,
    control_available: bool,
    error: &'static str,
}

/// `GET /info`.
pub async fn info(api: &Arc<Api>) -> Result<ApiResponse, ApiError> {
    let i = api.blocking(|store| Ok(host_info(store)?)).await?;
    Ok(http::json(StatusCode::OK, &info_of(&i)))
}

fn info_of(i: &HostInfo) -> Info {
    let mut warnings = Vec::new();
    if !i.runtime.found {
        warnings.push(format!(
            "WARNING: runtime {} not found",
            i.runtime.path.display()
        ));
    }
    if !i.shim.found {
        warnings.push(format!("WARNING: shim {} not found", i.shim.path.display()));
    }
    if !i.overlay {
        warnings.push("WARNING: overlayfs is not available (modprobe overlay)".into());
    }
    let nfd = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    Info {
        // Docker's is a key's fingerprint; the host's name serves
        id: i.hostname.clone(),
        containers: i.containers,
        containers_running: i.running,
        containers_paused: i.paused,
        containers_stopped: i.containers - i.running - i.paused,
        images: i.images,
        driver: "overlay",
        driver_status: vec![["Backing Filesystem".into(), "overlayfs".into()]],
        plugins: Plugins {
            volume: vec!["local"],
            network: vec!["bridge", "host", "null"],
            log: vec!["json-file"],
        },
        memory_limit: true,
        swap_limit: false,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: false,
        cpu_set: false,
        pids_limit: true,
        oom_kill_disable: false,
        ipv4_forwarding: true,
        debug: false,
        nfd,
        ngoroutines: 0,
        system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        logging_driver: "json-file",
        cgroup_driver: "cgroupfs",
        cgroup_version: if i.cgroup_version == "v2" { "2" } else { "1" },
        nevents_listener: 0,
        kernel_version: i.kernel.clone(),
        operating_system: i.operating_system.clone(),
        os_version: "",
        os_type: "linux",
        architecture: std::env::consts::ARCH,
        index_server_address: "https://index.docker.io/v1/",
        registry_config: RegistryConfig {
            insecure_registry_cidrs: Vec::new(),
            index_configs: BTreeMap::new(),
            mirrors: Vec::new(),
        },
        ncpu: i.cpus,
        mem_total: i.memory,
        docker_root_dir: i.root.display().to_string(),
        name: i.hostname.clone(),
        labels: Vec::new(),
        experimental_build: false,
        server_version: env!("CARGO_PKG_VERSION"),
        runtimes: BTreeMap::from([(
            "rrun",
            RuntimeInfo {
                path: i.runtime.path.display().to_string(),
            },
        )]),
        default_runtime: "rrun",
        swarm: Swarm {
            node_id: "",
            node_addr: "",
            local_node_state: "inactive",
            control_available: false,
            error: "",
        },
        live_restore_enabled: true,
        isolation: "",
        init_binary: "rbox-init",
        security_options: if i.seccomp {
            vec!["name=seccomp,profile=builtin".into()]
        } else {
            Vec::new()
        },
        warnings,
    }
}
