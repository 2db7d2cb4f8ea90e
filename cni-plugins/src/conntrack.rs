//! Conntrack entries through ctnetlink (NETLINK_NETFILTER, subsystem
//! CTNETLINK): what portmap needs to forget stale UDP flows.
//!
//! NAT is decided on a flow's first packet. A UDP client that kept sending
//! to a host port before the port was mapped (or after it was unmapped)
//! has a conntrack entry without the translation, and every later packet
//! of that flow follows the entry, never the new rules, until the entry
//! times out. Deleting the entries whose original destination port is the
//! host port makes the next packet a new flow.

use std::net::IpAddr;

use crate::error::{CniError, Result};
use crate::nfnl::{parse_attrs, with_socket, Attrs, NlError, NLM_F_ACK, NLM_F_REQUEST};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;

/// An entry to delete: its original tuple and zone, as the kernel sent them.
struct Entry {
    tuple: Vec<u8>,
    zone: Option<Vec<u8>>,
}

/// Whether a CTA_TUPLE_ORIG payload is protocol `proto` to port `port`.
fn tuple_matches(tuple: &[u8], proto: u8, port: u16) -> bool {
    parse_attrs(tuple)
        .into_iter()
        .find(|(t, _)| *t == CTA_TUPLE_PROTO)
        .is_some_and(|(_, p)| {
            let attrs = parse_attrs(p);
            let num = attrs.iter().find(|(t, _)| *t == CTA_PROTO_NUM);
            let dport = attrs.iter().find(|(t, _)| *t == CTA_PROTO_DST_PORT);
            num.is_some_and(|(_, v)| v.first() == Some(&proto))
                && dport.is_some_and(|(_, v)| *v == port.to_be_bytes())
        })
}

fn ct_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

/// Delete every conntrack entry of `family` (AF_INET/AF_INET6) for
/// protocol `proto` whose original destination port is one of `ports`.
/// Returns how many were deleted.
pub fn delete_by_dport(v6: bool, proto: u8, ports: &[u16]) -> Result<usize> {
    if ports.is_empty() {
        return Ok(0);
    }
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    with_socket(|sock| {
        let dumped = match sock.dump(ct_type(IPCTNL_MSG_CT_GET), family, &Attrs::default()) {
            Ok(m) => m,
            // conntrack not loaded: nothing to forget
            Err(NlError::Kernel(nix::errno::Errno::ENOENT))
            | Err(NlError::Kernel(nix::errno::Errno::EOPNOTSUPP)) => return Ok(0),
            Err(e) => return Err(CniError::from(e)),
        };
        let mut stale = Vec::new();
        for (_, body) in &dumped {
            let attrs = parse_attrs(body);
            let Some((_, tuple)) = attrs.iter().find(|(t, _)| *t == CTA_TUPLE_ORIG) else {
                continue;
            };
            if ports.iter().any(|p| tuple_matches(tuple, proto, *p)) {
                stale.push(Entry {
                    tuple: tuple.to_vec(),
                    zone: attrs
                        .iter()
                        .find(|(t, _)| *t == CTA_ZONE)
                        .map(|(_, z)| z.to_vec()),
                });
            }
        }
        let mut deleted = 0;
        for e in stale {
            let mut a = Attrs::default();
            a.raw(CTA_TUPLE_ORIG | NLA_F_NESTED, &e.tuple);
            if let Some(z) = &e.zone {
                a.raw(CTA_ZONE, z);
            }
            match sock.request(
                ct_type(IPCTNL_MSG_CT_DELETE),
                NLM_F_REQUEST | NLM_F_ACK,
                family,
                &a,
            ) {
                Ok(_) => deleted += 1,
                // gone meanwhile (timed out, or another DEL)
                Err(NlError::Kernel(nix::errno::Errno::ENOENT)) => {}
                Err(e) => {
                    return Err(CniError::from(e).with_details("delete a conntrack entry"));
                }
            }
        }
        Ok(deleted)
    })
}

/// The families of `ips` (IPv4, IPv6) that are present.
pub fn families(ips: impl IntoIterator<Item = IpAddr>) -> Vec<bool> {
    let mut out: Vec<bool> = ips.into_iter().map(|ip| ip.is_ipv6()).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_match_looks_at_protocol_and_destination_port() {
        let mut proto = Attrs::default();
        proto
            .raw(CTA_PROTO_NUM, &[17])
            .raw(2, &1234u16.to_be_bytes())
            .raw(CTA_PROTO_DST_PORT, &5353u16.to_be_bytes());
        let mut tuple = Attrs::default();
        tuple.nested(CTA_TUPLE_PROTO, proto);
        assert!(tuple_matches(&tuple.0, 17, 5353));
        assert!(!tuple_matches(&tuple.0, 17, 1234), "source port is not it");
        assert!(!tuple_matches(&tuple.0, 6, 5353), "TCP is not UDP");
    }
}
