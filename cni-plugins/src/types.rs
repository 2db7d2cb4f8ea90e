//! CNI results and version handling.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{code, CniError, Result};

/// Versions these plugins speak (VERSION lists them).
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
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
/// renders it for the caller's cniVersion.
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

/// Refuse a cniVersion this code does not speak (error code 1).
pub fn check_version(v: &str) -> Result<()> {
    if SUPPORTED.contains(&v) {
        return Ok(());
    }
    Err(CniError::new(
        code::INCOMPATIBLE_VERSION,
        format!("incompatible CNI versions: config is {v:?}, plugin supports {SUPPORTED:?}"),
    ))
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
    /// Parse a result of any supported version (a prevResult).
    pub fn from_value(v: &Value) -> Result<CniResult> {
        serde_json::from_value(v.clone()).map_err(|e| {
            CniError::new(code::DECODE_FAILURE, "cannot decode prevResult").with_details(e)
        })
    }

    /// The JSON for `version`: before 1.0.0 every IP carries `version`.
    pub fn to_version(&self, version: &str) -> Result<Value> {
        check_version(version)?;
        let mut r = self.clone();
        r.cni_version = version.to_string();
        let mut v = serde_json::to_value(&r).expect("plain data");
        if version_tuple(version) < (1, 0, 0) {
            if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
                for ip in ips {
                    let four = ip["address"].as_str().is_some_and(|a| a.contains('.'));
                    ip["version"] = Value::from(if four { "4" } else { "6" });
                }
            }
        }
        Ok(v)
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
        assert_eq!(r.to_version("9.9.9").unwrap_err().code, 1);
    }
}
