//! A small nf_tables client over netlink (NETLINK_NETFILTER): exactly what
//! the plugins need, no `nft`/`iptables` process. Tables `ip rcni` and
//! `ip6 rcni` hold a `postrouting` nat chain (only while some container has a
//! rule in it); every rule carries a comment
//! (nft's userdata format) naming the network and container, which is how
//! DEL finds it again, also when the container's namespace is long gone.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{CniError, Result};
use crate::nfnl::{parse_attrs, with_socket, Attrs, NlError, Socket, NFNL_SUBSYS_NFTABLES};

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;

const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
/// With DELCHAIN/DELTABLE: fail with EBUSY when the chain has rules (the
/// table has chains) instead of deleting them with it.
const NLM_F_NONREC: u16 = 0x100;

const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NFPROTO_BRIDGE: u8 = 7;
const NF_INET_POST_ROUTING: u32 = 4;

pub const TABLE: &str = "rcni";
pub const POSTROUTING: &str = "postrouting";
pub const PORTMAP_PRE: &str = "portmap-pre";
pub const PORTMAP_OUT: &str = "portmap-out";
const CHAINS: [&str; 3] = [POSTROUTING, PORTMAP_PRE, PORTMAP_OUT];
/// The bridge-family chain of `macspoofchk` rules.
pub const MACSPOOFCHK: &str = "macspoofchk";
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_LOCAL_OUT: u32 = 3;

/// One expression of a rule: `name` with its attributes.
fn expr(name: &str, data: Attrs) -> Attrs {
    let mut e = Attrs::default();
    e.str(1, name); // NFTA_EXPR_NAME
    e.nested(2, data); // NFTA_EXPR_DATA
    e
}

/// Load `len` bytes at `offset` of the network header into register 1.
fn payload(offset: u32, len: u32) -> Attrs {
    let mut a = Attrs::default();
    a.u32(1, 1).u32(2, 1).u32(3, offset).u32(4, len); // DREG=1, BASE=network, OFFSET, LEN
    expr("payload", a)
}

/// Register 1 compared with `value` (op 0: ==, 1: !=).
fn cmp(op: u32, value: &[u8]) -> Attrs {
    let mut data = Attrs::default();
    data.raw(1, value); // NFTA_DATA_VALUE
    let mut a = Attrs::default();
    a.u32(1, 1).u32(2, op).nested(3, data); // SREG, OP, DATA
    expr("cmp", a)
}

/// Register 1 &= mask.
fn bitwise(mask: &[u8]) -> Attrs {
    bitwise_xor(mask, &vec![0u8; mask.len()])
}

