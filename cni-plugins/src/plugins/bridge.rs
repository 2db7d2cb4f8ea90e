//! CNI `bridge`: a Linux bridge on the host, a veth pair per container
//! (one end in the container's namespace as CNI_IFNAME, the other on the
//! bridge), addresses and routes from the IPAM plugin. Drop-in for the
//! reference plugin's common fields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use crate::error::{CniError, Result};
use crate::nl::{self, nl_err};
use crate::skel::{self, Args, Conf, Plugin};
use crate::{ipam, netns};
use cni_types::{BridgeConf, CniResult, Interface, Route};
use ipnet::IpNet;
use netlink_packet_route::link::{BridgeVlanInfoFlags, InfoData, InfoKind, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgeVlan, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVlan,
    RouteMessageBuilder,
};
use serde_json::Value;

/// The plugin, for [`crate::skel::run`].
pub struct Bridge;

/// CNI_ARGS key (rbox's): the runtime removes the network namespace (before
/// or right after this DEL), so the container's veth is left to go with it.
const NETNS_REMOVED: &str = "RBOX_NETNS_REMOVED";

/// The bridge fields, checked (those of the reference bridge plugin that
/// these plugins honour).
struct Settings {
    bridge: String,
    is_gateway: bool,
    is_default_gateway: bool,
    force_address: bool,
    mtu: Option<u32>,
    hairpin: bool,
    promisc: bool,
    ip_masq: bool,
    network: String,
    /// The port's VLAN (PVID, untagged); the bridge filters VLANs then.
    vlan: Option<u16>,
    /// Tagged VLANs on the port (`vlanTrunk`: `id` or `minID`..`maxID`).
    trunk: Vec<u16>,
    preserve_default_vlan: bool,
    macspoofchk: bool,
}

fn vlan_id(id: Option<u16>, field: &str) -> Result<u16> {
    match id {
        Some(id @ 1..=4094) => Ok(id),
        Some(id) => Err(CniError::config(format!(
            "bridge: {field} {id} is not a VLAN id (1-4094)"
        ))),
        None => Err(CniError::config(format!(
            "bridge: {field} is missing (a VLAN id, 1-4094)"
        ))),
    }
}

