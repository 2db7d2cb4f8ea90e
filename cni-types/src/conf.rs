//! Network configurations: the list rbox writes for a network, and the
//! configuration each plugin reads, with the fields of the plugins in this
//! repository (`bridge`, `portmap`, host-local's `ipam`) and the
//! runtime-set `runtimeConfig`.
//!
//! Addresses and subnets are typed; a value that does not parse is a
//! decoding error naming the field ([`crate::decode`]). Range checks (an
//! MTU, a VLAN id, a port that is not 0) are the plugins' own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

fn is_false(b: &bool) -> bool {
    !*b
}

/// A network configuration list (`.conflist`): a network's name and the
/// plugins that attach a container to it, run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfList {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub name: String,
    pub plugins: Vec<PluginConf>,
}

/// An entry of a list's `plugins`: the plugin's type, the capabilities it
/// takes from the runtime (`portMappings`), and its own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginConf {
    #[serde(rename = "type")]
    pub plugin: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// The plugin's own fields ([`BridgeConf`], [`PortmapConf`], `ipam`).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl PluginConf {
    /// A `plugin` entry with `conf`'s fields.
    pub fn new<T: Serialize>(plugin: &str, conf: &T) -> PluginConf {
        let fields = match serde_json::to_value(conf).expect("plain data") {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        PluginConf {
            plugin: plugin.to_string(),
            capabilities: BTreeMap::new(),
            fields,
        }
    }

    /// With the IPAM plugin's section.
    pub fn with_ipam(mut self, ipam: &Ipam) -> PluginConf {
        self.fields.insert(
            "ipam".into(),
            serde_json::to_value(ipam).expect("plain data"),
        );
        self
    }

    /// Taking `capability` (a key of `runtimeConfig`) from the runtime.
    pub fn with_capability(mut self, capability: &str) -> PluginConf {
        self.capabilities.insert(capability.to_string(), true);
        self
    }

    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.get(capability) == Some(&true)
    }
}

/// What one plugin of a list gets on stdin: the list's name and version,
/// the entry, the `runtimeConfig` of the capabilities it declared and the
/// previous plugin's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub name: String,
    #[serde(flatten)]
    pub plugin: PluginConf,
    #[serde(
        rename = "runtimeConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_config: Option<Map<String, Value>>,
    /// The previous plugin's result, passed on as it came.
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
}

impl NetConfList {
    /// Plugin `i`'s configuration (spec: "Deriving execution
    /// configuration from plugin configuration"): of `runtime` only the
    /// keys whose capability the plugin declared.
    pub fn plugin_conf(
        &self,
        i: usize,
        runtime: &RuntimeConfig,
        prev_result: Option<&Value>,
    ) -> Option<NetConf> {
        let plugin = self.plugins.get(i)?.clone();
        let runtime = match serde_json::to_value(runtime).expect("plain data") {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let offered: Map<String, Value> = runtime
            .into_iter()
            .filter(|(k, _)| plugin.has_capability(k))
            .collect();
        Some(NetConf {
            cni_version: self.cni_version.clone(),
            name: self.name.clone(),
            runtime_config: (!offered.is_empty()).then_some(offered),
            prev_result: prev_result.cloned(),
            plugin,
        })
    }

    /// Whether a plugin of this type is in the list.
    pub fn has(&self, plugin: &str) -> bool {
        self.plugins.iter().any(|p| p.plugin == plugin)
    }
}

/// `runtimeConfig`: what the runtime sets per container for the
/// capabilities a plugin declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(
        rename = "portMappings",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_mappings: Vec<PortMapping>,
    /// Addresses asked for (host-local), with or without a prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Range sets that come before the configuration's (host-local).
    #[serde(rename = "ipRanges", default, skip_serializing_if = "Vec::is_empty")]
    pub ip_ranges: Vec<Vec<IpRange>>,
}

/// One published port: `runtimeConfig.portMappings`' entry, and rbox's
/// record of a `-p`. (rbox's store wrote these with snake_case names and
/// `proto` before: those are read too.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    #[serde(rename = "hostPort", alias = "host_port")]
    pub host_port: u16,
    #[serde(rename = "containerPort", alias = "container_port")]
    pub container_port: u16,
    #[serde(default, alias = "proto")]
    pub protocol: Protocol,
    /// The host address it is published on; none (or "") for all.
    #[serde(
        rename = "hostIP",
        alias = "host_ip",
        default,
        with = "optional_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub host_ip: Option<IpAddr>,
}

