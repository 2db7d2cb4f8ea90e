//! rtnetlink from synchronous plugin code: a current-thread tokio runtime
//! per call (a plugin makes a handful of requests and exits).

use std::future::Future;

use futures::stream::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec};

use crate::error::{CniError, Result};

/// Run `f` with a netlink handle on a fresh current-thread runtime.
pub fn with_handle<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| CniError::io("start the netlink runtime", e))?;
    rt.block_on(async {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| CniError::io("open a netlink socket", e))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

pub fn nl_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> CniError {
    let what = what.into();
    move |e| CniError::internal(what).with_details(e)
}

/// The index of link `name`, if it exists.
pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such link
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"))(e)),
    }
}

/// Whether link `name` is administratively up.
pub async fn link_is_up(h: &Handle, name: &str) -> Result<bool> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    let msg = links
        .try_next()
        .await
        .map_err(nl_err(format!("look up link {name}")))?
        .ok_or_else(|| CniError::internal(format!("link {name} not found")))?;
    Ok(msg
        .header
        .flags
        .contains(netlink_packet_route::link::LinkFlags::Up))
}

/// Set link `name` up or down.
pub async fn set_up(h: &Handle, name: &str, up: bool) -> Result<()> {
    let msg = if up {
        LinkUnspec::new_with_name(name).up().build()
    } else {
        LinkUnspec::new_with_name(name).down().build()
    };
    h.link().set(msg).execute().await.map_err(nl_err(format!(
        "set {name} {}",
        if up { "up" } else { "down" }
    )))
}

/// What the plugins need to know about a link.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: String,
    pub kind: Option<String>,
    pub controller: Option<u32>,
    pub up: bool,
}

fn mac_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Look up link `name` (None when there is no such link).
pub async fn get_link(h: &Handle, name: &str) -> Result<Option<Link>> {
    use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo};
    let mut links = h.link().get().match_name(name.to_string()).execute();
    let msg = match links.try_next().await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => return Ok(None),
        Err(e) => return Err(nl_err(format!("look up link {name}"))(e)),
    };
    let mut link = Link {
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        ..Default::default()
    };
    for a in msg.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(m) => link.mac = mac_string(&m),
            LinkAttribute::Controller(c) => link.controller = Some(c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Some(link))
}

/// Addresses (with prefix) on link `index`.
pub async fn addresses(h: &Handle, index: u32) -> Result<Vec<ipnet::IpNet>> {
    use netlink_packet_route::address::AddressAttribute;
    let mut out = Vec::new();
    let mut addrs = h.address().get().set_link_index_filter(index).execute();
    while let Some(msg) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
        for a in &msg.attributes {
            if let AddressAttribute::Address(ip) = a {
                if let Ok(net) = ipnet::IpNet::new(*ip, msg.header.prefix_len) {
                    out.push(net);
                }
            }
        }
    }
    Ok(out)
}