/// Register 1 = (register 1 & mask) ^ xor.
fn bitwise_xor(mask: &[u8], xor: &[u8]) -> Attrs {
    let (mut m, mut x) = (Attrs::default(), Attrs::default());
    m.raw(1, mask);
    x.raw(1, xor);
    let mut a = Attrs::default();
    a.u32(1, 1)
        .u32(2, 1)
        .u32(3, mask.len() as u32)
        .nested(4, m)
        .nested(5, x);
    expr("bitwise", a)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Expressions for "destination not in `net`".
fn daddr_not_in(net: IpNet) -> Vec<Attrs> {
    let (off, len) = if net.addr().is_ipv4() {
        (16, 4)
    } else {
        (24, 16)
    };
    vec![
        payload(off, len),
        bitwise(&ip_bytes(net.netmask())),
        cmp(1, &ip_bytes(net.network())),
    ]
}

/// nft's rule comment (libnftnl udata: type 0, length, NUL-terminated text).
fn comment_udata(text: &str) -> Vec<u8> {
    let mut b = vec![0u8, (text.len() + 1) as u8];
    b.extend_from_slice(text.as_bytes());
    b.push(0);
    b
}

fn comment_from_udata(u: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 2 <= u.len() {
        let (typ, len) = (u[i], u[i + 1] as usize);
        let v = u.get(i + 2..i + 2 + len)?;
        if typ == 0 {
            return Some(
                String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
        i += 2 + len;
    }
    None
}

/// The comment that tags a container's rules.
pub fn tag(network: &str, container: &str) -> String {
    let t = format!("rcni {network} {container}");
    // nft keeps comments short; the container id is unique enough
    t.chars().take(120).collect()
}

fn family_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        NFPROTO_IPV4
    } else {
        NFPROTO_IPV6
    }
}

/// The table and its three nat chains (idempotent), as batch messages.
/// All chains always exist together, so cleanup can delete them in one
/// atomic batch.
fn table_and_chain() -> Vec<(u16, u16, Attrs)> {
    let mut table = Attrs::default();
    table.str(1, TABLE);
    let mut msgs = vec![(NFT_MSG_NEWTABLE, NLM_F_CREATE, table)];
    for (name, hooknum, prio) in [
        (POSTROUTING, NF_INET_POST_ROUTING, 100i32),
        (PORTMAP_PRE, NF_INET_PRE_ROUTING, -100),
        (PORTMAP_OUT, NF_INET_LOCAL_OUT, -100),
    ] {
        let mut hook = Attrs::default();
        hook.u32(1, hooknum).u32(2, prio as u32);
        let mut chain = Attrs::default();
        chain
            .str(1, TABLE)
            .str(3, name)
            .nested(4, hook)
            .u32(5, 1)
            .str(7, "nat");
        msgs.push((NFT_MSG_NEWCHAIN, NLM_F_CREATE, chain));
    }
    msgs
}

fn rule(chain: &str, exprs: Vec<Attrs>, tag: &str) -> (u16, u16, Attrs) {
    let mut list = Attrs::default();
    for e in exprs {
        list.nested(1, e); // NFTA_LIST_ELEM
    }
    let mut rule = Attrs::default();
    rule.str(1, TABLE)
        .str(2, chain)
        .nested(4, list)
        .raw(7, &comment_udata(tag));
    (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, rule)
}

/// `ip saddr IP ip daddr != SUBNET ip daddr != MULTICAST masquerade`
/// for each of the container's addresses, tagged with `tag`: one
/// transaction per family.
pub fn add_masquerade(addrs: &[IpNet], tag: &str) -> Result<()> {
    for v4 in [true, false] {
        let mut msgs = Vec::new();
        for a in addrs.iter().filter(|a| a.addr().is_ipv4() == v4) {
            let ip = a.addr();
            let (saddr_off, len, multicast) = if v4 {
                (12, 4, "224.0.0.0/4")
            } else {
                (8, 16, "ff00::/8")
            };
            let mut exprs = vec![payload(saddr_off, len), cmp(0, &ip_bytes(ip))];
            exprs.extend(daddr_not_in(a.trunc()));
            exprs.extend(daddr_not_in(multicast.parse().expect("literal")));
            exprs.push(expr("masq", Attrs::default()));
            if msgs.is_empty() {
                msgs = table_and_chain();
            }
            msgs.push(rule(POSTROUTING, exprs, tag));
        }
        if msgs.is_empty() {
            continue;
        }
        let family = if v4 { NFPROTO_IPV4 } else { NFPROTO_IPV6 };
        with_socket(|sock| {
            sock.batch(family, &msgs).map_err(|e| {
                let e = CniError::from(e);
                CniError {
                    msg: format!("add the masquerade rules of {addrs:?}: {}", e.msg),
                    ..e
                }
            })
        })?;
    }
    Ok(())
}

/// The rules of `table` in `family` (of one chain when `chain` is given),
/// as netlink message bodies; none when the table or chain is missing.
pub(crate) fn dump_rules(
    sock: &mut Socket,
    family: u8,
    table: &str,
    chain: Option<&str>,
) -> Result<Vec<Vec<u8>>> {
    Ok(dump_rules_if_any(sock, family, table, chain)?.unwrap_or_default())
}

/// [`dump_rules`], or None when the table (or chain) does not exist.
fn dump_rules_if_any(
    sock: &mut Socket,
    family: u8,
    table: &str,
    chain: Option<&str>,
) -> Result<Option<Vec<Vec<u8>>>> {
    let mut attrs = Attrs::default();
    attrs.str(1, table);
    if let Some(chain) = chain {
        attrs.str(2, chain);
    }
    match sock.dump(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
        family,
        &attrs,
    ) {
        Ok(m) => Ok(Some(m.into_iter().map(|(_, body)| body).collect())),
        Err(NlError::Kernel(nix::errno::Errno::ENOENT)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One rule of our table as dumped: its chain, handle and comment.
struct Dumped {
    chain: String,
    handle: u64,
    comment: Option<String>,
}

fn parse_dumped(body: &[u8]) -> Option<Dumped> {
    let attrs = parse_attrs(body);
    let chain = attrs.iter().find(|(t, _)| *t == 2).map(|(_, v)| {
        String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
    })?;
    let handle = attrs
        .iter()
        .find(|(t, _)| *t == 3)
        .and_then(|(_, v)| v.get(0..8))
        .map(|v| u64::from_be_bytes(v.try_into().expect("8 bytes")))?;
    let comment = attrs
        .iter()
        .find(|(t, _)| *t == 7)
        .and_then(|(_, v)| comment_from_udata(v));
    Some(Dumped {
        chain,
        handle,
        comment,
    })
}

/// The rules of our table in `family` (of `chain` when given); None when
/// the table does not exist.
fn our_rules(sock: &mut Socket, family: u8, chain: Option<&str>) -> Result<Option<Vec<Dumped>>> {
    Ok(dump_rules_if_any(sock, family, TABLE, chain)?
        .map(|rules| rules.iter().filter_map(|b| parse_dumped(b)).collect()))
}

/// The chains of our table in `family`.
fn chains_of(family: u8) -> &'static [&'static str] {
    if family == NFPROTO_BRIDGE {
        &[MACSPOOFCHK]
    } else {
        &CHAINS
    }
}

/// Attempts at removing a container's rules while other plugins change the
/// table at the same time.
const REMOVE_ATTEMPTS: usize = 8;

/// Remove every rule tagged `tag` (all chains, all families; idempotent).
pub fn remove_tagged(tag: &str) -> Result<()> {
    with_socket(|sock| {
        for family in [NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_BRIDGE] {
            remove_tagged_in(sock, family, tag)?;
        }
        Ok(())
    })
}

/// [`remove_tagged`] in one family: a dump of the table, then one
/// transaction deleting the container's rules. When nothing else is in the
/// table, the same transaction deletes its chains and the table too, with
/// NLM_F_NONREC: without it the kernel deletes a chain *with* its rules
/// (and a table with its chains), so a concurrent ADD's rules would go;
/// with it, a chain that got a rule meanwhile fails the whole transaction
/// (EBUSY) and the next attempt deletes only our rules. After deleting only
/// ours, one more dump shows whether the others went meanwhile (their DELs
/// each saw ours), and an empty table goes then. Deleting only what the
/// dump shows to be deletable spares the kernel refused transactions, whose
/// abort waits for an RCU grace period holding the nf_tables commit mutex
/// (every other plugin on the host waits with it). A rule that vanished
/// meanwhile (another DEL of the same container) makes the next attempt
/// look again.
fn remove_tagged_in(sock: &mut Socket, family: u8, tag: &str) -> Result<()> {
    let mut cleanup = true;
    let mut last = None;
    for _ in 0..REMOVE_ATTEMPTS {
        let Some(rules) = our_rules(sock, family, None)? else {
            return Ok(());
        };
        let (ours, others): (Vec<&Dumped>, Vec<&Dumped>) = rules
            .iter()
            .partition(|r| r.comment.as_deref() == Some(tag));
        let with_cleanup = cleanup && others.is_empty();
        if ours.is_empty() && !with_cleanup {
            return Ok(());
        }
        let mut msgs: Vec<(u16, u16, Attrs)> = ours
            .iter()
            .map(|r| {
                let mut a = Attrs::default();
                a.str(1, TABLE).str(2, &r.chain).u64(3, r.handle);
                (NFT_MSG_DELRULE, 0, a)
            })
            .collect();
        if with_cleanup {
            for c in chains_of(family) {
                let mut a = Attrs::default();
                a.str(1, TABLE).str(3, c);
                msgs.push((NFT_MSG_DELCHAIN, NLM_F_NONREC, a));
            }
            let mut table = Attrs::default();
            table.str(1, TABLE);
            msgs.push((NFT_MSG_DELTABLE, NLM_F_NONREC, table));
        }
        match sock.batch(family, &msgs) {
            Ok(()) if with_cleanup => return Ok(()),
            // ours are gone; whether the table is empty now, the next
            // dump tells
            Ok(()) => {}
            // the table changed under us (a rule or chain added: EBUSY; a
            // chain we do not know of: ENOENT or EBUSY): keep it
            Err(NlError::Kernel(e)) if with_cleanup => {
                cleanup = false;
                last = Some(e);
            }
            // one of our rules went meanwhile: look again
            Err(NlError::Kernel(e @ nix::errno::Errno::ENOENT)) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(CniError::internal(format!(
        "remove the rules tagged {tag:?}: the table kept changing ({REMOVE_ATTEMPTS} attempts)"
    ))
    .with_details(last.map(|e| e.desc()).unwrap_or_default()))
}

/// `macspoofchk`: frames from the container's host-side veth `host_veth`
/// must carry the container's MAC `mac`, others are dropped before the
/// bridge sees them (table `bridge rcni`, chain `macspoofchk`).
pub fn add_mac_spoof_check(host_veth: &str, mac: &str, tag: &str) -> Result<()> {
    let mac: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<std::result::Result<_, _>>()
        .ok()
        .filter(|m: &Vec<u8>| m.len() == 6)
        .ok_or_else(|| CniError::internal(format!("macspoofchk: {mac:?} is not a MAC address")))?;
    let mut table = Attrs::default();
    table.str(1, TABLE);
    let mut hook = Attrs::default();
    hook.u32(1, NF_INET_PRE_ROUTING).u32(2, (-300i32) as u32);
    let mut chain = Attrs::default();
    chain
        .str(1, TABLE)
        .str(3, MACSPOOFCHK)
        .nested(4, hook)
        .u32(5, 1) // policy: NF_ACCEPT
        .str(7, "filter");
    let mut iif = Condition::InInterface {
        name: host_veth.to_string(),
        negate: false,
    }
    .exprs();
    let mut ll = Attrs::default();
    ll.u32(1, 1).u32(2, 0).u32(3, 6).u32(4, 6); // DREG 1, link-layer header, ether saddr
    iif.push(expr("payload", ll));
    iif.push(cmp(1, &mac));
    let mut verdict = Attrs::default();
    verdict.u32(1, 0); // NFTA_VERDICT_CODE: NF_DROP
    let mut data = Attrs::default();
    data.nested(2, verdict); // NFTA_DATA_VERDICT
    let mut imm = Attrs::default();
    imm.u32(1, 0).nested(2, data); // DREG 0: the verdict register
    iif.push(expr("immediate", imm));
    let msgs = vec![
        (NFT_MSG_NEWTABLE, NLM_F_CREATE, table),
        (NFT_MSG_NEWCHAIN, NLM_F_CREATE, chain),
        rule(MACSPOOFCHK, iif, tag),
    ];
    with_socket(|sock| {
        sock.batch(NFPROTO_BRIDGE, &msgs).map_err(|e| {
            let e = CniError::from(e);
            CniError {
                msg: format!("add the macspoofchk rule for {host_veth}: {}", e.msg),
                ..e
            }
        })
    })
}

/// Whether a rule tagged `tag` exists in `chain` of `family`.
fn has_tagged_in(family: u8, chain: &str, tag: &str) -> Result<bool> {
    with_socket(|sock| {
        Ok(our_rules(sock, family, Some(chain))?
            .unwrap_or_default()
            .iter()
            .any(|r| r.comment.as_deref() == Some(tag)))
    })
}

/// Whether the macspoofchk rule tagged `tag` exists (for CHECK).
pub fn has_mac_spoof_check(tag: &str) -> Result<bool> {
    has_tagged_in(NFPROTO_BRIDGE, MACSPOOFCHK, tag)
}

/// Whether a rule tagged `tag` exists in `chain` (for CHECK).
pub fn has_tagged(chain: &str, tag: &str, v6: bool) -> Result<bool> {
    has_tagged_in(if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }, chain, tag)
}

fn meta_l4proto(proto: u8) -> Vec<Attrs> {
    let mut m = Attrs::default();
    m.u32(1, 1).u32(2, 16); // DREG 1, KEY L4PROTO
    vec![expr("meta", m), cmp(0, &[proto])]
}

fn dport(port: u16) -> Vec<Attrs> {
    let mut a = Attrs::default();
    a.u32(1, 1).u32(2, 2).u32(3, 2).u32(4, 2); // DREG 1, transport header, offset 2, len 2
    vec![expr("payload", a), cmp(0, &port.to_be_bytes())]
}

/// `fib daddr type local`
fn daddr_is_local() -> Vec<Attrs> {
    let mut f = Attrs::default();
    f.u32(1, 1).u32(2, 3).u32(3, 1 << 1); // DREG 1, RESULT addrtype, FLAGS daddr
    vec![expr("fib", f), cmp(0, &2u32.to_ne_bytes())] // RTN_LOCAL
}

fn offsets(v4: bool, dst: bool) -> (u32, u32) {
    match (v4, dst) {
        (true, false) => (12, 4),
        (true, true) => (16, 4),
        (false, false) => (8, 16),
        (false, true) => (24, 16),
    }
}

fn addr_match(ip: IpAddr, dst: bool) -> Vec<Attrs> {
    let (off, len) = offsets(ip.is_ipv4(), dst);
    vec![payload(off, len), cmp(0, &ip_bytes(ip))]
}

fn net_match(net: IpNet, dst: bool) -> Vec<Attrs> {
    let (off, len) = offsets(net.addr().is_ipv4(), dst);
    vec![
        payload(off, len),
        bitwise(&ip_bytes(net.netmask())),
        cmp(0, &ip_bytes(net.network())),
    ]
}

fn immediate(reg: u32, value: &[u8]) -> Attrs {
    let mut data = Attrs::default();
    data.raw(1, value);
    let mut a = Attrs::default();
    a.u32(1, reg).nested(2, data);
    expr("immediate", a)
}

fn dnat_to(ip: IpAddr, port: u16) -> Vec<Attrs> {
    let mut n = Attrs::default();
    n.u32(1, 1) // DNAT
        .u32(2, family_of(ip) as u32)
        .u32(3, 1) // address in register 1
        .u32(5, 2) // port in register 2
        .u32(7, 0b11); // MAP_IPS | PROTO_SPECIFIED
    vec![
        immediate(1, &ip_bytes(ip)),
        immediate(2, &port.to_be_bytes()),
        expr("nat", n),
    ]
}

/// One match of portmap's `conditionsV4`/`conditionsV6` (iptables syntax
/// there: `-s`, `-d`, `-i`, each optionally negated with `!`).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Source {
        net: IpNet,
        negate: bool,
    },
    Destination {
        net: IpNet,
        negate: bool,
    },
    /// An interface name; a trailing `+` matches every name with that prefix.
    InInterface {
        name: String,
        negate: bool,
    },
}

impl Condition {
    fn v4(&self) -> Option<bool> {
        match self {
            Condition::Source { net, .. } | Condition::Destination { net, .. } => {
                Some(net.addr().is_ipv4())
            }
            Condition::InInterface { .. } => None,
        }
    }

    fn exprs(&self) -> Vec<Attrs> {
        let op = |negate: bool| u32::from(negate);
        match self {
            Condition::Source { net, negate } | Condition::Destination { net, negate } => {
                let dst = matches!(self, Condition::Destination { .. });
                let (off, len) = offsets(net.addr().is_ipv4(), dst);
                vec![
                    payload(off, len),
                    bitwise(&ip_bytes(net.netmask())),
                    cmp(op(*negate), &ip_bytes(net.network())),
                ]
            }
            Condition::InInterface { name, negate } => {
                let mut m = Attrs::default();
                m.u32(1, 1).u32(2, NFT_META_IIFNAME);
                let value = match name.strip_suffix('+') {
                    Some(prefix) => prefix.as_bytes().to_vec(),
                    None => {
                        let mut v = name.as_bytes().to_vec();
                        v.resize(16, 0); // IFNAMSIZ, NUL-padded
                        v
                    }
                };
                vec![expr("meta", m), cmp(op(*negate), &value)]
            }
        }
    }
}

/// How portmap translates: `snat` masquerades the traffic whose reply
/// would bypass the translation (from the host's loopback, and hairpin
/// from the container's own subnet) by setting bit `mark_bit` of the packet
/// mark, like the reference plugin (`markMasqBit`, default 13), so that its
/// and our masquerade rules honour each other's marks.
#[derive(Debug, Clone)]
pub struct PortmapOpts {
    pub snat: bool,
    pub mark_bit: u32,
    pub conditions_v4: Vec<Condition>,
    pub conditions_v6: Vec<Condition>,
}

const NFT_META_MARK: u32 = 3;
const NFT_META_IIFNAME: u32 = 6;

/// `meta mark set mark | bit`
fn set_mark_bit(bit: u32) -> Vec<Attrs> {
    let mut load = Attrs::default();
    load.u32(1, 1).u32(2, NFT_META_MARK); // DREG 1, KEY mark
    let mut store = Attrs::default();
    store.u32(2, NFT_META_MARK).u32(3, 1); // KEY mark, SREG 1
    let mask = 1u32 << bit;
    // the mark is a host-order integer in the register
    vec![
        expr("meta", load),
        bitwise_xor(&(!mask).to_ne_bytes(), &mask.to_ne_bytes()),
        expr("meta", store),
    ]
}

/// `meta mark & bit == bit`
fn has_mark_bit(bit: u32) -> Vec<Attrs> {
    let mut load = Attrs::default();
    load.u32(1, 1).u32(2, NFT_META_MARK);
    let mask = (1u32 << bit).to_ne_bytes();
    vec![expr("meta", load), bitwise(&mask), cmp(0, &mask)]
}

/// DNAT rules for `maps` to the container address `ctr` (with its
/// prefix): from other hosts and containers (prerouting) and from the host
/// itself (output); with `snat`, the packets from 127.0.0.0/8 (with
/// route_localnet) and from the container's own subnet (hairpin) are
/// marked for the masquerade rule in postrouting.
pub fn add_portmaps(
    maps: &[cni_types::PortMapping],
    ctr: IpNet,
    opts: &PortmapOpts,
    tag: &str,
) -> Result<()> {
    let ip = ctr.addr();
    let conditions = if ip.is_ipv4() {
        &opts.conditions_v4
    } else {
        &opts.conditions_v6
    };
    if let Some(c) = conditions
        .iter()
        .find(|c| c.v4().is_some_and(|v4| v4 != ip.is_ipv4()))
    {
        return Err(CniError::config(format!(
            "portmap: condition {c:?} is of the other IP family than {ip}"
        )));
    }
    let mut msgs = Vec::new();
    for m in maps {
        let host_ip = m.host_ip.filter(|h| !h.is_unspecified());
        if host_ip.is_some_and(|h| h.is_ipv4() != ip.is_ipv4()) {
            continue;
        }
        for chain in [PORTMAP_PRE, PORTMAP_OUT] {
            let mut base: Vec<Attrs> = conditions.iter().flat_map(Condition::exprs).collect();
            base.extend(match host_ip {
                Some(h) => addr_match(h, true),
                None => daddr_is_local(),
            });
            base.extend(meta_l4proto(m.protocol.number()));
            base.extend(dport(m.host_port));
            if opts.snat {
                let mut sources = vec![ctr.trunc()];
                if ip.is_ipv4() {
                    sources.push("127.0.0.0/8".parse().expect("literal"));
                }
                for src in sources {
                    let mut e = base.clone();
                    e.extend(net_match(src, false));
                    e.extend(set_mark_bit(opts.mark_bit));
                    msgs.push(rule(chain, e, tag));
                }
            }
            base.extend(dnat_to(ip, m.container_port));
            msgs.push(rule(chain, base, tag));
        }
        if opts.snat {
            let mut e = has_mark_bit(opts.mark_bit);
            e.extend(addr_match(ip, true));
            e.extend(meta_l4proto(m.protocol.number()));
            e.extend(dport(m.container_port));
            e.push(expr("masq", Attrs::default()));
            msgs.push(rule(POSTROUTING, e, tag));
        }
    }
    if msgs.is_empty() {
        // no mapping of this family
        return Ok(());
    }
    let mut batch = table_and_chain();
    batch.extend(msgs);
    with_socket(|sock| {
        sock.batch(family_of(ip), &batch).map_err(|e| {
            let e = CniError::from(e);
            CniError {
                msg: format!("add port mappings for {ip}: {}", e.msg),
                ..e
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip_in_nft_udata_format() {
        let u = comment_udata("rcni net1 abc");
        assert_eq!(u[0], 0);
        assert_eq!(u[1] as usize, "rcni net1 abc".len() + 1);
        assert_eq!(comment_from_udata(&u).as_deref(), Some("rcni net1 abc"));
    }
}