fn trunk(c: &BridgeConf) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for (i, t) in c.vlan_trunk.iter().enumerate() {
        let field = |k: &str| format!("vlanTrunk[{i}].{k}");
        if t.id.is_some() {
            out.push(vlan_id(t.id, &field("id"))?);
        } else {
            let min = vlan_id(t.min_id, &field("minID"))?;
            let max = vlan_id(t.max_id, &field("maxID"))?;
            if min > max {
                return Err(CniError::config(format!(
                    "bridge: {} {min} is above maxID {max}",
                    field("minID")
                )));
            }
            out.extend(min..=max);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Settings {
    fn of(conf: &Conf) -> Result<Settings> {
        let c: BridgeConf = conf.fields("bridge")?;
        let bridge = c.bridge.clone().unwrap_or_else(|| "cni0".into());
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains('/') || bridge.contains(' ') {
            return Err(CniError::config(format!(
                "bridge: {bridge:?} is not a valid interface name"
            )));
        }
        let mtu = match c.mtu {
            None => None,
            Some(m @ 68..=65535) => Some(m),
            Some(m) => {
                return Err(CniError::config(format!(
                    "bridge: mtu {m} is not in 68..65535"
                )))
            }
        };
        Ok(Settings {
            bridge,
            is_gateway: c.is_gateway || c.is_default_gateway,
            is_default_gateway: c.is_default_gateway,
            force_address: c.force_address,
            mtu,
            hairpin: c.hairpin_mode,
            promisc: c.promisc_mode,
            ip_masq: c.ip_masq,
            network: conf.name.clone(),
            vlan: match c.vlan {
                None | Some(0) => None,
                v => Some(vlan_id(v, "vlan")?),
            },
            trunk: trunk(&c)?,
            preserve_default_vlan: c.preserve_default_vlan.unwrap_or(true),
            macspoofchk: c.macspoofchk,
        })
    }
}

/// `N` bytes from /dev/urandom (zeros if it cannot be read).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b
}

fn random_suffix() -> String {
    random_bytes::<4>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A random locally administered unicast MAC.
fn random_mac() -> Vec<u8> {
    let mut b = random_bytes::<6>();
    b[0] = (b[0] & 0xfe) | 0x02;
    b.to_vec()
}

/// `NET_ADDR_SET` in /sys/class/net/DEV/addr_assign_type: the MAC was set,
/// not taken from the bridge's ports.
const NET_ADDR_SET: &str = "3";

/// A bridge made before (by an older plugin, or by hand) whose MAC follows
/// its ports gets its current MAC set, so that it stays; one without a
/// usable MAC (all zeros: a bridge whose last port went) gets a new one.
async fn pin_mac(h: &Handle, l: &nl::Link) -> Result<()> {
    let path = format!("/sys/class/net/{}/addr_assign_type", l.name);
    let set = std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == NET_ADDR_SET);
    let current = parse_mac(&l.mac).filter(|m| usable_mac(m));
    let mac = match (set, current) {
        (true, Some(_)) => return Ok(()),
        (false, Some(m)) => m,
        (_, None) => random_mac(),
    };
    h.link()
        .change(LinkUnspec::new_with_index(l.index).address(mac).build())
        .execute()
        .await
        .map_err(nl_err(format!("set the MAC of bridge {}", l.name)))
}

/// A unicast MAC other than all zeros (the kernel's `is_valid_ether_addr`).
fn usable_mac(m: &[u8]) -> bool {
    m.len() == 6 && m[0] & 1 == 0 && m.iter().any(|&b| b != 0)
}

fn parse_mac(s: &str) -> Option<Vec<u8>> {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    (b.len() == 6).then_some(b)
}

async fn ensure_bridge(h: &Handle, c: &Settings) -> Result<nl::Link> {
    if let Some(l) = nl::get_link(h, &c.bridge).await? {
        if l.kind.as_deref() != Some("bridge") {
            return Err(CniError::config(format!(
                "bridge: {:?} exists but is a {} device, not a bridge",
                c.bridge,
                l.kind.as_deref().unwrap_or("plain")
            )));
        }
        if !l.up {
            nl::set_up(h, &c.bridge, true).await?;
        }
        pin_mac(h, &l).await?;
        return Ok(l);
    }
    // a MAC of its own, set: the kernel then never gives the bridge the
    // lowest MAC of its ports, which changed (and left every container's
    // ARP entry for the gateway stale for seconds) when that port went
    let mut b = LinkBridge::new(&c.bridge).up().address(random_mac());
    if let Some(m) = c.mtu {
        b = b.mtu(m);
    }
    if c.promisc {
        b = b.promiscuous(true);
    }
    match h.link().add(b.build()).execute().await {
        Ok(()) => {}
        // another ADD made it meanwhile
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
        Err(e) => return Err(nl_err(format!("create bridge {}", c.bridge))(e)),
    }
    nl::get_link(h, &c.bridge)
        .await?
        .ok_or_else(|| CniError::internal(format!("bridge {} vanished", c.bridge)))
}

/// The bridge filters VLANs when a port has one (also a bridge that
/// another network made without).
async fn ensure_vlan_filtering(h: &Handle, c: &Settings) -> Result<()> {
    if c.vlan.is_none() && c.trunk.is_empty() {
        return Ok(());
    }
    let path = format!("/sys/class/net/{}/bridge/vlan_filtering", c.bridge);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    match h
        .link()
        .change(LinkBridge::new(&c.bridge).vlan_filtering(true).build())
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EOPNOTSUPP => {
            Err(CniError::new(
                crate::error::code::UNSUPPORTED_FIELD,
                format!(
                    "bridge: vlan/vlanTrunk need VLAN filtering on {}, which this kernel \
                     lacks (CONFIG_BRIDGE_VLAN_FILTERING)",
                    c.bridge
                ),
            ))
        }
        Err(e) => Err(nl_err(format!("turn on VLAN filtering on {}", c.bridge))(e)),
    }
}

