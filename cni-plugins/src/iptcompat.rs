//! Cleaning up after the reference plugins: their `ipMasq` (bridge) and
//! DNAT (portmap) rules are iptables rules, which on an iptables-nft host
//! live in nf_tables table `nat`, tagged with an xt `comment` match
//! `name: "<network>" id: "<container>"`. A DEL by our plugins after an ADD
//! by the reference removes them, with the per-container `CNI-…` chains they
//! jump to, so switching plugins on a running host leaks nothing.
//! (Rules made through iptables-legacy are outside nf_tables and not seen.)

use crate::error::Result;
use crate::nfnl::{parse_attrs, with_socket, Attrs};
use crate::nft::dump_rules;

const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_DELCHAIN: u16 = 5;

/// One rule of table `nat`: chain, handle, xt comment, jump/goto target.
#[derive(Debug, Default)]
struct NatRule {
    chain: String,
    handle: u64,
    comment: Option<String>,
    target: Option<String>,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn parse_rule(body: &[u8]) -> NatRule {
    let mut r = NatRule::default();
    for (typ, v) in parse_attrs(body) {
        match typ {
            2 => r.chain = text(v),
            3 if v.len() >= 8 => r.handle = u64::from_be_bytes(v[..8].try_into().expect("8")),
            4 => {
                for (_, e) in parse_attrs(v) {
                    let e = parse_attrs(e);
                    let name = e.iter().find(|(t, _)| *t == 1).map(|(_, n)| text(n));
                    let Some((_, data)) = e.iter().find(|(t, _)| *t == 2) else {
                        continue;
                    };
                    let data = parse_attrs(data);
                    match name.as_deref() {
                        // NFTA_MATCH_NAME, NFTA_MATCH_INFO (xt_comment_info)
                        Some("match") => {
                            let is_comment =
                                data.iter().any(|(t, n)| *t == 1 && text(n) == "comment");
                            if is_comment {
                                r.comment = data
                                    .iter()
                                    .find(|(t, _)| *t == 3)
                                    .map(|(_, info)| text(info));
                            }
                        }
                        // NFTA_IMMEDIATE_DATA > NFTA_DATA_VERDICT > NFTA_VERDICT_CHAIN
                        Some("immediate") => {
                            for (t, d) in &data {
                                if *t != 2 {
                                    continue;
                                }
                                for (t, verdict) in parse_attrs(d) {
                                    if t != 2 {
                                        continue;
                                    }
                                    r.target = parse_attrs(verdict)
                                        .into_iter()
                                        .find(|(t, _)| *t == 2)
                                        .map(|(_, c)| text(c));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    r
}

/// The reference plugins' comment for a container (Go's `%q` quoting).
fn reference_comment(network: &str, container: &str) -> String {
    format!(
        "name: {} id: {}",
        serde_json::Value::from(network),
        serde_json::Value::from(container)
    )
}

/// Remove the reference plugins' iptables-nft rules of `container` in
/// `network` (both families; idempotent; nothing to do without table nat).
pub fn remove_reference_rules(network: &str, container: &str) -> Result<()> {
    let needle = reference_comment(network, container);
    for family in [libc::NFPROTO_IPV4 as u8, libc::NFPROTO_IPV6 as u8] {
        with_socket(|sock| remove_in(sock, family, &needle))?;
    }
    Ok(())
}

/// [`remove_reference_rules`] in one family.
fn remove_in(sock: &mut crate::nfnl::Socket, family: u8, needle: &str) -> Result<()> {
    let dumped = dump_rules(sock, family, "nat", None)?;
    let rules: Vec<NatRule> = dumped.iter().map(|b| parse_rule(b)).collect();
    let ours: Vec<&NatRule> = rules
        .iter()
        .filter(|r| r.comment.as_deref().is_some_and(|c| c.contains(needle)))
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    // per-container chains (CNI-<hash>, CNI-DN-<hash>) that tagged
    // rules jump to; the shared CNI-HOSTPORT-* chains stay
    let mut chains: Vec<&str> = ours
        .iter()
        .filter_map(|r| r.target.as_deref())
        .filter(|t| t.starts_with("CNI-") && !t.starts_with("CNI-HOSTPORT-"))
        .collect();
    chains.sort_unstable();
    chains.dedup();
    let mut msgs = Vec::new();
    for r in rules.iter().filter(|r| {
        ours.iter()
            .any(|o| o.handle == r.handle && o.chain == r.chain)
            || chains.contains(&r.chain.as_str())
    }) {
        let mut a = Attrs::default();
        a.str(1, "nat").str(2, &r.chain).u64(3, r.handle);
        msgs.push((NFT_MSG_DELRULE, 0, a));
    }
    for c in &chains {
        let mut a = Attrs::default();
        a.str(1, "nat").str(3, c);
        msgs.push((NFT_MSG_DELCHAIN, 0, a));
    }
    sock.batch(family, &msgs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_is_quoted_like_the_reference() {
        assert_eq!(
            reference_comment("br-net", "abc"),
            r#"name: "br-net" id: "abc""#
        );
    }
}
