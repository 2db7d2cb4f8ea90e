//! A small nf_tables client over netlink (NETLINK_NETFILTER): exactly what
//! the plugins need, no `nft`/`iptables` process. Tables `ip rcni` and
//! `ip6 rcni` hold a `postrouting` nat chain (only while some container has a
//! rule in it); every rule carries a comment
//! (nft's userdata format) naming the network and container, which is how
//! DEL finds it again, also when the container's namespace is long gone.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{CniError, Result};

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// With DELCHAIN/DELTABLE: fail with EBUSY when the chain has rules (the
/// table has chains) instead of deleting them with it.
const NLM_F_NONREC: u16 = 0x100;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

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

/// Netlink attributes being built.
#[derive(Default, Clone)]
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn raw(&mut self, typ: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&typ.to_ne_bytes());
        self.0.extend_from_slice(data);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }
    pub(crate) fn str(&mut self, typ: u16, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.raw(typ, &b)
    }
    /// nf_tables integers are big-endian.
    pub(crate) fn u32(&mut self, typ: u16, v: u32) -> &mut Self {
        self.raw(typ, &v.to_be_bytes())
    }
    pub(crate) fn u64(&mut self, typ: u16, v: u64) -> &mut Self {
        self.raw(typ, &v.to_be_bytes())
    }
    pub(crate) fn nested(&mut self, typ: u16, inner: Attrs) -> &mut Self {
        self.raw(typ | NLA_F_NESTED, &inner.0)
    }
}

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

/// A failed exchange: the kernel's errno, or a local failure.
pub(crate) enum NlError {
    Kernel(nix::errno::Errno),
    Local(CniError),
}

impl From<NlError> for CniError {
    fn from(e: NlError) -> CniError {
        match e {
            NlError::Kernel(errno) => {
                CniError::internal("nf_tables refused a change").with_details(errno.desc())
            }
            NlError::Local(e) => e,
        }
    }
}

pub(crate) struct Socket(std::os::fd::OwnedFd, u32);

/// Netfilter sockets kept open until the plugin exits (see [`close_after_exit`]).
static KEPT_OPEN: std::sync::Mutex<Vec<std::os::fd::OwnedFd>> = std::sync::Mutex::new(Vec::new());

impl Drop for Socket {
    fn drop(&mut self) {
        // a second reference keeps the socket from being released now
        if let Ok(fd) = self.0.try_clone() {
            KEPT_OPEN.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
        }
    }
}

/// Hands the netfilter sockets this process used to a child that releases
/// them once this process has exited; called by [`crate::skel::run`] just
/// before exit.
///
/// Releasing a NETLINK_NETFILTER socket while deleted rules await their
/// destruction (an RCU grace period after the commit) waits for that
/// destruction (nf_tables flushes its destroy work on NETLINK_URELEASE):
/// 10-30 ms that a DEL would otherwise spend in `close` or in its exit,
/// with every deletion already committed. The child holds only the
/// sockets and the read end of a pipe whose write end this process keeps
/// until it exits; on end of file it exits and releases them, waited for
/// by nobody.
pub fn close_after_exit() {
    let fds = std::mem::take(&mut *KEPT_OPEN.lock().unwrap_or_else(|e| e.into_inner()));
    if fds.is_empty() {
        return;
    }
    let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return;
    };
    let mut keep: Vec<i32> = fds
        .iter()
        .chain(std::iter::once(&r))
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .collect();
    keep.sort_unstable();
    let r_fd = std::os::fd::AsRawFd::as_raw_fd(&r);
    // SAFETY: the plugins are single-threaded; the child makes only raw
    // system calls (no allocation) and leaves with _exit.
    match unsafe { nix::unistd::fork() } {
        // SAFETY: raw system calls on descriptors of this process, the
        // buffer a local; _exit leaves without running destructors.
        Ok(nix::unistd::ForkResult::Child) => unsafe {
            // every other descriptor goes: the plugin's stdout is the
            // runtime's result pipe, which must see its end now
            let mut from = 0u32;
            for &k in &keep {
                if k as u32 > from {
                    libc::syscall(libc::SYS_close_range, from, k as u32 - 1, 0);
                }
                from = k as u32 + 1;
            }
            libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
            let mut b = 0u8;
            while libc::read(r_fd, (&mut b as *mut u8).cast(), 1) < 0
                && nix::errno::Errno::last() == nix::errno::Errno::EINTR
            {}
            libc::_exit(0)
        },
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(r);
            // closed by this process's exit, which ends the child's wait
            std::mem::forget(w);
            // the child holds them now: closing ours releases nothing
            drop(fds);
        }
        // kept open: released by this process's exit instead
        Err(_) => std::mem::forget(fds),
    }
}

