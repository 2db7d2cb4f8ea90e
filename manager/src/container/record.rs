//! A container as the store keeps it: what the command line asked
//! ([`RunSpec`]) and what happened ([`RunState`]), stored as JSON in its
//! row (store/containers.rs).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log_config::LogOpt;
use super::restart::RestartPolicy;
use crate::cgroups;
use crate::devices;
use crate::liveness::Process;
use crate::mounts::MountSpec;
use crate::names::valid_name;
use crate::oci::security::SecurityOptions;
use crate::oci::ulimit::Ulimit;
use crate::store::ContainerRow;
use cni_types::PortMapping;

/// `--net`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetMode {
    Bridge,
    Host,
    None,
    /// A user-defined network (usernet.rs), by name.
    User(String),
    /// Another container's network namespace, by id (`container:NAME|ID`).
    Container(String),
}

/// A `--net` value rbox does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadNetMode {
    #[error("--net {0}: name the container, container:NAME|ID")]
    NoContainer(String),
    #[error("--net {0:?}: not bridge, host, none, container:NAME or a network name")]
    Unknown(String),
}

impl NetMode {
    pub fn parse(s: &str) -> Result<NetMode, BadNetMode> {
        match s {
            "bridge" | "default" | "rbox" => Ok(NetMode::Bridge),
            "host" => Ok(NetMode::Host),
            "none" => Ok(NetMode::None),
            other if other.starts_with("container:") => match &other["container:".len()..] {
                "" => Err(BadNetMode::NoContainer(other.into())),
                c => Ok(NetMode::Container(c.to_string())),
            },
            other if valid_name(other) || other.len() == 1 => Ok(NetMode::User(other.into())),
            other => Err(BadNetMode::Unknown(other.into())),
        }
    }

    /// Docker's `HostConfig.NetworkMode`.
    pub fn name(&self) -> String {
        match self {
            NetMode::Bridge => "bridge".into(),
            NetMode::Host => "host".into(),
            NetMode::None => "none".into(),
            NetMode::User(n) => n.clone(),
            NetMode::Container(id) => format!("container:{id}"),
        }
    }
}

