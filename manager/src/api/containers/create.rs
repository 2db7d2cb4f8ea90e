//! `POST /containers/create`: Docker's create body (Config, HostConfig,
//! NetworkingConfig) read into the `RunSpec` that `rbox create` makes of
//! its flags, then the same `container::create`. Every value goes through
//! the parser of the flag it stands for (`-v`, `--mount`, `-p`,
//! `--ulimit`, …), so both accept the same things. A field rbox does not
//! do, set to anything but its zero value, is refused with 400 naming it;
//! unknown fields are ignored, as Docker ignores them.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::http::{self, ApiResponse, Query};
use crate::api::state::Api;
use crate::container::log_config::LogOpt;
use crate::container::{self, NetMode, RestartPolicy, RunSpec};
use crate::devices::{CgroupRule, DeviceMapping};
use crate::mounts::MountSpec;
use crate::oci::{parse_ulimit, SecurityOptions};

/// Docker's `strslice`: a string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StrSlice {
    One(String),
    Many(Vec<String>),
}

impl StrSlice {
    fn into_vec(self) -> Vec<String> {
        match self {
            StrSlice::One(s) => vec![s],
            StrSlice::Many(v) => v,
        }
    }
}

/// The create body: Docker's container `Config` with `HostConfig` and
/// `NetworkingConfig` in it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    pub entrypoint: Option<StrSlice>,
    pub image: String,
    /// `-v /path`: anonymous volumes
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub network_disabled: bool,
    pub mac_address: String,
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    pub healthcheck: Option<Healthcheck>,
    pub host_config: HostConfig,
    pub networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub mounts: Option<Vec<Mount>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub publish_all_ports: bool,
    pub network_mode: String,
    pub auto_remove: bool,
    pub restart_policy: Option<RestartPolicyBody>,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub init: Option<bool>,
    pub extra_hosts: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ulimits: Option<Vec<UlimitBody>>,
    pub log_config: Option<LogConfig>,
    pub cgroup_parent: String,
    pub devices: Option<Vec<Device>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    // refused when set (see `unsupported`)
    pub volumes_from: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    pub ipc_mode: String,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub cgroupns_mode: String,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: String,
    pub isolation: String,
    pub shm_size: i64,
    pub oom_score_adj: i64,
    pub oom_kill_disable: Option<bool>,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub blkio_weight: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub kernel_memory: i64,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub volume_driver: String,
    pub storage_opt: Option<BTreeMap<String, String>>,
    pub device_requests: Option<Vec<Value>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyBody {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UlimitBody {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Device {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub aliases: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<BTreeMap<String, Value>>,
}

/// The create response.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
    warnings: Vec<String>,
}

/// `POST /containers/create?name=…`: the container, made as `rbox create`
/// makes it.
pub async fn create(api: &Arc<Api>, q: &Query, body: Incoming) -> Result<ApiResponse, ApiError> {
    let b: CreateBody = http::json_body(body).await?;
    if let Some(p) = q.text("platform") {
        check_platform(p)?;
    }
    let name = q
        .text("name")
        .map(|n| n.trim_start_matches('/').to_string());
    let spec = b.spec(name)?;
    let id = api
        .blocking(move |store| {
            let c = container::create(store, &spec)?;
            container::settle(&c.id);
            Ok(c.id)
        })
        .await?;
    let created = Created {
        id,
        warnings: Vec::new(),
    };
    Ok(http::json(StatusCode::CREATED, &created))
}

/// `platform=`: this host's own only (`linux`, `linux/amd64`).
fn check_platform(p: &str) -> Result<(), ApiError> {
    let mut parts = p.split('/');
    let os_ok = parts.next() == Some("linux");
    let arch_ok = parts.next().is_none_or(|a| a == crate::info::go_arch());
    if os_ok && arch_ok {
        return Ok(());
    }
    Err(ApiError::Unsupported(format!(
        "platform {p:?} (not this host's)"
    )))
}

/// An error of the parser of `field`'s values, naming the field.
fn field<E: Display>(field: &'static str) -> impl Fn(E) -> ApiError {
    move |e| ApiError::BadField {
        field: field.into(),
        message: e.to_string(),
    }
}

impl CreateBody {
    /// The first field set to something rbox does not do.
    fn unsupported(&self) -> Option<&'static str> {
        let h = &self.host_config;
        let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        let checks: [(&'static str, bool); 33] = [
            ("Domainname", !self.domainname.is_empty()),
            ("MacAddress", !self.mac_address.is_empty()),
            (
                "StopSignal",
                !matches!(self.stop_signal.as_str(), "" | "SIGTERM" | "TERM" | "15"),
            ),
            ("StopTimeout", self.stop_timeout.is_some()),
            (
                "Healthcheck",
                self.healthcheck.as_ref().is_some_and(|hc| {
                    hc.test
                        .as_ref()
                        .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
                }),
            ),
            ("HostConfig.VolumesFrom", some(&h.volumes_from)),
            ("HostConfig.Links", some(&h.links)),
            (
                "HostConfig.IpcMode",
                !matches!(h.ipc_mode.as_str(), "" | "private" | "shareable"),
            ),
            ("HostConfig.PidMode", !h.pid_mode.is_empty()),
            ("HostConfig.UTSMode", !h.uts_mode.is_empty()),
            ("HostConfig.UsernsMode", !h.userns_mode.is_empty()),
            (
                "HostConfig.CgroupnsMode",
                !matches!(h.cgroupns_mode.as_str(), "" | "private"),
            ),
            (
                "HostConfig.Sysctls",
                h.sysctls.as_ref().is_some_and(|s| !s.is_empty()),
            ),
            ("HostConfig.Runtime", !h.runtime.is_empty()),
            (
                "HostConfig.Isolation",
                !matches!(h.isolation.as_str(), "" | "default"),
            ),
            ("HostConfig.ShmSize", h.shm_size > 0),
            ("HostConfig.OomScoreAdj", h.oom_score_adj != 0),
            (
                "HostConfig.OomKillDisable",
                h.oom_kill_disable == Some(true),
            ),
            ("HostConfig.CpuShares", h.cpu_shares > 0),
            ("HostConfig.CpuPeriod", h.cpu_period > 0),
            ("HostConfig.CpuQuota", h.cpu_quota > 0),
            ("HostConfig.CpusetCpus", !h.cpuset_cpus.is_empty()),
            ("HostConfig.CpusetMems", !h.cpuset_mems.is_empty()),
            ("HostConfig.BlkioWeight", h.blkio_weight > 0),
            ("HostConfig.MemoryReservation", h.memory_reservation > 0),
            ("HostConfig.MemorySwap", h.memory_swap > 0),
            ("HostConfig.KernelMemory", h.kernel_memory > 0),
            ("HostConfig.DnsOptions", some(&h.dns_options)),
            ("HostConfig.DnsSearch", some(&h.dns_search)),
            (
                "HostConfig.VolumeDriver",
                !matches!(h.volume_driver.as_str(), "" | "local"),
            ),
            (
                "HostConfig.StorageOpt",
                h.storage_opt.as_ref().is_some_and(|s| !s.is_empty()),
            ),
            (
                "HostConfig.DeviceRequests",
                h.device_requests.as_ref().is_some_and(|d| !d.is_empty()),
            ),
            (
                "HostConfig.MaskedPaths or ReadonlyPaths",
                some(&h.masked_paths) || some(&h.readonly_paths),
            ),
        ];
        if let Some((name, _)) = checks.iter().find(|(_, set)| *set) {
            return Some(name);
        }
        let endpoints = self
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref());
        let aliased = endpoints.is_some_and(|eps| {
            eps.values().flatten().any(|e| {
                some(&e.aliases)
                    || some(&e.links)
                    || e.ipam_config
                        .as_ref()
                        .is_some_and(|c| c.values().any(|v| !v.is_null() && v != ""))
            })
        });
        aliased.then_some("NetworkingConfig.EndpointsConfig's aliases, links and addresses")
    }

    /// The RunSpec of this body (`name`: the `name` parameter).
    pub fn spec(self, name: Option<String>) -> Result<RunSpec, ApiError> {
        if let Some(f) = self.unsupported() {
            return Err(ApiError::Unsupported(f.into()));
        }
        if self.image.is_empty() {
            return Err(ApiError::BadField {
                field: "Image".into(),
                message: "no image given".into(),
            });
        }
        let h = self.host_config;
        // Docker's Entrypoint is a list; a RunSpec's is the program (as
        // `--entrypoint` gives it), its further words go before the Cmd
        let mut cmd = Vec::new();
        let entrypoint = match self.entrypoint.map(StrSlice::into_vec) {
            None => None,
            Some(ep) => match ep.split_first() {
                // [] or [""]: the image's entrypoint cleared
                None => Some(String::new()),
                Some((first, rest)) => {
                    cmd.extend(rest.iter().cloned());
                    Some(first.clone())
                }
            },
        };
        cmd.extend(self.cmd.map(StrSlice::into_vec).unwrap_or_default());
        let mut mounts = Vec::new();
        for b in h.binds.unwrap_or_default() {
            mounts.push(MountSpec::parse_volume(&b).map_err(field("HostConfig.Binds"))?);
        }
        for path in self.volumes.unwrap_or_default().into_keys() {
            mounts.push(MountSpec::parse_volume(&path).map_err(field("Volumes"))?);
        }
        for m in h.mounts.unwrap_or_default() {
            mounts
                .push(MountSpec::parse_mount(&mount_flag(&m)).map_err(field("HostConfig.Mounts"))?);
        }
        for (path, opts) in h.tmpfs.unwrap_or_default() {
            let flag = tmpfs_flag(&path, &opts)?;
            mounts.push(MountSpec::parse_mount(&flag).map_err(field("HostConfig.Tmpfs"))?);
        }
        let mut ports = Vec::new();
        for (port, bindings) in h.port_bindings.unwrap_or_default() {
            for b in bindings.unwrap_or_default() {
                let flag = publish_flag(&port, &b);
                ports.push(
                    crate::net::cni::parse_port(&flag).map_err(field("HostConfig.PortBindings"))?,
                );
            }
        }
        let net = if self.network_disabled {
            Some(NetMode::None)
        } else {
            match h.network_mode.as_str() {
                "" | "default" => None,
                m => Some(NetMode::parse(m).map_err(field("HostConfig.NetworkMode"))?),
            }
        };
        let restart = match h.restart_policy {
            Some(p) if p.name == "on-failure" && p.maximum_retry_count > 0 => {
                format!("on-failure:{}", p.maximum_retry_count)
            }
            Some(p) => p.name,
            None => String::new(),
        };
        let log_opts = match h.log_config {
            Some(lc) if !matches!(lc.kind.as_str(), "" | "json-file") => {
                return Err(ApiError::Unsupported(format!(
                    "HostConfig.LogConfig.Type {:?} (json-file is)",
                    lc.kind
                )))
            }
            Some(lc) => lc
                .config
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| LogOpt::parse(&format!("{k}={v}")))
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.LogConfig.Config"))?,
            None => Vec::new(),
        };
        let cgroup_parent = if h.cgroup_parent.is_empty() {
            crate::cgroups::env_parent().map_err(field("HostConfig.CgroupParent"))?
        } else {
            Some(
                crate::cgroups::parent("HostConfig.CgroupParent", &h.cgroup_parent)
                    .map_err(field("HostConfig.CgroupParent"))?,
            )
        };
        let spec = RunSpec {
            image: self.image,
            name,
            cmd,
            entrypoint,
            // a `KEY` without a value is the client's to fill in (Docker's
            // CLI does); the server's own environment is not the caller's
            env: self
                .env
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.contains('='))
                .collect(),
            workdir: non_empty(self.working_dir),
            user: non_empty(self.user),
            hostname: non_empty(self.hostname),
            tty: self.tty,
            interactive: self.open_stdin,
            ports,
            mounts,
            net,
            rm: h.auto_remove,
            read_only: h.readonly_rootfs,
            add_hosts: h
                .extra_hosts
                .unwrap_or_default()
                .iter()
                .map(|e| crate::net::etc_files::parse_add_host(e))
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.ExtraHosts"))?,
            dns: h
                .dns
                .unwrap_or_default()
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.Dns"))?,
            privileged: h.privileged,
            cap_add: h.cap_add.unwrap_or_default(),
            cap_drop: h.cap_drop.unwrap_or_default(),
            devices: h
                .devices
                .unwrap_or_default()
                .iter()
                .map(|d| DeviceMapping::parse(&device_flag(d)))
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.Devices"))?,
            device_cgroup_rules: h
                .device_cgroup_rules
                .unwrap_or_default()
                .iter()
                .map(|r| CgroupRule::parse(r))
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.DeviceCgroupRules"))?,
            memory: (h.memory > 0).then_some(h.memory),
            pids_limit: h.pids_limit.filter(|&n| n > 0),
            cpus: (h.nano_cpus > 0).then(|| h.nano_cpus as f64 / 1e9),
            restart: RestartPolicy::parse(&restart).map_err(field("HostConfig.RestartPolicy"))?,
            log_opts,
            publish_all: h.publish_all_ports,
            ulimits: h
                .ulimits
                .unwrap_or_default()
                .iter()
                .map(|u| parse_ulimit(&format!("{}={}:{}", u.name, u.soft, u.hard)))
                .collect::<Result<_, _>>()
                .map_err(field("HostConfig.Ulimits"))?,
            security_opt: SecurityOptions::parse(&h.security_opt.unwrap_or_default())
                .map_err(field("HostConfig.SecurityOpt"))?,
            init: h.init.unwrap_or(false),
            cgroup_parent,
            labels: self.labels.unwrap_or_default(),
            group_add: h.group_add.unwrap_or_default(),
            config: None,
        };
        spec.check()?;
        Ok(spec)
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A `HostConfig.Mounts` entry as `--mount`'s value.
fn mount_flag(m: &Mount) -> String {
    let mut f = format!("type={},target={}", m.kind, m.target);
    if !m.source.is_empty() {
        f.push_str(&format!(",source={}", m.source));
    }
    if m.read_only {
        f.push_str(",readonly");
    }
    if let Some(p) = m
        .bind_options
        .as_ref()
        .filter(|b| !b.propagation.is_empty())
    {
        f.push_str(&format!(",bind-propagation={}", p.propagation));
    }
    if let Some(t) = &m.tmpfs_options {
        if t.size_bytes > 0 {
            f.push_str(&format!(",tmpfs-size={}", t.size_bytes));
        }
        if t.mode != 0 {
            f.push_str(&format!(",tmpfs-mode={:o}", t.mode));
        }
    }
    f
}

