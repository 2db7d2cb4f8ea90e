//! Keys as the reference plugins match them. They decode their
//! configuration with Go's encoding/json, which takes a JSON key that
//! matches a field's name exactly and otherwise one that matches it
//! case-insensitively; runtimes rely on it: containerd marshals
//! `runtimeConfig.portMappings` from a Go struct without JSON tags, so the
//! keys arrive as `HostPort`, `ContainerPort`, `Protocol`, `HostIP`.
//!
//! [`normalize`] gives every key of the configuration that matches a known
//! field case-insensitively (and not exactly) that field's spelling, once,
//! before the configuration is read into the types of [`crate::conf`]; a
//! key spelled exactly wins over one that only matches case-insensitively.
//! Unknown keys are left as they are. The table below names every field of
//! those types (a test checks it).

use serde_json::{Map, Value};

/// A field and the shape of its value.
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
}

/// The shape of a value: anything (a leaf, or a map with free keys), an
/// object of known fields, or a list of one shape.
pub enum Shape {
    Any,
    Object(&'static [Field]),
    List(&'static Shape),
}

const fn leaf(name: &'static str) -> Field {
    Field {
        name,
        shape: Shape::Any,
    }
}

const fn object(name: &'static str, fields: &'static [Field]) -> Field {
    Field {
        name,
        shape: Shape::Object(fields),
    }
}

const fn list(name: &'static str, shape: &'static Shape) -> Field {
    Field {
        name,
        shape: Shape::List(shape),
    }
}

/// host-local's range (also `runtimeConfig.ipRanges`).
const RANGE: &[Field] = &[
    leaf("subnet"),
    leaf("rangeStart"),
    leaf("rangeEnd"),
    leaf("gateway"),
];
const RANGE_SET: Shape = Shape::List(&Shape::Object(RANGE));
const ROUTE: &[Field] = &[
    leaf("dst"),
    leaf("gw"),
    leaf("mtu"),
    leaf("advmss"),
    leaf("priority"),
    leaf("table"),
    leaf("scope"),
];
const DNS: &[Field] = &[
    leaf("nameservers"),
    leaf("domain"),
    leaf("search"),
    leaf("options"),
];
const IPAM: &[Field] = &[
    leaf("type"),
    list("ranges", &RANGE_SET),
    leaf("subnet"),
    leaf("rangeStart"),
    leaf("rangeEnd"),
    leaf("gateway"),
    list("routes", &Shape::Object(ROUTE)),
    leaf("dataDir"),
    leaf("resolvConf"),
];
/// A `runtimeConfig.portMappings` entry (containerd: `HostPort`, ...).
const PORT_MAPPING: &[Field] = &[
    leaf("hostPort"),
    leaf("containerPort"),
    leaf("protocol"),
    leaf("hostIP"),
];
const BANDWIDTH: &[Field] = &[
    leaf("ingressRate"),
    leaf("ingressBurst"),
    leaf("egressRate"),
    leaf("egressBurst"),
];
const RUNTIME_CONFIG: &[Field] = &[
    list("portMappings", &Shape::Object(PORT_MAPPING)),
    leaf("ips"),
    leaf("mac"),
    object("bandwidth", BANDWIDTH),
    list("ipRanges", &RANGE_SET),
];
const VLAN_TRUNK: &[Field] = &[leaf("id"), leaf("minID"), leaf("maxID")];
const INTERFACE: &[Field] = &[leaf("name"), leaf("mac"), leaf("mtu"), leaf("sandbox")];
const IP_CONFIG: &[Field] = &[
    leaf("interface"),
    leaf("address"),
    leaf("gateway"),
    leaf("version"),
];
const RESULT: &[Field] = &[
    leaf("cniVersion"),
    list("interfaces", &Shape::Object(INTERFACE)),
    list("ips", &Shape::Object(IP_CONFIG)),
    list("routes", &Shape::Object(ROUTE)),
    object("dns", DNS),
];
const ATTACHMENT: &[Field] = &[leaf("containerID"), leaf("ifname")];
const ARGS_CNI: &[Field] = &[leaf("ips"), leaf("mac")];
const ARGS: &[Field] = &[object("cni", ARGS_CNI)];

/// A network configuration as the plugins read it: the common fields and
/// each plugin's own (bridge, portmap).
pub const NET_CONF: Shape = Shape::Object(&[
    leaf("cniVersion"),
    leaf("name"),
    leaf("type"),
    leaf("capabilities"),
    object("ipam", IPAM),
    object("dns", DNS),
    object("runtimeConfig", RUNTIME_CONFIG),
    object("prevResult", RESULT),
    object("args", ARGS),
    list("cni.dev/valid-attachments", &Shape::Object(ATTACHMENT)),
    // bridge
    leaf("bridge"),
    leaf("isGateway"),
    leaf("isDefaultGateway"),
    leaf("forceAddress"),
    leaf("ipMasq"),
    leaf("mtu"),
    leaf("hairpinMode"),
    leaf("promiscMode"),
    leaf("vlan"),
    list("vlanTrunk", &Shape::Object(VLAN_TRUNK)),
    leaf("preserveDefaultVlan"),
    leaf("macspoofchk"),
    // portmap
    leaf("snat"),
    leaf("markMasqBit"),
    leaf("externalSetMarkChain"),
    leaf("conditionsV4"),
    leaf("conditionsV6"),
]);

/// Give the keys of `v` that match a field of `shape` case-insensitively
/// that field's spelling (see the module documentation).
pub fn normalize(v: &mut Value, shape: &Shape) {
    match (shape, v) {
        (Shape::Object(fields), Value::Object(map)) => normalize_object(map, fields),
        (Shape::List(item), Value::Array(items)) => {
            for i in items {
                normalize(i, item);
            }
        }
        _ => {}
    }
}

fn normalize_object(map: &mut Map<String, Value>, fields: &[Field]) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if fields.iter().any(|f| f.name == key) {
            continue;
        }
        let Some(f) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(&key)) else {
            continue;
        };
        // the exact spelling wins
        if map.contains_key(f.name) {
            continue;
        }
        if let Some(value) = map.remove(&key) {
            map.insert(f.name.to_string(), value);
        }
    }
    for f in fields {
        if let Some(value) = map.get_mut(f.name) {
            normalize(value, &f.shape);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containerds_capitalised_port_mappings_get_the_field_names() {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "portmap",
            "runtimeConfig": {"portMappings": [
                {"HostPort": 12000, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]}});
        normalize(&mut conf, &NET_CONF);
        assert_eq!(
            conf["runtimeConfig"]["portMappings"][0],
            json!({"hostPort": 12000, "containerPort": 80, "protocol": "tcp", "hostIP": ""})
        );
    }

    /// Every key the typed configuration writes is in the table: a
    /// configuration with all of them upper-cased reads back the same.
    #[test]
    fn the_table_knows_every_field_of_the_types() {
        use crate::conf::*;
        let ip = |s: &str| Some(s.parse().unwrap());
        let range = IpRange {
            subnet: "10.89.1.0/24".parse().unwrap(),
            range_start: ip("10.89.1.10"),
            range_end: ip("10.89.1.20"),
            gateway: ip("10.89.1.1"),
        };
        let bridge = BridgeConf {
            bridge: Some("br0".into()),
            is_gateway: true,
            is_default_gateway: true,
            force_address: true,
            ip_masq: true,
            mtu: Some(1400),
            hairpin_mode: true,
            promisc_mode: true,
            vlan: Some(10),
            vlan_trunk: vec![VlanTrunk {
                id: Some(1),
                min_id: Some(2),
                max_id: Some(3),
            }],
            preserve_default_vlan: Some(false),
            macspoofchk: true,
        };
        let ipam = Ipam {
            plugin: "host-local".into(),
            ranges: vec![vec![range.clone()]],
            subnet: Some(range.subnet),
            range_start: range.range_start,
            range_end: range.range_end,
            gateway: range.gateway,
            routes: vec![RouteConf {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: ip("10.89.1.1"),
            }],
            data_dir: Some("/d".into()),
            resolv_conf: Some("/r".into()),
        };
        let portmap = PortmapConf {
            snat: Some(true),
            mark_masq_bit: Some(13),
            external_set_mark_chain: Some("X".into()),
            conditions_v4: Some(vec!["-s".into(), "10.0.0.0/8".into()]),
            conditions_v6: Some(vec![]),
        };
        let runtime = RuntimeConfig {
            port_mappings: vec![PortMapping {
                host_port: 1,
                container_port: 2,
                protocol: Protocol::Udp,
                host_ip: ip("127.0.0.1"),
            }],
            ips: vec!["10.89.1.5".into()],
            mac: Some("aa:bb:cc:dd:ee:ff".into()),
            ip_ranges: vec![vec![range]],
        };
        let mut conf =
            serde_json::to_value(PluginConf::new("bridge", &bridge).with_ipam(&ipam)).unwrap();
        for (k, v) in serde_json::to_value(PluginConf::new("portmap", &portmap))
            .unwrap()
            .as_object()
            .unwrap()
        {
            conf[k] = v.clone();
        }
        conf["runtimeConfig"] = serde_json::to_value(&runtime).unwrap();
        conf["cni.dev/valid-attachments"] = serde_json::to_value([Attachment::default()]).unwrap();
        fn shout(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.to_ascii_uppercase(), shout(v)))
                        .collect(),
                ),
                Value::Array(a) => Value::Array(a.iter().map(shout).collect()),
                v => v.clone(),
            }
        }
        let mut loud = shout(&conf);
        normalize(&mut loud, &NET_CONF);
        assert_eq!(loud, conf);
    }

    #[test]
    fn any_case_matches_at_every_level_and_the_exact_spelling_wins() {
        let mut conf = json!({"CNIVERSION": "1.0.0", "Name": "n", "IsGateway": true,
            "IPAM": {"Type": "host-local", "Ranges": [[{"Subnet": "10.89.1.0/24",
                     "RANGESTART": "10.89.1.10"}]], "DataDir": "/x"},
            "runtimeConfig": {"IPs": ["10.89.1.20"], "IpRanges": [[{"Subnet": "10.89.2.0/24"}]]},
            "snat": false, "SNAT": true, "unknownKey": 1});
        normalize(&mut conf, &NET_CONF);
        assert_eq!(conf["cniVersion"], "1.0.0");
        assert_eq!(conf["name"], "n");
        assert_eq!(conf["isGateway"], true);
        assert_eq!(conf["ipam"]["type"], "host-local");
        assert_eq!(conf["ipam"]["dataDir"], "/x");
        assert_eq!(conf["ipam"]["ranges"][0][0]["subnet"], "10.89.1.0/24");
        assert_eq!(conf["ipam"]["ranges"][0][0]["rangeStart"], "10.89.1.10");
        assert_eq!(conf["runtimeConfig"]["ips"][0], "10.89.1.20");
        assert_eq!(
            conf["runtimeConfig"]["ipRanges"][0][0]["subnet"],
            "10.89.2.0/24"
        );
        assert_eq!(conf["snat"], false, "the exact key wins");
        assert_eq!(conf["unknownKey"], 1);
    }
}
