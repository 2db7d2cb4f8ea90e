//! A stage's image config as its steps change it, kept as the config JSON
//! itself (Docker's Healthcheck, OnBuild and Shell are not in OCI's
//! types), and the history entry of each step, as BuildKit writes them.

use serde_json::{json, Map, Value};

use crate::build::dockerfile::Healthcheck;
use crate::build::plan::{Op, Step};

/// BuildKit's history comment on the entries of a Dockerfile build.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The config of a stage that starts from nothing (`FROM scratch`).
pub fn scratch(architecture: &str, os: &str) -> Value {
    json!({
        "architecture": architecture,
        "os": os,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [] },
        "history": [],
    })
}

/// The `config` object, made when missing.
fn inner(cfg: &mut Value) -> &mut Map<String, Value> {
    if !cfg.get("config").is_some_and(Value::is_object) {
        cfg["config"] = json!({});
    }
    cfg["config"].as_object_mut().expect("an object")
}

/// Sets `KEY=value` in the config's Env, in place when the key is there.
pub fn set_env(cfg: &mut Value, key: &str, value: &str) {
    let c = inner(cfg);
    let mut env: Vec<String> = c
        .get("Env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
    c.insert("Env".into(), json!(env));
}

/// Adds `key` to an object-valued field (`ExposedPorts`, `Volumes`).
fn add_key(cfg: &mut Value, field: &str, key: String) {
    let c = inner(cfg);
    let obj = c.entry(field).or_insert_with(|| json!({}));
    if !obj.is_object() {
        *obj = json!({});
    }
    obj.as_object_mut()
        .expect("an object")
        .insert(key, json!({}));
}

/// What `op` changes in the config (RUN, COPY and ADD change none of it;
/// WORKDIR's directory is the executor's).
pub fn apply(cfg: &mut Value, op: &Op) {
    match op {
        Op::Run(_) | Op::Copy(_) | Op::Arg(_) => {}
        Op::Workdir(dir) => {
            inner(cfg).insert("WorkingDir".into(), json!(dir));
        }
        Op::Env(pairs) => {
            for (k, v) in pairs {
                set_env(cfg, k, v);
            }
        }
        Op::Label(pairs) => {
            let c = inner(cfg);
            let labels = c.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in pairs {
                labels[k.as_str()] = json!(v);
            }
        }
        Op::Expose(ports) => {
            for p in ports {
                add_key(cfg, "ExposedPorts", p.to_string());
            }
        }
        Op::Volume(paths) => {
            for p in paths {
                add_key(cfg, "Volumes", p.clone());
            }
        }
        Op::User(u) => {
            inner(cfg).insert("User".into(), json!(u));
        }
        Op::StopSignal(s) => {
            inner(cfg).insert("StopSignal".into(), json!(s));
        }
        Op::Healthcheck(h) => {
            inner(cfg).insert("Healthcheck".into(), healthcheck(h));
        }
        Op::Cmd(argv) => {
            inner(cfg).insert("Cmd".into(), json!(argv));
        }
        Op::Entrypoint { argv, clears_cmd } => {
            let c = inner(cfg);
            c.insert("Entrypoint".into(), json!(argv));
            if *clears_cmd {
                c.insert("Cmd".into(), Value::Null);
            }
        }
        Op::Shell(shell) => {
            inner(cfg).insert("Shell".into(), json!(shell));
        }
        Op::OnBuild(trigger) => {
            let c = inner(cfg);
            let list = c.entry("OnBuild").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            list.as_array_mut().expect("an array").push(json!(trigger));
        }
        Op::Maintainer(m) => {
            cfg["author"] = json!(m);
        }
    }
}

/// Docker's Healthcheck object: durations in nanoseconds, 0 = default.
fn healthcheck(h: &Healthcheck) -> Value {
    match h {
        Healthcheck::None => json!({ "Test": ["NONE"] }),
        Healthcheck::Check(c) => {
            let mut v = json!({ "Test": h.test() });
            let mut put = |k: &str, d: std::time::Duration| {
                if !d.is_zero() {
                    v[k] = json!(d.as_nanos() as u64);
                }
            };
            put("Interval", c.interval);
            put("Timeout", c.timeout);
            put("StartPeriod", c.start_period);
            put("StartInterval", c.start_interval);
            if c.retries != 0 {
                v["Retries"] = json!(c.retries);
            }
            v
        }
    }
}

/// The history entry of `step`, as BuildKit writes it (none for ONBUILD).
pub fn history(step: &Step, created: &str, empty_layer: bool) -> Option<Value> {
    let mut h = json!({
        "created": created,
        "created_by": super::history::created_by(step)?,
        "comment": HISTORY_COMMENT,
    });
    if empty_layer {
        h["empty_layer"] = json!(true);
    }
    Some(h)
}

/// Appends `entry` (if any) to the config's history and sets its
/// `created`.
pub fn push_history(cfg: &mut Value, entry: Option<Value>) {
    let Some(entry) = entry else { return };
    if let Some(c) = entry.get("created") {
        cfg["created"] = c.clone();
    }
    if !cfg.get("history").is_some_and(Value::is_array) {
        cfg["history"] = json!([]);
    }
    cfg["history"].as_array_mut().expect("an array").push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::plan::{Port, Protocol};

    fn step(op: Op, source: &str) -> Step {
        Step {
            line: 1,
            source: source.into(),
            on_build: false,
            op,
        }
    }

    #[test]
    fn env_replaces_in_place_and_entrypoint_clears_cmd() {
        let mut c = scratch("amd64", "linux");
        apply(&mut c, &Op::Env(vec![("PATH".into(), "/bin".into())]));
        apply(&mut c, &Op::Env(vec![("A".into(), "1".into())]));
        apply(&mut c, &Op::Env(vec![("PATH".into(), "/bin:/tmp".into())]));
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin:/tmp", "A=1"]));
        apply(&mut c, &Op::Cmd(vec!["sh".into()]));
        apply(
            &mut c,
            &Op::Entrypoint {
                argv: vec!["/init".into()],
                clears_cmd: true,
            },
        );
        assert_eq!(c["config"]["Cmd"], Value::Null);
        assert_eq!(c["config"]["Entrypoint"], json!(["/init"]));
    }

    #[test]
    fn ports_volumes_labels_and_onbuild_are_docker_shaped() {
        let mut c = scratch("amd64", "linux");
        let p = |number, protocol| Port { number, protocol };
        apply(
            &mut c,
            &Op::Expose(vec![p(443, Protocol::Tcp), p(53, Protocol::Udp)]),
        );
        apply(&mut c, &Op::Volume(vec!["/data".into()]));
        apply(&mut c, &Op::Label(vec![("a".into(), "b c".into())]));
        apply(&mut c, &Op::OnBuild("RUN echo hi".into()));
        assert_eq!(
            c["config"]["ExposedPorts"],
            json!({"443/tcp": {}, "53/udp": {}})
        );
        assert_eq!(c["config"]["Volumes"], json!({"/data": {}}));
        assert_eq!(c["config"]["Labels"], json!({"a": "b c"}));
        assert_eq!(c["config"]["OnBuild"], json!(["RUN echo hi"]));
    }

    #[test]
    fn history_says_what_buildkit_says() {
        let h = history(
            &step(Op::Cmd(vec!["sh".into()]), "CMD  [\"sh\"]"),
            "t",
            true,
        )
        .unwrap();
        assert_eq!(h["created_by"], json!("CMD [\"sh\"]"));
        assert_eq!(h["empty_layer"], json!(true));
        assert_eq!(h["comment"], json!(HISTORY_COMMENT));
        let h = history(&step(Op::Workdir("/app".into()), "WORKDIR app"), "t", false).unwrap();
        assert_eq!(h["created_by"], json!("WORKDIR /app"));
        assert!(h.get("empty_layer").is_none());
        let onbuild = step(Op::OnBuild("RUN x".into()), "ONBUILD RUN x");
        assert_eq!(history(&onbuild, "t", true), None);
    }
}