/// A `HostConfig.Tmpfs` entry (`/run`: `rw,size=64m,mode=1777`) as
/// `--mount type=tmpfs`'s value; options a tmpfs mount of rbox does not
/// take are refused.
fn tmpfs_flag(path: &str, opts: &str) -> Result<String, ApiError> {
    let mut f = format!("type=tmpfs,target={path}");
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => f.push_str(&format!(",tmpfs-size={v}")),
            Some(("mode", v)) => f.push_str(&format!(",tmpfs-mode={v}")),
            None if o == "rw" => {}
            _ => {
                return Err(ApiError::Unsupported(format!(
                    "HostConfig.Tmpfs {path}: option {o:?}"
                )))
            }
        }
    }
    Ok(f)
}

/// A `HostConfig.PortBindings` entry (`80/tcp` and a binding) as `-p`'s
/// value: `[IP:][HOSTPORT:]80/tcp`.
fn publish_flag(port: &str, b: &PortBinding) -> String {
    match (b.host_ip.as_str(), b.host_port.as_str()) {
        ("", "") => port.to_string(),
        ("", hp) => format!("{hp}:{port}"),
        (ip, hp) => format!("{ip}:{hp}:{port}"),
    }
}

/// A `HostConfig.Devices` entry as `--device`'s value.
fn device_flag(d: &Device) -> String {
    let ctr = if d.path_in_container.is_empty() {
        &d.path_on_host
    } else {
        &d.path_in_container
    };
    let perms = if d.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        &d.cgroup_permissions
    };
    format!("{}:{ctr}:{perms}", d.path_on_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<RunSpec, ApiError> {
        serde_json::from_value::<CreateBody>(body)
            .map_err(ApiError::BadJson)?
            .spec(Some("web".into()))
    }

    /// What Docker 20.10's `docker run -d --name web …` sends, trimmed.
    #[test]
    fn a_docker_run_body_becomes_the_run_spec_of_its_flags() {
        let rs = spec(
            serde_json::from_str(
                r#"{
            "Hostname": "", "Domainname": "", "User": "1000:1000", "Tty": false,
            "Env": ["A=1", "FROM_CLIENT"], "Cmd": ["sleep", "300"], "Image": "bb",
            "Volumes": {"/data": {}}, "WorkingDir": "/tmp", "Entrypoint": null,
            "OnBuild": null, "Labels": {"tier": "web"},
            "HostConfig": {
                "Binds": ["/srv:/srv:ro"], "ContainerIDFile": "",
                "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                 "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                "AutoRemove": true, "VolumeDriver": "", "VolumesFrom": null,
                "CapAdd": ["NET_ADMIN"], "CapDrop": null, "CgroupnsMode": "", "Dns": [],
                "DnsOptions": [], "DnsSearch": [], "ExtraHosts": ["db:10.0.0.2"],
                "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null,
                "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
                "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
                "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "ConsoleSize": [0, 0],
                "Isolation": "", "CpuShares": 0, "Memory": 67108864, "NanoCpus": 500000000,
                "CgroupParent": "", "BlkioWeight": 0, "CpuPeriod": 0, "CpuQuota": 0,
                "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
                "KernelMemory": 0, "MemoryReservation": 0, "MemorySwap": 0,
                "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": 64,
                "Ulimits": null, "Init": true, "Tmpfs": {"/run": "rw,size=1m"}
            },
            "NetworkingConfig": {"EndpointsConfig": {}}
        }"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(rs.name.as_deref(), Some("web"));
        assert_eq!(rs.image, "bb");
        assert_eq!(
            (rs.entrypoint.as_deref(), &rs.cmd[..]),
            (None, &["sleep".to_string(), "300".into()][..])
        );
        assert_eq!(rs.env, ["A=1"], "a bare KEY takes nothing from the server");
        assert_eq!(rs.user.as_deref(), Some("1000:1000"));
        assert_eq!(rs.workdir.as_deref(), Some("/tmp"));
        assert_eq!(rs.labels["tier"], "web");
        assert_eq!(rs.mounts.len(), 3);
        assert!(rs.mounts[0].readonly);
        assert!(rs
            .ports
            .iter()
            .any(|p| p.container_port == 80 && p.host_port == 8080));
        assert!(rs
            .ports
            .iter()
            .any(|p| p.container_port == 53 && p.host_ip.is_some()));
        assert!(rs.rm && rs.init);
        assert_eq!(rs.net, None);
        assert_eq!(rs.cap_add, ["NET_ADMIN"]);
        assert_eq!(rs.add_hosts[0].0, "db");
        assert_eq!(rs.memory, Some(64 << 20));
        assert_eq!(rs.cpus, Some(0.5));
        assert_eq!(rs.pids_limit, Some(64));
    }

    #[test]
    fn entrypoint_lists_and_strings() {
        let rs =
            spec(serde_json::json!({"Image": "bb", "Entrypoint": ["sh", "-c"], "Cmd": "echo hi"}))
                .unwrap();
        assert_eq!(rs.entrypoint.as_deref(), Some("sh"));
        assert_eq!(rs.cmd, ["-c", "echo hi"]);
        let rs = spec(serde_json::json!({"Image": "bb", "Entrypoint": [""]})).unwrap();
        assert_eq!(rs.entrypoint.as_deref(), Some(""));
        let rs = spec(serde_json::json!({"Image": "bb", "Entrypoint": []})).unwrap();
        assert_eq!(rs.entrypoint.as_deref(), Some(""));
    }

    #[test]
    fn what_rbox_does_not_do_is_refused_by_name() {
        for (body, name) in [
            (
                serde_json::json!({"Image": "bb", "HostConfig": {"PidMode": "host"}}),
                "PidMode",
            ),
            (
                serde_json::json!({"Image": "bb", "HostConfig": {"VolumesFrom": ["a"]}}),
                "VolumesFrom",
            ),
            (
                serde_json::json!({"Image": "bb", "HostConfig": {"CpuShares": 512}}),
                "CpuShares",
            ),
            (
                serde_json::json!({"Image": "bb", "HostConfig": {"LogConfig": {"Type": "syslog"}}}),
                "syslog",
            ),
            (
                serde_json::json!({"Image": "bb", "HostConfig": {"Tmpfs": {"/x": "noexec"}}}),
                "noexec",
            ),
            (
                serde_json::json!({"Image": "bb", "Healthcheck": {"Test": ["CMD", "true"]}}),
                "Healthcheck",
            ),
            (
                serde_json::json!({"Image": "bb", "NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": ["a"]}}}}),
                "aliases",
            ),
        ] {
            let e = spec(body).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert!(e.to_string().contains(name), "{e}");
        }
        // what rbox's parsers refuse, named by field
        let e =
            spec(serde_json::json!({"Image": "bb", "HostConfig": {"Binds": ["relative:/x:zz"]}}))
                .unwrap_err();
        assert!(e.to_string().starts_with("HostConfig.Binds: "), "{e}");
        let e = spec(
            serde_json::json!({"Image": "bb", "HostConfig": {"AutoRemove": true,
            "RestartPolicy": {"Name": "always"}}}),
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
        assert!(spec(serde_json::json!({"Cmd": ["true"]})).is_err());
        assert!(
            spec(serde_json::json!({"Image": "bb", "Healthcheck": {"Test": ["NONE"]}})).is_ok()
        );
    }
}