impl Socket {
    pub(crate) fn open() -> Result<Socket> {
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(CniError::io(
                "open a netfilter netlink socket",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fresh descriptor from socket(2).
        Ok(Socket(
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
            1,
        ))
    }

    fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// One netlink message: header, nfgenmsg, attributes.
    pub(crate) fn msg(
        &mut self,
        buf: &mut Vec<u8>,
        typ: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        attrs: &Attrs,
    ) {
        let len = 16 + 4 + attrs.0.len();
        buf.extend_from_slice(&(len as u32).to_ne_bytes());
        buf.extend_from_slice(&typ.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&self.1.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[family, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        buf.extend_from_slice(&attrs.0);
        self.1 += 1;
    }

    pub(crate) fn send(&self, buf: &[u8]) -> Result<()> {
        // SAFETY: sendto on our socket with a live buffer; NULL address
        // sends to the kernel.
        let r = unsafe { libc::send(self.fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            return Err(CniError::io(
                "send to nf_tables",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Read messages until `acks` acknowledgements (or DONE for a dump);
    /// returns the data messages (type, payload after nfgenmsg).
    pub(crate) fn recv(
        &self,
        mut acks: usize,
        dump: bool,
    ) -> std::result::Result<Vec<(u16, Vec<u8>)>, NlError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if !dump && acks == 0 {
                return Ok(out);
            }
            // SAFETY: recv into a buffer we own, of the length given.
            let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(NlError::Local(CniError::io(
                    "read from nf_tables",
                    std::io::Error::last_os_error(),
                )));
            }
            let mut p = &buf[..n as usize];
            while p.len() >= 16 {
                let len = u32::from_ne_bytes(p[0..4].try_into().expect("4 bytes")) as usize;
                let typ = u16::from_ne_bytes(p[4..6].try_into().expect("2 bytes"));
                if len < 16 || len > p.len() {
                    break;
                }
                let body = &p[16..len];
                match typ {
                    NLMSG_ERROR => {
                        let err = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
                        if err != 0 {
                            return Err(NlError::Kernel(nix::errno::Errno::from_raw(-err)));
                        }
                        acks = acks.saturating_sub(1);
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((typ, body.get(4..).unwrap_or_default().to_vec())),
                }
                p = &p[(len + 3) & !3..];
                if p.len() < 16 {
                    break;
                }
            }
        }
    }

    /// Send a batch of (type, flags, attrs) for `family`; wait for acks.
    pub(crate) fn batch(&mut self, family: u8, msgs: &[(u16, u16, Attrs)]) -> Result<()> {
        let mut buf = Vec::new();
        self.msg(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        );
        for (typ, flags, attrs) in msgs {
            self.msg(
                &mut buf,
                (NFNL_SUBSYS_NFTABLES << 8) | typ,
                NLM_F_REQUEST | NLM_F_ACK | flags,
                family,
                0,
                attrs,
            );
        }
        self.msg(
            &mut buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            &Attrs::default(),
        );
        self.send(&buf)?;
        self.recv(msgs.len(), false)?;
        Ok(())
    }
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
/// for each of the container's addresses, tagged with `tag`.
pub fn add_masquerade(addrs: &[IpNet], tag: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    for a in addrs {
        let ip = a.addr();
        let (saddr_off, len, multicast) = if ip.is_ipv4() {
            (12, 4, "224.0.0.0/4")
        } else {
            (8, 16, "ff00::/8")
        };
        let mut exprs = vec![payload(saddr_off, len), cmp(0, &ip_bytes(ip))];
        exprs.extend(daddr_not_in(a.trunc()));
        exprs.extend(daddr_not_in(multicast.parse().expect("literal")));
        exprs.push(expr("masq", Attrs::default()));
        let mut msgs = table_and_chain();
        msgs.push(rule(POSTROUTING, exprs, tag));
        sock.batch(family_of(ip), &msgs).map_err(|e| CniError {
            msg: format!("add masquerade rule for {ip}: {}", e.msg),
            ..e
        })?;
    }
    Ok(())
}

/// Parse attributes (type without flags → payload).
pub(crate) fn parse_attrs(mut p: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while p.len() >= 4 {
        let len = u16::from_ne_bytes([p[0], p[1]]) as usize;
        let typ = u16::from_ne_bytes([p[2], p[3]]) & 0x3fff;
        if len < 4 || len > p.len() {
            break;
        }
        out.push((typ, &p[4..len]));
        p = &p[((len + 3) & !3).min(p.len())..];
    }
    out
}

/// The rules of `table` in `family` (of one chain when `chain` is given),
/// as netlink message bodies; none when the table or chain is missing.
pub(crate) fn dump_rules(
    sock: &mut Socket,
    family: u8,
    table: &str,
    chain: Option<&str>,
) -> Result<Vec<Vec<u8>>> {
    let mut attrs = Attrs::default();
    attrs.str(1, table);
    if let Some(chain) = chain {
        attrs.str(2, chain);
    }
    let mut buf = Vec::new();
    sock.msg(
        &mut buf,
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
        NLM_F_REQUEST | NLM_F_DUMP,
        family,
        0,
        &attrs,
    );
    sock.send(&buf)?;
    match sock.recv(0, true) {
        Ok(m) => Ok(m.into_iter().map(|(_, body)| body).collect()),
        Err(NlError::Kernel(nix::errno::Errno::ENOENT)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Handles of the rules in `chain` whose comment is `tag`.
fn tagged_rules(sock: &mut Socket, family: u8, chain: &str, tag: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for body in dump_rules(sock, family, TABLE, Some(chain))? {
        let attrs = parse_attrs(&body);
        let handle = attrs
            .iter()
            .find(|(t, _)| *t == 3)
            .and_then(|(_, v)| v.get(0..8))
            .map(|v| u64::from_be_bytes(v.try_into().expect("8 bytes")));
        let comment = attrs
            .iter()
            .find(|(t, _)| *t == 7)
            .and_then(|(_, v)| comment_from_udata(v));
        if let (Some(h), Some(c)) = (handle, comment) {
            if c == tag {
                out.push(h);
            }
        }
    }
    Ok(out)
}

/// The chains of our table in `family`.
fn chains_of(family: u8) -> &'static [&'static str] {
    if family == NFPROTO_BRIDGE {
        &[MACSPOOFCHK]
    } else {
        &CHAINS
    }
}

/// Remove every rule tagged `tag` (all chains, all families; idempotent).
pub fn remove_tagged(tag: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    for family in [NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_BRIDGE] {
        let chains = chains_of(family);
        let mut msgs = Vec::new();
        for chain in chains {
            for h in tagged_rules(&mut sock, family, chain, tag)? {
                let mut a = Attrs::default();
                a.str(1, TABLE).str(2, chain).u64(3, h);
                msgs.push((NFT_MSG_DELRULE, 0, a));
            }
        }
        if msgs.is_empty() {
            continue;
        }
        sock.batch(family, &msgs)?;
        // Leave nothing behind once the last container is gone. Without
        // NLM_F_NONREC the kernel deletes a chain *with* its rules (and a
        // table with its chains): every other container's rules would go.
        // With it, deleting a chain that still has rules fails (EBUSY), and
        // all deletions are one atomic batch, so a concurrent ADD either
        // keeps its rules (the batch fails) or recreates table and chains
        // after us. Its own socket: a refused batch can leave replies behind.
        let mut cleanup: Vec<(u16, u16, Attrs)> = chains
            .iter()
            .map(|c| {
                let mut a = Attrs::default();
                a.str(1, TABLE).str(3, c);
                (NFT_MSG_DELCHAIN, NLM_F_NONREC, a)
            })
            .collect();
        let mut table = Attrs::default();
        table.str(1, TABLE);
        cleanup.push((NFT_MSG_DELTABLE, NLM_F_NONREC, table));
        if let Ok(mut once) = Socket::open() {
            let _ = once.batch(family, &cleanup);
        }
    }
    Ok(())
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
    Socket::open()?
        .batch(NFPROTO_BRIDGE, &msgs)
        .map_err(|e| CniError {
            msg: format!("add the macspoofchk rule for {host_veth}: {}", e.msg),
            ..e
        })
}

/// Whether the macspoofchk rule tagged `tag` exists (for CHECK).
pub fn has_mac_spoof_check(tag: &str) -> Result<bool> {
    let mut sock = Socket::open()?;
    Ok(!tagged_rules(&mut sock, NFPROTO_BRIDGE, MACSPOOFCHK, tag)?.is_empty())
}

/// Whether a rule tagged `tag` exists in `chain` (for CHECK).
pub fn has_tagged(chain: &str, tag: &str, v6: bool) -> Result<bool> {
    let mut sock = Socket::open()?;
    let family = if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 };
    Ok(!tagged_rules(&mut sock, family, chain, tag)?.is_empty())
}

/// One `runtimeConfig.portMappings` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    /// IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP.
    pub proto: u8,
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
pub fn add_portmaps(maps: &[PortMapping], ctr: IpNet, opts: &PortmapOpts, tag: &str) -> Result<()> {
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
    let mut msgs = table_and_chain();
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
            base.extend(meta_l4proto(m.proto));
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
            e.extend(meta_l4proto(m.proto));
            e.extend(dport(m.container_port));
            e.push(expr("masq", Attrs::default()));
            msgs.push(rule(POSTROUTING, e, tag));
        }
    }
    let mut sock = Socket::open()?;
    sock.batch(family_of(ip), &msgs).map_err(|e| CniError {
        msg: format!("add port mappings for {ip}: {}", e.msg),
        ..e
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

    #[test]
    fn attributes_are_aligned_and_parse_back() {
        let mut a = Attrs::default();
        a.str(1, "abc").u32(2, 7);
        assert_eq!(a.0.len() % 4, 0);
        let parsed = parse_attrs(&a.0);
        assert_eq!(parsed[0].1, b"abc\0");
        assert_eq!(parsed[1].1, 7u32.to_be_bytes());
    }
}