/// What the command line asked for (kept with the container).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    pub image: String,
    pub name: Option<String>,
    /// Replaces the image's Cmd when not empty.
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<MountSpec>,
    pub net: Option<NetMode>,
    pub rm: bool,
    pub read_only: bool,
    pub add_hosts: Vec<(String, IpAddr)>,
    pub dns: Vec<IpAddr>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--device HOST[:CTR[:PERMS]]`
    pub devices: Vec<devices::DeviceMapping>,
    /// `--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS'`
    pub device_cgroup_rules: Vec<devices::CgroupRule>,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    /// `--restart`
    pub restart: RestartPolicy,
    /// `--log-opt`: max-size=…, max-file=…
    pub log_opts: Vec<LogOpt>,
    /// `-P`: the image's exposed ports on random host ports
    pub publish_all: bool,
    /// `--ulimit NAME=SOFT[:HARD]`
    pub ulimits: Vec<Ulimit>,
    /// `--security-opt`: seccomp=unconfined|PROFILE, no-new-privileges
    pub security_opt: SecurityOptions,
    /// `--init`: rbox-init as PID 1
    pub init: bool,
    /// `--cgroup-parent` (or `RBOX_CGROUP_PARENT`), checked; `None`:
    /// bundle::DEFAULT_CGROUP_PARENT
    pub cgroup_parent: Option<String>,
    /// `--label KEY=VALUE`
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--group-add`: supplementary groups (names or numbers) of every
    /// process of the container
    pub group_add: Vec<String>,
    /// The image's command and labels with this spec's applied, set by
    /// `create` (none for containers made before it was kept)
    pub config: Option<crate::runconfig::RunConfig>,
}

impl RunSpec {
    /// What no container may combine, checked before anything is pulled or
    /// made (by the command line, and again by `create` for every caller):
    /// `--rm` with a restart policy.
    pub fn check(&self) -> Result<(), super::error::ContainerError> {
        if self.rm && self.restart != RestartPolicy::No {
            return Err(super::error::ContainerError::RestartWithRm(
                self.restart.into(),
            ));
        }
        Ok(())
    }

    /// The run config Docker reports (for containers made before rbox kept
    /// it: what the command line said).
    pub fn run_config(&self) -> crate::runconfig::RunConfig {
        self.config
            .clone()
            .unwrap_or_else(|| crate::runconfig::RunConfig {
                entrypoint: self.entrypoint.iter().cloned().collect(),
                cmd: self.cmd.clone(),
                labels: self.labels.clone(),
            })
    }

    /// The container's `linux.cgroupsPath` (absolute).
    pub fn cgroups_path(&self, id: &str) -> String {
        let parent = self.cgroup_parent.as_deref();
        cgroups::path(parent.unwrap_or(cgroups::DEFAULT_PARENT), id)
    }
}

/// Where a container's record says it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// made, or back from a failed start; not running
    #[default]
    Created,
    /// started: its shim runs it (the runtime may know better, see
    /// `LiveStatus`)
    Running,
    /// its init exited and the exit hook is at work
    Exiting,
    /// the exit is recorded
    Exited,
}

/// What `ps`, `inspect` and the verbs go by: the record's status,
/// corrected by the runtime (a running record whose task is gone is
/// exited; a paused task is paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Created,
    Running,
    Paused,
    Exited,
}

impl LiveStatus {
    /// Docker's `State.Status`.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveStatus::Created => "created",
            LiveStatus::Running => "running",
            LiveStatus::Paused => "paused",
            LiveStatus::Exited => "exited",
        }
    }

    /// Running or paused: its processes exist.
    pub fn is_up(self) -> bool {
        matches!(self, LiveStatus::Running | LiveStatus::Paused)
    }
}

impl std::fmt::Display for LiveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub netns: Option<PathBuf>,
    pub ip: Option<String>,
    pub prefix_len: Option<u8>,
    pub gateway: Option<String>,
    pub mac: Option<String>,
    /// The CNI result, for DEL.
    pub cni_result: Option<Value>,
    /// Published ports with their host ports resolved.
    pub ports: Vec<PortMapping>,
    /// Restarts by the restart policy so far.
    pub restart_count: u32,
    /// Stopped by the user (`stop`, `rm -f`): the restart policy does not apply.
    pub stopping: bool,
    /// The `rbox run` (or `start -a`) in the foreground, which removes a
    /// `--rm` container itself once it has its exit code.
    pub attached_pid: Option<i32>,
    /// The shim serving the running container: its pid and start time
    /// (/proc/PID/stat), so a killed shim is noticed ([`recover`]).
    pub shim: Option<Process>,
}

/// A container as the store knows it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub bundle: PathBuf,
    pub spec: RunSpec,
    pub state: RunState,
}

impl Container {
    pub(crate) fn from_row(r: ContainerRow) -> Container {
        Container {
            id: r.id,
            name: r.name,
            image_id: r.image_id,
            created: r.created,
            bundle: r.bundle,
            spec: serde_json::from_str(&r.spec).unwrap_or_default(),
            state: serde_json::from_str(&r.state).unwrap_or_default(),
        }
    }
}

impl RunState {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data")
    }
}

impl RunSpec {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_json_and_parse_their_options_once() {
        // a record as rbox stored it before its options were typed
        let spec = serde_json::json!({
            "image": "app", "restart": "on-failure:3",
            "log_opts": ["max-size=10m", "max-file=3"],
            "ulimits": ["nofile=1024:2048"],
            "security_opt": ["seccomp=unconfined", "no-new-privileges"],
        });
        let rs: RunSpec = serde_json::from_value(spec.clone()).unwrap();
        assert_eq!(rs.restart, RestartPolicy::OnFailure(Some(3)));
        assert_eq!(rs.ulimits[0].soft, 1024);
        assert!(rs.security_opt.asked.no_new_privileges);
        assert_eq!(
            rs.log_opts,
            [LogOpt::MaxSize("10m".into()), LogOpt::MaxFile("3".into())]
        );
        let back = serde_json::to_value(&rs).unwrap();
        for k in ["restart", "log_opts", "ulimits", "security_opt"] {
            assert_eq!(back[k], spec[k], "{k}");
        }
        let state: RunState = serde_json::from_str(r#"{"status":"exiting"}"#).unwrap();
        assert_eq!(state.status, Status::Exiting);
        assert_eq!(
            serde_json::to_value(&state).unwrap()["status"],
            "exiting",
            "the recover CAS reads $.status as text"
        );
    }
}
