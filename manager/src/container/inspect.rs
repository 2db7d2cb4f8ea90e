//! `rbox inspect` of a container: Docker's JSON shape.

use serde_json::{json, Value};

use super::log_config::LogOpt;
use super::record::{Container, LiveStatus, NetMode};
use super::task::{init_pid, live_status};
use crate::mounts::Source;
use crate::net::usernet;
use crate::store::Store;
use crate::supervisor;

/// `docker inspect`'s shape for a container.
pub fn inspect(store: &Store, c: &Container) -> Value {
    let status = live_status(c);
    let ports: serde_json::Map<String, Value> = c
        .state
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol.as_str()),
                json!([{"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                        "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    let ip = c.state.ip.clone().unwrap_or_default();
    let mode = c.spec.net.clone().unwrap_or(NetMode::Bridge);
    let mut networks = serde_json::Map::new();
    let network_id = match &mode {
        NetMode::User(n) => usernet::find(store, n).map(|n| n.id).unwrap_or_default(),
        m => usernet::predefined_id(&m.name()),
    };
    if !matches!(mode, NetMode::Container(_)) {
        networks.insert(
            mode.name(),
            json!({"NetworkID": network_id, "IPAddress": ip,
                   "IPPrefixLen": c.state.prefix_len.unwrap_or(0),
                   "Gateway": c.state.gateway.clone().unwrap_or_default(),
                   "MacAddress": c.state.mac.clone().unwrap_or_default()}),
        );
    }
    // like Docker, the top-level address is the default network's only
    let (ip, prefix_len, gateway, mac) = if mode == NetMode::Bridge {
        (
            ip,
            c.state.prefix_len.unwrap_or(0),
            c.state.gateway.clone().unwrap_or_default(),
            c.state.mac.clone().unwrap_or_default(),
        )
    } else {
        (String::new(), 0, String::new(), String::new())
    };
    let config = c.spec.run_config();
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": config.path(),
        "Args": config.args(),
        "Name": format!("/{}", c.name),
        "RestartCount": c.state.restart_count,
        "LogPath": supervisor::log_path(store, &c.id),
        "Image": format!("sha256:{}", crate::store::hex(&c.image_id)),
        "State": {
            "Status": status.as_str(),
            "Running": status == LiveStatus::Running,
            "Paused": status == LiveStatus::Paused,
            "Pid": if status == LiveStatus::Running { init_pid(store, c).unwrap_or(0) } else { 0 },
            "ExitCode": c.state.exit_code,
            "StartedAt": c.state.started_at.clone().unwrap_or_default(),
            "FinishedAt": c.state.finished_at.clone().unwrap_or_default(),
        },
        "Config": {
            "Image": c.spec.image,
            "Cmd": if config.cmd.is_empty() { Value::Null } else { json!(config.cmd) },
            "Entrypoint": if config.entrypoint.is_empty() { Value::Null } else { json!(config.entrypoint) },
            "Labels": config.labels,
            "Env": c.spec.env,
            "Tty": c.spec.tty,
            "OpenStdin": c.spec.interactive,
            "WorkingDir": c.spec.workdir.clone().unwrap_or_default(),
            "User": c.spec.user.clone().unwrap_or_default(),
            "Hostname": c.spec.hostname.clone().unwrap_or_else(|| c.id.chars().take(12).collect()),
        },
        "HostConfig": {
            "NetworkMode": mode.name(),
            "AutoRemove": c.spec.rm,
            "RestartPolicy": {"Name": c.spec.restart.name(), "MaximumRetryCount": c.spec.restart.max_retries()},
            "LogConfig": {"Type": "json-file", "Config": c.spec.log_opts.iter().map(LogOpt::pair).collect::<std::collections::BTreeMap<_, _>>()},
            "ReadonlyRootfs": c.spec.read_only,
            "Privileged": c.spec.privileged,
            "CapAdd": c.spec.cap_add,
            "CapDrop": c.spec.cap_drop,
            "Devices": c.spec.devices.iter().map(|d| json!({
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.cgroup_permissions,
            })).collect::<Vec<_>>(),
            "DeviceCgroupRules": if c.spec.device_cgroup_rules.is_empty() { Value::Null } else { json!(c.spec.device_cgroup_rules.iter().map(ToString::to_string).collect::<Vec<_>>()) },
            "Memory": c.spec.memory.unwrap_or(0),
            "PidsLimit": c.spec.pids_limit.unwrap_or(0),
            "Init": c.spec.init,
            "CgroupParent": c.spec.cgroup_parent.clone().unwrap_or_default(),
            "GroupAdd": if c.spec.group_add.is_empty() { Value::Null } else { json!(c.spec.group_add) },
            "SecurityOpt": if c.spec.security_opt.given().is_empty() { Value::Null } else { json!(c.spec.security_opt.given()) },
        },
        "Mounts": c.spec.mounts.iter().map(|m| {
            let (typ, src, name) = match &m.source {
                Source::Bind(p) => ("bind", p.display().to_string(), None),
                Source::Volume(n) => ("volume", String::new(), n.clone()),
                Source::Tmpfs { .. } => ("tmpfs", String::new(), None),
                Source::Overlay { .. } => ("overlay", String::new(), None),
            };
            json!({"Type": typ, "Source": src, "Name": name, "Destination": m.target, "RW": !m.readonly})
        }).collect::<Vec<_>>(),
        "NetworkSettings": {
            "IPAddress": ip,
            "IPPrefixLen": prefix_len,
            "Gateway": gateway,
            "MacAddress": mac,
            "Ports": ports,
            "Networks": networks,
            "SandboxKey": c.state.netns.clone().map(|p| p.display().to_string()).unwrap_or_default(),
        },
    })
}