/// Where the gateway address lives: the bridge, or with `vlan` a VLAN
/// device `<bridge>.<vlan>` on it (the bridge itself a tagged member).
async fn gateway_link(h: &Handle, c: &Settings, bridge: &nl::Link) -> Result<nl::Link> {
    let Some(vid) = c.vlan else {
        return Ok(bridge.clone());
    };
    let suffix = format!(".{vid}");
    let name: String = c.bridge.chars().take(15 - suffix.len()).collect::<String>() + &suffix;
    if let Some(l) = nl::get_link(h, &name).await? {
        return Ok(l);
    }
    h.link()
        .set(
            LinkBridgeVlan::new(bridge.index)
                .vlan(vid, BridgeVlanInfoFlags::empty())
                .bridge_self()
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("add VLAN {vid} to bridge {}", c.bridge)))?;
    match h
        .link()
        .add(LinkVlan::new(&name, bridge.index, vid).up().build())
        .execute()
        .await
    {
        Ok(()) => {}
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
        Err(e) => return Err(nl_err(format!("create VLAN device {name}"))(e)),
    }
    nl::get_link(h, &name)
        .await?
        .ok_or_else(|| CniError::internal(format!("VLAN device {name} vanished")))
}

/// The host end's VLANs: `vlan` as PVID untagged, the trunk tagged,
/// VLAN 1 dropped unless preserveDefaultVlan.
async fn port_vlans(h: &Handle, c: &Settings, port: u32) -> Result<()> {
    let mut add = LinkBridgeVlan::new(port);
    if let Some(vid) = c.vlan {
        add = add.vlan(
            vid,
            BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged,
        );
    }
    for vid in &c.trunk {
        add = add.vlan(*vid, BridgeVlanInfoFlags::empty());
    }
    h.link()
        .set(add.build())
        .execute()
        .await
        .map_err(nl_err("set the VLANs of the host veth"))?;
    if !c.preserve_default_vlan && c.vlan != Some(1) && !c.trunk.contains(&1) {
        h.link()
            .del_with_message(
                LinkBridgeVlan::new(port)
                    .vlan(1, BridgeVlanInfoFlags::empty())
                    .build(),
            )
            .execute()
            .await
            .map_err(nl_err("remove VLAN 1 from the host veth"))?;
    }
    Ok(())
}

async fn add_route(h: &Handle, index: u32, dst: IpNet, gw: Option<IpAddr>) -> Result<()> {
    let msg = match (dst, gw) {
        (IpNet::V4(d), gw) => {
            let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(d.addr(), d.prefix_len())
                .output_interface(index);
            if let Some(IpAddr::V4(g)) = gw {
                b = b.gateway(g);
            }
            b.build()
        }
        (IpNet::V6(d), gw) => {
            let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(d.addr(), d.prefix_len())
                .output_interface(index);
            if let Some(IpAddr::V6(g)) = gw {
                b = b.gateway(g);
            }
            b.build()
        }
    };
    match h.route().add(msg).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
        Err(e) => Err(nl_err(format!("add route {dst}"))(e)),
    }
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| CniError::io(format!("write {path}"), e))
}

/// Why the veth pair was not made.
enum VethError {
    /// CNI_IFNAME exists in the namespace already (a duplicate ADD?).
    Exists(CniError),
    Other(CniError),
}

impl VethError {
    fn into_inner(self) -> CniError {
        match self {
            VethError::Exists(e) | VethError::Other(e) => e,
        }
    }
}

