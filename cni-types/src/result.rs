//! What a plugin answers: ADD's result, and the error reply of any command.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Versions the plugins speak (their VERSION lists them).
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The network namespace it is in; empty on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IpConfig {
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// A plugin result in the current (1.x) shape; [`CniResult::to_version`]
/// renders it for the caller's cniVersion. Any supported version's result
/// reads into it (a 0.x IP's `version` is left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CniResult {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// A cniVersion the plugins do not speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedVersion(pub String);

impl std::fmt::Display for UnsupportedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "incompatible CNI versions: config is {:?}, plugin supports {SUPPORTED:?}",
            self.0
        )
    }
}

impl std::error::Error for UnsupportedVersion {}

/// `v` if the plugins speak it.
pub fn check_version(v: &str) -> Result<(), UnsupportedVersion> {
    if SUPPORTED.contains(&v) {
        Ok(())
    } else {
        Err(UnsupportedVersion(v.to_string()))
    }
}

/// Major/minor/patch of a version string for comparisons.
pub fn version_tuple(v: &str) -> (u32, u32, u32) {
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

impl CniResult {
    /// The interface of the result's first IP address, and that address
    /// with its gateway: what a runtime records of an attachment.
    pub fn first_ip(&self) -> Option<(&IpConfig, Option<&Interface>)> {
        let ip = self.ips.first()?;
        Some((ip, ip.interface.and_then(|i| self.interfaces.get(i))))
    }

    /// The JSON for `version`: before 1.0.0 every IP carries `version`.
    pub fn to_version(&self, version: &str) -> Result<Value, UnsupportedVersion> {
        check_version(version)?;
        let mut r = self.clone();
        r.cni_version = version.to_string();
        let mut v = serde_json::to_value(&r).expect("plain data");
        if version_tuple(version) < (1, 0, 0) {
            if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
                for (ip, typed) in ips.iter_mut().zip(&r.ips) {
                    let four = if typed.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    if let Some(o) = ip.as_object_mut() {
                        o.insert("version".into(), Value::from(four));
                    }
                }
            }
        }
        Ok(v)
    }
}

/// A plugin's error on stdout (spec: "Error"): a code (1-99 the spec's,
/// 100 and up the plugin's), a message and details.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorReply {
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cni_version: String,
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl ErrorReply {
    /// `msg: details`, or the message alone.
    pub fn message(&self) -> String {
        if self.details.is_empty() {
            self.msg.clone()
        } else {
            format!("{}: {}", self.msg, self.details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_versions_carry_ip_versions() {
        let r = CniResult {
            ips: vec![IpConfig {
                interface: Some(0),
                address: "10.88.0.2/16".parse().unwrap(),
                gateway: Some("10.88.0.1".parse().unwrap()),
            }],
            ..Default::default()
        };
        assert_eq!(r.to_version("0.4.0").unwrap()["ips"][0]["version"], "4");
        assert!(r.to_version("1.0.0").unwrap()["ips"][0]
            .get("version")
            .is_none());
        assert_eq!(r.to_version("1.1.0").unwrap()["cniVersion"], "1.1.0");
        assert_eq!(
            r.to_version("9.9.9").unwrap_err(),
            UnsupportedVersion("9.9.9".into())
        );
    }

    #[test]
    fn a_reference_0_4_result_reads_and_names_its_first_ip() {
        let v = serde_json::json!({"cniVersion": "0.4.0",
            "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
                           {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
                           {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/netns/x"}],
            "ips": [{"version": "4", "interface": 2, "address": "10.88.0.5/16", "gateway": "10.88.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {}});
        let r: CniResult = crate::decode(&v).unwrap();
        let (ip, iface) = r.first_ip().unwrap();
        assert_eq!(ip.address.to_string(), "10.88.0.5/16");
        assert_eq!(iface.unwrap().mac, "aa:bb:cc:dd:ee:03");
        assert_eq!(CniResult::default().first_ip(), None);
    }

    #[test]
    fn error_replies_read_with_their_details() {
        let e: ErrorReply =
            serde_json::from_str(r#"{"code": 7, "msg": "bad", "details": "why"}"#).unwrap();
        assert_eq!((e.code, e.message()), (7, "bad: why".to_string()));
        let e: ErrorReply = serde_json::from_str(r#"{"code": 11, "msg": "busy"}"#).unwrap();
        assert_eq!(e.message(), "busy");
    }
}