impl std::fmt::Display for PortMapping {
    /// Docker's (`ps`, `port`): `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self
            .host_ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.as_str()
        )
    }
}

/// A port mapping's protocol, read in any case (`TCP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// Its IPPROTO_* number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(format!("{s:?} is not tcp, udp or sctp")),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An address, none when absent, null or "" (containerd sends the fields
/// it does not set as "").
mod optional_ip {
    use super::*;

    pub fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        match Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address"))),
        }
    }
}

fn not_a_cidr<E: serde::de::Error>(s: &str) -> E {
    E::custom(format!("{s:?} is not a CIDR (like 10.88.0.0/16)"))
}

/// A subnet (`10.88.0.0/16`).
mod cidr {
    use super::*;

    pub fn serialize<S: Serializer>(net: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| not_a_cidr(&s))
    }
}

/// A subnet, none when absent, null or "".
mod optional_cidr {
    use super::*;

    pub fn serialize<S: Serializer>(net: &Option<IpNet>, s: S) -> Result<S::Ok, S::Error> {
        match net {
            Some(net) => s.collect_str(net),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpNet>, D::Error> {
        match Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| not_a_cidr(&s)),
        }
    }
}

/// host-local's address range: `rangeStart..=rangeEnd` of `subnet` (all
/// of it by default), `gateway` left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    #[serde(with = "cidr")]
    pub subnet: IpNet,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl IpRange {
    /// All of `subnet`, with this gateway.
    pub fn of(subnet: IpNet, gateway: Option<IpAddr>) -> IpRange {
        IpRange {
            subnet,
            range_start: None,
            range_end: None,
            gateway,
        }
    }
}

/// A route host-local hands out; without `gw`, through the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteConf {
    #[serde(with = "cidr")]
    pub dst: IpNet,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// The `ipam` section as host-local reads it (also its older one-range
/// form: `subnet`, `rangeStart`, `rangeEnd`, `gateway` in the section).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipam {
    /// The IPAM plugin (`host-local`).
    #[serde(rename = "type", default)]
    pub plugin: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Vec<IpRange>>,
    #[serde(
        default,
        with = "optional_cidr",
        skip_serializing_if = "Option::is_none"
    )]
    pub subnet: Option<IpNet>,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    #[serde(default, with = "optional_ip", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConf>,
    /// Where the leases are kept (host-local's default:
    /// /var/lib/cni/networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<PathBuf>,
}

impl Ipam {
    /// The older one-range form as a range, if `subnet` is set.
    pub fn single_range(&self) -> Option<IpRange> {
        Some(IpRange {
            subnet: self.subnet?,
            range_start: self.range_start,
            range_end: self.range_end,
            gateway: self.gateway,
        })
    }
}

/// The `bridge` plugin's fields (the reference plugin's, which ours
/// takes too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeConf {
    /// The Linux bridge (default `cni0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_gateway: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_default_gateway: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_address: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ip_masq: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub hairpin_mode: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub promisc_mode: bool,
    /// The port's VLAN (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlan_trunk: Vec<VlanTrunk>,
    /// Keep VLAN 1 on the port (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_default_vlan: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub macspoofchk: bool,
}

/// A `vlanTrunk` entry: one VLAN (`id`) or a span (`minID`..=`maxID`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VlanTrunk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(rename = "minID", default, skip_serializing_if = "Option::is_none")]
    pub min_id: Option<u16>,
    #[serde(rename = "maxID", default, skip_serializing_if = "Option::is_none")]
    pub max_id: Option<u16>,
}

/// The `portmap` plugin's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortmapConf {
    /// Masquerade what reaches a mapped port from the host and the
    /// container's own network (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat: Option<bool>,
    /// The packet-mark bit that asks for masquerading (default 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_masq_bit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_set_mark_chain: Option<String>,
    /// iptables match arguments the DNAT rules are behind.
    #[serde(
        rename = "conditionsV4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub conditions_v4: Option<Vec<String>>,
    #[serde(
        rename = "conditionsV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub conditions_v6: Option<Vec<String>>,
}