/// The bridge (made if missing) and the veth pair, its container end made
/// directly in the container's namespace under its final name (no move
/// between namespaces, the slowest netlink operation here, and no
/// rename); returns the bridge and the host end's name.
fn create_veth(
    c: &Settings,
    args: &Args,
    ns: &std::fs::File,
) -> std::result::Result<(nl::Link, String), VethError> {
    let host_name = format!("veth{}", random_suffix());
    let peer_name = args.ifname.clone();
    let made = nl::with_handle(|h| async move {
        let bridge = ensure_bridge(&h, c).await?;
        ensure_vlan_filtering(&h, c).await?;
        let mut peer = LinkUnspec::new_with_name(&peer_name).setns_by_fd(ns.as_raw_fd());
        let mut veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.clone());
        if let Some(m) = c.mtu {
            peer = peer.mtu(m);
            veth = veth.mtu(m);
        }
        let veth = veth
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        match h.link().add(veth).execute().await {
            Ok(()) => Ok(Ok((bridge, host_name))),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                Ok(Err(CniError::internal(format!(
                    "interface {peer_name} already exists in {}",
                    args.netns
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ))))
            }
            Err(e) => Err(nl_err(format!("create veth pair {host_name}/{peer_name}"))(
                e,
            )),
        }
    });
    match made {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(VethError::Exists(e)),
        Err(e) => Err(VethError::Other(e)),
    }
}

/// Delete host link `name` (and with a veth its peer), if it exists.
fn delete_link(name: &str) {
    let name = name.to_string();
    let _ = nl::with_handle(|h| async move {
        if let Some(l) = nl::get_link(&h, &name).await? {
            let _ = h.link().del(l.index).execute().await;
        }
        Ok(())
    });
}

/// The host end on the bridge (VLANs, hairpin), the gateway addresses of
/// `result` and forwarding; returns (bridge, host veth).
fn host_side(
    c: &Settings,
    bridge: nl::Link,
    host_name: &str,
    result: &CniResult,
) -> Result<(nl::Link, nl::Link)> {
    nl::with_handle(|h| async move {
        let host = nl::get_link(&h, host_name)
            .await?
            .ok_or_else(|| CniError::internal("host veth vanished"))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(host.index)
                    .controller(bridge.index)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(nl_err(format!("attach {host_name} to {}", c.bridge)))?;
        if c.vlan.is_some() || !c.trunk.is_empty() {
            port_vlans(&h, c, host.index).await?;
        }
        if c.hairpin {
            sysctl(
                &format!("/sys/class/net/{host_name}/brport/hairpin_mode"),
                "1",
            )?;
        }
        if c.is_gateway {
            let gw_link = gateway_link(&h, c, &bridge).await?;
            for ip in &result.ips {
                let Some(gw) = ip.gateway else { continue };
                let want = IpNet::new(gw, ip.address.prefix_len()).expect("prefix of a valid net");
                let have = nl::addresses(&h, gw_link.index).await?;
                if have.contains(&want) {
                    continue;
                }
                if let Some(other) = have
                    .iter()
                    .find(|a| a.addr().is_ipv4() == gw.is_ipv4() && a.contains(&gw))
                {
                    if !c.force_address {
                        return Err(CniError::config(format!(
                            "{} already has {other}, not {want} (set forceAddress to replace it)",
                            gw_link.name
                        )));
                    }
                }
                match h
                    .address()
                    .add(gw_link.index, gw, ip.address.prefix_len())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                    Err(e) => return Err(nl_err(format!("add {want} to {}", gw_link.name))(e)),
                }
                if gw.is_ipv4() {
                    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
                } else {
                    sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
                }
            }
        }
        let bridge = nl::get_link(&h, &c.bridge).await?.unwrap_or(bridge);
        Ok((bridge, host))
    })
}

