//! Delegation to the IPAM plugin named by `ipam.type`, found in CNI_PATH
//! and run with the same environment and configuration, as the spec asks.

use std::io::Write;
use std::process::{Command, Stdio};

use cni_types::{CniResult, ErrorReply};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{code, CniError, Result};
use crate::skel::{Args, Conf};

/// Which IPAM plugin the configuration names (its other fields are that
/// plugin's business).
#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    ipam: Option<Kind>,
}

#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    plugin: Option<String>,
}

fn find(args: &Args, plugin: &str) -> Result<std::path::PathBuf> {
    if plugin.is_empty() || plugin.contains('/') {
        return Err(CniError::config(format!(
            "ipam.type {plugin:?} is not a plugin name"
        )));
    }
    args.path
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::config(format!(
                "IPAM plugin {plugin:?} not found in CNI_PATH {:?}",
                args.path
            ))
        })
}

/// An IPAM plugin call under way (see [`start`]).
pub struct Pending {
    child: std::process::Child,
    plugin: String,
    bin: std::path::PathBuf,
    command: String,
}

/// Start the IPAM plugin for `command`, to be waited for with
/// [`Pending::wait`] (the caller can do other work meanwhile).
pub fn start(args: &Args, conf: &Conf, command: &str) -> Result<Pending> {
    let plugin = conf
        .fields::<Section>("ipam")?
        .ipam
        .and_then(|i| i.plugin)
        .ok_or_else(|| CniError::config("ipam.type is missing"))?;
    let bin = find(args, &plugin)?;
    let mut child = Command::new(&bin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CniError::io(format!("run IPAM plugin {}", bin.display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.raw.to_string().as_bytes());
    }
    Ok(Pending {
        child,
        plugin,
        bin,
        command: command.to_string(),
    })
}

impl Pending {
    /// The plugin's outcome; ADD returns its result.
    pub fn wait(self) -> Result<Option<CniResult>> {
        let Pending {
            child,
            plugin,
            bin,
            command,
        } = self;
        let out = child
            .wait_with_output()
            .map_err(|e| CniError::io(format!("wait for IPAM plugin {}", bin.display()), e))?;
        if !out.status.success() {
            // pass the plugin's own error through
            let err: ErrorReply = serde_json::from_slice(&out.stdout).unwrap_or_default();
            return Err(CniError {
                code: if err.code == 0 {
                    code::INTERNAL
                } else {
                    err.code
                },
                msg: if err.msg.is_empty() {
                    format!("IPAM plugin {plugin} failed ({})", out.status)
                } else {
                    err.msg
                },
                details: err.details,
            });
        }
        if command != "ADD" {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                format!("IPAM plugin {plugin} printed no result"),
            )
            .with_details(e)
        })?;
        cni_types::decode(&v).map(Some).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                format!("cannot decode the result of IPAM plugin {plugin}"),
            )
            .with_details(e)
        })
    }
}

/// Run the IPAM plugin for `command`; ADD returns its result.
pub fn exec(args: &Args, conf: &Conf, command: &str) -> Result<Option<CniResult>> {
    start(args, conf, command)?.wait()
}