/// An entry of `cni.dev/valid-attachments` (GC): what is still in use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID", default)]
    pub container_id: String,
    #[serde(default)]
    pub ifname: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_mappings_read_containerds_and_rboxs_old_records() {
        let m: PortMapping = crate::decode(
            &json!({"hostPort": 8080, "containerPort": 80, "protocol": "UDP", "hostIP": ""}),
        )
        .unwrap();
        assert_eq!(
            m,
            PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Udp,
                host_ip: None
            }
        );
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "udp"})
        );
        // rbox's store before the shared type
        let old: PortMapping = crate::decode(&json!({"host_ip": "127.0.0.1", "host_port": 1,
            "container_port": 2, "proto": "tcp"}))
        .unwrap();
        assert_eq!(old.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(old.to_string(), "127.0.0.1:1->2/tcp");
        let e = crate::decode::<PortMapping>(
            &json!({"hostPort": 1, "containerPort": 2, "protocol": "icmp"}),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("protocol: \"icmp\""), "{e}");
        let e = crate::decode::<PortMapping>(&json!({"hostPort": 70000, "containerPort": 2}))
            .unwrap_err();
        assert_eq!(e.path, "hostPort");
    }

    #[test]
    fn a_list_gives_each_plugin_its_configuration() {
        let list = NetConfList {
            cni_version: "1.0.0".into(),
            name: "n".into(),
            plugins: vec![
                PluginConf::new(
                    "bridge",
                    &BridgeConf {
                        bridge: Some("br0".into()),
                        is_gateway: true,
                        ..BridgeConf::default()
                    },
                )
                .with_ipam(&Ipam {
                    plugin: "host-local".into(),
                    ranges: vec![vec![IpRange::of("10.89.1.0/24".parse().unwrap(), None)]],
                    ..Ipam::default()
                }),
                PluginConf::new("portmap", &PortmapConf::default()).with_capability("portMappings"),
            ],
        };
        let runtime = RuntimeConfig {
            port_mappings: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: None,
            }],
            mac: Some("not offered".into()),
            ..RuntimeConfig::default()
        };
        let prev = json!({"cniVersion": "1.0.0"});
        let br = serde_json::to_value(list.plugin_conf(0, &runtime, None).unwrap()).unwrap();
        assert_eq!(
            br,
            json!({"cniVersion": "1.0.0", "name": "n", "type": "bridge", "bridge": "br0",
                   "isGateway": true,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.89.1.0/24"}]]}})
        );
        let pm = serde_json::to_value(list.plugin_conf(1, &runtime, Some(&prev)).unwrap()).unwrap();
        assert_eq!(pm["capabilities"], json!({"portMappings": true}));
        assert_eq!(
            pm["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        );
        assert_eq!(pm["prevResult"], prev);
        assert!(list.plugin_conf(2, &runtime, None).is_none());
        // and it reads back
        let back: NetConfList = crate::decode(&serde_json::to_value(&list).unwrap()).unwrap();
        assert_eq!(back, list);
        assert!(list.has("portmap") && !list.has("firewall"));
    }

    #[test]
    fn addresses_that_do_not_parse_are_named() {
        let e = crate::decode::<Ipam>(&json!({"type": "host-local",
            "ranges": [[{"subnet": "10.89.43.0/33"}]]}))
        .unwrap_err();
        assert_eq!(e.path, "ranges[0][0].subnet");
        assert!(e.msg.contains("10.89.43.0/33"), "{e}");
        let e = crate::decode::<Ipam>(&json!({"type": "host-local",
            "ranges": [[{"subnet": "10.89.43.0/24", "rangeStart": "x"}]]}))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ranges[0][0].rangeStart: \"x\" is not an IP address"
        );
        let r: IpRange =
            crate::decode(&json!({"subnet": "10.1.0.0/16", "rangeStart": "", "gateway": ""}))
                .unwrap();
        assert_eq!(r, IpRange::of("10.1.0.0/16".parse().unwrap(), None));
    }
}