/// DEL's CNI_IFNAME in the container's namespace, unless the namespace is
/// gone or going.
fn delete_container_veth(args: &Args) -> Result<()> {
    let Some(ns) = args.netns.as_deref().filter(|p| p.exists()) else {
        return Ok(());
    };
    // the runtime is removing the namespace: the kernel destroys the
    // veth pair with it, without keeping the runtime waiting for the
    // RCU grace periods a deletion here takes
    if args
        .args
        .get(NETNS_REMOVED)
        .is_some_and(|v| v == "1" || v == "true")
    {
        return Ok(());
    }
    let ifname = args.ifname.clone();
    netns::run_in(ns, || {
        nl::with_handle(|h| async move {
            if let Some(l) = nl::get_link(&h, &ifname).await? {
                let deleted = h.link().del(l.index).execute().await;
                // gone meanwhile (another DEL, or an interrupted ADD's undo)
                if deleted.is_err() && nl::get_link(&h, &ifname).await?.is_some() {
                    deleted.map_err(nl_err(format!("delete {ifname}")))?;
                }
            }
            Ok(())
        })
    })
}

/// Whether CNI_IFNAME in the namespace carries every address of `result`:
/// the live attachment a duplicate ADD was refused for, whose lease stays.
fn attached_with(args: &Args, result: &CniResult) -> bool {
    let Some(ns) = args.netns.as_deref() else {
        return false;
    };
    let ifname = args.ifname.clone();
    let want: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
    netns::run_in(ns, || {
        nl::with_handle(|h| async move {
            let Some(l) = nl::get_link(&h, &ifname).await? else {
                return Ok(false);
            };
            let have = nl::addresses(&h, l.index).await?;
            Ok(!want.is_empty() && want.iter().all(|w| have.contains(w)))
        })
    })
    .unwrap_or(false)
}

/// Inside the container: addresses, routes, up; returns its MAC.
fn container_side(c: &Settings, args: &Args, result: &CniResult) -> Result<String> {
    let ns = args.netns.as_deref().expect("checked");
    let ifname = args.ifname.clone();
    netns::run_in(ns, || {
        nl::with_handle(|h| async move {
            let peer = nl::get_link(&h, &ifname).await?.ok_or_else(|| {
                CniError::internal(format!("veth end {ifname} not in the namespace"))
            })?;
            for ip in &result.ips {
                h.address()
                    .add(peer.index, ip.address.addr(), ip.address.prefix_len())
                    .execute()
                    .await
                    .map_err(nl_err(format!("add {} to {ifname}", ip.address)))?;
            }
            nl::set_up(&h, &ifname, true).await?;
            let mut routes: Vec<Route> = result.routes.clone();
            if c.is_default_gateway {
                for ip in &result.ips {
                    if let Some(gw) = ip.gateway {
                        let dst: IpNet = if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" }
                            .parse()
                            .expect("literal");
                        if !routes.iter().any(|r| r.dst == dst) {
                            routes.push(Route { dst, gw: Some(gw) });
                        }
                    }
                }
            }
            for r in &routes {
                // a route without gw goes through the gateway of its family
                let gw = r.gw.or_else(|| {
                    result
                        .ips
                        .iter()
                        .find(|ip| ip.address.addr().is_ipv4() == r.dst.addr().is_ipv4())
                        .and_then(|ip| ip.gateway)
                });
                add_route(&h, peer.index, r.dst, gw).await?;
            }
            let link = nl::get_link(&h, &ifname).await?.unwrap_or_default();
            Ok(link.mac)
        })
    })
}

