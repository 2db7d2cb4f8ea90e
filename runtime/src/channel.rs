//! Typed messages between rrun and the processes it forks, over a
//! `SOCK_SEQPACKET` socketpair (one datagram per message, EOF when every
//! copy of the peer end is closed, i.e. the child died).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{ErrnoExt, Error, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// stage 1 made a user namespace and waits for its id mappings.
    UserNsCreated,
    /// The parent wrote the mappings.
    MappingsWritten,
    /// The parent made the container's cgroup (true), or runs it without
    /// one (false): a stage 1 forked early joins it now.
    CgroupReady(bool),
    /// The container process (host pid).
    Pid(i32),
    /// The init built the mounts: run prestart/createRuntime hooks now.
    CreateHooks,
    /// They ran; the state JSON for the init's own hooks.
    CreateHooksDone(String),
    /// The init finished setting up and waits for `start`.
    Ready,
    /// Go on and exec the user process (used by `run` instead of the fifo).
    Start,
    /// Setup failed; the message says what.
    Error(String),
}

pub struct Channel(OwnedFd);

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .op(|| "socketpair".into())?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).expect("messages always serialize");
        send(self.0.as_raw_fd(), &data, MsgFlags::empty()).op(|| "send on sync socket".into())?;
        Ok(())
    }

    /// Next message; `Err` if the peer is gone without saying anything.
    pub fn recv(&self) -> Result<Msg> {
        loop {
            match self.datagram() {
                Ok(data) if data.is_empty() => {
                    return Err(Error::Init(
                        "the container process exited during setup".into(),
                    ))
                }
                Ok(data) => {
                    return serde_json::from_slice(&data)
                        .map_err(|e| Error::Init(format!("bad sync message: {e}")))
                }
                // The peer closed with a message of ours unread: the
                // error comes first, what it sent before is still queued.
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
                Err(e) => return Err(Error::sys("recv on sync socket", e)),
            }
        }
    }

    /// The next datagram, empty at EOF. Its length first (MSG_TRUNC reports
    /// it whole), then a buffer of that size: a fixed 64 KiB one was zeroed,
    /// and page-faulted in, by each process for each message.
    fn datagram(&self) -> nix::Result<Vec<u8>> {
        let len = recv(
            self.0.as_raw_fd(),
            &mut [],
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        )?;
        let mut buf = vec![0u8; len];
        if len > 0 {
            let n = recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            buf.truncate(n);
        }
        Ok(buf)
    }
}
