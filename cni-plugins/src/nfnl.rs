//! The netfilter netlink socket (NETLINK_NETFILTER) the plugins talk to
//! nf_tables and conntrack through: attributes, messages, batches, and the
//! one socket a plugin process uses.
//!
//! One socket per process, released only after the process has exited:
//! releasing a NETLINK_NETFILTER socket makes nf_tables take its commit
//! mutex and wait, holding it, for the destruction of whatever the last
//! commits replaced (an RCU grace period, 10-30 ms). Every socket released
//! is such a wait for every other plugin on the host wanting to commit, so
//! a plugin opens one, and hands it to [`close_after_exit`].

use crate::error::{CniError, Result};

const NETLINK_NETFILTER: i32 = 12;
pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// Set on the messages of a dump during which the dumped state changed:
/// some entries may be missing from it.
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

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

/// A failed exchange: the kernel's errno, a dump to do again, or a local
/// failure.
#[derive(Debug)]
pub(crate) enum NlError {
    Kernel(nix::errno::Errno),
    /// The state changed while it was dumped (NLM_F_DUMP_INTR).
    DumpInterrupted,
    Local(CniError),
}

impl From<NlError> for CniError {
    fn from(e: NlError) -> CniError {
        match e {
            NlError::Kernel(errno) => {
                CniError::internal("nf_tables refused a change").with_details(errno.desc())
            }
            NlError::DumpInterrupted => CniError::new(
                crate::error::code::TRY_AGAIN_LATER,
                "netfilter state kept changing while it was read",
            ),
            NlError::Local(e) => e,
        }
    }
}

impl From<CniError> for NlError {
    fn from(e: CniError) -> NlError {
        NlError::Local(e)
    }
}

/// membarrier(2): wait for an RCU grace period.
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;

/// Dumps of a state that keeps changing meanwhile, before giving up.
const DUMP_ATTEMPTS: usize = 20;

/// A netfilter netlink socket and the sequence number of its next message.
pub(crate) struct Socket {
    fd: std::os::fd::OwnedFd,
    seq: u32,
}

/// The process's socket (see the module documentation).
static SHARED: std::sync::Mutex<Option<Socket>> = std::sync::Mutex::new(None);

/// Run `f` with the process's netfilter socket, opened on first use.
pub(crate) fn with_socket<T>(f: impl FnOnce(&mut Socket) -> Result<T>) -> Result<T> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if shared.is_none() {
        *shared = Some(Socket::open()?);
    }
    f(shared.as_mut().expect("opened above"))
}

/// Hands the process's netfilter socket to a child that releases it once
/// this process has exited; called by [`crate::skel::run`] just before
/// exit, so that neither the plugin nor its caller waits for the release
/// (see the module documentation). The child holds only the socket and
/// the read end of a pipe whose write end this process keeps until it
/// exits; on end of file it waits for an RCU grace period (so that the
/// release finds the destruction of what our commits replaced done, and
/// holds the commit mutex only briefly: 20 concurrent chain ADDs took
/// 289 ms without the wait, 217 ms with it, docs/performance.md), exits
/// and releases the socket, waited for by nobody.
pub fn close_after_exit() {
    let Some(sock) = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        std::mem::forget(sock);
        return;
    };
    let mut keep = [
        std::os::fd::AsRawFd::as_raw_fd(&sock.fd),
        std::os::fd::AsRawFd::as_raw_fd(&r),
    ];
    keep.sort_unstable();
    let r_fd = std::os::fd::AsRawFd::as_raw_fd(&r);
    // SAFETY: the plugins are single-threaded here (their worker threads
    // have been joined); the child makes only raw system calls (no
    // allocation) and leaves with _exit.
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
            // an RCU grace period (MEMBARRIER_CMD_GLOBAL is
            // synchronize_rcu), waited for holding nothing: by its end the
            // destruction our commits queued has run, and the release
            // below rarely finds work to wait for under the commit mutex
            libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
            libc::_exit(0)
        },
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(r);
            // closed by this process's exit, which ends the child's wait
            std::mem::forget(w);
            // the child holds it now: closing ours releases nothing
            drop(sock);
        }
        // kept open: released by this process's exit instead
        Err(_) => std::mem::forget(sock),
    }
}

impl Socket {
    fn open() -> Result<Socket> {
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
        Ok(Socket {
            // SAFETY: fresh descriptor from socket(2).
            fd: unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
            seq: 1,
        })
    }

    fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// The sequence number the next message gets.
    pub(crate) fn next_seq(&self) -> u32 {
        self.seq
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
        buf.extend_from_slice(&self.seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[family, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        buf.extend_from_slice(&attrs.0);
        self.seq = self.seq.wrapping_add(1);
    }

    pub(crate) fn send(&self, buf: &[u8]) -> Result<()> {
        // SAFETY: send on our socket with a live buffer; the socket is
        // unconnected and netlink sends to the kernel.
        let r = unsafe { libc::send(self.fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            return Err(CniError::io(
                "send to netfilter",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Read the replies to the request whose first message had sequence
    /// number `first_seq`, until `acks` acknowledgements (or DONE for a
    /// dump); returns the data messages (type, payload after nfgenmsg).
    /// Replies to earlier requests (left by one that failed early) are
    /// skipped.
    pub(crate) fn recv(
        &self,
        first_seq: u32,
        mut acks: usize,
        dump: bool,
    ) -> std::result::Result<Vec<(u16, Vec<u8>)>, NlError> {
        let mut out = Vec::new();
        let mut interrupted = false;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if !dump && acks == 0 {
                return Ok(out);
            }
            // SAFETY: recv into a buffer we own, of the length given.
            let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NlError::Local(CniError::io("read from netfilter", e)));
            }
            let mut p = &buf[..n as usize];
            while p.len() >= 16 {
                let len = u32::from_ne_bytes(p[0..4].try_into().expect("4 bytes")) as usize;
                let typ = u16::from_ne_bytes(p[4..6].try_into().expect("2 bytes"));
                let flags = u16::from_ne_bytes(p[6..8].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(p[8..12].try_into().expect("4 bytes"));
                if len < 16 || len > p.len() {
                    break;
                }
                let body = &p[16..len];
                p = &p[((len + 3) & !3).min(p.len())..];
                // sequence numbers only grow (wrapping) within a process
                if seq.wrapping_sub(first_seq) > u32::MAX / 2 {
                    continue;
                }
                interrupted |= flags & NLM_F_DUMP_INTR != 0;
                match typ {
                    NLMSG_ERROR => {
                        let err = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
                        if err != 0 {
                            return Err(NlError::Kernel(nix::errno::Errno::from_raw(-err)));
                        }
                        acks = acks.saturating_sub(1);
                    }
                    NLMSG_DONE if interrupted || flags & NLM_F_DUMP_INTR != 0 => {
                        return Err(NlError::DumpInterrupted)
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((typ, body.get(4..).unwrap_or_default().to_vec())),
                }
            }
        }
    }

    /// A dump (of `typ`), done again while it comes back interrupted.
    pub(crate) fn dump(
        &mut self,
        typ: u16,
        family: u8,
        attrs: &Attrs,
    ) -> std::result::Result<Vec<(u16, Vec<u8>)>, NlError> {
        let mut result = Err(NlError::DumpInterrupted);
        for _ in 0..DUMP_ATTEMPTS {
            result = self.request(typ, NLM_F_REQUEST | NLM_F_DUMP, family, attrs);
            if !matches!(result, Err(NlError::DumpInterrupted)) {
                break;
            }
        }
        result
    }

    /// One request (not a batch): send it and read its replies.
    pub(crate) fn request(
        &mut self,
        typ: u16,
        flags: u16,
        family: u8,
        attrs: &Attrs,
    ) -> std::result::Result<Vec<(u16, Vec<u8>)>, NlError> {
        let first = self.next_seq();
        let mut buf = Vec::new();
        self.msg(&mut buf, typ, flags, family, 0, attrs);
        self.send(&buf)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        self.recv(first, usize::from(!dump), dump)
    }

    /// Send a batch of nf_tables (type, flags, attrs) for `family` as one
    /// transaction; wait for every acknowledgement.
    pub(crate) fn batch(
        &mut self,
        family: u8,
        msgs: &[(u16, u16, Attrs)],
    ) -> std::result::Result<(), NlError> {
        let first = self.next_seq();
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
        self.recv(first, msgs.len(), false)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_aligned_and_parse_back() {
        let mut a = Attrs::default();
        a.str(1, "abc").u32(2, 7);
        assert_eq!(a.0.len() % 4, 0);
        let parsed = parse_attrs(&a.0);
        assert_eq!(parsed[0].1, b"abc\0");
        assert_eq!(parsed[1].1, 7u32.to_be_bytes());
    }

    #[test]
    fn messages_carry_growing_sequence_numbers() {
        let mut s = Socket::open().unwrap();
        let mut buf = Vec::new();
        let first = s.next_seq();
        s.msg(&mut buf, 1, NLM_F_REQUEST, 2, 0, &Attrs::default());
        s.msg(&mut buf, 1, NLM_F_REQUEST, 2, 0, &Attrs::default());
        assert_eq!(s.next_seq(), first + 2);
        assert_eq!(
            u32::from_ne_bytes(buf[28..32].try_into().unwrap()),
            first + 1
        );
    }
}