impl Plugin for Bridge {
    fn add(&self, args: &Args, conf: &Conf) -> Result<Value> {
        let c = Settings::of(conf)?;
        let ns_path = args.netns.as_deref().expect("ADD has a netns");
        let ns = std::fs::File::open(ns_path).map_err(|e| {
            CniError::new(
                crate::error::code::INVALID_ENV,
                format!("failed to open netns {:?}", ns_path.display().to_string()),
            )
            .with_details(e)
        })?;
        // a namespace file (nsfs), checked before any lease is taken; an
        // existing CNI_IFNAME in it shows up when the veth is created
        let is_ns = nix::sys::statfs::fstatfs(&ns)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
        if !is_ns {
            return Err(CniError::new(
                crate::error::code::INVALID_ENV,
                format!(
                    "{:?} is not a network namespace",
                    ns_path.display().to_string()
                ),
            ));
        }
        // the IPAM plugin runs while the veth pair is made; the pair comes
        // first, as with the reference plugin: a duplicate ADD (the
        // interface exists) must not release the lease it got back
        let pending = ipam::start(args, conf, "ADD")?;
        let veth = create_veth(&c, args, &ns);
        let ipam_result = pending.wait();
        let (bridge, host_name, mut result) = match (veth, ipam_result) {
            (Ok((bridge, host_name)), Ok(r)) => {
                (bridge, host_name, r.expect("ADD returns a result"))
            }
            (Ok((_, host_name)), Err(e)) => {
                delete_link(&host_name);
                return Err(e);
            }
            (Err(VethError::Exists(e)), Ok(Some(r))) => {
                if !attached_with(args, &r) {
                    let _ = ipam::exec(args, conf, "DEL");
                }
                return Err(e);
            }
            (Err(e), Ok(_)) => {
                let _ = ipam::exec(args, conf, "DEL");
                return Err(e.into_inner());
            }
            (Err(e), Err(_)) => return Err(e.into_inner()),
        };
        let made = host_side(&c, bridge, &host_name, &result).and_then(|(bridge, host)| {
            container_side(&c, args, &result).map(|mac| (bridge, host, mac))
        });
        if made.is_err() {
            // the host end takes the container end with it
            delete_link(&host_name);
        }
        let made = made.and_then(|(bridge, host, mac)| {
            let tag = crate::nft::tag(&c.network, &args.container_id);
            let mut rules = Ok(());
            if c.ip_masq {
                let addrs: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
                rules = crate::nft::add_masquerade(&addrs, &tag);
            }
            if c.macspoofchk && rules.is_ok() {
                rules = crate::nft::add_mac_spoof_check(&host.name, &mac, &tag);
            }
            if let Err(e) = rules {
                let _ = crate::nft::remove_tagged(&tag);
                delete_link(&host.name);
                return Err(e);
            }
            Ok((bridge, host, mac))
        });
        let (bridge, host, mac) = match made {
            Ok(v) => v,
            Err(e) => {
                let _ = ipam::exec(args, conf, "DEL");
                return Err(e);
            }
        };
        result.interfaces = vec![
            Interface {
                name: bridge.name,
                mac: bridge.mac,
                mtu: None,
                sandbox: String::new(),
            },
            Interface {
                name: host.name,
                mac: host.mac,
                mtu: None,
                sandbox: String::new(),
            },
            Interface {
                name: args.ifname.clone(),
                mac,
                mtu: None,
                sandbox: ns_path.display().to_string(),
            },
        ];
        for ip in &mut result.ips {
            ip.interface = Some(2);
        }
        Ok(result.to_version(&conf.version)?)
    }

    /// Everything the container id and network name identify goes, also
    /// when the rest of the configuration is unusable (a DEL that fails
    /// leaves the runtime unable to remove the sandbox); the first real
    /// failure is reported after every step was tried.
    fn del(&self, args: &Args, conf: &Conf) -> Result<()> {
        let network = conf.name.as_str();
        // the rules ADD may have made; with fields this cannot read, any
        let (ip_masq, macspoofchk) = conf
            .fields::<BridgeConf>("bridge")
            .map_or((true, true), |c| (c.ip_masq, c.macspoofchk));
        // the IPAM plugin releases the lease meanwhile
        let ipam = ipam::start(args, conf, "DEL");
        let mut failed = Vec::new();
        if ip_masq || macspoofchk {
            // by tag: works when the namespace or the veth is already gone
            failed.extend(
                crate::nft::remove_tagged(&crate::nft::tag(network, &args.container_id)).err(),
            );
            // and what the reference plugin's ADD made, if it did
            if ip_masq {
                failed.extend(
                    crate::iptcompat::remove_reference_rules(network, &args.container_id).err(),
                );
            }
        }
        failed.extend(delete_container_veth(args).err());
        match ipam.and_then(ipam::Pending::wait) {
            Ok(_) => {}
            // an IPAM section that cannot be read: nothing it identifies
            Err(e)
                if e.code == crate::error::code::INVALID_CONFIG
                    || e.code == crate::error::code::DECODE_FAILURE => {}
            Err(e) => failed.push(e),
        }
        failed.into_iter().next().map_or(Ok(()), Err)
    }

