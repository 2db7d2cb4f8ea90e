//! The plugin side of the CNI protocol: environment, stdin config, command
//! dispatch, JSON result or error on stdout, exit status.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::error::{code, CniError, Result};
use crate::types::{check_version, version_tuple, SUPPORTED};

/// What the runtime passed in the environment.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub command: String,
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    /// CNI_ARGS, `K=V;K=V`.
    pub args: HashMap<String, String>,
    pub path: Vec<PathBuf>,
}

/// One plugin. ADD returns the result JSON (already in the config's
/// cniVersion); the others succeed or fail.
pub trait Plugin {
    fn add(&self, args: &Args, conf: &Value) -> Result<Value>;
    fn del(&self, args: &Args, conf: &Value) -> Result<()>;
    fn check(&self, args: &Args, conf: &Value) -> Result<()>;
    fn status(&self, _conf: &Value) -> Result<()> {
        Ok(())
    }
    fn gc(&self, _conf: &Value) -> Result<()> {
        Ok(())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String> {
    env(name).ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!("required environment variable {name} is missing"),
        )
    })
}

/// CNI_CONTAINERID as the spec allows it: alphanumerics, then also `_`,
/// `.` and `-` (error 4 otherwise, as the reference plugins answer).
pub fn check_container_id(id: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        return Ok(());
    }
    Err(CniError::new(
        code::INVALID_ENV,
        format!("CNI_CONTAINERID {id:?} has characters a container id cannot have"),
    ))
}

/// CNI_IFNAME as the kernel takes an interface name: 1-15 bytes, not `.`
/// or `..`, without `/`, `:` or whitespace; checked before anything is
/// made (error 4, as the reference plugins answer).
pub fn check_ifname(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_IFNAME {name:?} is not a valid interface name: {why}"),
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 15 {
        return bad("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("it is . or ..");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("it contains /, : or whitespace");
    }
    Ok(())
}

/// Parse the environment for `command`.
pub fn parse_env() -> Result<Args> {
    let command = required("CNI_COMMAND")?;
    let needs_container = matches!(command.as_str(), "ADD" | "DEL" | "CHECK");
    let container_id = if needs_container {
        required("CNI_CONTAINERID")?
    } else {
        env("CNI_CONTAINERID").unwrap_or_default()
    };
    let netns = match command.as_str() {
        "ADD" | "CHECK" => Some(PathBuf::from(required("CNI_NETNS")?)),
        _ => env("CNI_NETNS").map(PathBuf::from),
    };
    let ifname = if needs_container {
        required("CNI_IFNAME")?
    } else {
        env("CNI_IFNAME").unwrap_or_default()
    };
    if needs_container {
        check_container_id(&container_id)?;
        check_ifname(&ifname)?;
    }
    let mut args = HashMap::new();
    for kv in env("CNI_ARGS")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("CNI_ARGS: {kv:?} is not KEY=VALUE"),
            )
        })?;
        args.insert(k.to_string(), v.to_string());
    }
    let path = std::env::split_paths(&env("CNI_PATH").unwrap_or_default()).collect();
    Ok(Args {
        command,
        container_id,
        netns,
        ifname,
        args,
        path,
    })
}

/// Parse and check the network configuration on stdin; field names
/// matched as the reference plugins match them (see [`crate::fields`]).
pub fn parse_conf(data: &[u8]) -> Result<Value> {
    let mut conf: Value = serde_json::from_slice(data).map_err(|e| {
        CniError::new(
            code::DECODE_FAILURE,
            "cannot decode the network configuration",
        )
        .with_details(e)
    })?;
    if !conf.is_object() {
        return Err(CniError::new(
            code::DECODE_FAILURE,
            "the network configuration is not a JSON object",
        ));
    }
    crate::fields::normalize(&mut conf, &crate::fields::NET_CONF);
    Ok(conf)
}

/// The config's cniVersion (0.1.0-era configs without one are refused).
pub fn conf_version(conf: &Value) -> Result<String> {
    let v = conf["cniVersion"]
        .as_str()
        .ok_or_else(|| CniError::config("cniVersion is missing from the network configuration"))?;
    check_version(v)?;
    Ok(v.to_string())
}

fn dispatch(p: &dyn Plugin, args: &Args, stdin: &[u8]) -> Result<Option<Value>> {
    if args.command == "VERSION" {
        let version = serde_json::from_slice::<Value>(stdin)
            .ok()
            .and_then(|c| c["cniVersion"].as_str().map(String::from))
            .unwrap_or_else(|| "1.1.0".into());
        return Ok(Some(
            json!({"cniVersion": version, "supportedVersions": SUPPORTED}),
        ));
    }
    let conf = parse_conf(stdin)?;
    let version = conf_version(&conf)?;
    if conf["name"].as_str().is_none_or(str::is_empty) {
        return Err(CniError::config("the network configuration has no name"));
    }
    match args.command.as_str() {
        "ADD" => p.add(args, &conf).map(Some),
        "DEL" => p.del(args, &conf).map(|_| None),
        "CHECK" => {
            if version_tuple(&version) < (0, 4, 0) {
                return Err(CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!("CHECK needs cniVersion 0.4.0 or later, config is {version}"),
                ));
            }
            p.check(args, &conf).map(|_| None)
        }
        "STATUS" | "GC" => {
            if version_tuple(&version) < (1, 1, 0) {
                return Err(CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!(
                        "{} needs cniVersion 1.1.0, config is {version}",
                        args.command
                    ),
                ));
            }
            if args.command == "STATUS" {
                p.status(&conf).map(|_| None)
            } else {
                p.gc(&conf).map(|_| None)
            }
        }
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("unknown CNI_COMMAND {other:?}"),
        )),
    }
}

/// Run the plugin as a CNI runtime expects and exit.
pub fn run(p: &dyn Plugin) -> ! {
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let version = serde_json::from_slice::<Value>(&stdin)
        .ok()
        .and_then(|c| c["cniVersion"].as_str().map(String::from))
        .unwrap_or_else(|| "1.1.0".into());
    let result = parse_env().and_then(|args| dispatch(p, &args, &stdin));
    crate::nfnl::close_after_exit();
    match result {
        Ok(Some(v)) => {
            println!("{v}");
            std::process::exit(0)
        }
        Ok(None) => std::process::exit(0),
        Err(e) => {
            let mut v = serde_json::to_value(&e).expect("plain data");
            v["cniVersion"] = Value::from(version);
            println!("{v}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_like_the_kernel_takes_them() {
        for good in ["eth0", "lo", "a", "net1.100", "x-y_z", "fifteen-chars-x"] {
            check_ifname(good).unwrap();
        }
        for bad in ["", ".", "..", "et/h0", "eth:0", "eth 0", "sixteen-chars-xx"] {
            assert_eq!(
                check_ifname(bad).unwrap_err().code,
                code::INVALID_ENV,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn container_ids_are_checked_like_the_reference() {
        for good in ["c1", "0a1b", "pod_1.x-2"] {
            check_container_id(good).unwrap();
        }
        for bad in ["-c", "_c", "a/b", "a b", "../x", "a;b"] {
            assert_eq!(
                check_container_id(bad).unwrap_err().code,
                code::INVALID_ENV,
                "{bad:?}"
            );
        }
    }
}
