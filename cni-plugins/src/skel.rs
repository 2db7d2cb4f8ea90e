//! The plugin side of the CNI protocol: environment, stdin config, command
//! dispatch, JSON result or error on stdout, exit status.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use cni_types::result::{check_version, version_tuple, SUPPORTED};
use cni_types::CniResult;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{code, CniError, Result};

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

/// The network configuration a plugin got: its `cniVersion` (one these
/// plugins speak) and `name` (not empty), checked before any command, and
/// the whole of it with its keys in the reference plugins' spelling
/// ([`cni_types::keys`]): the plugin reads its own fields from it
/// ([`Conf::fields`]) and hands it on to the IPAM plugin as it is.
#[derive(Debug, Clone)]
pub struct Conf {
    pub version: String,
    pub name: String,
    pub raw: Value,
}

/// The fields every configuration has.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "cniVersion", default)]
    cni_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The version to answer in: the configuration's, if it has one.
#[derive(Deserialize)]
struct VersionOnly {
    #[serde(rename = "cniVersion")]
    cni_version: String,
}

/// `prevResult`, read alone.
#[derive(Deserialize)]
struct Prev {
    #[serde(rename = "prevResult", default)]
    prev_result: Option<CniResult>,
}

impl Conf {
    /// Parse and check a network configuration (stdin); keys are matched
    /// as the reference plugins match them (see [`cni_types::keys`]).
    pub fn parse(data: &[u8]) -> Result<Conf> {
        let mut raw: Value = serde_json::from_slice(data).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                "cannot decode the network configuration",
            )
            .with_details(e)
        })?;
        if !raw.is_object() {
            return Err(CniError::new(
                code::DECODE_FAILURE,
                "the network configuration is not a JSON object",
            ));
        }
        cni_types::keys::normalize(&mut raw, &cni_types::keys::NET_CONF);
        let header: Header = cni_types::decode(&raw)
            .map_err(|e| CniError::config(format!("the network configuration: {e}")))?;
        let version = header.cni_version.ok_or_else(|| {
            CniError::config("cniVersion is missing from the network configuration")
        })?;
        check_version(&version)?;
        let name = header
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CniError::config("the network configuration has no name"))?;
        Ok(Conf { version, name, raw })
    }

    /// The fields `what` reads (a [`cni_types::BridgeConf`], a view of
    /// `runtimeConfig`...): a value of the wrong type is an invalid
    /// configuration, named (`bridge: mtu: invalid type: ...`).
    pub fn fields<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        cni_types::decode(&self.raw).map_err(|e| CniError::config(format!("{what}: {e}")))
    }

    /// The previous plugin's result, if the configuration has one.
    pub fn prev_result(&self) -> Result<Option<CniResult>> {
        cni_types::decode::<Prev>(&self.raw)
            .map(|p| p.prev_result)
            .map_err(|e| {
                CniError::new(code::DECODE_FAILURE, "cannot decode prevResult").with_details(e)
            })
    }
}

/// One plugin. ADD returns the result JSON (already in the config's
/// cniVersion); the others succeed or fail.
pub trait Plugin {
    fn add(&self, args: &Args, conf: &Conf) -> Result<Value>;
    fn del(&self, args: &Args, conf: &Conf) -> Result<()>;
    fn check(&self, args: &Args, conf: &Conf) -> Result<()>;
    fn status(&self, _conf: &Conf) -> Result<()> {
        Ok(())
    }
    fn gc(&self, _conf: &Conf) -> Result<()> {
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

/// The cniVersion to answer in: the configuration's, else 1.1.0.
fn reply_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<VersionOnly>(stdin)
        .map(|v| v.cni_version)
        .unwrap_or_else(|_| "1.1.0".into())
}

fn dispatch(p: &dyn Plugin, args: &Args, stdin: &[u8]) -> Result<Option<Value>> {
    if args.command == "VERSION" {
        return Ok(Some(
            json!({"cniVersion": reply_version(stdin), "supportedVersions": SUPPORTED}),
        ));
    }
    let conf = Conf::parse(stdin)?;
    let version = conf.version.as_str();
    match args.command.as_str() {
        "ADD" => p.add(args, &conf).map(Some),
        "DEL" => p.del(args, &conf).map(|_| None),
        "CHECK" => {
            if version_tuple(version) < (0, 4, 0) {
                return Err(CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!("CHECK needs cniVersion 0.4.0 or later, config is {version}"),
                ));
            }
            p.check(args, &conf).map(|_| None)
        }
        "STATUS" | "GC" => {
            if version_tuple(version) < (1, 1, 0) {
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
    let version = reply_version(&stdin);
    let result = parse_env().and_then(|args| dispatch(p, &args, &stdin));
    crate::nfnl::close_after_exit();
    match result {
        Ok(Some(v)) => {
            println!("{v}");
            std::process::exit(0)
        }
        Ok(None) => std::process::exit(0),
        Err(e) => {
            println!(
                "{}",
                serde_json::to_value(e.reply(&version)).expect("plain data")
            );
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
    fn the_configuration_is_checked_before_any_command() {
        let c = Conf::parse(br#"{"CNIVersion": "1.0.0", "Name": "n", "IsGateway": true}"#).unwrap();
        assert_eq!((c.version.as_str(), c.name.as_str()), ("1.0.0", "n"));
        assert_eq!(c.raw["isGateway"], true);
        let code_of = |t: &[u8]| Conf::parse(t).unwrap_err().code;
        assert_eq!(code_of(b"{not json"), code::DECODE_FAILURE);
        assert_eq!(code_of(b"[1]"), code::DECODE_FAILURE);
        assert_eq!(code_of(br#"{"name": "n"}"#), code::INVALID_CONFIG);
        assert_eq!(
            code_of(br#"{"cniVersion": 1, "name": "n"}"#),
            code::INVALID_CONFIG
        );
        assert_eq!(
            code_of(br#"{"cniVersion": "7.0.0", "name": "n"}"#),
            code::INCOMPATIBLE_VERSION
        );
        assert_eq!(
            code_of(br#"{"cniVersion": "1.0.0", "name": ""}"#),
            code::INVALID_CONFIG
        );
        assert_eq!(reply_version(br#"{"cniVersion": "0.4.0"}"#), "0.4.0");
        assert_eq!(reply_version(b"{"), "1.1.0");
    }

    #[test]
    fn fields_and_prev_result_name_what_is_wrong() {
        let c = Conf::parse(
            br#"{"cniVersion": "1.0.0", "name": "n", "mtu": "big",
            "prevResult": {"ips": [{"address": "nope"}]}}"#,
        )
        .unwrap();
        let e = c.fields::<cni_types::BridgeConf>("bridge").unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.starts_with("bridge: mtu: "), "{e}");
        let e = c.prev_result().unwrap_err();
        assert_eq!(e.code, code::DECODE_FAILURE);
        assert!(e.details.contains("prevResult.ips[0].address"), "{e}");
        let none =
            Conf::parse(br#"{"cniVersion": "1.0.0", "name": "n", "prevResult": null}"#).unwrap();
        assert_eq!(none.prev_result().unwrap(), None);
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