    fn check(&self, args: &Args, conf: &Conf) -> Result<()> {
        let c = Settings::of(conf)?;
        let prev = conf
            .prev_result()?
            .ok_or_else(|| CniError::config("CHECK needs prevResult"))?;
        ipam::exec(args, conf, "CHECK")?;
        if c.ip_masq {
            let tag = crate::nft::tag(&c.network, &args.container_id);
            for v6 in [false, true] {
                if prev.ips.iter().any(|i| i.address.addr().is_ipv6() == v6)
                    && !crate::nft::has_tagged(crate::nft::POSTROUTING, &tag, v6)?
                {
                    return Err(CniError::internal(format!(
                        "the masquerade rule for container {} is gone",
                        args.container_id
                    )));
                }
            }
        }
        if c.macspoofchk
            && !crate::nft::has_mac_spoof_check(&crate::nft::tag(&c.network, &args.container_id))?
        {
            return Err(CniError::internal(format!(
                "the macspoofchk rule for container {} is gone",
                args.container_id
            )));
        }
        let ns = args.netns.as_deref().expect("CHECK has a netns");
        let ifname = args.ifname.clone();
        let want: Vec<IpNet> = prev.ips.iter().map(|i| i.address).collect();
        netns::run_in(ns, || {
            nl::with_handle(|h| async move {
                let link = nl::get_link(&h, &ifname).await?.ok_or_else(|| {
                    CniError::internal(format!("interface {ifname} is gone from the container"))
                })?;
                if !link.up {
                    return Err(CniError::internal(format!("interface {ifname} is down")));
                }
                let have = nl::addresses(&h, link.index).await?;
                for w in &want {
                    if !have.contains(w) {
                        return Err(CniError::internal(format!(
                            "interface {ifname} lost address {w}"
                        )));
                    }
                }
                Ok(())
            })
        })?;
        let host = prev
            .interfaces
            .iter()
            .find(|i| i.sandbox.is_empty() && i.name != c.bridge)
            .map(|i| i.name.clone());
        if let Some(host) = host {
            let bridge = c.bridge.clone();
            nl::with_handle(|h| async move {
                let b = nl::get_link(&h, &bridge)
                    .await?
                    .ok_or_else(|| CniError::internal(format!("bridge {bridge} is gone")))?;
                let v = nl::get_link(&h, &host)
                    .await?
                    .ok_or_else(|| CniError::internal(format!("host veth {host} is gone")))?;
                if v.controller != Some(b.index) {
                    return Err(CniError::internal(format!(
                        "{host} is not attached to {bridge}"
                    )));
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// STATUS and GC are the IPAM plugin's business (spec 1.1).
    fn status(&self, conf: &Conf) -> Result<()> {
        Settings::of(conf)?;
        ipam::exec(&skel::parse_env()?, conf, "STATUS").map(|_| ())
    }

    fn gc(&self, conf: &Conf) -> Result<()> {
        Settings::of(conf)?;
        ipam::exec(&skel::parse_env()?, conf, "GC").map(|_| ())
    }
}

#[cfg(test)]
mod mac_tests {
    use super::*;

    #[test]
    fn bridge_macs_are_usable() {
        for _ in 0..100 {
            let m = random_mac();
            assert!(usable_mac(&m), "{m:?}");
            assert_eq!(m[0] & 2, 2, "locally administered: {m:?}");
        }
        assert!(!usable_mac(&[0; 6]));
        assert!(!usable_mac(&[1, 0, 0, 0, 0, 1]));
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01"),
            Some(vec![2, 0, 10, 255, 0, 1])
        );
        assert_eq!(
            parse_mac("00:00:00:00:00:00").filter(|m| usable_mac(m)),
            None
        );
    }
}
